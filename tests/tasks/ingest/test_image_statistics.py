"""An image folder's statistics describe its pixels, so drift sees images grow darker, not only change size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kerasflow.tasks import drift
from kerasflow.tasks.config import DataConfig, DriftConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.statistics import SplitStatistics
from kerasflow.tasks.drift_comparison import compare
from kerasflow.tasks.ingest.sources import load_source
from tests.tables import write_image_folders


def stored(tmp_path, name, *, darker=1.0, color_mode="rgb"):
    folder = tmp_path / name
    write_image_folders(str(folder), per_class=20)
    if darker != 1.0:  # the same images, their pixels scaled down: a camera's exposure changed
        for path in folder.rglob("*.*"):
            with Image.open(path) as image:
                pixels = (np.asarray(image.convert("RGB"), dtype=np.float64) * darker).astype("uint8")
            Image.fromarray(pixels).save(path, format="PNG" if path.suffix == ".png" else "JPEG")
    data = DataConfig(source="images", url=str(folder), image_size=(16, 16), color_mode=color_mode)
    return materialization.materialize(load_source(data), str(tmp_path / "root"))


def test_each_images_mean_intensity_per_channel_is_counted(tmp_path):
    ref = stored(tmp_path, "photos")
    train = materialization.read_statistics(ref).splits["train"]
    red, blue = train.columns["mean_red"], train.columns["mean_blue"]
    assert red.count == blue.count == train.rows and 0 < red.min <= red.max <= 255
    assert red.max > 150 and blue.max > 150, "cats are red, dogs blue (tests/tables.py IMAGE_CLASSES)"
    gray = materialization.read_statistics(stored(tmp_path, "gray", color_mode="grayscale")).splits["train"]
    assert "mean_gray" in gray.columns and "mean_red" not in gray.columns


def test_darker_images_of_the_same_sizes_drift(tmp_path):
    # Before, only the sizes and labels were compared: the same images at 40 % exposure passed as no drift.
    before = materialization.read_statistics(stored(tmp_path, "before")).splits["train"]
    after = materialization.read_statistics(stored(tmp_path, "after", darker=0.4)).splits["train"]
    report = compare(
        before, after, numeric_threshold=0.1, categorical_threshold=0.1, baseline_name="a", current_name="b"
    )
    assert {c.column for c in report.drifted()} >= {"mean_red", "mean_green", "mean_blue"}
    assert "image_size" not in {c.column for c in report.drifted()}


def test_a_production_model_of_images_stored_before_pixel_statistics_is_compared_on_what_both_describe(
    tmp_path, monkeypatch
):
    ref = stored(tmp_path, "photos")
    train = materialization.read_statistics(ref).splits["train"]
    older = SplitStatistics(rows=train.rows, columns={"image_size": train.columns["image_size"]}, label=train.label)
    monkeypatch.setattr(drift, "production_statistics", lambda root, name, alias: (older, "v1's training data"))
    report = drift.drift_against_production(ref, DriftConfig(), name="pets", alias="production")
    assert [c.column for c in report.columns if c.column != "label"] == ["image_size"]


@pytest.mark.parametrize("mode", ["P", "LA"])
def test_a_palette_or_grayscale_with_alpha_image_is_measured_in_the_models_channels(tmp_path, mode):
    folder = tmp_path / "odd"
    write_image_folders(str(folder), per_class=3)
    Image.new(mode, (20, 20)).save(folder / "cat" / "odd.png")
    data = DataConfig(source="images", url=str(folder), image_size=(8, 8))
    statistics = load_source(data).statistics
    assert sum(split.columns["mean_red"].count for split in statistics.splits.values()) == 10
