"""The ``kerasflow`` command.

Exit codes of ``kerasflow train``: 0 promoted or skipped (data unchanged), 3 rejected by
the gate, 2 bad config or command line, 1 any other failure. Each failure prints one
message naming the cause and the fix.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Retrain Keras models; promote only better ones.")
models_app = typer.Typer(no_args_is_help=True, help="Inspect and move versions in the model registry.")
app.add_typer(models_app, name="models")
k8s_app = typer.Typer(no_args_is_help=True, help="Multi-node training on Kubernetes (deploy/k8s/).")
app.add_typer(k8s_app, name="k8s")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3

RootOption = Annotated[
    str | None, typer.Option("--root", help="storage root URL (default: $KERASFLOW_ROOT or ./.kerasflow)")
]


_SHOW_EVERYTHING = {"debug": False}


@app.callback()
def _quiet_tensorflow(
    debug: Annotated[
        bool, typer.Option("--debug", help="show Prefect's failure records and tracebacks on the terminal too")
    ] = False,
) -> None:
    # C++ INFO/WARNING lines drown the run's own progress; users can set it lower.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _SHOW_EVERYTHING["debug"] = debug


def _one_message_per_failure() -> None:
    """Keep Prefect's echo of a failure off the terminal; the command prints it once (flows/console.py)."""
    if not _SHOW_EVERYTHING["debug"]:
        from kerasflow.flows.console import quiet_failures

        quiet_failures()


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _exits_in_bounded_time(func):
    """Arm the exit watchdog when a run command ends (flows/embedded_server.exit_within)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        code = EXIT_FAILED
        try:
            result = func(*args, **kwargs)
            code = EXIT_OK
            return result
        except typer.Exit as done:
            code = done.exit_code
            raise
        finally:
            from kerasflow.flows.embedded_server import (
                DEFAULT_SHUTDOWN_SECONDS,
                SHUTDOWN_SECONDS,
                exit_within,
                seconds_setting,
            )

            try:
                limit = seconds_setting(SHUTDOWN_SECONDS, DEFAULT_SHUTDOWN_SECONDS)
            except ValueError:
                limit = DEFAULT_SHUTDOWN_SECONDS
            exit_within(limit, code)

    return wrapper


@app.command()
@_exits_in_bounded_time
def train(
    recipe: Annotated[str, typer.Argument(help="bundled recipe name or path to a YAML file")] = "digits",
    assignments: Annotated[
        list[str] | None, typer.Option("--set", help="override one key, e.g. --set training.epochs=5")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="train even when the data is unchanged")] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="start over instead of resuming an interrupted training of the same data")
    ] = False,
) -> None:
    """Run the retraining flow on RECIPE (default: the digits quickstart)."""
    from kerasflow.flows.embedded_server import prefect_api, start_unless_configured
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.tasks.config import ConfigError

    server = start_unless_configured()  # boots while TensorFlow is imported below
    try:
        config = load_recipe(recipe, assignments or [])
    except ConfigError as error:
        if server is not None:
            server.stop()
        raise _fail(str(error), EXIT_USAGE) from None

    from kerasflow.flows.train import train_flow
    from kerasflow.tasks.failures import DeterministicFailure
    from kerasflow.tasks.gate import GateRejected

    _one_message_per_failure()
    try:
        with prefect_api(server):
            summary = train_flow(config=config, force=force, fresh=fresh)
    except GateRejected as error:
        if getattr(error, "summary", None) is not None:
            _print_summary(error.summary)  # its first line is the rejection: said once
            raise typer.Exit(EXIT_REJECTED) from None
        raise _fail(str(error), EXIT_REJECTED) from None
    except ConfigError as error:
        raise _fail(str(error), EXIT_USAGE) from None
    except DeterministicFailure as error:
        raise _fail(str(error), EXIT_FAILED) from None
    except Exception as error:  # noqa: BLE001 - one line for the user; Prefect logged the traceback
        raise _fail(f"{type(error).__name__}: {error}", EXIT_FAILED) from None
    _print_summary(summary)


def _print_summary(summary) -> None:
    echo = typer.echo
    echo("")
    echo(f"kerasflow: {summary.message}")
    if summary.reason and summary.outcome != "skipped":
        echo(f"  trained   because {summary.reason}")
    if summary.version is not None:
        v = summary.version
        echo(f"  model     {v.name} v{v.version} ({v.status})  {v.uri}")
    if summary.metrics:
        echo("  test      " + "  ".join(f"{k}={val:.4f}" for k, val in sorted(summary.metrics.items())))
    if summary.gate is not None:
        echo(f"  gate      {'passed' if summary.gate.passed else 'REJECTED'}")
        for check in summary.gate.checks:
            echo(f"    [{check.verdict:^11}] {check.detail}")
    echo(f"  data      {summary.dataset_fingerprint}")
    if summary.run_dir:
        echo(f"  run       {summary.run_dir}  (model.keras, saved_model/, metrics.json, tensorboard/, plots/)")
    echo(f"  root      {summary.storage_root}")


@app.command()
@_exits_in_bounded_time
def predict(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME@VERSION (default alias: production)")],
    output: Annotated[str, typer.Option("--output", "-o", help="Parquet file URL to write the predictions to")],
    data: Annotated[
        str | None, typer.Option("--data", help="Parquet/CSV file, folder or glob URL; default: the model's own data")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="split to score when reading the model's own data")] = "test",
    key: Annotated[str | None, typer.Option("--key", help="column copied to the output to join on")] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option("--trust", help="a package whose registered Keras classes the model uses (repeatable)"),
    ] = None,
    root: RootOption = None,
) -> None:
    """Score data with a registered model and write the predictions as Parquet."""
    from kerasflow.flows.embedded_server import prefect_api, start_unless_configured

    server = start_unless_configured()
    from kerasflow.flows.predict import predict_flow
    from kerasflow.models.io import ModelFileError
    from kerasflow.models.registry import RegistryError
    from kerasflow.tasks.config import ConfigError, DataConfig
    from kerasflow.tasks.failures import DeterministicFailure

    _one_message_per_failure()
    try:
        with prefect_api(server):
            config = DataConfig(source="files", url=data) if data else None
            scored = predict_flow(
                model=model,
                output=output,
                data=config,
                split=split,
                key_column=key,
                root=root,
                trusted_packages=tuple(trust or ()),
            )
    except ModelFileError as error:
        raise _fail(str(error), EXIT_FAILED) from None
    except (ConfigError, RegistryError, ValueError) as error:
        raise _fail(str(error), EXIT_USAGE) from None
    except DeterministicFailure as error:
        raise _fail(str(error), EXIT_FAILED) from None
    except Exception as error:  # noqa: BLE001 - one line for the user; Prefect logged the traceback
        raise _fail(f"{type(error).__name__}: {error}", EXIT_FAILED) from None
    typer.echo(
        f"kerasflow: scored {scored.rows} row(s) with {scored.model_name} v{scored.model_version} -> {scored.output}"
    )


@app.command()
def recipes(
    reference: Annotated[
        bool, typer.Option("--reference", help="print every key a recipe may hold (Markdown), from the config models")
    ] = False,
) -> None:
    """List the bundled recipes, or (--reference) every key a recipe may hold."""
    from kerasflow.flows.recipes import describe, recipe_names

    if reference:
        from kerasflow.tasks.recipe_reference import reference_markdown

        typer.echo(reference_markdown(), nl=False)
        return

    for name in recipe_names():
        typer.echo(f"{name:<15} {describe(name)}")


def _registry(root: str | None):
    from kerasflow.models.registry import ModelRegistry
    from kerasflow.tasks import storage
    from kerasflow.tasks.config import resolve_root

    return ModelRegistry(storage.registry_url(resolve_root(root)))


def _registry_errors(func):
    """Turn registry and name errors into one message and exit code 2."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from kerasflow.models.io import ModelFileError
        from kerasflow.models.registry import RegistryError

        try:
            return func(*args, **kwargs)
        except ModelFileError as error:  # a ValueError too, but the file is at fault, not the command line
            raise _fail(str(error), EXIT_FAILED) from None
        except (RegistryError, ValueError) as error:
            raise _fail(str(error), EXIT_USAGE) from None

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
        typer.echo(f"    [{check['verdict']:^11}] {check['detail']}")


