"""``kerasflow models``: inspect and move versions in the model registry.

Reads metadata only (a model file is never loaded here); registry and name errors exit 2,
a refused model file exits 1, each with one message.

An alias moved here (``promote``, ``rollback``) is recorded in its history with who moved
it (``--actor``, by default the OS user) and why (``--reason``), and sends the event a
flow's promotion sends (tasks/events.py), so automations see every move. Without a
configured Prefect server no event is sent: an embedded server started for one event would
cost seconds and end with the command, where no automation watches; the command says so,
and the history holds the move.
"""

from __future__ import annotations

import getpass
import json
import os
from typing import Annotated, Any

import typer

from kerasflow.flows.cli.durations import duration
from kerasflow.flows.cli.embedded_server import (
    DEFAULT_SHUTDOWN_SECONDS,
    SHUTDOWN_SECONDS,
    configured_api_url,
    drain_prefect_workers,
    exit_within,
    seconds_setting,
)
from kerasflow.flows.cli.exit_codes import EXIT_OK, EXIT_USAGE, fail, fail_for
from kerasflow.tasks import events
from kerasflow.tasks.failures import KerasflowError

models_app = typer.Typer(no_args_is_help=True, help="Inspect and move versions in the model registry.")

RootOption = Annotated[
    str | None, typer.Option("--root", help="storage root URL (default: $KERASFLOW_ROOT or ./.kerasflow)")
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="why the alias moves; recorded in its history and its event")
]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="who moves the alias (default: the OS user running the command)")
]


def _registry(root: str | None):
    from kerasflow.models.registry import ModelRegistry
    from kerasflow.tasks import storage
    from kerasflow.tasks.config import resolve_root

    return ModelRegistry(storage.registry_url(resolve_root(root)))


def _registry_errors(func):
    """Turn kerasflow's errors into one message and the exit code of the table (exit_codes.py).

    An unknown name, version or alias is a RegistryError (a ConfigError): exit 2.
    """
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KerasflowError as error:
            raise fail_for(error) from None

    return wrapper


