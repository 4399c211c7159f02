"""A support team's tickets: a free-text column stored as text, a missing one empty, counted by its tokens."""

from __future__ import annotations

import numpy as np
import pytest

from kerasflow.models.column_types import MISSING_TEXT
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.data.text_statistics import TextStats
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources import load_source
from kerasflow.tasks.validate import check_dataset
from tests.tables import tickets_frame, write_frame

COLUMNS = {
    "description": {"type": "text", "output_mode": "tf_idf"},
    "product": "string_categorical",
    "account_days": "float_normalized",
}


def materialized(tmp_path, data: DataConfig):
    return materialization.materialize(load_source(data), str(tmp_path / "root"))


def test_a_text_column_is_stored_whole_a_missing_one_empty_and_counted_by_its_tokens(tmp_path):
    frame = tickets_frame(300, seed=1)
    frame.loc[7, "description"] = "my invoice, " * 1000  # a long text is a text, not a category too long
    frame.loc[[3, 4], "product"] = None
    url = write_frame(str(tmp_path / "tickets.csv"), frame)
    ref = materialized(tmp_path, DataConfig(source="files", url=url, label_column="queue", columns=COLUMNS))
    assert ref.column_types == {
        "description": "text",
        "product": "string_categorical",
        "account_days": "float_normalized",
    }
    assert check_dataset(ref).passed

    stored = []
    for x, _ in (b for split in ref.splits for b in load_batches(ref, split, batch_size=512).as_numpy_iterator()):
        stored.extend(value.decode() for value in x["description"])
    expected = frame["description"].fillna("")  # a missing text is the empty text, not a category of its own
    assert sorted(stored) == sorted(expected) and MISSING_TEXT not in stored
    assert len(max(stored, key=len)) == 12_000

    statistics = materialization.read_statistics(ref)
    train = statistics.splits["train"].columns["description"]
    assert isinstance(train, TextStats) and train.count == ref.splits["train"] and train.missing == 0
    assert train.documents["please"] > 0 and train.idf(["please"])[0] > 0
    texts = [stats.columns["description"] for stats in statistics.splits.values()]
    assert max(t.max for t in texts) == 2000, "the long text's tokens (its 2 words, 1000 times each)"
    assert sum(t.empty for t in texts) == int(frame["description"].isna().sum()) > 0


def test_a_text_type_on_a_column_of_numbers_is_refused_naming_the_column_and_the_fix(tmp_path):
    frame = tickets_frame(100, seed=2).assign(amount=np.arange(100.0))
    url = write_frame(str(tmp_path / "tickets.csv"), frame)
    data = DataConfig(source="files", url=url, label_column="queue", columns={"amount": "text"})
    with pytest.raises(
        DataValidationError,
        match=r"tickets.csv: check 'text' failed: column 'amount' is declared text .* but received numbers "
        r"\(float64\), expected text; declare it float_normalized",
    ):
        materialized(tmp_path, data)
    assert not list((tmp_path / "root").glob("datasets/*/ref.json")), "nothing published"
