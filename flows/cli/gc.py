"""``kerasflow datasets gc`` and ``kerasflow runs gc``: free what the storage root no longer uses.

The sweeps are tasks/housekeeping/; this prints one line per folder (removed, or with
--dry-run what would be, and what is kept and why) and the bytes freed. A root that
cannot be reached, or a record of what is in use that cannot be read, exits 1 (nothing
removed); a bad option 2; each with one message.
"""

from typing import Annotated

import typer

from kerasflow.flows.cli.durations import duration
from kerasflow.flows.cli.exit_codes import EXIT_FAILED, fail, fail_for
from kerasflow.flows.cli.models import RootOption

datasets_app = typer.Typer(no_args_is_help=True, help="Materialized datasets under the storage root.")
runs_app = typer.Typer(no_args_is_help=True, help="Run folders under the storage root.")

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="list what would be removed; remove nothing")]


@datasets_app.command("gc")
def datasets_gc(
    grace_hours: Annotated[
        float, typer.Option("--grace-hours", help="leave unpublished attempts changed more recently than this")
    ] = 24.0,
    keep_days: Annotated[
        float, typer.Option("--keep-days", help="leave datasets no version uses for this long after publication")
    ] = 30.0,
    dry_run: DryRunOption = False,
    root: RootOption = None,
) -> None:
    """Remove dead attempt folders and datasets that no registered version or training uses."""
    from kerasflow.tasks.housekeeping import sweep_datasets

    grace, keep = duration("--grace-hours", grace_hours, "hours"), duration("--keep-days", keep_days, "days")
    _report("datasets gc", lambda url: sweep_datasets(url, grace=grace, keep=keep, dry_run=dry_run), root)


@runs_app.command("gc")
def runs_gc(
    retention_days: Annotated[
        float, typer.Option("--retention-days", help="leave run folders changed more recently than this")
    ] = 30.0,
    dry_run: DryRunOption = False,
    root: RootOption = None,
) -> None:
    """Remove folders of finished runs older than the retention, except those a version or training uses."""
    from kerasflow.tasks.housekeeping import sweep_runs

    retention = duration("--retention-days", retention_days, "days")
    _report("runs gc", lambda url: sweep_runs(url, retention=retention, dry_run=dry_run), root)


def _report(command: str, sweep_root, root: str | None) -> None:
    from kerasflow.tasks import storage
    from kerasflow.tasks.config import ConfigError, resolve_root
    from kerasflow.tasks.housekeeping import UnreadableRecord

    try:
        url = resolve_root(root)
        sweep = sweep_root(url)
    except (ConfigError, UnreadableRecord) as error:
        raise fail_for(error) from None
    except OSError as error:  # the root cannot be reached or read
        message = storage.unreachable(url, error) if storage.is_connection_error(error) else error
        raise fail(str(message), EXIT_FAILED) from None
    removing = "would remove" if sweep.dry_run else "removed"
    for entry in sweep.removed:
        typer.echo(f"{removing:<12}  {entry.url}  {human_bytes(entry.bytes)}  {entry.reason}")
    for entry in sweep.kept:
        typer.echo(f"{'kept':<12}  {entry.url}  {human_bytes(entry.bytes)}  {entry.reason}")
    freed = "would free" if sweep.dry_run else "freed"
    typer.echo(
        f"kerasflow {command}: {removing} {len(sweep.removed)} folder(s), {freed} "
        f"{human_bytes(sweep.bytes_freed)}; kept {len(sweep.kept)}"
    )


def human_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KiB``: powers of 1024, one decimal.

    Args:
        count: a number of bytes.
    """
    if count < 1024:
        return f"{count} B"
    size = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"
