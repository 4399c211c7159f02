"""Exit codes of the ``kerasflow`` command and its one-line failure message.

0 promoted or skipped, 1 any failure of the run or a refused model file, 2 a bad recipe,
override or command line, 3 rejected by the gate (docs/concepts/commands.md).
"""

from __future__ import annotations

import typer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` once on stderr; raise the returned Exit."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)