@models_app.command("promote")
@_registry_errors
def models_promote(
    name: str,
    version: int,
    alias: Annotated[str, typer.Option("--alias")] = "production",
    root: RootOption = None,
) -> None:
    """Point ALIAS at VERSION of NAME (refused for versions the gate rejected)."""
    entry = _registry(root).set_alias(name, alias, version, reason="manual promotion", actor=_actor())
    previous = f"v{entry['previous_version']}" if entry["previous_version"] else "(none)"
    typer.echo(f"{name}: {alias} {previous} -> v{entry['version']}")


@models_app.command("rollback")
@_registry_errors
def models_rollback(
    name: str,
    alias: Annotated[str, typer.Option("--alias")] = "production",
    root: RootOption = None,
) -> None:
    """Move ALIAS of NAME back to the version it pointed at before."""
    entry = _registry(root).rollback(name, alias, actor=_actor())
    typer.echo(f"{name}: {alias} v{entry['previous_version']} -> v{entry['version']} (rollback)")


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
    from datetime import timedelta

    registry = _registry(root)
    if dry_run:
        for entry in registry.unfinished(name):
            typer.echo(f"v{entry['version']}: unfinished, claimed {entry['claimed_at'] or 'unknown'}")
        return
    removed = registry.gc(name, grace=timedelta(minutes=grace_minutes))
    typer.echo(f"{name}: removed {len(removed)} unfinished version(s)" + (f": {removed}" if removed else ""))


def _actor() -> str:
    return f"kerasflow cli ({os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown user'})"


@k8s_app.command("render")
def k8s_render(
    recipe: Annotated[str, typer.Argument(help="bundled recipe name or path to a YAML file")],
    job_url: Annotated[str, typer.Option("--job-url", help="URL of the run's job.json under the storage root")],
    run_id: Annotated[str, typer.Option("--run-id", help="the run id (labels and names the pods)")],
    assignments: Annotated[
        list[str] | None, typer.Option("--set", help="override one key, e.g. --set runtime.launcher.workers=4")
    ] = None,
    secret: Annotated[
        str, typer.Option("--secret", help="Secret holding the storage credentials")
    ] = "kerasflow-storage",
) -> None:
    """Print the headless Service and Indexed Job that train RECIPE on Kubernetes (for kubectl apply -f -)."""
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.tasks.config import ConfigError
    from kerasflow.tasks.train import kubernetes

    try:
        config = load_recipe(recipe, assignments or [])
        manifests = kubernetes.render_manifests(config, job_url=job_url, run_id=run_id, secret_name=secret or None)
    except ConfigError as error:
        raise _fail(str(error), EXIT_USAGE) from None
    typer.echo(kubernetes.manifests_yaml(manifests), nl=False)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
