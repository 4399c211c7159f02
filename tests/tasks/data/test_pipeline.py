"""The tf.data pipeline over a materialized dataset: order, sharding, batching, caching."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kerasflow.tasks.data.pipeline import dataset_fn, load_batches, load_split, make_dataset
from kerasflow.tasks.data.row_memory import cached_bytes, should_cache
from tests.tasks.test_validate import make_ref, table


@pytest.fixture
def ref(root):
    x, _ = table(90, seed=0)
    x[:, 2] = np.arange(90)  # a row id, to compare what each reader returns
    return make_ref(
        root, {"train": (x, (x[:, 0] > 0).astype("int64")), "validation": table(10, seed=1), "test": table(10, seed=2)}
    )


def row_ids(ds) -> list[int]:
    return [int(features[2]) for features, _ in ds.as_numpy_iterator()]


def test_ordered_reads_keep_the_source_order_and_training_reads_every_row(ref):
    assert row_ids(load_split(ref, "train")) == list(range(90))
    assert sorted(row_ids(load_split(ref, "train", ordered=False))) == list(range(90))


def test_input_pipelines_read_disjoint_shares_batched_per_replica(ref):
    shares = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        ds = dataset_fn(ref, "train", batch_size=20, shuffle=True, seed=3)(context)
        batches = list(ds.as_numpy_iterator())
        assert {len(x) for x, _ in batches} <= {10, 5}, "each replica gets its share of the global batch of 20"
        assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.OFF
        shares.append({int(i) for x, _ in batches for i in x[:, 2]})
    assert shares[0].isdisjoint(shares[1]) and shares[0] | shares[1] == set(range(90))


@pytest.mark.parametrize("replicas", [2, 4], ids=["one-replica-per-worker", "two-replicas-per-worker"])
def test_with_full_batches_workers_take_the_partition_one_process_makes_of_each_global_batch(ref, replicas):
    # One process: global batches of 20, split in order among the replicas (tf.distribute's
    # rebatch). Two workers must form the same per-replica batches, replica by replica,
    # because Keras clips gradients per replica before the all-reduce.
    single = [x[:, 2] for x, _ in make_dataset(ref, "train", batch_size=20, shuffle=True, seed=3, drop_remainder=True)]
    expected = [part.tolist() for batch in single for part in np.split(batch, replicas)]
    per_worker = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=replicas
        )
        ds = dataset_fn(ref, "train", batch_size=20, shuffle=True, seed=3, drop_remainder=True)(context)
        per_worker.append([x[:, 2].tolist() for x, _ in ds.as_numpy_iterator()])
    local = replicas // 2  # a worker's replicas take its consecutive per-replica batches
    got = [
        per_worker[worker][step * local + replica]
        for step in range(len(single))
        for worker in range(2)
        for replica in range(local)
    ]
    assert got == expected


def test_without_a_context_the_batches_are_global_and_sharded_by_data(ref):
    ds = make_dataset(ref, "train", batch_size=32, shuffle=True, seed=1)
    assert [len(x) for x, _ in ds.as_numpy_iterator()] == [32, 32, 26]
    assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    first_epochs = [row_ids(make_dataset(ref, "train", batch_size=32, shuffle=True, seed=1).unbatch()) for _ in "ab"]
    assert first_epochs[0] == first_epochs[1], "the same seed shuffles the same way"
    assert first_epochs[0] != list(range(90))


def test_cache_policy(ref):
    assert should_cache(ref, "memory") and not should_cache(ref, "none")
    assert should_cache(ref, "auto"), "a few kilobytes fit in memory"
    assert should_cache(ref, "auto", epochs=2) and not should_cache(ref, "auto", epochs=1), "one pass: no cache"
    assert should_cache(ref, "memory", epochs=1), "asked for, cached"
    assert not should_cache(ref.model_copy(update={"num_bytes": 1 << 60}), "auto")


def test_auto_cache_judges_the_decoded_size_not_the_stored_one(ref):
    """A table of 30 float32 columns stores 121 B a row; cached row by row, each takes about 550 B."""
    import os

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = int(0.25 * ram / 300)  # stored, a tenth of the quarter of RAM; decoded, more than all of it
    table = ref.model_copy(
        update={
            "feature_shape": (30,),
            "feature_dtype": "float32",
            "splits": {"train": rows, "test": 0},
            "num_bytes": 121 * rows,
            "slices": {},
        }
    )
    assert 121 * rows < 0.25 * ram and not should_cache(table, "auto")
    assert cached_bytes(table) == rows * (30 * 4 + 8 + 2 * 224)
    assert should_cache(table.model_copy(update={"splits": {"train": rows // 10}}), "auto")
    # Stored and cached in blocks of 1024 rows, as sources store a table: the per-tensor
    # cost is shared by a block, and the same rows fit.
    blocks = table.model_copy(update={"rows_per_example": 1024})
    assert cached_bytes(blocks) == int(rows * (30 * 4 + 8 + 2 * 224 / 1024)) and should_cache(blocks, "auto")


@pytest.mark.parametrize("stored", ["rows", "blocks"])
def test_a_cached_pipeline_yields_what_an_uncached_one_does(ref, root, stored):
    if stored == "blocks":  # a sample table, stored as blocks of rows as every table is
        from kerasflow.tasks.config import DataConfig
        from kerasflow.tasks.data.materialize import materialize
        from kerasflow.tasks.ingest.sources import load_source

        ref = materialize(load_source(DataConfig(source="sample", name="digits")), str(root / "blocks"))
        assert ref.rows_per_example > 1 and ref.splits["train"] > ref.rows_per_example

    def epochs(cache: bool) -> list[np.ndarray]:
        ds = make_dataset(ref, "train", batch_size=16, shuffle=True, seed=3, cache=cache)
        return [np.concatenate([x for x, _ in ds.as_numpy_iterator()]) for _ in range(2)]

    cached, plain = epochs(True), epochs(False)
    assert len(cached[0]) == ref.splits["train"]
    for cached_epoch, plain_epoch in zip(cached, plain, strict=True):
        np.testing.assert_array_equal(cached_epoch, plain_epoch)  # the same rows in the same order
    assert not np.array_equal(cached[0], cached[1]), "each epoch is shuffled anew"


@pytest.mark.parametrize("stored", ["rows", "blocks"])
def test_batches_for_one_pass_hold_the_rows_of_the_split_in_order(ref, root, stored):
    if stored == "blocks":  # the digits sample: blocks of 1024 rows, the last one shorter
        from kerasflow.tasks.config import DataConfig
        from kerasflow.tasks.data.materialize import materialize
        from kerasflow.tasks.ingest.sources import load_source

        ref = materialize(load_source(DataConfig(source="sample", name="digits")), str(root / "blocks"))
    rows = list(load_split(ref, "train").batch(100).as_numpy_iterator())
    batches = list(load_batches(ref, "train", batch_size=100).as_numpy_iterator())
    assert [len(y) for _, y in batches] == [len(y) for _, y in rows]
    for (x, y), (x_rows, y_rows) in zip(batches, rows, strict=True):
        np.testing.assert_array_equal(x, x_rows)
        np.testing.assert_array_equal(y, y_rows)


@pytest.fixture
def blocks_ref(root):
    """A typed table of 5,000 rows stored in blocks of 1024, each row's id in column ``rid``."""
    import pandas as pd

    from kerasflow.tasks.config import DataConfig
    from kerasflow.tasks.data.materialize import materialize
    from kerasflow.tasks.ingest.sources import load_source

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"rid": np.arange(5000, dtype=np.float64), "f": rng.normal(size=5000)})
    frame["label"] = (frame["f"] > 0).astype(int)
    root.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(root / "rows.parquet", index=False)
    ref = materialize(load_source(DataConfig(source="files", url=str(root / "rows.parquet"))), str(root))
    assert ref.rows_per_example == 1024 and ref.splits["train"] > 3 * 1024
    return ref


