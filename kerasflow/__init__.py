"""kerasflow: retrain Keras models with Prefect; promote a new model only when it is better.

The public API, for a team's own code and its own Prefect flows::

    import kerasflow

    config = kerasflow.load_recipe("digits", ["training.epochs=5"])
    summary = kerasflow.train_flow(config=config)

The flows (``train_flow``, ``predict_flow``; ``retrain`` with ``TeamSteps``: the train flow's
work inside a team's own flow, the team's steps between kerasflow's), the config (``TrainConfig``,
``load_recipe``, ``recipe_names``), the registry (``ModelRegistry``, ``ModelFileError``),
a registered model used from Python (``load_model``, ``load_predictor``, ``Predictor``),
the builder contract (``InputSpec``, ``register_builder``), where a table's files are
stored at once (``register_task_runner``), and the step tasks
(``ingest``, ``validate``, ``train``, ``evaluate``, ``gate``, ``register``, ``promote``)
with the records they pass (``DatasetRef``, ``TrainedModel``, ``Evaluation``,
``GateReport``, ``ModelVersion``, ``RunSummary``, ``RunTarget``) and the failures they raise.

This folder holds only this file: the packages live in the top-level folders ``flows/``,
``tasks/`` and ``models/`` of the source tree and install as ``kerasflow.flows``,
``kerasflow.tasks`` and ``kerasflow.models`` (pyproject.toml, ``[tool.setuptools]``).
Nothing is imported until a name is used: ``import kerasflow`` loads neither Prefect nor
TensorFlow.
"""

from __future__ import annotations

import importlib

# typing.TYPE_CHECKING without importing typing (a few milliseconds; type checkers know the idiom).
TYPE_CHECKING = False

__version__ = "0.1.0"

# Public name -> the module that defines it (imported on first use, PEP 562).
_EXPORTS: dict[str, str] = {
    # Flows.
    "train_flow": "kerasflow.flows.train",
    # What the command does, inside a team's own flow, with the team's steps between kerasflow's.
    "retrain": "kerasflow.flows.train",
    "TeamSteps": "kerasflow.flows.train",
    "predict_flow": "kerasflow.flows.predict",
    # Config and recipes.
    "TrainConfig": "kerasflow.tasks.config",
    "ConfigError": "kerasflow.tasks.config",
    "load_config": "kerasflow.tasks.config",
    "load_recipe": "kerasflow.flows.recipes",
    "recipe_names": "kerasflow.flows.recipes",
    # The registry, and what a model file that is refused raises.
    "ModelRegistry": "kerasflow.models.registry",
    "ModelFileError": "kerasflow.models.io",
    # A registered model used from Python: loaded verified, scoring DataFrames in process.
    "load_model": "kerasflow.tasks.score",
    "load_predictor": "kerasflow.tasks.score",
    "Predictor": "kerasflow.tasks.score",
    # A team's own model: the builder contract.
    "InputSpec": "kerasflow.models.input_spec",
    "register_builder": "kerasflow.models.builders",
    # Where a table's files are stored at once: a task runner of the team's (runtime.ingest.task_runner).
    "register_task_runner": "kerasflow.tasks.ingest.file_runs",
    # The step tasks, in pipeline order.
    "ingest": "kerasflow.tasks.ingest",
    "validate": "kerasflow.tasks.validate",
    "train": "kerasflow.tasks.train",
    "evaluate": "kerasflow.tasks.evaluate",
    "gate": "kerasflow.tasks.gate",
    "register": "kerasflow.tasks.register",
    "promote": "kerasflow.tasks.register",
    # The records passed between the steps.
    "DatasetRef": "kerasflow.tasks.refs",
    "TrainedModel": "kerasflow.tasks.refs",
    "Evaluation": "kerasflow.tasks.refs",
    "GateReport": "kerasflow.tasks.refs",
    "ModelVersion": "kerasflow.tasks.refs",
    "RunSummary": "kerasflow.tasks.refs",
    "RunTarget": "kerasflow.tasks.refs",
    # Failures a composed flow may catch.
    "KerasflowError": "kerasflow.tasks.failures",
    "DeterministicFailure": "kerasflow.tasks.failures",
    "DataValidationError": "kerasflow.tasks.failures",
    "GateRejected": "kerasflow.tasks.gate",
}

__all__ = [
    "ConfigError",
    "DataValidationError",
    "DatasetRef",
    "DeterministicFailure",
    "Evaluation",
    "GateRejected",
    "GateReport",
    "InputSpec",
    "KerasflowError",
    "ModelFileError",
    "ModelRegistry",
    "ModelVersion",
    "Predictor",
    "RunSummary",
    "RunTarget",
    "TeamSteps",
    "TrainConfig",
    "TrainedModel",
    "evaluate",
    "gate",
    "ingest",
    "load_config",
    "load_model",
    "load_predictor",
    "load_recipe",
    "predict_flow",
    "promote",
    "recipe_names",
    "register",
    "register_builder",
    "register_task_runner",
    "retrain",
    "train",
    "train_flow",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kerasflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs only; never executed
    from typing import Any

    from kerasflow.flows.predict import predict_flow
    from kerasflow.flows.recipes import load_recipe, recipe_names
    from kerasflow.flows.train import TeamSteps, retrain, train_flow
    from kerasflow.models.builders import register_builder
    from kerasflow.models.input_spec import InputSpec
    from kerasflow.models.io import ModelFileError
    from kerasflow.models.registry import ModelRegistry
    from kerasflow.tasks.config import ConfigError, TrainConfig, load_config
    from kerasflow.tasks.evaluate import evaluate
    from kerasflow.tasks.failures import DataValidationError, DeterministicFailure, KerasflowError
    from kerasflow.tasks.gate import GateRejected, gate
    from kerasflow.tasks.ingest import ingest
    from kerasflow.tasks.ingest.file_runs import register_task_runner
    from kerasflow.tasks.refs import (
        DatasetRef,
        Evaluation,
        GateReport,
        ModelVersion,
        RunSummary,
        RunTarget,
        TrainedModel,
    )
    from kerasflow.tasks.register import promote, register
    from kerasflow.tasks.score import Predictor, load_model, load_predictor
    from kerasflow.tasks.train import train
    from kerasflow.tasks.validate import validate
