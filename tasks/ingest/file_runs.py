"""A table's files stored as Prefect task runs, several at once, under a task runner.

Inside a flow run, each file of a table not stored yet is one run of the
``materialize-file`` task (tasks/ingest/partitions.py decides which): the Prefect UI shows
every file with its own state and logs, and a transient fault in one file retries that
file, not the table. The runs go to a task runner (``runtime.ingest.task_runner``):

- ``flow`` (the default): the flow's own. Prefect's ``ThreadPoolTaskRunner`` runs them in
  threads of this process, ``runtime.ingest.files_at_once`` at a time, since each holds a
  file's rows (a part and the next one read ahead); a team's flow with another task runner
  (``DaskTaskRunner``, ``RayTaskRunner``) ships them to its workers.
- ``dask``: prefect-dask's ``DaskTaskRunner``, opened for the files: the scheduler at
  ``KERASFLOW_DASK_ADDRESS`` (workers on other machines need kerasflow installed, the
  files and the storage root reachable: S3, not a local folder), or a local cluster of
  ``dask_workers`` processes of one thread. The address is the operator's, from the
  environment of the process that runs the flow, never a recipe's: the task runs sent
  there carry the run's Prefect settings, API key included.
- ``in_task``: no task runs; the files one after another inside the ingest task, the next
  read while the last is stored (tasks/ingest/read_ahead.py), as outside a flow run
  (``ingest`` called alone). As fast as two threads on two cores and 0.38 GiB lighter at
  5M rows (bench/file_runs.py): storing is mostly Python (TFDS), so threads share one core's
  worth of it; processes (Dask) do not, but each imports TensorFlow once.
- a name a team registered with :func:`register_task_runner`.

A file that fails stops new files from starting; the ones running finish (what they
stored is complete and reused next time), then the first failure in file order is raised.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from kerasflow.models.plugins import PluginRegistry
from kerasflow.tasks.config import ConfigError, DataConfig
from kerasflow.tasks.failures import retry_unless_deterministic
from kerasflow.tasks.ingest import file_parts
from kerasflow.tasks.refs import DatasetRef

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

    from kerasflow.tasks.config.runtime import IngestRunConfig

# What opens a task runner for a table's files, from the runtime.ingest section.
TaskRunnerFactory = Callable[["IngestRunConfig"], "TaskRunner"]
# Not factories: the flow's own task runner, and none (the files stored inside the ingest task).
FLOW, IN_TASK = "flow", "in_task"
# The Dask scheduler's address: the operator's setting, in the environment (see the module's docstring).
DASK_ADDRESS = "KERASFLOW_DASK_ADDRESS"


def _run_name() -> str:
    from prefect.runtime import task_run

    url = task_run.parameters["identity"]["files"][0][0]
    return f"materialize-file {url.rsplit('/', 1)[-1]}"


@task(
    name="materialize-file",
    task_run_name=_run_name,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def materialize_file_run(data: DataConfig, identity: dict[str, Any], root: str) -> DatasetRef | None:
    """Store the one file ``identity`` names (tasks/ingest/file_parts.py); None when it has no row to store.

    Args:
        data: the recipe's ``data`` section, with the table's columns set.
        identity: the identity of the one file.
        root: the storage root, any fsspec URL.
    """
    logger = get_run_logger()
    started = time.monotonic()
    ref = file_parts.materialize_file(data, identity, root, logger=logger)
    # Which worker stored which file, when a Dask cluster runs them.
    logger.info(
        "%s: %d row(s) stored in %.1f s, in process %d on %s",
        identity["files"][0][0],
        sum(ref.splits.values()) if ref is not None else 0,
        time.monotonic() - started,
        os.getpid(),
        socket.gethostname(),
    )
    return ref


def _dask_task_runner(config: IngestRunConfig) -> TaskRunner:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigError(
            "received runtime.ingest.task_runner='dask', and prefect-dask is not installed; "
            "pip install 'kerasflow[dask]', or set runtime.ingest.task_runner=flow"
        ) from None
    address = os.environ.get(DASK_ADDRESS, "").strip()
    if address:
        if not _server_configured():
            get_run_logger().warning(
                f"{DASK_ADDRESS}: no Prefect server is configured (PREFECT_API_URL), so this run reports "
                "to a server of its own, and a long-lived cluster's workers keep sending their task runs' events to "
                "the first such server they met (measured: bench/file_runs.py); set PREFECT_API_URL to a running "
                "server (`prefect server start`) for their task runs to be recorded"
            )
        return DaskTaskRunner(address=address)
    # A process per worker, one thread each: a file's storing is not shared between threads.
    return DaskTaskRunner(cluster_kwargs={"n_workers": config.dask_workers, "threads_per_worker": 1, "processes": True})


def _server_configured() -> bool:
    """Whether PREFECT_API_URL is set by the environment or the Prefect profile, not by this process alone."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    try:
        from prefect.settings import PREFECT_API_URL, load_current_profile

        return bool(load_current_profile().settings.get(PREFECT_API_URL))
    except Exception:  # noqa: BLE001 - unknown: say nothing rather than warn wrongly
        return True


