"""Every bundled recipe, end to end through `train_flow`, on tiny local data.

TFDS recipes read small datasets prepared on disk from `tfds.testing.mock_data` examples
(see tests/tfds_fakes.py): nothing is downloaded. The tabular recipe reads a transactions table
the test writes (tests/tables.py), learnable enough that the recipe's own gate (AUC >= 0.8) is met.
"""

from __future__ import annotations

import pytest

from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from tests.tables import transactions_frame
from tests.tfds_fakes import prepare_fake_tfds

pytestmark = pytest.mark.usefixtures("prefect_server")

TINY = ["training.epochs=1", "training.batch_size=16", "training.early_stopping.enabled=false"]
# Random images cannot meet the real recipes' accuracy bounds; these runs prove the wiring.
NO_GATE = ["gate.value={}", "gate.change={}"]


@pytest.mark.parametrize(
    ("recipe", "dataset", "family"),
    [
        ("mnist_mlp", "mnist", "mnist_mlp"),
        ("cifar10_cnn", "cifar10", "cifar10_cnn"),
        ("imdb_text", "imdb_reviews", "imdb_text"),
    ],
)
def test_tfds_recipe_end_to_end(recipe, dataset, family, root, tmp_path):
    data_dir = tmp_path / "tfds"
    prepare_fake_tfds(dataset, data_dir, splits={"train": 48, "test": 16})
    config = load_recipe(recipe, [*TINY, *NO_GATE, f"data.data_dir={data_dir}"])
    summary = train_flow(config=config)
    assert summary.outcome == "promoted"
    metadata = ModelRegistry(f"{root}/registry").get(config.model.name, 1)
    assert metadata["config"]["model"]["family"] == family
    assert metadata["metrics"]["num_examples"] == 16
    if recipe == "imdb_text":
        assert {"precision", "recall", "auc"} <= set(metadata["metrics"]["values"])


def test_fraud_tabular_recipe_meets_its_own_gate(root, tmp_path):
    # Transactions as a fraud team has them: numbers, text categories, gaps, and 1.3 % fraud.
    frame = transactions_frame(6000, seed=1)
    path = tmp_path / "transactions.parquet"
    frame.to_parquet(path)

    config = load_recipe("fraud_tabular", [f"data.url={path}", "training.epochs=20"])
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    values = summary.metrics
    assert values["auc"] >= 0.8 and values["recall"] >= 0.5, values  # the recipe's own gate
    assert {"precision", "recall", "auc", "accuracy", "loss"} <= set(values)
    metadata = ModelRegistry(f"{root}/registry").get("fraud-tabular", 1)
    # A class-weighted run: balanced weights make the model find the rare fraud.
    assert metadata["config"]["training"]["class_weight"] == "balanced"
    # The recipe names no columns: numbers are float_normalized, text string_categorical, gaps filled.
    types = metadata["dataset"]["column_types"]
    assert types["country"] == types["channel"] == "string_categorical" and types["amount"] == "float_normalized"
    splits = metadata["dataset"]["splits"]
    # Rows are split by their hash: 15 % of 6000 in expectation, every row in exactly one split.
    assert sum(splits.values()) == 6000 and abs(splits["test"] - 900) <= 75
