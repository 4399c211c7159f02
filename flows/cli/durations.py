"""Durations given on the command line (grace, retention, keep): a finite number of 0 or more.

Typer reads ``inf``, ``nan`` and ``1e12`` as floats; a timedelta of them overflows (a
traceback) or compares as nothing (``nan``), and a negative grace would reach what a live
writer holds. Each is refused here with one line naming the option, exit 2.
"""

from __future__ import annotations

from datetime import timedelta

from kerasflow.flows.cli.exit_codes import EXIT_USAGE, fail

__all__ = ["duration"]

# A century: longer than any grace or retention means "keep everything", and stays far from
# timedelta's limit (999,999,999 days), past which it overflows.
MAX_DAYS = 36_525


def duration(option: str, value: float, unit: str) -> timedelta:
    """``value`` ``unit`` as a timedelta, or exit 2 naming ``option``.

    Args:
        option: the option as typed, such as ``--grace-hours``.
        value: the number given.
        unit: a ``timedelta`` keyword: ``minutes``, ``hours`` or ``days``.

    Raises:
        typer.Exit: ``value`` is negative, not a number, infinite, or longer than a century (exit 2).
    """
    try:
        span = timedelta(**{unit: value}) if value >= 0 else None
    except OverflowError:  # inf, or beyond timedelta's range
        span = None
    if span is None or span > timedelta(days=MAX_DAYS):
        raise fail(
            f"received {option} {value}, expected a number of 0 or more (in {unit}, at most {MAX_DAYS} days)",
            EXIT_USAGE,
        )
    return span
