"""Scheduled retraining on one machine: Prefect's ``serve`` for the retraining flow, no work pool.

What runs where: this process registers one deployment of ``kerasflow-train`` per recipe
with the Prefect server (``PREFECT_API_URL``) and polls it; every run, whether the
schedule started it or a person did in the UI, runs in a child process of this one
(Prefect's runner). The recipe's config is the deployment's parameter, so the UI's
*Custom run* form opens filled in with it, as for deploy/prefect.yaml's deployments.

One run at a time per recipe: each deployment has a concurrency limit of 1 with
``ENQUEUE``, so a run that falls due while the last one still trains waits for it
(the server holds it in ``AwaitingConcurrencySlot``) instead of competing for its
training lease. What is retried is what ``kerasflow train`` retries (flows/train.py).

Stopping (Ctrl-C, SIGTERM) is Prefect's once its runner has started: the runner cancels
the run in progress, which resumes from its last epoch next time, and pauses the
deployments, so no runs pile up while nothing serves them. A stop before that (see
``serve``) pauses them too.
"""

from collections.abc import Sequence

from kerasflow.tasks.config import ConfigError, TrainConfig

# A schedule given without a time zone is read in UTC, never in the machine's zone: a
# server's zone setting is often an accident of its image, and the schedule must not move with it.
DEFAULT_TIMEZONE = "UTC"


def cron_schedule(cron: str, timezone: str = DEFAULT_TIMEZONE):
    """Prefect's CronSchedule for ``cron`` in ``timezone``; ConfigError naming the cause.

    Args:
        cron: five cron fields, such as ``0 2 * * *``.
        timezone: an IANA time zone name, such as ``Europe/Berlin``.

    Raises:
        ConfigError: ``cron`` or ``timezone`` is invalid.
    """
    import pydantic
    from prefect.client.schemas.schedules import CronSchedule

    try:
        if len(cron.split()) != 5 and not cron.startswith("@"):
            # croniter reads a sixth field as seconds: "* * * * * *" would train every second.
            raise ValueError(f"{len(cron.split())} fields")
        return CronSchedule(cron=cron, timezone=timezone)
    except (pydantic.ValidationError, ValueError) as error:
        errors = error.errors() if isinstance(error, pydantic.ValidationError) else [{"msg": str(error)}]
        causes = "; ".join(str(e.get("ctx", {}).get("error") or e["msg"]) for e in errors)
        raise ConfigError(
            f"received --cron {cron!r} --timezone {timezone!r}: {causes}; expected five cron fields such as "
            "'0 2 * * *' (02:00 every day) and an IANA time zone such as 'Europe/Berlin'"
        ) from None


def served_deployments(configs: Sequence[TrainConfig], *, cron: str, timezone: str = DEFAULT_TIMEZONE) -> list:
    """One RunnerDeployment of the retraining flow per config, named after its model.

    Args:
        configs: the recipes' configs, one per model name.
        cron: five cron fields: when each deployment runs.
        timezone: the IANA time zone ``cron`` is read in.

    Returns:
        RunnerDeployments of ``kerasflow-train``, each with the config as its parameter and a concurrency
        limit of one run (later runs wait).

    Raises:
        ConfigError: the schedule is invalid, or two configs name the same model.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.types.entrypoint import EntrypointType

    schedule = cron_schedule(cron, timezone)  # before importing the flow (TensorFlow): a typo fails fast
    names = [config.model.name for config in configs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(
            f"received two recipes for model {twice[0]!r}, expected one recipe per model: "
            "both would retrain and promote the same registry name"
        )
    from kerasflow.flows.train import train_flow

    return [
        train_flow.to_deployment(
            name=config.model.name,
            schedule=schedule,
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
            parameters={"config": config.model_dump(mode="json")},
            description=f"Retrain {config.model.name} ({cron} {timezone}), served by `kerasflow serve`",
            tags=["kerasflow", "served"],
            # The installed package, not this file's path: the run's process imports what is installed.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        for config in configs
    ]


def serve(deployments: Sequence) -> None:
    """Serve ``deployments`` until Ctrl-C or SIGTERM; the deployments are paused when it stops.

    Prefect's runner pauses them on its way out, but only once it has started: a signal that
    arrives while it registers the deployments (which resumes them) used to end the command
    with a traceback and leave them resumed, unserved, piling up runs. Until the runner
    installs its own SIGTERM handler, SIGTERM here means what Ctrl-C means, and however the
    command stops, the deployments it registered are paused again.

    Args:
        deployments: RunnerDeployments, as :func:`served_deployments` makes them.
    """
    import signal
    import threading

    import prefect

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop_serving)
    try:
        prefect.serve(*deployments, pause_on_shutdown=True)
    except KeyboardInterrupt:
        pass  # stopped before the runner took the signals over: a stop all the same
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        pause(deployments)


def _stop_serving(signum, frame) -> None:
    raise KeyboardInterrupt


def pause(deployments: Sequence) -> None:
    """Pause each of ``deployments`` that the server has; one that was never registered is skipped.

    Args:
        deployments: RunnerDeployments, as :func:`served_deployments` makes them.
    """
    import logging

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    logger = logging.getLogger("kerasflow")
    try:
        with get_client(sync_client=True) as client:
            for deployment in deployments:
                name = f"{deployment.flow_name}/{deployment.name}"
                try:
                    client.pause_deployment(client.read_deployment_by_name(name).id)
                except ObjectNotFound:
                    continue  # the stop came before it was registered
    except Exception as error:  # noqa: BLE001 - the stop goes on; the cause is shown
        logger.warning("could not pause the served deployments: %s: %s", type(error).__name__, error)
