"""Batch scoring: predictions of a registered model for new data, written as Parquet.

What runs where: a Prefect flow in this process (against Prefect's embedded server unless
``PREFECT_API_URL`` names one). A table (``data.source: files``: Parquet/CSV files on any
URL, no label needed) is read and scored directly; a bundled sample or TFDS source is
ingested as for training (reusing a materialization with the same fingerprint) and its
``split`` is scored.

What is retried: ingest and score retry transient I/O errors with backoff. An unknown
model, data that does not match the model's recorded input signature, or bad rows are
deterministic: the run fails before anything is written, with a message naming them.
"""

# No `from __future__ import annotations`: a served flow's parameters must resolve (flows/train.py).

from prefect import flow
from prefect.runtime import flow_run

from kerasflow.models.registry import ModelRegistry, parse_model_ref
from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError, DataConfig, resolve_root
from kerasflow.tasks.ingest import ingest
from kerasflow.tasks.ingest.sources import is_tfds_dir
from kerasflow.tasks.ingest.sources.tables import window
from kerasflow.tasks.learning.learning_tasks import task_of_metadata
from kerasflow.tasks.refs import ScoredTable
from kerasflow.tasks.score import check_scoring_output, score
from kerasflow.tasks.score.image_files import names_images, scores_images
from kerasflow.tasks.storage import holds


def _run_name() -> str:
    ref = (flow_run.parameters or {}).get("model", "model")
    return f"predict-{str(ref).replace('@', '-')}"


@flow(name="kerasflow-predict", flow_run_name=_run_name)
def predict_flow(
    model: str,
    output: str | None = None,
    data: DataConfig | None = None,
    split: str = "test",
    key_column: str | None = None,
    root: str | None = None,
    trusted_packages: tuple[str, ...] = (),
    fail_on_skew: bool = False,
    overwrite: bool = False,
) -> ScoredTable:
    """Score ``data`` with ``model`` (``NAME@ALIAS`` or ``NAME@VERSION``) into Parquet at ``output``.

    Without ``data``, the model's own training data source is scored (its ``split``).
    Without ``output``, the scores go to ``<root>/scores/<name>/<scheduled date>.parquet``,
    so a nightly deployment keeps one file a day. ``trusted_packages``: packages whose
    registered Keras classes the model may use (its recipe's ``model.trusted_packages``).
    A table's scored columns are compared with the model's training data; the skew report
    lands beside the output, and ``fail_on_skew`` makes a skewed column fail the scoring.
    ``output`` is checked before any data is read (tasks/storage/output_location.py): never under
    the root's own folders, never an input, a link or a device, and an existing file only
    when kerasflow wrote it as scores, unless ``overwrite``.

    Args:
        model: the registered model to score with, ``NAME@ALIAS`` or ``NAME@VERSION``.
        output: where the Parquet file of scores goes, any fsspec URL; None for the dated file under the root.
        data: the data to score; None for the data source recorded with the model's version.
        split: the split of an ingested source (sample, TFDS) to score; a table is scored whole.
        key_column: a table column copied into the scores to join them back to their rows.
        root: the storage root (a local folder or fsspec URL); None for ``$KERASFLOW_ROOT``, else ``./.kerasflow``.
        trusted_packages: packages whose registered Keras classes the model file may use.
        fail_on_skew: fail the scoring when a scored column is skewed against the training data.
        overwrite: replace an existing file at ``output`` that kerasflow did not write as scores.

    Returns:
        Where the scores were written, how many rows, and by which model version.

    Raises:
        ConfigError: the model, its recorded data source or ``output`` is unusable.
    """
    root = resolve_root(root)
    with holds.released_at_end(root):  # the dataset ingest holds for scoring (tasks/storage/holds.py)
        if output is None:
            output = _dated_output(root, model)
        given = data is not None
        if data is None:
            data = _training_data(model, root)
        data = window.resolve_until(data, flow_run.scheduled_start_time)  # as for training (flows/train.py)
        folder = given and data.source in ("files", "images") and not is_tfds_dir(data.url or "")
        if folder and names_images(data.url or "") and _scores_images(model, root):  # an image model, images
            data = DataConfig(source="images", url=data.url)
        elif data.source == "images":  # its own training images: a split, ingested as for training
            folder = False
        if folder or (data.source == "files" and not is_tfds_dir(data.url or "")):
            return score(
                model,
                root=root,
                output=output,
                data=data,
                key_column=key_column,
                trusted_packages=trusted_packages,
                fail_on_skew=fail_on_skew,
                overwrite=overwrite,
            )
        metadata = ModelRegistry(storage.registry_url(root)).resolve(*parse_model_ref(model))
        check_scoring_output(metadata, output=output, root=root, overwrite=overwrite)  # before a long ingest
        # The label column is read as the model's task reads it (a regression target as numbers).
        dataset = ingest(data.model_copy(update={"labels": _labels_of(model, root)}), root=root)
        return score(
            model,
            root=root,
            output=output,
            dataset=dataset,
            split=split,
            trusted_packages=trusted_packages,
            overwrite=overwrite,
        )


def _dated_output(root: str, model: str) -> str:
    from datetime import UTC, datetime

    when = flow_run.scheduled_start_time or datetime.now(UTC)
    return storage.join(root, "scores", parse_model_ref(model)[0], f"{when:%Y-%m-%d}.parquet")


def _scores_images(model: str, root: str) -> bool:
    """Whether ``model`` was trained on images, so a URL to score is a folder of images."""
    return scores_images(ModelRegistry(storage.registry_url(root)).resolve(*parse_model_ref(model)))


def _labels_of(model: str, root: str) -> str:
    name, selector = parse_model_ref(model)
    return task_of_metadata(ModelRegistry(storage.registry_url(root)).resolve(name, selector)).labels


def _training_data(model: str, root: str) -> DataConfig:
    """The data source recorded with ``model``, if it points nowhere the user did not configure.

    A version's metadata.json is as untrusted as its model file: anyone who can write to
    the registry can make it name an ``http://`` URL or another bucket. Only a bundled
    sample, or files and prepared TFDS folders under the storage root, are read from it.
    """

    name, selector = parse_model_ref(model)
    metadata = ModelRegistry(storage.registry_url(root)).resolve(name, selector)
    try:
        data = DataConfig.model_validate(metadata["config"]["data"])
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"{name} v{metadata['version']}: its metadata records no usable data source ({error}); "
            "pass the data to score with --data URL"
        ) from None
    location = data.url if data.source == "files" else data.data_dir if data.source == "tfds" else None
    if location is not None and not storage.is_within(root, location):
        raise ConfigError(
            f"{name} v{metadata['version']}: its metadata names data at {location!r}, outside the storage root "
            f"{root!r}; kerasflow never reads a location found in the registry. Pass it with --data URL"
        )
    return data
