"""The ``kerasflow`` command.

Exit codes of ``kerasflow train``: 0 promoted or skipped (data unchanged), 3 rejected by
the gate, 2 bad config or command line, 1 any other failure. Each failure prints one
message naming the cause and the fix.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from kerasflow.flows.cli.console import quiet_failures
from kerasflow.flows.cli.embedded_server import (
    DEFAULT_SHUTDOWN_SECONDS,
    SHUTDOWN_SECONDS,
    configured_api_url,
    exit_within,
    prefect_api,
    seconds_setting,
    start_unless_configured,
)
from kerasflow.flows.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, fail, fail_for
from kerasflow.flows.cli.gc import datasets_app, runs_app
from kerasflow.flows.cli.models import RootOption, models_app
from kerasflow.flows.cli.tensorflow_start import import_tensorflow
from kerasflow.tasks._process import fast_exit
from kerasflow.tasks._process.deferred_keras import defer_unused_keras_namespaces

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Retrain Keras models; promote only better ones.")
app.add_typer(models_app, name="models")
app.add_typer(datasets_app, name="datasets")
app.add_typer(runs_app, name="runs")
k8s_app = typer.Typer(no_args_is_help=True, help="Multi-node training on Kubernetes (deploy/k8s/).")
app.add_typer(k8s_app, name="k8s")


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
    """Keep Prefect's echo of a failure off the terminal; the command prints it once (flows/cli/console.py)."""
    if not _SHOW_EVERYTHING["debug"]:
        quiet_failures()


def _import_tensorflow() -> None:
    """TensorFlow loads while the embedded server boots, its start-up lines dropped (flows/cli/tensorflow_start.py)."""

    import_tensorflow(quiet=not _SHOW_EVERYTHING["debug"])


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
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.tasks.config import ConfigError

    try:
        config = load_recipe(recipe, assignments or [])
    except ConfigError as error:
        raise fail_for(error) from None
    # On the root's own database; its process boots while TensorFlow is imported below.
    server = start_unless_configured(config.storage.root)
    _import_tensorflow()

    from kerasflow.flows.train import train_flow
    from kerasflow.tasks.gate import GateRejected

    _one_message_per_failure()
    try:
        with prefect_api(server):
            summary = train_flow(config=config, force=force, fresh=fresh)
    except GateRejected as error:
        if getattr(error, "summary", None) is not None:
            _print_summary(error.summary)  # its first line is the rejection: said once
            raise typer.Exit(EXIT_REJECTED) from None
        raise fail_for(error) from None
    except Exception as error:  # noqa: BLE001 - one line for the user; Prefect logged the traceback
        raise fail_for(error) from None
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
        decided = f" ({summary.gate.decision})" if summary.gate.decision not in (None, "pass", "fail") else ""
        echo(f"  gate      {'passed' if summary.gate.passed else 'REJECTED'}{decided}")
        for check in summary.gate.checks:
            echo(f"    [{check.verdict:^12}] {check.detail}")
    echo(f"  data      {summary.dataset_fingerprint}")
    if summary.run_dir:
        echo(f"  run       {summary.run_dir}  (model.keras, saved_model/, metrics.json, tensorboard/, plots/)")
    echo(f"  root      {summary.storage_root}")


