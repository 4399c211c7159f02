"""Hostile model files are refused before Keras reads them, each with one message naming the cause.

Each file is built the way an attacker who can write to the bucket would build it: a real
Keras archive with one part rewritten. Every test here failed before models/archive_check.py.
"""

from __future__ import annotations

import io as bytes_io
import json
import resource
import sys
import textwrap
import zipfile

import h5py
import keras
import numpy as np
import pytest

from kerasflow.models import io
from kerasflow.models.archive_check import ArchiveLimits


def tiny_model() -> keras.Model:
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="relu")(inputs))


def members_of(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_archive(path, members: dict[str, bytes], *, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return path


@pytest.fixture
def plain(tmp_path):
    path = tmp_path / "plain.keras"
    io.save_model(tiny_model(), path)
    return path


def rewritten(tmp_path, plain, edit, name="hostile.keras"):
    """``plain`` with its config.json passed through ``edit`` (which changes it in place)."""
    files = members_of(plain)
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    return write_archive(tmp_path / name, files)


def dense_config(config) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")["config"]


def refused(path, match: str, **kwargs) -> str:
    with pytest.raises(io.UnsafeModelError, match=match) as caught:
        io.load_model(path, **kwargs)
    message = str(caught.value)
    assert "could not be deserialized properly" not in message
    assert len(message) < 700, message  # one cause, not a config dump
    return message


def test_the_plain_file_loads(plain):
    assert io.load_model(plain).count_params() == 8


def test_a_compressed_config_bomb_is_refused_without_reading_it(tmp_path, plain):
    files = members_of(plain)
    files["config.json"] = files["config.json"] + b" " * (128 << 20)  # 128 MiB of spaces: valid JSON, deflates to 0.1%
    path = write_archive(tmp_path / "bomb.keras", files, compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused(path, r"member 'config.json' declares 128.0 MiB but stores .* a decompression bomb")
    # Nothing near the declared size was allocated (ru_maxrss is in KiB on Linux).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10


def test_a_config_over_its_bound_is_refused(tmp_path, plain):
    files = members_of(plain)
    files["config.json"] = files["config.json"] + b" " * (2 << 20)
    path = write_archive(tmp_path / "big.keras", files)
    refused(
        path, r"config.json declares 2.0 MiB, expected at most 1.0 MiB", limits=ArchiveLimits(max_config_bytes=1 << 20)
    )


def test_a_lambda_layer_is_refused_even_around_a_keras_function(tmp_path):
    from keras.applications import imagenet_utils

    model = keras.Sequential([keras.Input((1000,)), keras.layers.Lambda(imagenet_utils.decode_predictions)])
    path = tmp_path / "lambda.keras"
    io.save_model(model, path)
    refused(path, "Lambda")


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("os", "system"),
        ("builtins", "eval"),
        ("subprocess", "run"),
        ("keras.applications.imagenet_utils", "decode_predictions"),  # fetches a file from the internet
        ("keras.src.saving.saving_lib", "load_model"),
        ("keras.saving", "load_model"),
        ("keras.", "relu"),
        ("keras.activations ", "relu"),
        ("keras.activations", "get"),
    ],
)
def test_a_function_that_is_not_an_activation_loss_or_metric_is_refused(tmp_path, plain, module, function):
    def edit(config):
        dense_config(config)["activation"] = {
            "module": module,
            "class_name": "function",
            "config": function,
            "registered_name": function,
        }

    message = refused(rewritten(tmp_path, plain, edit), "is not a Keras activation, loss or metric")
    assert f"{module}.{function}" in message


def test_a_keras_activation_named_by_module_loads(tmp_path, plain):
    def edit(config):
        dense_config(config)["activation"] = {"module": "keras.activations", "class_name": "function", "config": "tanh"}

    model = io.load_model(rewritten(tmp_path, plain, edit))
    assert model.layers[-1].activation is keras.activations.tanh


@pytest.mark.parametrize(
    ("module", "class_name", "match"),
    [
        ("keras.layers", "TFSMLayer", "TFSMLayer"),
        ("keras.src.saving.saving_lib", "H5IOStore", "not a Keras layer"),  # a class, but not a modeling object
        ("keras.callbacks", "RemoteMonitor", "not a Keras layer"),  # posts to a URL
        ("keras.utils", "Progbar", "not a Keras layer"),
        ("keras.src.not_loaded_module", "Dense", "is not a Keras class"),  # never imported by the check
        ("collections", "OrderedDict", "is not a Keras class"),
    ],
)
def test_a_class_that_is_not_a_keras_modeling_object_is_refused(tmp_path, plain, module, class_name, match):
    def edit(config):
        layer = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
        layer.update(module=module, class_name=class_name)

    refused(rewritten(tmp_path, plain, edit), match)
    assert "keras.src.not_loaded_module" not in sys.modules


@pytest.mark.parametrize("vocabulary", ["/etc/shadow", "https://example.invalid/vocab.txt"])
def test_a_vocabulary_given_as_a_path_or_url_is_refused(tmp_path, vocabulary):
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, keras.layers.StringLookup(vocabulary=["a", "b"])(inputs))
    path = tmp_path / "lookup.keras"
    io.save_model(model, path)

    def edit(config):
        lookup = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "StringLookup")
        lookup["config"]["vocabulary"] = vocabulary

    refused(rewritten(tmp_path, path, edit), "a file or URL .* that Keras would read")


def test_a_numpy_node_of_a_huge_dtype_is_refused(tmp_path, plain):
    def edit(config):
        dense_config(config)["kernel_initializer"] = {
            "module": "keras.initializers",
            "class_name": "Constant",
            "config": {"value": {"class_name": "__numpy__", "config": {"value": [0], "dtype": "V6000000000"}}},
        }

    refused(rewritten(tmp_path, plain, edit), r"a __numpy__ of dtype 'V6000000000'")