@models_app.command("list")
@_registry_errors
def models_list(
    name: Annotated[str | None, typer.Argument(help="one model's versions; all models when omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    root: RootOption = None,
) -> None:
    """List models, or the versions of NAME."""
    registry = _registry(root)
    if name is None:
        rows = [
            {"name": n, "versions": len(registry.versions(n)), "aliases": registry.aliases(n)} for n in registry.names()
        ]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            aliases = ", ".join(f"{a}=v{v}" for a, v in row["aliases"].items()) or "-"
            typer.echo(f"{row['name']:<24} {row['versions']:>3} version(s)  {aliases}")
        return
    aliases = registry.aliases(name)
    rows = [
        {
            "version": m["version"],
            "status": m.get("status"),
            "aliases": sorted(a for a, v in aliases.items() if v == m["version"]),
            "accuracy": m.get("metrics", {}).get("values", {}).get("accuracy"),
            "dataset": m.get("dataset", {}).get("fingerprint"),
            "created_at": m.get("created_at"),
        }
        for m in registry.versions(name)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        acc = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "-"
        typer.echo(
            f"v{row['version']:<4} {row['status']:<10} accuracy={acc}  data={row['dataset']}  "
            f"{row['created_at']}  {' '.join(row['aliases'])}"
        )


@models_app.command("show")
@_registry_errors
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS (default alias: production)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    root: RootOption = None,
) -> None:
    """Show one version's metadata."""
    from kerasflow.models.registry import parse_model_ref

    name, selector = parse_model_ref(ref)
    metadata = _registry(root).resolve(name, selector)
    if as_json:
        typer.echo(json.dumps(metadata, indent=2, sort_keys=True))
        return
    typer.echo(f"{metadata['name']} v{metadata['version']} ({metadata.get('status')})")
    for key in ("model_uri", "sha256", "created_at", "flow_run_id", "keras_version", "tensorflow_version"):
        typer.echo(f"  {key:<19} {metadata.get(key)}")
    typer.echo(f"  {'dataset':<19} {metadata.get('dataset', {}).get('fingerprint')}")
    values = metadata.get("metrics", {}).get("values", {})
    typer.echo("  metrics             " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(values.items())))
    gate = metadata.get("gate") or {}
    typer.echo(f"  gate                {'passed' if gate.get('passed') else 'rejected'}")
    for check in gate.get("checks", []):
        typer.echo(f"    [{check['verdict']:^12}] {check['detail']}")


@models_app.command("promote")
@_registry_errors
def models_promote(
    name: str,
    version: int,
    alias: Annotated[str, typer.Option("--alias")] = "production",
    reason: ReasonOption = None,
    actor: ActorOption = None,
    root: RootOption = None,
) -> None:
    """Point ALIAS at VERSION of NAME (refused for versions the gate rejected); record who and why."""
    who = _actor(actor)
    registry = _registry(root)
    entry = registry.set_alias(name, alias, version, reason=_reason("manual promotion", reason), actor=who)
    previous = f"v{entry['previous_version']}" if entry["previous_version"] else "(none)"
    typer.echo(f"{name}: {alias} {previous} -> v{entry['version']}")
    _announce(registry, name, entry)


@models_app.command("rollback")
@_registry_errors
def models_rollback(
    name: str,
    alias: Annotated[str, typer.Option("--alias")] = "production",
    reason: ReasonOption = None,
    actor: ActorOption = None,
    root: RootOption = None,
) -> None:
    """Move ALIAS of NAME back to the version it pointed at before; record who and why."""
    who = _actor(actor)
    registry = _registry(root)
    entry = registry.rollback(name, alias, actor=who, reason=_reason("rollback", reason))
    typer.echo(f"{name}: {alias} v{entry['previous_version']} -> v{entry['version']} (rollback)")
    _announce(registry, name, entry)


@models_app.command("history")
@_registry_errors
def models_history(
    name: str,
    alias: Annotated[str, typer.Option("--alias")] = "production",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    root: RootOption = None,
) -> None:
    """Every move of ALIAS of NAME, oldest first: version, previous version, who, why, when."""
    history = _registry(root).alias_history(name, alias)
    if as_json:
        typer.echo(json.dumps(history, indent=2, sort_keys=True))
        return
    if not history:
        typer.echo(f"{name}: alias {alias!r} has never been set")
        return
    for entry in history:
        previous = f"v{entry['previous_version']}" if entry.get("previous_version") else "(none)"
        typer.echo(
            f"#{entry['seq']:<3} {entry['moved_at']}  {previous} -> v{entry['version']}  "
            f"{entry.get('reason') or ''}  by {entry.get('actor') or '?'}"
            + (f"  run {entry['flow_run_id']}" if entry.get("flow_run_id") else "")
        )


@models_app.command("gc")
@_registry_errors
def models_gc(
    name: str,
    grace_minutes: Annotated[
        float, typer.Option("--grace-minutes", help="leave unfinished versions younger than this")
    ] = 60.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be removed")] = False,
    root: RootOption = None,
) -> None:
    """Remove versions of NAME whose writer died before committing them (no metadata.json)."""
    grace = duration("--grace-minutes", grace_minutes, "minutes")
    registry = _registry(root)
    if dry_run:
        for entry in registry.unfinished(name):
            typer.echo(f"v{entry['version']}: unfinished, claimed {entry['claimed_at'] or 'unknown'}")
        return
    removed = registry.gc(name, grace=grace)
    typer.echo(f"{name}: removed {len(removed)} unfinished version(s)" + (f": {removed}" if removed else ""))


def default_actor() -> str:
    """Who runs this command: the OS user, else ``uid:<n>``; never an unknown user.

    ``getpass.getuser`` reads ``LOGNAME``, ``USER``, ``LNAME`` and ``USERNAME``, then the
    password database; a container's user often has neither (no ``USER`` under cron or
    ``docker run``, a uid without a passwd entry), and its uid still names it.
    """
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return f"uid:{os.getuid()}"


def _actor(given: str | None) -> str:
    if given is None:
        return default_actor()
    if not given.strip():
        raise fail(f"received --actor {given!r}, expected a name (who moves the alias)", EXIT_USAGE)
    return given.strip()


def _reason(move: str, given: str | None) -> str:
    """The history's reason: the kind of move, then the person's words when given."""
    return f"{move}: {given.strip()}" if given and given.strip() else move


def _announce(registry, name: str, entry: dict[str, Any]) -> None:
    """Send the event a flow's promotion sends for a move made by hand, waiting boundedly for it to leave."""
    if not configured_api_url():
        typer.echo(
            f"kerasflow: no {events.MODEL_PROMOTED} event sent: no Prefect server is configured (PREFECT_API_URL); "
            "the move is in the alias history",
            err=True,
        )
        return
    events.emit_promoted(
        name,
        version=entry["version"],
        previous_version=entry["previous_version"],
        alias=entry["alias"],
        fingerprint=registry.get(name, entry["version"]).get("dataset", {}).get("fingerprint"),
        actor=entry["actor"],
        reason=entry["reason"],
    )
    try:
        limit = seconds_setting(SHUTDOWN_SECONDS, DEFAULT_SHUTDOWN_SECONDS)
    except ValueError:
        limit = DEFAULT_SHUTDOWN_SECONDS
    # The move is made and recorded: a server out of reach delays the command, never fails it.
    if not drain_prefect_workers(limit):
        typer.echo(
            f"kerasflow: the {events.MODEL_PROMOTED} event was not sent within {limit:.0f} s ({SHUTDOWN_SECONDS}); "
            "the move is in the alias history",
            err=True,
        )
    exit_within(limit, EXIT_OK)
