"""Batch scoring: a registered model's predictions for a table or a dataset split, as Parquet.

Plain functions and one Prefect task. The model is loaded verified and in safe mode; the
input is checked against the signature recorded at registration (every file's columns
before any row is scored, each batch's shape before it is); the input is read, scored and
written batch by batch, so memory holds one batch whatever the table's size; the output
appears whole or not at all (row groups written aside, then moved or PUT).

The task is here; the plain functions it calls live beside it, one concept each: the
model's input signature (signature.py), what is read (inputs.py), what is written and the
skew beside it (outputs.py), and the progress shown (progress.py). The same functions
score a DataFrame in process, without a flow (predictor.py). Others import from here:
``score``, ``check_scoring_output``, ``check_signature``, ``output_columns``,
``predictions_frame``, ``score_rows``, and ``load_model``, ``load_predictor``, ``Predictor``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.failures import retry_unless_deterministic
from kerasflow.tasks.ingest.sources.tables import tabular
from kerasflow.tasks.refs import DatasetRef, ScoredTable
from kerasflow.tasks.score import image_files
from kerasflow.tasks.score.inputs import resolve_version, split_input, table_input
from kerasflow.tasks.score.outputs import (
    check_scoring_output,
    output_columns,
    predictions_frame,
    score_rows,
    write_scores,
)
from kerasflow.tasks.score.predictor import Predictor, load_model, load_predictor
from kerasflow.tasks.score.progress import ScoringProgress
from kerasflow.tasks.score.signature import check_signature

__all__ = [
    "Predictor",
    "check_scoring_output",
    "check_signature",
    "load_model",
    "load_predictor",
    "output_columns",
    "predictions_frame",
    "score",
    "score_rows",
]

# Rows read, scored and written at a time; see tabular.FRAME_ROWS.
SCORE_ROWS = 65_536


@task(
    name="score",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def score(
    model_ref: str,
    *,
    root: str,
    output: str,
    data: DataConfig | None = None,
    dataset: DatasetRef | None = None,
    split: str = "test",
    key_column: str | None = None,
    trusted_packages: tuple[str, ...] = (),
    rows: int = SCORE_ROWS,
    fail_on_skew: bool = False,
    overwrite: bool = False,
) -> ScoredTable:
    """Score a table (``data``, files), a folder of images (``data``, images) or a stored split, and write Parquet.

    ``trusted_packages`` are the packages whose registered Keras classes the model may use;
    they come from whoever runs the scoring, never from the version's metadata. ``rows``:
    rows read, scored and written at a time (one Parquet row group each), so memory holds
    one batch whatever the size of the input. A typed table's columns are compared with
    the model's training data (tasks/drift.py): the skew report is written beside the
    output (``<output>.skew.json``) and shown as an artifact; with ``fail_on_skew`` a
    skewed column fails the scoring and no output is written.

    The output is checked before any row is read (:func:`check_scoring_output`): never under
    the root's kept folders, never an input, never a link or a device, and an existing file
    only when kerasflow wrote it as scores, unless ``overwrite``.

    Args:
        model_ref: the model to score with: ``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION``.
        root: the storage root whose registry holds the model.
        output: where the Parquet file of scores goes, any fsspec URL.
        data: the table (``source: files``) or folder of images (``source: images``) to score; used when
            ``dataset`` is None.
        dataset: a materialized dataset, whose ``split`` is scored.
        split: the split of ``dataset`` to score.
        key_column: a table column copied beside the scores; None for none (images: ``image``, each image's
            path under the folder).
        trusted_packages: packages whose registered Keras classes the model may use.
        rows: rows read, scored and written at a time.
        fail_on_skew: fail, writing nothing, when a scored column is skewed.
        overwrite: replace an existing file at ``output`` that kerasflow did not write.

    Raises:
        DataValidationError: the model cannot be resolved, or the data does not match its signature.
        ConfigError: the output location is refused, or the key collides with a score column.
        DataDrifted: a column is skewed and ``fail_on_skew`` is set.
    """
    logger = get_run_logger()
    registry, name, metadata = resolve_version(model_ref, root=root)
    with tempfile.TemporaryDirectory(prefix="kerasflow-score-") as tmp:
        if dataset is not None:
            check_scoring_output(metadata, output=output, root=root, key_column=key_column, overwrite=overwrite)
            scoring = split_input(dataset, split, rows=rows)
        else:
            images = data.source == "images"  # a folder of images, each keyed by its path under the folder
            if images:
                key_column = key_column or image_files.IMAGE_KEY
            files = image_files.list_scored_images(data.url or "") if images else tabular.list_files(data.url or "")
            check_scoring_output(
                metadata,
                output=output,
                root=root,
                key_column=key_column,
                inputs=[file.url for file in files],
                input_url=data.url or "",
                overwrite=overwrite,
            )
            if images:
                scoring = image_files.image_input(files, data.url or "", metadata, folder=Path(tmp))
            else:
                scoring = table_input(
                    files, data, metadata, model_ref=model_ref, key_column=key_column, rows=rows, folder=Path(tmp)
                )
        rows_written = write_scores(
            scoring,
            registry=registry,
            name=name,
            metadata=metadata,
            output=output,
            root=root,
            key_column=key_column,
            trusted_packages=trusted_packages,
            fail_on_skew=fail_on_skew,
            progress=ScoringProgress(logger, total=scoring.total, source=scoring.source),
        )
    logger.info(
        "scored %d row(s) of %s with %s v%d into %s", rows_written, scoring.source, name, metadata["version"], output
    )
    return ScoredTable(model_name=name, model_version=metadata["version"], rows=rows_written, output=output)