# Besides ``flow`` and ``in_task``: Dask built in, a team's registered with register_task_runner
# or from an installed package's ``kerasflow.task_runners`` entry point (a factory, or a
# module that registers its runners when loaded).
TASK_RUNNER_REGISTRY: PluginRegistry[TaskRunnerFactory] = PluginRegistry(
    setting="runtime.ingest.task_runner", group="kerasflow.task_runners", error=ConfigError, accepts=callable
)


def register_task_runner(name: str, factory: TaskRunnerFactory) -> None:
    """Make ``runtime.ingest.task_runner: <name>`` open ``factory(config)`` for a table's files.

    Args:
        name: the name a recipe gives; not ``flow`` or ``in_task``, which are kerasflow's own.
        factory: receives the ``runtime.ingest`` section and returns a Prefect task runner
            (not yet entered), e.g. ``lambda config: RayTaskRunner(address="ray://head:10001")``.

    Raises:
        ValueError: ``name`` is ``flow`` or ``in_task``.
    """
    if name in (FLOW, IN_TASK):
        raise ValueError(f"received task runner name {name!r}, expected a name other than {FLOW!r} and {IN_TASK!r}")
    TASK_RUNNER_REGISTRY.register(name, factory)


register_task_runner("dask", _dask_task_runner)


@contextlib.contextmanager
def task_runner(config: IngestRunConfig) -> Iterator[TaskRunner | None]:
    """The task runner a table's files run under, for the block; None outside a flow run.

    Args:
        config: the recipe's ``runtime.ingest`` section.

    Raises:
        ConfigError: no task runner is registered under ``config.task_runner``, or Dask is asked for and
            prefect-dask is not installed.
    """
    from prefect.context import FlowRunContext

    flow_run = FlowRunContext.get()
    own = None if config.task_runner in (FLOW, IN_TASK) else TASK_RUNNER_REGISTRY.find(config.task_runner)
    if config.task_runner not in (FLOW, IN_TASK) and own is None:
        raise ConfigError(
            f"received runtime.ingest.task_runner={config.task_runner!r}, expected one of "
            f"{sorted([FLOW, IN_TASK, *TASK_RUNNER_REGISTRY.names()])}; a team's own is registered with "
            "kerasflow.register_task_runner before the run, or by an installed package's "
            "kerasflow.task_runners entry point"
        )
    if flow_run is None or flow_run.task_runner is None or config.task_runner == IN_TASK:
        yield None
    elif config.task_runner == FLOW:
        yield flow_run.task_runner
    else:
        with _reported_here(), own(config) as runner:
            yield runner


@contextlib.contextmanager
def _reported_here() -> Iterator[None]:
    """``PREFECT_API_URL`` set to the server this flow run reports to, for task runs sent to other processes.

    A task runner hands its workers the settings of the moment it submits. Without a
    configured server (library use) Prefect runs a temporary one for this process only, and
    a Dask worker without the URL started a temporary server of its own, which recorded the
    file's task run where no one could see it.
    """
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with get_client(sync_client=True) as client:
        url = str(client.api_url).rstrip("/")
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def in_flight(runner: TaskRunner, config: IngestRunConfig) -> int:
    """How many files may run at once: threads of this process share its memory; other runners bound their own.

    Args:
        runner: the task runner the files run under.
        config: the recipe's ``runtime.ingest`` section (``files_at_once``).
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    if isinstance(runner, ThreadPoolTaskRunner):
        # Its max_workers (a setting; unbounded by default) has no public accessor.
        return max(1, min(config.files_at_once, getattr(runner, "_max_workers", config.files_at_once)))
    return 1 << 30


def run_files(
    runner: TaskRunner,
    identities: list[dict[str, Any]],
    *,
    data: DataConfig,
    root: str,
    files_at_once: int,
    on_stored: Callable[[int, DatasetRef | None, float], None],
) -> None:
    """Store each file ``identities`` names as a task run under ``runner``, at most ``files_at_once`` at a time.

    ``on_stored(index, ref, seconds)`` is called in this thread as each file ends (ref None:
    no row to store). After a failure no new file starts; once the running ones end, the
    first failure in file order is raised.

    Args:
        runner: an entered Prefect task runner.
        identities: the identity of each file to store, in file order.
        data: the recipe's ``data`` section, with the table's columns set.
        root: the storage root, any fsspec URL.
        files_at_once: the most task runs submitted and not yet ended.
        on_stored: called with (the file's index in ``identities``, its ref or None, seconds taken).
    """
    from prefect.futures import as_completed

    failures: dict[int, BaseException] = {}
    waiting = iter(enumerate(identities))
    running: dict[Any, tuple[int, float]] = {}
    while True:
        while not failures and len(running) < files_at_once:
            number, identity = next(waiting, (None, None))
            if identity is None:
                break
            future = runner.submit(materialize_file_run, {"data": data, "identity": identity, "root": root})
            running[future] = (number, time.monotonic())
        if not running:
            break
        future = next(iter(as_completed(list(running))))
        number, started = running.pop(future)
        try:
            ref = future.result()
        except Exception as error:  # noqa: BLE001 - raised below, in file order, once the others end
            failures[number] = error
            continue
        on_stored(number, ref, time.monotonic() - started)
    if failures:
        raise failures[min(failures)]
