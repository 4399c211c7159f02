"""Where training runs: one launcher per ``runtime.launcher.kind``, found by its name.

Built in:

- ``in_process``: Keras's ``model.fit`` under the configured strategy, here (``in_process.py``).
- ``local_processes``: N worker processes on this machine, TF_CONFIG on free loopback
  ports, each running the multi-worker loop (``worker.py``; ``local_processes.py``).
- ``kubernetes``: the same workers as pods of an Indexed Job (``kubernetes.py``).
- ``slurm``: the same workers as the tasks of an ``sbatch`` job (``slurm.py``).

Each launcher module registers itself here with :func:`register_launcher`; this module
imports none of them. A built-in is imported by its module name the first time its kind
is asked for, and a team's launcher comes from :func:`register_launcher` in its own code
or from an installed package's ``kerasflow.launchers`` entry point (its name is the kind,
its value the module or function that registers it). So launchers never import each
other, and a run pays only for the launcher it uses. What a launcher and a worker agree
on (the job record, ``result.json``, the exit code of a failure a retry cannot fix) is in
``job.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from kerasflow.models.plugins import PluginRegistry
from kerasflow.tasks.failures import ConfigError

if TYPE_CHECKING:
    from kerasflow.tasks.refs import TrainedModel
    from kerasflow.tasks.train.launch.job import TrainingJob

__all__ = [
    "LAUNCHERS",
    "LAUNCHER_REGISTRY",
    "Launcher",
    "LauncherRun",
    "check_launcher",
    "launch",
    "launcher_for",
    "launcher_kinds",
    "register_launcher",
]

class LauncherRun(Protocol):
    """What a launcher does: run ``job`` to its end and return the chief's TrainedModel.

    ``logger`` is the train task's Prefect logger; ``lease`` the training's lease (check it
    before publishing), or None.
    """

    def __call__(self, job: TrainingJob, *, logger: Any, lease: Any) -> TrainedModel: ...


class Launcher(NamedTuple):
    """How one ``runtime.launcher.kind`` runs a training job.

    Attributes:
        run: runs a job to its end: ``run(job, *, logger, lease)`` returns the chief's TrainedModel.
        on_this_node: whether training uses this node's GPUs (the GPU slots held here).
    """

    run: LauncherRun
    on_this_node: bool  # whether training uses this node's GPUs (the GPU slots held here)


LAUNCHER_REGISTRY: PluginRegistry[Launcher] = PluginRegistry(
    setting="runtime.launcher.kind",
    group="kerasflow.launchers",
    built_in={
        "in_process": "kerasflow.tasks.train.launch.in_process",
        "local_processes": "kerasflow.tasks.train.launch.local_processes",
        "kubernetes": "kerasflow.tasks.train.launch.kubernetes",
        "slurm": "kerasflow.tasks.train.launch.slurm",
    },
    error=ConfigError,
    accepts=lambda loaded: isinstance(loaded, Launcher),
)
LAUNCHERS: dict[str, Launcher] = LAUNCHER_REGISTRY.items


def register_launcher(kind: str, *, on_this_node: bool) -> Callable[[LauncherRun], LauncherRun]:
    """Register ``run(job, *, logger, lease)`` as the launcher of ``runtime.launcher.kind == kind``.

    Args:
        kind: the value of ``runtime.launcher.kind`` that selects it.
        on_this_node: whether the training uses this node's GPUs (so the run holds GPU slots here).

    Returns:
        A decorator that registers the function and returns it unchanged.
    """

    def register(run: LauncherRun) -> LauncherRun:
        LAUNCHER_REGISTRY.register(kind, Launcher(run=run, on_this_node=on_this_node))
        return run

    return register


def launcher_kinds() -> list[str]:
    """Every kind a recipe may name: built in, registered, or from an installed package."""
    return LAUNCHER_REGISTRY.names()


def check_launcher(kind: str) -> None:
    """Refuse, before any work, a ``runtime.launcher.kind`` no launcher is registered for (nothing is imported).

    Raises:
        ConfigError: naming the kinds there are.
    """
    if kind not in launcher_kinds():
        raise ConfigError(f"received runtime.launcher.kind={kind!r}, expected one of {launcher_kinds()}")


def launcher_for(kind: str) -> Launcher:
    """The launcher registered for ``kind``, importing a built-in or an entry point's module first.

    Raises:
        ConfigError: no launcher of that kind, naming the kinds there are.
    """
    return LAUNCHER_REGISTRY.get(kind)


def launch(job: TrainingJob, *, logger: Any, lease: Any) -> TrainedModel:
    """Run the training ``job`` with the configured launcher; the chief's TrainedModel.

    Args:
        job: the training job; ``job.config.runtime.launcher.kind`` names the launcher.
        logger: the train task's Prefect logger.
        lease: the training's lease, checked before each publish; None for none.

    Raises:
        ConfigError: no launcher is registered for the kind.
    """
    return launcher_for(job.config.runtime.launcher.kind).run(job, logger=logger, lease=lease)