def test_a_config_nested_200000_levels_is_refused(tmp_path, plain):
    files = members_of(plain)
    config = json.loads(files["config.json"])
    files["config.json"] = json.dumps(config)[:-1].encode() + b', "deep": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    refused(write_archive(tmp_path / "deep.keras", files), "nested deeper than 200 levels")


def test_a_config_nested_past_the_bound_but_parseable_is_refused(tmp_path, plain):
    def edit(config):
        node = dense_config(config)
        for _ in range(300):
            node["extra"] = {}
            node = node["extra"]

    refused(rewritten(tmp_path, plain, edit), "nested deeper than 200 levels")


def test_a_layer_declaring_a_17_gb_kernel_is_refused_without_allocating_it(tmp_path):
    inputs = keras.Input((64,))
    path = tmp_path / "wide.keras"
    io.save_model(keras.Model(inputs, keras.layers.Dense(2)(inputs)), path)

    def edit(config):
        dense_config(config)["units"] = 2**26

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused(rewritten(tmp_path, path, edit), r"builds 16.2 GiB of variables but its weights store 520 B")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 256 << 10


def test_a_layer_whose_output_per_example_is_huge_is_refused(tmp_path):
    inputs = keras.Input((1,), dtype="int32")
    path = tmp_path / "encoding.keras"
    io.save_model(keras.Model(inputs, keras.layers.CategoryEncoding(num_tokens=4)(inputs)), path)

    def edit(config):
        next(layer for layer in config["config"]["layers"] if layer["class_name"] == "CategoryEncoding")["config"][
            "num_tokens"
        ] = 2**31

    refused(rewritten(tmp_path, path, edit), "outputs 2,147,483,648 values per example")


def test_an_hdf5_dataset_that_declares_what_it_does_not_store_is_refused(tmp_path, plain):
    files = members_of(plain)
    buffer = bytes_io.BytesIO()
    with h5py.File(buffer, "w") as weights:
        weights.create_dataset("layers/dense/vars/0", shape=(3, 2), dtype="float32", data=np.zeros((3, 2)))
        weights.create_dataset("layers/dense/vars/1", shape=(1 << 30,), dtype="float32", chunks=(1 << 16,))
    files["model.weights.h5"] = buffer.getvalue()
    refused(
        write_archive(tmp_path / "h5bomb.keras", files), r"weight 'layers/dense/vars/1' declares shape \(1073741824,\)"
    )


def test_assets_that_no_layer_uses_are_refused(tmp_path, plain):
    files = members_of(plain)
    files.update({f"assets/blob{i}.bin": b"\0" * 1024 for i in range(8)})
    refused(write_archive(tmp_path / "assets.keras", files), "is not a vocabulary of a lookup layer")


def test_assets_over_their_bound_are_refused(tmp_path, plain):
    files = members_of(plain)
    files["assets/layers/string_lookup/vocabulary.txt"] = b"word\n" * 1000
    refused(
        write_archive(tmp_path / "vocab.keras", files),
        r"assets declare 4.9 KiB, expected at most 1.0 KiB",
        limits=ArchiveLimits(max_asset_bytes=1024),
    )


def test_a_member_outside_the_keras_layout_is_refused(tmp_path, plain):
    files = members_of(plain)
    files["../../etc/cron.d/evil"] = b"* * * * * root true"
    refused(write_archive(tmp_path / "stray.keras", files), "is not part of a Keras 3 model file")


TEAM_PACKAGE = """
import keras


@keras.saving.register_keras_serializable(package="{package}")
class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {{**super().get_config(), "factor": self.factor}}


@keras.saving.register_keras_serializable(package="{package}")
def double(x):
    return x * 2
"""


@pytest.fixture
def team_package(tmp_path, monkeypatch):
    """A package of a team's own, with one registered layer and one registered function."""
    package = "kf_team_layers"
    folder = tmp_path / "site" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(textwrap.dedent(TEAM_PACKAGE.format(package=package)))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield package
    sys.modules.pop(package, None)


def test_a_registered_class_loads_only_from_a_trusted_package(tmp_path, team_package):
    import importlib

    layers = importlib.import_module(team_package)
    inputs = keras.Input((3,))
    path = tmp_path / "team.keras"
    io.save_model(keras.Model(inputs, layers.Scale(3.0)(inputs)), path)
    refused(path, rf"registered class '{team_package}>Scale' from a package the recipe does not trust")
    model = io.load_model(path, trusted_packages=[team_package])
    np.testing.assert_allclose(model.predict(np.ones((1, 3)), verbose=0), 3 * np.ones((1, 3)))


def test_a_registered_function_is_refused_even_from_a_trusted_package(tmp_path, plain, team_package):
    def edit(config):
        dense_config(config)["activation"] = {
            "module": team_package,
            "class_name": "function",
            "config": "double",
            "registered_name": f"{team_package}>double",
        }

    path = rewritten(tmp_path, plain, edit)
    refused(path, "registered function", trusted_packages=[team_package])


def test_a_trusted_package_that_is_not_installed_is_named(plain):
    with pytest.raises(io.ModelLoadError, match="trusted package 'kf_not_installed' cannot be imported"):
        io.load_model(plain, trusted_packages=["kf_not_installed"])


def test_only_modules_inside_a_trusted_package_are_imported_to_find_its_classes(tmp_path, plain, team_package):
    def edit(config):
        layer = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
        layer.update(module="kf_never_imported_module", registered_name=f"{team_package}>Missing")

    refused(
        rewritten(tmp_path, plain, edit), rf"'{team_package}>Missing' from a package", trusted_packages=[team_package]
    )
    assert "kf_never_imported_module" not in sys.modules
