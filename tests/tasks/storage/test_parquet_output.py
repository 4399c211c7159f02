"""Scores written row group by row group: whole at the target or not at all."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.storage.parquet_output import ParquetOutput


def rows(first: int, count: int, **columns) -> pd.DataFrame:
    return pd.DataFrame({"row": np.arange(first, first + count), "p": np.linspace(0, 1, count), **columns})


def test_batches_become_row_groups_of_one_file_that_appears_only_when_all_are_written(tmp_path):
    target = tmp_path / "scores" / "today.parquet"
    with ParquetOutput(str(target)) as output:
        for first in (0, 4, 8):
            output.write(rows(first, 4), source="batch")
            assert not target.exists(), "nothing at the target before the last batch"
    assert output.rows == 12
    assert pq.ParquetFile(target).num_row_groups == 3
    assert list(pd.read_parquet(target)["row"]) == list(range(12))
    assert [p.name for p in target.parent.iterdir()] == ["today.parquet"], "no partial file left beside it"


def test_a_failure_midway_keeps_yesterdays_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "today.parquet"
    rows(0, 2).to_parquet(target, index=False)
    with pytest.raises(RuntimeError, match="scoring failed"), ParquetOutput(str(target)) as output:
        output.write(rows(0, 4), source="batch")
        raise RuntimeError("scoring failed")
    assert len(pd.read_parquet(target)) == 2, "the earlier file is untouched"
    assert [p.name for p in tmp_path.iterdir()] == ["today.parquet"]


def test_a_column_whose_type_changes_between_files_is_one_clear_error(tmp_path):
    target = tmp_path / "today.parquet"
    with pytest.raises(DataValidationError) as info, ParquetOutput(str(target)) as output:
        output.write(rows(0, 2, txn_id=[1, 2]), source="a.parquet")
        output.write(rows(2, 2, txn_id=["t3", "t4"]), source="b.parquet")
    message = str(info.value)
    assert message.startswith("b.parquet: check 'consistent columns' failed: column(s) ['txn_id'] have types")
    assert re.search(r"\['(large_)?string'\] where earlier rows had \['int64'\]", message), message
    assert message.endswith("give the column one type in every file")
    assert list(tmp_path.iterdir()) == []
