"""The private Keras and TensorFlow APIs of models/private_apis.py: still there, still needed.

Each name kerasflow reaches past the public API for is exercised here, so an upgrade that
moves one fails here, naming it, rather than deep inside a training. Each workaround of an
upstream bug has a test that reproduces the bug with plain Keras: when upstream fixes it,
that test fails, and the workaround goes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasflow.models import private_apis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def upstream() -> dict:
    """The upstream cases, run once in a process of their own (tests/models/upstream_cases.py)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.models.upstream_cases"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_keras_still_cannot_fit_a_string_input_under_two_replicas(upstream):
    assert upstream["strings_plain"] != "trained", (
        "Keras now fits a string input under MirroredStrategy (tensorflow/tensorflow#80951, "
        "keras-team/keras#21172): delete private_apis.build_before_fit and its call in tasks/train/fit.py"
    )
    assert "string" in upstream["strings_plain"]


def test_build_before_fit_lets_two_replicas_fit_a_string_input(upstream):
    assert upstream["strings_with_workaround"] == "trained"


def test_two_plain_mirrored_strategies_still_share_collective_keys(upstream):
    first, second = upstream["two_strategies_plain"]
    assert first == "trained"
    assert second != "trained", (
        "a second MirroredStrategy now trains another model in the same process (tensorflow/tensorflow#62790): "
        "delete private_apis.mirrored_strategy's key moves and build tf.distribute.MirroredStrategy directly"
    )


def test_mirrored_strategy_gives_each_strategy_keys_of_its_own(upstream):
    assert upstream["two_strategies_with_workaround"] == ["trained", "trained"]


def test_keras_builtin_names_are_found_without_importing():
    assert "activations" in private_apis.builtin_keras_modules()
    functions = {id(f) for f in private_apis.keras_builtin_functions()}
    assert id(keras.activations.relu) in functions
    assert id(keras.losses.mean_squared_error) in functions
    assert private_apis.public_symbol("keras.layers.Dense") is keras.layers.Dense
    assert private_apis.public_symbol("os.system") is None


def test_unallocated_variables_leaves_nothing_to_allocate_later():
    from keras.src.backend.common import global_state

    recorded = global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)
    before = len(recorded)
    with private_apis.unallocated_variables():
        inputs = keras.Input(shape=(100_000,))
        model = keras.Model(inputs, keras.layers.Dense(100_000)(inputs))  # 40 GB were it allocated
        assert [tuple(v.shape) for v in model.variables] == [(100_000, 100_000), (100_000,)]
        assert len(recorded) > before
    assert len(recorded) == before


def test_sublayers_reaches_nested_layers():
    inner = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(3, name="inner_dense")], name="inner")
    inputs = keras.Input(shape=(2,))
    outer = keras.Model(inputs, keras.layers.Dense(1, name="outer_dense")(inner(inputs)))
    names = {layer.name for layer in private_apis.sublayers(outer)}
    assert {"inner", "inner_dense", "outer_dense"} <= names
    assert "inner_dense" not in {layer.name for layer in outer.layers}


def test_build_state_builds_the_loss_metrics_and_optimizer_before_a_step():
    import tensorflow as tf

    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32"))).batch(2)
    private_apis.build_state(model, data.element_spec)
    assert model._compile_metrics.built
    assert model._compile_loss.built
    assert model.optimizer.built


def test_call_nodes_and_the_resumed_epoch_are_still_where_keras_keeps_them(tmp_path):
    inputs = keras.Input(shape=(2,))
    dense = keras.layers.Dense(1)
    model = keras.Model(inputs, dense(inputs))
    assert [id(t) for node in private_apis.call_nodes(dense) for t in node.input_tensors] == [id(inputs)]
    assert private_apis.call_nodes(keras.layers.Dense(1)) == []

    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq="epoch", delete_checkpoint=False)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    private_apis.clear_resumed_epoch(model)
    assert private_apis.resumed_epoch(model) == 0
    backup.set_model(model)
    backup.on_train_begin()
    assert private_apis.resumed_epoch(model) == 2, "BackupAndRestore records the epoch it restored there"


def test_the_coordination_service_can_still_be_configured():
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    assert callable(context.context().configure_coordination_service)
    assert callable(multi_worker_util.coordination_leader)
    assert coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=2).num_tasks == 2


def test_no_other_module_reaches_past_the_public_apis():
    patterns = ("from keras.src", "import keras.src", "tensorflow.python", "._symbolic_build", "_collective_key_base")
    patterns += ("._flatten_layers", "._maybe_symbolic_build", "keras.src.backend.common", "_inbound_nodes")
    patterns += ("._initial_epoch",)
    found = [
        f"{path.relative_to(ROOT)}: {pattern}"
        for folder in ("flows", "tasks", "models", "kerasflow")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "private_apis.py"
        for pattern in patterns
        if pattern in path.read_text()
    ]
    assert found == [], "private Keras/TensorFlow APIs belong in models/private_apis.py"
