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


def test_a_confusion_matrix_of_many_classes_draws_the_most_confused_in_a_bounded_figure():
    classes = 300
    rng = np.random.default_rng(0)
    counts = np.diag(rng.integers(50, 100, classes))
    confused = [(7, 9, 40), (9, 7, 35), (120, 3, 30), (299, 0, 25)]  # the errors the figure must show
    for true, predicted, count in confused:
        counts[true, predicted] = count
    # Errors as the truth or as the prediction: 7 and 9 75 each, 120 and 3 30, 299 and 0 25.
    assert plots.most_confused(counts, 4).tolist() == [3, 7, 9, 120]
    shown = plots.most_confused(counts, plots.MAX_MATRIX_CLASSES)
    assert len(shown) == plots.MAX_MATRIX_CLASSES and {0, 3, 7, 9, 120, 299} <= set(shown.tolist())
    figure = Image.open(io.BytesIO(plots.confusion_matrix_png(counts.tolist(), [f"class {i}" for i in range(classes)])))
    # Drawn whole, 300 classes would be a 13,000-pixel square; the figure is that of 30 classes.
    assert max(figure.size) <= 1600


def test_class_names_are_drawn_as_written_not_as_math():
    names = ["$x_$", "cost $", "a_b^c"]  # matplotlib would parse $x_$ as math and fail to draw it
    png = plots.confusion_matrix_png([[3, 1, 0], [0, 2, 0], [1, 0, 4]], names)
    assert Image.open(io.BytesIO(png)).format == "PNG"
    grid = plots.distribution_grid_png([("$x_$", ["$a_$", "b"], [0.5, 0.5])])
    assert Image.open(io.BytesIO(grid)).format == "PNG"
