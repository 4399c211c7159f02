"""Write a source once per fingerprint, in TFDS format, and never half.

The dataset is stored into a private temporary folder beside its destination and moved
into place with one rename, so a crash leaves only a temporary folder (never a dataset
that looks complete) and a concurrent writer of the same fingerprint cannot corrupt the
one that wins. ``ref.json`` inside the folder lets later runs reuse it without reading it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from tasks.ingest.sources import SourceData
from tasks.refs import DatasetRef

REF_FILE = "ref.json"
VERSION = "1.0.0"


def materialized_ref(directory: Path) -> DatasetRef | None:
    """The ref of a complete materialization in ``directory``, or None."""
    try:
        return DatasetRef.model_validate_json((directory / REF_FILE).read_text())
    except FileNotFoundError:
        return None


def materialize(source: SourceData, datasets_dir: Path) -> DatasetRef:
    """Store ``source`` under ``datasets_dir/<fingerprint>`` unless it is there already."""
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()  # Prefect's log already says what is being written
    final = datasets_dir / source.fingerprint
    existing = materialized_ref(final)
    if existing is not None:
        return existing

    staging = datasets_dir / f".partial-{source.fingerprint}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        builder = tfds.dataset_builders.store_as_tfds_dataset(
            name=source.name,
            version=VERSION,
            features=source.features,
            split_datasets=source.splits,
            data_dir=os.fspath(staging),
            description=f"kerasflow materialization of {json.dumps(source.identity, default=str)}",
            disable_shuffling=True,
        )
        shutil.rmtree(staging / "downloads", ignore_errors=True)
        # TFDS lays a dataset out as <data_dir>/<name>/<version>/.
        relative_builder_dir = Path(source.name) / VERSION
        splits = {name: int(info.num_examples) for name, info in builder.info.splits.items()}
        feature = builder.info.features[source.feature_key]
        ref = DatasetRef(
            fingerprint=source.fingerprint,
            uri=os.fspath(final),
            builder_dir=os.fspath(final / relative_builder_dir),
            source=source.identity["source"],
            splits=splits,
            feature_key=source.feature_key,
            label_key=source.label_key,
            feature_shape=tuple(int(d) for d in (feature.shape or ())),
            feature_dtype=np.dtype(feature.np_dtype).name,
            num_classes=len(source.class_names),
            class_names=source.class_names,
            feature_names=source.feature_names,
        )
        (staging / REF_FILE).write_text(ref.model_dump_json(indent=2))
        try:
            os.rename(staging, final)
        except OSError:
            # Another run published the same fingerprint first; its copy is as good as ours.
            winner = materialized_ref(final)
            if winner is None:
                raise
            return winner
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ref
