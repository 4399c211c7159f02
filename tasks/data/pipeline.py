"""The tf.data input pipeline, built from a DatasetRef, after the tf.data performance guide.

For training, the split's TFRecord shards are read with a parallel interleave and
examples decoded with a parallel map (AUTOTUNE), cached in memory when they fit,
shuffled with a seed every epoch, batched, and prefetched. Everything else (validation,
evaluation, data checks) reads in the stored order, which is the source's order, so a
row number in a report names the same example every time. ``dataset_fn`` follows ``tf.distribute``'s
``distribute_datasets_from_function`` contract: it takes an ``InputContext``, so each
worker takes its share of the rows and batches to its per-replica share of the global
batch. How the stored examples themselves are read and decoded is
tasks/data/stored_examples.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kerasflow.tasks.data.row_memory import feature_bytes, should_cache
from kerasflow.tasks.data.stored_examples import columns_of_batches, image_decoder, stored_examples
from kerasflow.tasks.data.stored_examples import load_slices as load_slices
from kerasflow.tasks.refs import DatasetRef

# Decoded blocks a shuffled table's training pipeline holds at most (shuffled_windows).
SHUFFLE_BYTES = 64 << 20


def load_split(ref: DatasetRef, split: str, *, ordered: bool = True, cache: bool = False, by_column: bool = True):
    """The split ``split`` as a tf.data dataset of (features, label) pairs, unbatched.

    Args:
        ref: the stored dataset.
        split: the split's name (``train``, ``validation``, ``test``).
        ordered: read in the stored order (one shard after another). When False, shards
            are read by a parallel, deterministic interleave: faster, for training.
        cache: keep the decoded examples in memory after the first pass. A table's are
            cached as the blocks it is stored in, before they are cut into rows: tf.data
            holds about 212 B per tensor of every cached element, which per row would be
            four times a 30-column row's data.
        by_column: a typed table's features as one tensor per column (what the model
            takes); False: as stored, one tensor per storage group (floats, integers,
            text), which :func:`columns_of_batches` cuts into columns once rows are batched.
    """
    import tensorflow as tf

    ds = stored_examples(ref, split, ordered=ordered, by_column=by_column)
    if cache:
        ds = ds.cache()
    if ref.rows_per_example > 1:
        ds = ds.unbatch()  # stored in blocks of rows (see tasks/ingest/sources/__init__.py)
    if ref.image_size is not None:
        ds = ds.map(image_decoder(ref), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # A known size lets Keras count steps per epoch instead of running into the end of
    # the data every epoch, and it carries through shard, cache, shuffle and batch.
    return ds.apply(tf.data.experimental.assert_cardinality(int(ref.splits[split])))


def load_batches(
    ref: DatasetRef,
    split: str,
    *,
    batch_size: int,
    ordered: bool = True,
    by_column: bool = True,
    numbers_block: bool = False,
):
    """The split ``split`` as (features, labels) batches of ``batch_size`` rows, the last one shorter.

    For one pass over a split (statistics, checks, label counts, adapting, scoring). A table
    stored in blocks is re-cut from blocks to batches (``Dataset.rebatch``) instead of into
    rows and back: 0.06 s against 0.87 s for 700k rows of 30 float32 here. ``by_column``:
    as :func:`load_split`.

    Args:
        ref: the stored dataset.
        split: the split's name (``train``, ``validation``, ``test``).
        batch_size: rows per batch.
        ordered: as :func:`load_split`.
        by_column: as :func:`load_split`.
        numbers_block: a typed table's numbers as the one block a model takes (``NUMBERS_INPUT``,
            models/number_block.py), not one tensor per column.
    """
    import tensorflow as tf

    ds = stored_examples(ref, split, ordered=ordered, by_column=by_column, numbers_block=numbers_block)
    if ref.image_size is not None:  # encoded: each image decoded on its own
        ds = ds.unbatch().map(image_decoder(ref), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.batch(batch_size)
    return ds.rebatch(batch_size) if ref.rows_per_example > 1 else ds.batch(batch_size)


def shuffled_rows(ref: DatasetRef, split: str, *, seed: int, rows_mixed: int, cache: bool = False):
    """The rows of a split stored in blocks, shuffled anew every epoch without a row-by-row shuffle buffer.

    The rows of :func:`shuffled_windows`, one by one (an image decoded once shuffled).

    Args:
        ref: a dataset stored in blocks of rows (``rows_per_example > 1``).
        split: the split's name.
        seed: the seed of every shuffle; each epoch's order follows from it.
        rows_mixed: rows of each window permuted at once.
        cache: keep the decoded blocks in memory after the first pass.
    """
    import tensorflow as tf

    rows = shuffled_windows(ref, split, seed=seed, rows_mixed=rows_mixed, cache=cache).unbatch()
    if ref.image_size is not None:  # stored encoded: decoded once shuffled, as load_split does
        rows = rows.map(image_decoder(ref), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return rows.apply(tf.data.experimental.assert_cardinality(int(ref.splits[split])))


def shuffled_windows(ref: DatasetRef, split: str, *, seed: int, rows_mixed: int, cache: bool = False):
    """Windows of ``rows_mixed`` rows of a split stored in blocks, each permuted, anew every epoch.

    Three levels, all deterministic for a seed (every worker of a multi-worker run forms
    the same global batches): the shards are read in a new order each epoch (interleaved),
    the decoded blocks pass a shuffle buffer of at most ``SHUFFLE_BYTES``, and then windows
    of ``rows_mixed`` rows are each permuted at once. One permutation per window instead
    of a buffer operation per row: a batch of 1024 rows of 30 floats took 3.8 ms through
    tf.data's row buffer, 2.3 ms this way (issue 14). A buffer of every block held the
    whole split in memory (0.45 GiB at 5M rows): the bound keeps memory flat.

    Args:
        ref: a dataset stored in blocks of rows (``rows_per_example > 1``).
        split: the split's name.
        seed: the seed of every shuffle; each epoch's order follows from it.
        rows_mixed: rows of each window, permuted at once; never fewer than a stored block holds.
        cache: keep the decoded blocks in memory after the first pass.
    """
    import tensorflow as tf

    blocks = stored_examples(ref, split, ordered=False, by_column=False, shard_seed=seed)
    if cache:
        blocks = blocks.cache()
    stored = sum(-(-part.splits.get(split, 0) // ref.rows_per_example) for part in ref.stored_parts)
    block_bytes = ref.rows_per_example * (feature_bytes(ref) + 8 * (1 + len(ref.slices)))
    buffered = max(1, min(stored, SHUFFLE_BYTES // max(block_bytes, 1)))
    blocks = blocks.shuffle(buffered, seed=seed, reshuffle_each_iteration=True)
    windows = blocks.rebatch(max(rows_mixed, ref.rows_per_example))
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def permuted(window, pair):
        features, labels = window
        order = tf.argsort(tf.random.stateless_uniform(tf.shape(labels)[:1], seed=pair))
        return tf.nest.map_structure(lambda t: tf.gather(t, order), (features, labels))

    return tf.data.Dataset.zip((windows, seeds)).map(permuted, num_parallel_calls=tf.data.AUTOTUNE)


def make_dataset(
    ref: DatasetRef,
    split: str,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    cache: bool | str = "auto",
    drop_remainder: bool = False,
    input_context: Any = None,
    numbers_block: bool = False,
):
    """Batched, prefetched pipeline for ``split``.

    Args:
        ref: the stored dataset.
        split: the split's name (``train``, ``validation``, ``test``).
        batch_size: the global batch; divided among replicas when ``input_context`` is set.
        shuffle: reshuffled every epoch with ``seed``, for the training split.
        seed: the seed of every shuffle.
        shuffle_buffer: examples in the shuffle buffer; for data stored in blocks of rows, the rows each window
            permutes at once.
        cache: ``True``/``False``, or a policy of ``data.cache`` (``auto``, ``memory``, ``none``).
        drop_remainder: drop a last partial batch (see ``fit`` for why validation does).
        input_context: a ``tf.distribute.InputContext``; shards by input pipeline.
        numbers_block: a typed table's numbers as the one block a model takes (``NUMBERS_INPUT``,
            models/number_block.py), not one tensor per column: a batch of 3,000 number columns is one tensor.
    """
    import tensorflow as tf

    cache = cache if isinstance(cache, bool) else should_cache(ref, cache)
    # A table stored in blocks is re-cut from blocks (or shuffled windows) straight into
    # batches (``rebatch``), never into rows and back: 0.5 ms against 1.9 ms a batch of
    # 1024 rows of 30 floats, with the same rows in the same order (issue 14).
    blocked = ref.rows_per_example > 1 and ref.image_size is None
    if blocked:
        if shuffle:
            ds = shuffled_windows(ref, split, seed=seed, rows_mixed=shuffle_buffer, cache=cache)
        else:
            ds = stored_examples(ref, split, ordered=True, by_column=False)
            ds = ds.cache() if cache else ds
    elif shuffle and ref.rows_per_example > 1:
        ds = shuffled_rows(ref, split, seed=seed, rows_mixed=shuffle_buffer, cache=cache)
    else:  # cut into columns once batched (columns_of_batches)
        ds = load_split(ref, split, ordered=not shuffle, cache=cache, by_column=False)
        if shuffle:
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    pipelines = input_context.num_input_pipelines if input_context is not None else 1
    per_replica = input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
    rows = int(ref.splits[split])
    if pipelines > 1 and drop_remainder:
        # Every pipeline shuffles the same way (same seed), forms the same global batch,
        # and takes its contiguous slice of it: pipeline i gets rows [i*b, (i+1)*b) of every
        # global batch, and its local replicas split that slice in order. That is exactly
        # the partition single-host MirroredStrategy makes of the same batch, which matters:
        # Keras clips gradients (clipnorm) per replica before the all-reduce, and BatchNorm
        # keeps per-replica statistics, so any other partition trains another model
        # (tests/tasks/train/launch/test_multiworker.py). Each worker reads the whole split; a
        # split by shard file would read less but give workers unequal step counts, which
        # collectives cannot tolerate.
        ds = _batched(ds, batch_size, drop_remainder=True, rows=rows if blocked else None)
        share = batch_size // pipelines
        start = input_context.input_pipeline_id * share
        ds = ds.map(
            lambda *batch: tf.nest.map_structure(lambda t: t[start : start + share], batch),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        if per_replica < share:  # several replicas per worker: consecutive per-replica batches of the slice
            ds = ds.rebatch(per_replica, drop_remainder=True)
            ds = ds.apply(tf.data.experimental.assert_cardinality(rows // batch_size * (share // per_replica)))
    else:
        if pipelines > 1:  # a partial last batch cannot be cut alike on every pipeline: deal rows out
            if blocked:
                ds, blocked = ds.unbatch().apply(tf.data.experimental.assert_cardinality(rows)), False
            ds = ds.shard(pipelines, input_context.input_pipeline_id)
        ds = _batched(ds, per_replica, drop_remainder=drop_remainder, rows=rows if blocked else None)
    ds = columns_of_batches(ref, ds, numbers_block=numbers_block)
    options = tf.data.Options()
    # Sharded above when an input context is given; otherwise tf.distribute shards the
    # batches by data. Either way the policy is set here, never left to AUTO's guess.
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.OFF if input_context is not None else policy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _batched(ds, size: int, *, drop_remainder: bool, rows: int | None):
    """Rows into batches of ``size``, or, given the split's ``rows``, batches of rows re-cut to ``size``.

    A re-cut dataset's size is unknown to tf.data, so it is asserted: Keras counts the
    steps of an epoch from it instead of running into the end of the data every epoch.
    """
    import tensorflow as tf

    if rows is None:
        return ds.batch(size, drop_remainder=drop_remainder)
    batches = rows // size if drop_remainder else -(-rows // size)
    return ds.rebatch(size, drop_remainder=drop_remainder).apply(tf.data.experimental.assert_cardinality(batches))


def dataset_fn(ref: DatasetRef, split: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A ``dataset_fn(input_context)`` for ``strategy.distribute_datasets_from_function``.

    Args:
        ref: the stored dataset.
        split: the split's name.
        **kwargs: keyword arguments of :func:`make_dataset` other than ``input_context`` (``batch_size``, ...).
    """

    def build(input_context: Any):
        return make_dataset(ref, split, input_context=input_context, **kwargs)

    return build
