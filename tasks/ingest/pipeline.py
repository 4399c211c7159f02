"""The tf.data input pipeline, built from a DatasetRef.

``dataset_fn`` follows ``tf.distribute``'s ``distribute_datasets_from_function`` contract:
it takes an ``InputContext`` so each worker reads its own shard and batches to its
per-replica share of the global batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.refs import DatasetRef


def load_split(ref: DatasetRef, split: str):
    """The split ``split`` as a tf.data dataset of (features, label) pairs, unbatched."""
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(ref.builder_dir)
    ds = builder.as_dataset(split=split, shuffle_files=False)
    fk, lk = ref.feature_key, ref.label_key
    import tensorflow as tf

    return ds.map(lambda ex: (ex[fk], ex[lk]), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_dataset(
    ref: DatasetRef,
    split: str,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    cache: bool = True,
    drop_remainder: bool = False,
    input_context: Any = None,
):
    """Batched, prefetched pipeline for ``split``.

    Args:
        batch_size: the global batch; divided among replicas when ``input_context`` is set.
        shuffle: reshuffled every epoch with ``seed``, for the training split.
        cache: keep decoded examples in memory after the first epoch.
        drop_remainder: drop a last partial batch (see ``fit`` for why validation does).
        input_context: a ``tf.distribute.InputContext``; shards by input pipeline.
    """
    import tensorflow as tf

    ds = load_split(ref, split)
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    per_replica = input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
    ds = ds.batch(per_replica, drop_remainder=drop_remainder)
    if input_context is not None:
        # Sharded above by input pipeline; tell tf.distribute not to shard again.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


def dataset_fn(ref: DatasetRef, split: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A ``dataset_fn(input_context)`` for ``strategy.distribute_datasets_from_function``."""

    def build(input_context: Any):
        return make_dataset(ref, split, input_context=input_context, **kwargs)

    return build
