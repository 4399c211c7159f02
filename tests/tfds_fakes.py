"""Prepare small fake TFDS datasets on disk, so recipes read them through real TFDS code.

``tfds.testing.mock_data`` generates examples that match a dataset's real features; they
are then written as a *prepared* dataset under the builder's own name, version and config
in a local ``data_dir``. ``tfds.builder(name, data_dir=...)`` finds it prepared and never
downloads, and everything after that (kerasflow's materialization and pipeline) runs on
real files, unmocked.
"""

from __future__ import annotations

import os
from pathlib import Path


def prepare_fake_tfds(name: str, data_dir: Path, *, splits: dict[str, int]) -> Path:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    real = tfds.builder(name, data_dir=os.fspath(data_dir))
    # mock_data generates the same sequence for every split; cut the splits from one
    # sequence instead, so no example is in two splits (the leakage check would say so).
    total = sum(splits.values())
    with tfds.testing.mock_data(num_examples=total, policy=tfds.testing.MockPolicy.USE_CODE):
        rows = list(tfds.as_numpy(tfds.load(name, split="train", data_dir=os.fspath(data_dir)).take(total)))
    examples, start = {}, 0
    for split, count in splits.items():
        examples[split], start = rows[start : start + count], start + count
    split_datasets = {
        split: tf.data.Dataset.from_generator(
            lambda rows=rows: iter(rows), output_signature=real.info.features.get_tensor_spec()
        )
        for split, rows in examples.items()
    }
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version=str(real.version),
        features=real.info.features,
        split_datasets=split_datasets,
        config=real.builder_config.name if real.builder_config else None,
        data_dir=os.fspath(data_dir),
    )
    return Path(builder.data_dir)
