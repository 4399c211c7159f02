"""The exit codes of every ``kerasflow`` command, from one table, and the one-line failure message.

- 0: promoted, skipped (unchanged data), or the command did what it was asked;
- 1: any failure of the run: bad data, a refused model file, NaN loss, storage out of reach;
- 2 (``ConfigError``, ``RegistryError`` included): a bad recipe, override or command line:
  a name, version or alias that does not exist, an output that would destroy something, a
  storage root that cannot be used (a file, a folder it cannot write, S3 without credentials);
- 3 (``GateRejected``): the gate (or a person) rejected the candidate, or production moved
  while it was judged.

A refused model file is 1 although it is a ``ValueError``: the file is at fault, not the
command line (docs/concepts/commands.md).
"""

from __future__ import annotations

import typer

from kerasflow.models.errors import ConfigError, KerasflowError, ModelFileError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


def exit_code(error: BaseException) -> int:
    """The exit code of a command that failed with ``error`` (the table above)."""
    from kerasflow.tasks.gate import GateRejected

    for kind, code in ((GateRejected, EXIT_REJECTED), (ModelFileError, EXIT_FAILED), (ConfigError, EXIT_USAGE)):
        if isinstance(error, kind):
            return code
    return EXIT_FAILED


def message(error: BaseException) -> str:
    """One line for the user: kerasflow's own errors name the cause and the fix; others their type too.

    Args:
        error: the exception the command failed with.
    """

    return str(error) if isinstance(error, KerasflowError) else f"{type(error).__name__}: {error}"


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` once on stderr; raise the returned Exit.

    Args:
        message: the text after ``error:``, one line.
        code: the exit code of the returned Exit (``EXIT_FAILED``, ``EXIT_USAGE``...).

    Returns:
        A ``typer.Exit`` with ``code``, for the caller to raise.
    """
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def fail_for(error: BaseException) -> typer.Exit:
    """Print ``error``'s one line; raise the returned Exit with its code from the table."""
    return fail(message(error), exit_code(error))
