from pathlib import Path

import pytest

from kerasflow.flows.recipes import load_recipe, recipe_names
from kerasflow.tasks.config import (
    ConfigError,
    TrainConfig,
    apply_assignments,
    load_config,
    parse_config,
    resolve_root,
)


@pytest.mark.parametrize("name", ["digits", "mnist_mlp", "cifar10_cnn", "imdb_text"])
def test_bundled_recipes_parse(name):
    config = load_recipe(name)
    assert config.model.family in {"digits_cnn", "mnist_mlp", "cifar10_cnn", "imdb_text"}
    assert config.gate.value, "every recipe gates on an absolute bound"


def test_every_recipe_is_listed():
    assert recipe_names() == [
        "cifar10_cnn",
        "diabetes",
        "digits",
        "fraud_tabular",
        "imdb_text",
        "mnist_mlp",
        "tabular_regression",
    ]


def test_fraud_recipe_needs_a_url_and_says_how_to_give_it():
    with pytest.raises(ConfigError, match=r"data\.url"):
        load_recipe("fraud_tabular")
    config = load_recipe("fraud_tabular", ["data.url=/tmp/x.parquet"])
    assert config.data.url == "/tmp/x.parquet"


def test_overrides_are_parsed_as_yaml_values():
    config = load_recipe("digits", ["training.epochs=3", "runtime.devices=['/cpu:0', '/cpu:1']", "model.name=abc"])
    assert config.training.epochs == 3
    assert config.runtime.devices == ["/cpu:0", "/cpu:1"]
    assert config.model.name == "abc"


def test_all_problems_are_reported_at_once_with_received_and_expected():
    with pytest.raises(ConfigError) as info:
        parse_config({"training": {"epochs": "many", "batch_size": 0}, "modle": {}})
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "training.epochs: received 'many'" in message
    assert "training.batch_size: received 0" in message
    assert "modle: unknown key" in message


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("training.epochs", "expected dotted.key=value"),
        ("=3", "expected dotted.key=value"),
        ("training.epochs.x=1", "is a value, not a section"),
    ],
)
def test_bad_set_assignments(assignment, expected):
    raw = {"training": {"epochs": 3}}
    with pytest.raises(ConfigError, match=expected):
        apply_assignments(raw, [assignment])


def test_model_name_cannot_escape_the_registry():
    for bad in ["../evil", "a/b", "Upper", "", "a" * 65]:
        with pytest.raises(ConfigError, match=r"model\.name"):
            parse_config({"model": {"name": bad}})


def test_unknown_model_family():
    with pytest.raises(ConfigError, match="expected one of"):
        parse_config({"model": {"family": "resnet9000"}})


def test_missing_and_malformed_recipe_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listy)


def test_storage_root_defaults_to_env_and_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("KERASFLOW_ROOT", "relative/root")
    monkeypatch.chdir(tmp_path)
    assert TrainConfig().storage.root == str(tmp_path / "relative" / "root")
    monkeypatch.delenv("KERASFLOW_ROOT")
    assert TrainConfig().storage.root == str(tmp_path / ".kerasflow")
    assert TrainConfig(storage={"root": "s3://bucket/prefix/"}).storage.root == "s3://bucket/prefix"


def test_config_is_frozen():
    config = TrainConfig.smoke()
    with pytest.raises(Exception, match="frozen"):
        config.training.epochs = 5  # type: ignore[misc]


def test_fractions_must_leave_training_data():
    with pytest.raises(ConfigError, match=r"sum below 0\.9"):
        parse_config({"data": {"fractions": {"validation": 0.5, "test": 0.45}}})


@pytest.mark.parametrize(
    "url",
    [
        "https://analyst:hunter2@data.example.com/events.csv",
        "https://bucket.s3.amazonaws.com/events.parquet?X-Amz-Signature=abc123&X-Amz-Credential=AKIA",
        "https://storage.example.com/events.csv?sig=abc&se=2026",
    ],
)
def test_urls_carrying_credentials_are_refused_before_they_reach_metadata(url):
    with pytest.raises(ConfigError, match="credential in it") as info:
        parse_config({"data": {"source": "files", "url": url}})
    assert "hunter2" not in str(info.value) and "abc123" not in str(info.value) and "abc&" not in str(info.value)
    with pytest.raises(ConfigError, match="credential in it"):
        parse_config({"storage": {"root": "s3://AKIA:secret@bucket/prefix"}})


def test_plain_urls_are_accepted():
    config = parse_config({"data": {"source": "files", "url": "s3://bucket/events/date=*/part-*.parquet"}})
    assert config.data.url == "s3://bucket/events/date=*/part-*.parquet"


def test_a_root_given_on_the_command_line_is_checked_without_echoing_it():
    from kerasflow.tasks.config import resolve_root

    with pytest.raises(ConfigError, match="--root is invalid") as info:
        resolve_root("s3://AKIA:topsecret@bucket/prefix")
    assert "topsecret" not in str(info.value)
    assert resolve_root("s3://bucket/prefix/") == "s3://bucket/prefix"


