"""A table file is read in batches whose bytes are bounded, not only their rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kerasflow.tasks.ingest.sources.tables import tabular
from tests.tables import write_frame


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_rows_of_long_text_are_read_in_batches_of_bounded_bytes(tmp_path, monkeypatch, suffix):
    # 65,536 rows of 200,000-character values were one batch of 13 GB before any check saw a value.
    monkeypatch.setattr(tabular, "BATCH_BYTES", 512 << 10)
    rng = np.random.default_rng(0)
    letters = rng.integers(ord("a"), ord("z") + 1, (2000, 2000), dtype=np.uint8)
    frame = pd.DataFrame({"amount": np.arange(2000.0), "note": [row.tobytes().decode() for row in letters]})
    url = str(tmp_path / f"t{suffix}")
    if suffix == ".csv.gz":
        frame.to_csv(url, index=False, compression="gzip")
    else:
        write_frame(url, frame)

    batches = list(tabular.iter_frames(url, Path(url)))

    assert len(batches) >= 8, "about 250 rows of 2 KB a batch, not the file's 2,000 rows"
    for first, batch in batches:
        assert batch.memory_usage(deep=True).sum() <= 1.2 * tabular.BATCH_BYTES, (first, len(batch))
    assert [first for first, _ in batches] == list(np.cumsum([0] + [len(b) for _, b in batches[:-1]]))
    pd.testing.assert_frame_equal(pd.concat([b for _, b in batches], ignore_index=True), frame)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_rows_of_a_usual_size_are_read_frame_rows_at_a_time(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(tabular, "FRAME_ROWS", 300)
    frame = pd.DataFrame({"a": np.arange(1000.0), "b": ["de", "us"] * 500})
    url = write_frame(str(tmp_path / f"t{suffix}"), frame)
    assert [len(batch) for _, batch in tabular.iter_frames(url, Path(url), rows=tabular.FRAME_ROWS)] == [
        300,
        300,
        300,
        100,
    ]
