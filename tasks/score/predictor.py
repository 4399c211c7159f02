"""A registered model used from Python: loaded verified, and scoring pandas DataFrames in this process.

What ``kerasflow predict`` does to a table, for rows already in memory: the version named
is resolved once; its model file is fetched, checked against the sha256 recorded at
registration, inspected and loaded in safe mode (models/io.py), as ``ModelRegistry.load``
does; each frame is checked against the input signature recorded at registration, read
into the model's inputs as ingestion read the training rows, scored, and returned in the
columns the command writes. The same functions of this package do each step.

Nothing here runs a Prefect flow or task, makes an API call or starts a server: importing
this package imports Prefect's modules (its scoring task is defined beside), no more.
What the command adds is not done: no skew report (it is a file written beside the
scores) and no Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from kerasflow.models.registry import ModelRegistry, parse_model_ref
from kerasflow.tasks import storage
from kerasflow.tasks.config import resolve_root
from kerasflow.tasks.learning.learning_tasks import task_of_metadata
from kerasflow.tasks.score.inputs import feature_columns, frame_features, resolve_version
from kerasflow.tasks.score.outputs import predictions_frame, score_rows
from kerasflow.tasks.score.signature import check_columns, check_signature, one_row, signature_of

if TYPE_CHECKING:
    import keras
    import pandas as pd

__all__ = ["Predictor", "load_model", "load_predictor"]

# What a frame is called in the messages of the signature checks (a file is named by its URL).
FRAME_SOURCE = "DataFrame"


def load_model(ref: str, *, root: str | None = None, trusted_packages: Iterable[str] = ()) -> keras.Model:
    """The Keras model a registered version holds, verified as ``ModelRegistry.load`` verifies it.

    The model file is checked against the sha256 recorded at registration, its archive
    bounded and inspected (no code kerasflow does not load), then loaded with
    ``safe_mode=True``. A refused file raises, it is never loaded.

    Args:
        ref: ``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION``, as ``kerasflow predict`` takes it
            (``NAME`` alone means ``NAME@production``).
        root: the storage root (a local folder or fsspec URL); None for ``$KERASFLOW_ROOT``, else ``./.kerasflow``.
        trusted_packages: packages whose registered Keras classes the model may use (its recipe's
            ``model.trusted_packages``); never read from the registry.

    Returns:
        The Keras model, not compiled.

    Raises:
        ConfigError: ``ref`` or ``root`` is malformed, or (RegistryError) names no model, alias or version.
        ModelFileError: the file was changed since its registration, breaks a bound, names code kerasflow does
            not load, or Keras could not load it.
    """
    name, selector = parse_model_ref(ref)
    registry = ModelRegistry(storage.registry_url(resolve_root(root)))
    return registry.load(name, selector, trusted_packages=trusted_packages)


def load_predictor(ref: str, *, root: str | None = None, trusted_packages: Iterable[str] = ()) -> Predictor:
    """A :class:`Predictor` for the registered version ``ref`` names, resolved once and loaded verified.

    An alias is resolved now: the predictor keeps scoring with that version when the alias
    moves later (load another for the new one).

    Args:
        ref: ``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION``, as ``kerasflow predict`` takes it.
        root: the storage root (a local folder or fsspec URL); None for ``$KERASFLOW_ROOT``, else ``./.kerasflow``.
        trusted_packages: packages whose registered Keras classes the model may use.

    Returns:
        The predictor, its model loaded and ready to score.

    Raises:
        DataValidationError: ``ref`` names no model, alias or version, or a version that records no feature
            columns (a model of images scores files with ``kerasflow predict``).
        ModelFileError: the model file is refused, as by :func:`load_model`.
    """
    registry, name, metadata = resolve_version(ref, root=resolve_root(root))
    feature_columns(signature_of(metadata), model_ref=ref)  # refused before the model is fetched
    model = registry.load(name, metadata["version"], trusted_packages=trusted_packages)
    return Predictor(model, metadata, model_ref=ref)


class Predictor:
    """A registered version scoring pandas DataFrames in this process, as ``kerasflow predict`` scores a table.

    Made by :func:`load_predictor`. Each call checks the frame against the input signature
    recorded at registration, reads its feature columns as ingestion read the training
    rows (a typed table's types, its missing values) and returns the columns the command
    writes for those rows.

    Args:
        model: the version's Keras model, loaded verified.
        metadata: the version's metadata (its signature, task and classes).
        model_ref: the model as the caller named it, for messages.

    Attributes:
        model: the Keras model.
        metadata: the version's metadata.
        name: the model's name.
        version: the version scored with.
        columns: the feature columns a frame must hold.
    """

    def __init__(self, model: Any, metadata: dict[str, Any], *, model_ref: str):
        self.model = model
        self.metadata = metadata
        self.name: str = metadata["name"]
        self.version: int = int(metadata["version"])
        self._signature = signature_of(metadata)
        self.columns = feature_columns(self._signature, model_ref=model_ref)
        self._task = task_of_metadata(metadata)
        self._warm_up()

    def __repr__(self) -> str:
        return f"Predictor({self.name} v{self.version}, columns={self.columns})"

    def predict(self, frame: pd.DataFrame, *, key_column: str | None = None) -> pd.DataFrame:
        """Score ``frame``'s rows: the columns ``kerasflow predict`` writes for them, one row per row.

        Columns: the key (when asked), ``row`` (the position in ``frame``), the task's
        prediction columns (a classifier's ``prediction``, ``class_id``, ``probability``
        and ``p_<class>``), ``model_name`` and ``model_version``. The result keeps
        ``frame``'s index, so ``frame.join(scores)`` puts each score beside its row.
        Columns other than the features and the key are ignored.

        Args:
            frame: the rows to score, holding the model's feature columns (:attr:`columns`).
            key_column: a column of ``frame`` copied beside the scores, as ``kerasflow predict --key``; None for
                none.

        Returns:
            The scores, indexed as ``frame``.

        Raises:
            TypeError: ``frame`` is not a pandas DataFrame.
            DataValidationError: ``frame`` lacks a feature column (or the key), or a value does not fit its column's
                type, named as the command names them.
            ConfigError: ``key_column`` is the name of a column the scores write.
        """
        import pandas as pd  # as in the other scoring modules: importing this one loads no pandas

        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"received {type(frame).__name__}, expected a pandas DataFrame")
        wanted = [*self.columns, *([key_column] if key_column and key_column not in self.columns else [])]
        check_columns(list(frame.columns), wanted, source=FRAME_SOURCE)
        signature = self._signature
        features = frame_features(
            frame,
            columns=self.columns,
            column_types=signature["column_types"],
            missing=signature["missing"],
            source=FRAME_SOURCE,
        )
        check_signature(self.metadata, features, source=FRAME_SOURCE)
        # No rows: scored as the command scores an empty table, so the columns keep their types.
        types = signature["column_types"]
        outputs = (
            score_rows(self.model, features, column_types=types) if len(frame) else self._placeholder_outputs(1)[:0]
        )
        scores = predictions_frame(
            outputs,
            task=self._task,
            class_names=list(signature["classes"] or []),
            name=self.name,
            version=self.version,
            keys=frame[key_column].to_numpy() if key_column else None,
            key_column=key_column,
        )
        scores.index = frame.index
        return scores

    def _placeholder_outputs(self, rows: int) -> np.ndarray:
        row = one_row(self._signature, (len(self.columns),))
        if isinstance(row, dict):
            repeated = {name: np.repeat(values, rows, axis=0) for name, values in row.items()}
            return score_rows(self.model, repeated, column_types=self._signature["column_types"])
        return score_rows(self.model, np.repeat(row, rows, axis=0))

    def _warm_up(self) -> None:
        """Trace the model's predict function now rather than on the first frame.

        Keras traces it again for a second batch size, then for any size (``reduce_retracing``):
        two placeholder batches of different sizes leave every later frame only to compute.
        """
        self._placeholder_outputs(1)
        self._placeholder_outputs(2)