def _alias_bomb(levels: int = 9) -> str:
    """The billion laughs in YAML: each level is ten aliases of the one before (10**levels values)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines)


@pytest.mark.timeout(60)
def test_an_alias_bomb_recipe_is_refused_before_it_is_expanded(tmp_path: Path):
    import time

    bomb = _alias_bomb()
    params = "\n".join("    " + line for line in bomb.splitlines())
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(f"model:\n  family: digits_cnn\n  params:\n{params}\n")
    assert recipe.stat().st_size < 1000, "a few hundred bytes standing for 10**9 values"
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(recipe)
    assert time.monotonic() - started < 5
    assert str(info.value).startswith(f"recipe file {recipe} is refused: with its YAML aliases (*name) expanded")
    # The same bomb in an override, and a recursive alias, are refused the same way.
    with pytest.raises(ConfigError, match=r"--set model.params is refused: with its YAML aliases"):
        load_recipe("digits", ["model.params={" + bomb.replace("\n", ", ") + "}"])
    (tmp_path / "loop.yaml").write_text("model:\n  params: &p {inner: *p}\n")
    with pytest.raises(ConfigError, match=r"is refused: with its YAML aliases"):
        load_config(tmp_path / "loop.yaml")


def test_a_few_honest_aliases_are_fine(tmp_path: Path):
    (tmp_path / "ok.yaml").write_text(
        "gate:\n  value:\n    accuracy: &bound {min: 0.9}\n  per_class:\n    recall: *bound\n"
    )
    assert load_config(tmp_path / "ok.yaml").gate.per_class["recall"].min == 0.9


def test_a_recipe_over_the_size_limit_is_refused_unread(tmp_path: Path):
    recipe = tmp_path / "huge.yaml"
    values = ", ".join(["1"] * 600_000)  # 1.8 MB of model.params
    recipe.write_text(f"model:\n  params:\n    units: [{values}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(recipe)
    assert str(info.value) == (
        f"recipe file {recipe} is refused: it is over the 1,048,576-byte limit of a recipe; a recipe names "
        "settings, so keep data (vocabularies, tables, weights) in the files it points to"
    )


def test_an_unknown_key_is_answered_with_the_closest_valid_key_of_its_section():
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "training": {"epocs": 3, "early_stopping": {"patiense": 2}},
                "data": {"label_colum": "y"},
                "gate": {"value": {"accuracy": {"mni": 0.9}}},
                "modle": {},
            }
        )
    lines = str(info.value).splitlines()
    reference = "(every key is in docs/recipe-reference.md, or `kerasflow recipes --reference`)"
    assert "  training.epocs: unknown key; did you mean 'epochs'? valid keys of training: epochs, batch_size," in (
        "\n".join(lines)
    )
    assert any(
        line.startswith("  training.early_stopping.patiense: unknown key; did you mean 'patience'?") for line in lines
    )
    assert any(line.startswith("  data.label_colum: unknown key; did you mean 'label_column'?") for line in lines)
    assert (
        "  gate.value.accuracy.mni: unknown key; did you mean 'min'? valid keys of gate.value.accuracy: min, max "
        f"{reference}" in lines
    )
    assert any(
        line.startswith("  modle: unknown key; did you mean 'model'? valid keys of the recipe: data, model,")
        for line in lines
    )
    assert all(line.endswith(reference) for line in lines[1:])
    with pytest.raises(ConfigError, match=r"training.zzz: unknown key; valid keys of training"):
        parse_config({"training": {"zzz": 1}})


def test_the_committed_recipe_reference_is_what_the_config_models_generate(monkeypatch):
    from kerasflow.tasks.config.reference import reference_markdown

    monkeypatch.delenv("KERASFLOW_ROOT", raising=False)
    committed = (Path(__file__).resolve().parents[3] / "docs" / "recipe-reference.md").read_text()
    assert committed == reference_markdown(), (
        "docs/recipe-reference.md is stale: run `kerasflow recipes --reference > docs/recipe-reference.md`"
    )
    for key in (
        "| `split_key` |",
        "| `max_regression` | float | `0.0` |",
        "## `runtime.launcher`",
        "## `gate.per_slice.<key>.<key>`",
    ):
        assert key in committed


@pytest.mark.parametrize("root", ["http://example.com/kf", "memory://kf", "simplecache::s3://bucket/kf", "ftp://h/kf"])
def test_a_root_on_a_store_kerasflow_does_not_commit_to_is_refused_before_any_work(root):
    # http:// sent the training data by POST; memory:// trained and registered into nothing.
    with pytest.raises(ConfigError, match=r"received a storage root of scheme '[a-z0-9:]+', expected a local folder"):
        TrainConfig.smoke(storage={"root": root})
    with pytest.raises(ConfigError, match="storage root of scheme"):
        resolve_root(root)


def test_a_store_a_team_verified_is_accepted_once_registered(monkeypatch):
    from kerasflow.tasks import config as config_module

    monkeypatch.setattr(config_module, "STORAGE_SCHEMES", set(config_module.STORAGE_SCHEMES))
    assert TrainConfig.smoke(storage={"root": "s3://bucket/kf/"}).storage.root == "s3://bucket/kf"
    with pytest.raises(ConfigError):
        TrainConfig.smoke(storage={"root": "gs://bucket/kf"})
    config_module.register_storage_scheme("gs")
    assert TrainConfig.smoke(storage={"root": "gs://bucket/kf"}).storage.root == "gs://bucket/kf"


@pytest.mark.parametrize(
    ("data", "family"),
    [
        ({}, "digits_cnn"),
        ({"source": "files", "url": "/data/t.parquet"}, "tabular_mlp"),
        ({"source": "sample", "name": "breast_cancer"}, "tabular_mlp"),
        ({"source": "images", "url": "/data/photos"}, "image_cnn"),
        ({"source": "tfds", "name": "mnist"}, "image_cnn"),
    ],
)
def test_a_recipe_naming_no_builder_gets_the_zoos_builder_for_its_data(data, family):
    # A table got digits_cnn, and failed after ingest with a Conv2D rank error.
    assert TrainConfig.model_validate({"data": data}).model.family == family
    assert TrainConfig.model_validate({"data": data, "model": {"name": "m"}}).model.builder_reference == family
    named = TrainConfig.model_validate({"data": data, "model": {"builder": "team.models:build"}})
    assert named.model.family is None and named.model.builder_reference == "team.models:build"
