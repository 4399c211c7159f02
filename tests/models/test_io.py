"""Loading refuses files that could run code, even ones Keras's safe mode would load."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from kerasflow.models import io


def saved(tmp_path, model, name="model.keras"):
    path = tmp_path / name
    io.save_model(model, path)
    return path


def with_activation(tmp_path, activation: dict, name: str):
    """A valid Dense model whose config.json is rewritten to name ``activation``."""
    path = saved(tmp_path, keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="relu")]))
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["layers"][0]["config"]["activation"] = activation
    files["config.json"] = json.dumps(config).encode()
    target = tmp_path / name
    with zipfile.ZipFile(target, "w") as archive:
        for entry, body in files.items():
            archive.writestr(entry, body)
    return target


def test_a_plain_keras_model_loads_and_predicts(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    path = saved(tmp_path, model)
    loaded = io.load_model(path, expected_sha256=io.sha256_file(path))
    np.testing.assert_allclose(loaded.predict(np.ones((1, 3)), verbose=0), model.predict(np.ones((1, 3)), verbose=0))


@pytest.mark.parametrize(("module", "function"), [("os", "system"), ("builtins", "eval"), ("subprocess", "run")])
def test_a_config_naming_a_function_outside_keras_is_refused(tmp_path, module, function):
    path = with_activation(
        tmp_path,
        {"module": module, "class_name": "function", "config": function, "registered_name": function},
        f"{module}.keras",
    )
    # Keras's own safe mode loads this file: the check must come from kerasflow.
    assert keras.saving.load_model(path, safe_mode=True) is not None
    with pytest.raises(
        io.UnsafeModelError, match=rf"the function {module}\.{function}, which is not a Keras activation"
    ):
        io.load_model(path)


def test_a_lambda_layer_is_refused(tmp_path):
    path = saved(tmp_path, keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)]))
    with pytest.raises(ValueError, match="Lambda"):
        io.load_model(path)


def test_a_tfsm_layer_is_refused(tmp_path):
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    inner.export(str(tmp_path / "saved_model"), verbose=False)
    outer = keras.Sequential([keras.Input((3,)), keras.layers.TFSMLayer(str(tmp_path / "saved_model"))])
    path = saved(tmp_path, outer, "outer.keras")
    with pytest.raises(ValueError, match="TFSMLayer"):
        io.load_model(path)


def test_a_file_that_is_not_a_keras_archive_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"\x80\x04 a pickle, perhaps")
    with pytest.raises(io.UnsafeModelError, match="is not a Keras 3 archive"):
        io.load_model(path)
