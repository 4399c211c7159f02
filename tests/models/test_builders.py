"""The builder contract: resolving a builder, its params, what it returns, what is recorded."""

from __future__ import annotations

import sys
import textwrap

import keras
import pytest

from kerasflow.models import builders
from kerasflow.models.input_spec import InputSpec

SPEC = InputSpec(
    feature_shape=(4,),
    feature_dtype="float32",
    class_names=("a", "b", "c"),
    task="multiclass",
    num_outputs=3,
    output_activation="softmax",
    output_widths=(3,),
)

TEAM_BUILDERS = """
import keras

def good(*, input_spec, units=8):
    inputs = keras.Input(input_spec.feature_shape)
    return keras.Model(inputs, keras.layers.Dense(input_spec.num_outputs, activation="softmax")(inputs))

def not_a_model(*, input_spec):
    return "a string"

def wrong_width(*, input_spec):
    inputs = keras.Input(input_spec.feature_shape)
    return keras.Model(inputs, keras.layers.Dense(7)(inputs))

def no_spec(units=8):
    return None

NOT_CALLABLE = 3
"""


@pytest.fixture
def team_builders(tmp_path, monkeypatch):
    (tmp_path / "kf_team_builders.py").write_text(textwrap.dedent(TEAM_BUILDERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "kf_team_builders"
    sys.modules.pop("kf_team_builders", None)


def test_an_import_path_resolves_to_the_teams_function(team_builders):
    builder = builders.resolve(f"{team_builders}:good")
    model = builder(input_spec=SPEC, units=4)
    builders.check_params(f"{team_builders}:good", builder, {"units": 4})
    builders.check_model(f"{team_builders}:good", model, SPEC)
    assert model.output_shape == (None, 3)


@pytest.mark.parametrize(
    ("reference", "match"),
    [
        ("kf_no_such_module:build", r"'kf_no_such_module' cannot be imported .*on PYTHONPATH, or install its package"),
        ("kf_team_builders:missing", r"kf_team_builders has no 'missing'"),
        ("kf_team_builders:NOT_CALLABLE", r"a int, expected a function"),
        ("not a reference", r"expected one of .*'digits_cnn'"),
        ("bad-module:build", r"expected 'package.module:function'"),
    ],
)
def test_a_builder_that_cannot_be_found_is_named(team_builders, reference, match):
    with pytest.raises(builders.BuilderError, match=match):
        builders.resolve(reference)


def test_params_the_builder_does_not_take_are_listed_with_the_valid_names(team_builders):
    builder = builders.resolve(f"{team_builders}:good")
    with pytest.raises(builders.BuilderError, match=r"model.params \['unitz'\] .* expected any of \['units'\]"):
        builders.check_params("good", builder, {"unitz": 3})
    zoo_builder = builders.resolve("digits_cnn")
    with pytest.raises(builders.BuilderError, match=r"\['filtres'\] .* expected any of \['api', 'dropout', 'filters'"):
        builders.check_params("digits_cnn", zoo_builder, {"filtres": 16})
    with pytest.raises(builders.BuilderError, match="without an input_spec parameter"):
        builders.check_params("no_spec", builders.resolve(f"{team_builders}:no_spec"), {})


def test_what_a_builder_returns_must_be_a_model_that_fits_the_task(team_builders):
    with pytest.raises(builders.BuilderError, match=r"received a builtins.str .* expected a keras.Model"):
        builders.check_model("not_a_model", builders.resolve(f"{team_builders}:not_a_model")(input_spec=SPEC), SPEC)
    wide = builders.resolve(f"{team_builders}:wrong_width")(input_spec=SPEC)
    with pytest.raises(
        builders.BuilderError, match=r"output has shape \(None, 7\), expected \(None, 3\) for the multiclass"
    ):
        builders.check_model("wrong_width", wide, SPEC)


def test_a_name_can_be_registered_once():
    @builders.register_builder("kf_test_registered")
    def build(*, input_spec):
        return keras.Sequential([keras.Input(input_spec.feature_shape), keras.layers.Dense(3)])

    assert builders.resolve("kf_test_registered") is build
    with pytest.raises(builders.BuilderError, match="a second builder"):
        builders.register_builder("kf_test_registered")(lambda **_: None)
    builders.BUILDERS.pop("kf_test_registered")


def test_lineage_records_the_reference_and_the_codes_identity(team_builders, tmp_path):
    builder = builders.resolve(f"{team_builders}:good")
    first = builders.lineage(f"{team_builders}:good", builder)
    assert first["reference"] == f"{team_builders}:good" and len(first["code_sha256"]) == 64
    assert builders.lineage("digits_cnn", builders.resolve("digits_cnn"))["code_sha256"] != first["code_sha256"]


def test_an_operator_bounds_what_a_recipe_may_import(monkeypatch, tmp_path):
    # A recipe is code: whoever can start a run could name any module on the worker.
    (tmp_path / "kf_side_effect.py").write_text("import pathlib\npathlib.Path(__file__).with_suffix('.ran').touch()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(builders.RECIPE_PACKAGES, "keras, team_models")
    with pytest.raises(builders.BuilderError, match=r"may import only from \['keras', 'team_models'\]"):
        builders.import_reference("kf_side_effect:anything", what="model.builder")
    assert not (tmp_path / "kf_side_effect.ran").exists()  # refused before its code ran
    assert builders.import_reference("keras.layers:Dense", what="training.callbacks entry") is not None
    monkeypatch.delenv(builders.RECIPE_PACKAGES)
    with pytest.raises(builders.BuilderError, match="has no 'anything'"):
        builders.import_reference("kf_side_effect:anything", what="model.builder")
    assert (tmp_path / "kf_side_effect.ran").exists()  # unbounded by default, as before
