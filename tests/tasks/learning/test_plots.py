"""The run's figures: real PNGs of the numbers they are drawn from."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from kerasflow.models.registry import ModelRegistry, RegistryError
from kerasflow.tasks.learning import plots


def test_the_confusion_matrix_counts_truth_by_row_and_prediction_by_column():
    matrix = plots.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), num_classes=3)
    assert matrix == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_figures_are_pngs_that_show_every_epoch_and_class():
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.4], "accuracy": [0.5, 0.8, 0.9]}
    curves = Image.open(io.BytesIO(plots.learning_curves_png(history, first_epoch=4, title="resumed")))
    assert curves.format == "PNG" and curves.size == (672, 307)
    matrix = Image.open(io.BytesIO(plots.confusion_matrix_png([[5, 1], [0, 7]], ["legit", "fraud"])))
    assert matrix.format == "PNG" and min(matrix.size) >= 300
    # The heat map is not blank: the diagonal's dark cells are drawn.
    assert np.asarray(matrix.convert("L")).min() < 80


def test_embedded_png_round_trips_through_markdown():
    png = plots.learning_curves_png({"loss": [1.0, 0.5]})
    markdown = plots.embed_png(png, alt="curves")
    assert markdown.startswith("![curves](data:image/png;base64,")
    assert base64.b64decode(markdown.split(",", 1)[1].rstrip(")")) == png


@pytest.mark.parametrize("name", ["model.keras", "metadata.json", "saved_model/x.pb", "../escape.png", "/abs.png"])
def test_the_registry_refuses_extra_files_that_would_overwrite_or_escape_the_version(tmp_path, name):
    model_file = tmp_path / "model.keras"
    model_file.write_bytes(b"weights")
    registry = ModelRegistry(str(tmp_path / "registry"))
    with pytest.raises(RegistryError, match="expected a relative path"):
        registry.register("m", model_file=model_file, metadata={}, idempotency_key="k", extra_files={name: model_file})
    assert registry.versions("m") == []  # nothing became visible