def rids(ds) -> np.ndarray:
    return np.concatenate([x["rid"] for x, _ in ds.as_numpy_iterator()]).astype(int)


def test_rows_stored_in_blocks_are_shuffled_across_blocks_anew_each_epoch_and_alike_for_a_seed(blocks_ref):
    stored = rids(load_batches(blocks_ref, "train", batch_size=1000))
    ds = make_dataset(blocks_ref, "train", batch_size=256, shuffle=True, seed=5, shuffle_buffer=2048)
    epochs = [rids(ds) for _ in range(2)]
    for epoch in epochs:
        assert sorted(epoch) == sorted(stored), "every row once"
    assert not np.array_equal(epochs[0], epochs[1]), "each epoch is shuffled anew"
    again = make_dataset(blocks_ref, "train", batch_size=256, shuffle=True, seed=5, shuffle_buffer=2048)
    np.testing.assert_array_equal(rids(again), epochs[0])
    # Rows of several stored blocks meet in a batch, out of their stored order.
    block_of = {rid: position // 1024 for position, rid in enumerate(stored)}
    first = epochs[0][:256]
    assert len({block_of[rid] for rid in first}) >= 2
    assert list(first) != sorted(first)
    assert len(ds) == -(-len(stored) // 256), "Keras knows the steps of an epoch"


def test_workers_form_the_global_batches_of_one_process_from_rows_stored_in_blocks(blocks_ref):
    settings = {"batch_size": 200, "shuffle": True, "seed": 3, "drop_remainder": True}
    single = [
        x["rid"].astype(int).tolist() for x, _ in make_dataset(blocks_ref, "train", **settings).as_numpy_iterator()
    ]
    per_worker = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        ds = dataset_fn(blocks_ref, "train", **settings)(context)
        per_worker.append([x["rid"].astype(int).tolist() for x, _ in ds.as_numpy_iterator()])
    assert [a + b for a, b in zip(*per_worker, strict=True)] == single


@pytest.mark.parametrize("drop_remainder", [False, True], ids=["every-row", "full-batches"])
def test_rows_stored_in_blocks_are_batched_in_stored_order_without_a_shuffle(blocks_ref, drop_remainder):
    stored = rids(load_batches(blocks_ref, "train", batch_size=1000))
    ds = make_dataset(blocks_ref, "train", batch_size=300, drop_remainder=drop_remainder)
    sizes = [len(x["rid"]) for x, _ in ds.as_numpy_iterator()]
    kept = len(stored) // 300 * 300 if drop_remainder else len(stored)
    np.testing.assert_array_equal(rids(ds), stored[:kept])
    assert set(sizes[:-1]) == {300} and len(ds) == len(sizes), "Keras knows the steps of an epoch"


def test_pipelines_deal_out_the_rows_of_blocks_when_a_partial_batch_is_kept(blocks_ref):
    shares = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        ds = dataset_fn(blocks_ref, "validation", batch_size=200)(context)
        batches = [x["rid"] for x, _ in ds.as_numpy_iterator()]
        assert {len(b) for b in batches[:-1]} == {100} and len(ds) == len(batches)
        shares.append(np.concatenate(batches).astype(int))
    stored = rids(load_batches(blocks_ref, "validation", batch_size=1000))
    np.testing.assert_array_equal(np.sort(np.concatenate(shares)), np.sort(stored))
    np.testing.assert_array_equal(shares[0], stored[0::2])
