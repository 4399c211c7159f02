import json
import threading

import keras
import numpy as np
import pytest

from models import io
from models.registry import ModelRegistry, RegistryError, validate_name


@pytest.fixture
def model_file(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    path = tmp_path / "candidate.keras"
    io.save_model(model, path)
    return path


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(str(tmp_path / "registry"))


def register(registry, model_file, key, status="registered"):
    return registry.register("digits", model_file=model_file, metadata={"status": status}, idempotency_key=key)


def test_versions_count_up_and_load_back(registry, model_file):
    first = register(registry, model_file, "run-1")
    second = register(registry, model_file, "run-2")
    assert (first["version"], second["version"]) == (1, 2)
    assert [m["version"] for m in registry.versions("digits")] == [1, 2]
    assert registry.names() == ["digits"]
    loaded = registry.load("digits", 2)
    assert loaded.predict(np.zeros((1, 3)), verbose=0).shape == (1, 2)


def test_a_retried_registration_yields_one_version(registry, model_file):
    assert register(registry, model_file, "run-1")["version"] == 1
    assert register(registry, model_file, "run-1")["version"] == 1
    assert len(registry.versions("digits")) == 1


def test_concurrent_registrations_get_distinct_versions(registry, model_file):
    results, errors = [], []

    def worker(i):
        try:
            results.append(register(registry, model_file, f"run-{i}")["version"])
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(1, 9))


def test_a_version_without_metadata_is_invisible(registry, model_file, tmp_path):
    register(registry, model_file, "run-1")
    # A writer that died after claiming v2 and copying the model, before metadata.json.
    dead = tmp_path / "registry" / "digits" / "versions" / "2"
    dead.mkdir(parents=True)
    (dead / "claim.json").write_text(json.dumps({"idempotency_key": "dead"}))
    (dead / "model.keras").write_bytes(b"partial")
    assert [m["version"] for m in registry.versions("digits")] == [1]
    with pytest.raises(RegistryError, match="no version 2"):
        registry.get("digits", 2)
    assert register(registry, model_file, "run-3")["version"] == 3


def test_alias_history_and_rollback(registry, model_file):
    register(registry, model_file, "a")
    register(registry, model_file, "b")
    registry.set_alias("digits", "production", 1, reason="first", actor="test")
    registry.set_alias("digits", "production", 2, reason="better", actor="test")
    assert registry.alias_target("digits", "production") == 2
    entry = registry.rollback("digits", "production", actor="test")
    assert (entry["version"], entry["previous_version"]) == (1, 2)
    history = registry.alias_history("digits", "production")
    assert [(h["seq"], h["version"], h["previous_version"]) for h in history] == [(1, 1, None), (2, 2, 1), (3, 1, 2)]
    assert registry.aliases("digits") == {"production": 1}
    assert registry.resolve("digits", "production")["version"] == 1


def test_rollback_needs_an_earlier_version(registry, model_file):
    register(registry, model_file, "a")
    with pytest.raises(RegistryError, match="no alias"):
        registry.rollback("digits", "production", actor="test")
    registry.set_alias("digits", "production", 1, reason="first", actor="test")
    with pytest.raises(RegistryError, match="nothing earlier"):
        registry.rollback("digits", "production", actor="test")


def test_a_rejected_version_cannot_take_an_alias(registry, model_file):
    register(registry, model_file, "a", status="rejected")
    with pytest.raises(RegistryError, match="rejected by its gate"):
        registry.set_alias("digits", "production", 1, reason="please", actor="test")
    assert registry.alias_target("digits", "production") is None


def test_a_tampered_model_is_refused(registry, model_file, tmp_path):
    register(registry, model_file, "a")
    stored = tmp_path / "registry" / "digits" / "versions" / "1" / "model.keras"
    stored.write_bytes(stored.read_bytes() + b"tampered")
    with pytest.raises(io.ModelIntegrityError, match="changed or corrupted"):
        registry.load("digits", 1)


@pytest.mark.parametrize("bad", ["../evil", "%2e%2e%2f", "/abs", "a\\b", "Evil", "", "a..b", "-x"])
def test_names_that_could_escape_are_refused(bad, registry):
    with pytest.raises(ValueError, match="expected lowercase"):
        validate_name(bad)
    with pytest.raises(ValueError):
        registry.versions(bad)


def test_unknown_alias(registry, model_file):
    register(registry, model_file, "a")
    with pytest.raises(RegistryError, match="no alias 'staging'"):
        registry.resolve("digits", "staging")