@app.command()
@_exits_in_bounded_time
def serve(
    recipes: Annotated[
        list[str] | None, typer.Argument(help="bundled recipe names or paths to YAML files (default: digits)")
    ] = None,
    cron: Annotated[str, typer.Option("--cron", help='when to retrain, e.g. "0 2 * * *" (02:00 every day)')] = "",
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone the cron is read in, e.g. Europe/Berlin")
    ] = "UTC",
    assignments: Annotated[
        list[str] | None, typer.Option("--set", help="override one key of every recipe, e.g. --set training.epochs=5")
    ] = None,
) -> None:
    """Retrain RECIPEs on a cron schedule from this machine (Prefect's serve; no work pool); Ctrl-C stops."""
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.flows.serve import cron_schedule, served_deployments
    from kerasflow.flows.serve import serve as serve_deployments
    from kerasflow.tasks.config import ConfigError

    try:
        if not cron:
            raise ConfigError('received no --cron, expected a schedule such as --cron "0 2 * * *"')
        cron_schedule(cron, timezone)
        configs = [load_recipe(recipe, assignments or []) for recipe in recipes or ["digits"]]
    except ConfigError as error:
        raise fail_for(error) from None
    if not configured_api_url():
        # The schedules live on a server and fire only while it runs; the embedded one ends with this command.
        raise fail(
            "kerasflow serve needs a Prefect server to hold its schedules and show the runs: start one with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api",
            EXIT_USAGE,
        )
    try:
        deployments = served_deployments(configs, cron=cron, timezone=timezone)
    except ConfigError as error:
        raise fail_for(error) from None
    for config in configs:
        typer.echo(f"kerasflow: serving kerasflow-train/{config.model.name}: {cron} ({timezone})")
    try:
        serve_deployments(deployments)
    except Exception as error:  # noqa: BLE001 - one line for the user, e.g. the server cannot be reached
        raise fail_for(error) from None
    typer.echo("kerasflow: stopped serving; its deployments are paused until served again")


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
    fail_on_skew: Annotated[
        bool,
        typer.Option(
            "--fail-on-skew", help="fail, writing no scores, when a column drifted from the model's training data"
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="replace an existing file at --output that kerasflow did not write as scores"
        ),
    ] = False,
) -> None:
    """Score data with a registered model and write the predictions as Parquet (and a skew report beside it)."""
    from kerasflow.tasks.config import ConfigError, DataConfig, resolve_root

    try:
        server = start_unless_configured(resolve_root(root))  # on the root's own database
    except ConfigError as error:
        raise fail_for(error) from None
    _import_tensorflow()
    from kerasflow.flows.predict import predict_flow

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
                fail_on_skew=fail_on_skew,
                overwrite=overwrite,
            )
    except Exception as error:  # noqa: BLE001 - one line for the user; Prefect logged the traceback
        raise fail_for(error) from None
    typer.echo(
        f"kerasflow: scored {scored.rows} row(s) with {scored.model_name} v{scored.model_version} -> {scored.output}"
    )


@app.command()
def recipes(
    reference: Annotated[
        bool, typer.Option("--reference", help="print every key a recipe may hold (Markdown), from the config models")
    ] = False,
    schema: Annotated[
        bool, typer.Option("--schema", help="print the recipe JSON Schema editors complete and check keys with")
    ] = False,
    families: Annotated[
        bool, typer.Option("--families", help="print every model family with its params and defaults (Markdown)")
    ] = False,
) -> None:
    """List the bundled recipes; or every key a recipe may hold, its JSON Schema, or the model families."""
    from kerasflow.flows.recipes import describe, recipe_names
    from kerasflow.tasks.config import reference as generated

    for asked, text in ((reference, generated.reference_markdown), (schema, generated.recipe_schema)):
        if asked:
            typer.echo(text(), nl=False)
            return
    if families:
        typer.echo(generated.families_markdown(), nl=False)
        return

    for name in recipe_names():
        typer.echo(f"{name:<15} {describe(name)}")


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
    from kerasflow.tasks.train.launch import kubernetes

    try:
        config = load_recipe(recipe, assignments or [])
        manifests = kubernetes.render_manifests(config, job_url=job_url, run_id=run_id, secret_name=secret or None)
    except ConfigError as error:
        raise fail_for(error) from None
    typer.echo(kubernetes.manifests_yaml(manifests), nl=False)


def main() -> None:
    """The ``kerasflow`` console script: ends without the interpreter's teardown (tasks/_process/fast_exit.py).

    Importing this module registers no exit handler, so arming here is arming first; nor
    does it import Keras, so Keras's unused namespaces can still be deferred
    (tasks/_process/deferred_keras.py).
    """

    fast_exit.arm()
    defer_unused_keras_namespaces()
    fast_exit.run(app)

