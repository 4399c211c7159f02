"""The registry, the same tests on a local folder and on moto's S3 server over HTTP."""

import json
import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import keras
import numpy as np
import pytest

from kerasflow.models import io
from kerasflow.models.registry import AliasMoved, ModelRegistry, RegistryError, VersionClaimLost, validate_name
from tests.models import registry_worker


@pytest.fixture
def model_file(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    path = tmp_path / "candidate.keras"
    io.save_model(model, path)
    return path


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path):
    if request.param == "s3":
        return ModelRegistry(f"{request.getfixturevalue('s3_bucket')}/registry")
    return ModelRegistry(str(tmp_path / "registry"))


def put(registry, relative: str, body: bytes) -> None:
    """Write a file inside the registry as a crashed or hostile writer would."""
    path = f"{registry.root}/{relative}"
    registry.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    registry.fs.pipe(path, body)


def run_processes(target, args_per_process):
    """Run ``target`` in one spawned process per args tuple, all released at once; return results."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(args_per_process), timeout=120)
    results = context.Queue()
    processes = [context.Process(target=target, args=(*args, ready, results)) for args in args_per_process]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return outcomes


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


def test_sixteen_processes_registering_at_once_get_versions_1_to_16(registry, model_file):
    outcomes = run_processes(
        registry_worker.register_when_all_ready, [(registry.url, str(model_file), f"run-{i}") for i in range(16)]
    )
    assert [o for o in outcomes if o[0] == "error"] == []
    assert sorted(v for _, v in outcomes) == list(range(1, 17))
    assert [m["version"] for m in registry.versions("digits")] == list(range(1, 17))
    for version in (1, 8, 16):
        assert registry.load("digits", version).count_params() == 8, "loadable and intact"


def test_concurrent_alias_moves_leave_a_history_without_gaps_or_duplicates(registry, model_file):
    for i in range(6):
        register(registry, model_file, f"run-{i}")
    outcomes = run_processes(registry_worker.move_alias_when_all_ready, [(registry.url, v) for v in range(1, 7)])
    assert [o for o in outcomes if o[0] == "error"] == []
    history = registry.alias_history("digits", "production")
    assert [h["seq"] for h in history] == list(range(1, 7)), "one entry per move, numbered without gaps"
    assert sorted(h["version"] for h in history) == list(range(1, 7)), "every move recorded once"
    assert [h["previous_version"] for h in history] == [None] + [h["version"] for h in history[:-1]]
    assert registry.alias_target("digits", "production") == history[-1]["version"]


def test_a_writer_killed_before_metadata_is_invisible_then_collected(registry, model_file):
    register(registry, model_file, "run-1")
    # Writers that died after claiming and copying the model, before metadata.json: one
    # two hours ago, one that may still be writing (claimed now).
    long_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    put(
        registry,
        "digits/versions/2/claim.json",
        json.dumps({"idempotency_key": "dead", "claimed_at": long_ago}).encode(),
    )
    put(registry, "digits/versions/2/model.keras", b"partial")
    put(
        registry,
        "digits/versions/3/claim.json",
        json.dumps({"idempotency_key": "busy", "claimed_at": datetime.now(UTC).isoformat()}).encode(),
    )
    assert [m["version"] for m in registry.versions("digits")] == [1]
    with pytest.raises(RegistryError, match="no version 2"):
        registry.get("digits", 2)
    assert [u["version"] for u in registry.unfinished("digits")] == [2, 3]

    assert registry.gc("digits", grace=timedelta(hours=1)) == [2]
    assert [u["version"] for u in registry.unfinished("digits")] == [3], "a recent claim is left to its writer"
    assert not registry.fs.exists(f"{registry.root}/digits/versions/2")
    assert register(registry, model_file, "run-4")["version"] == 4


def pause_after_copying(registry, monkeypatch):
    """(copied, resume): the registration's copy lands, then waits for ``resume``, as a slow upload's tail does."""
    copied, resume = threading.Event(), threading.Event()
    put = registry.fs.put

    def put_then_wait(*args, **kwargs):
        result = put(*args, **kwargs)
        copied.set()
        assert resume.wait(120), "the test never resumed the registration"
        return result

    monkeypatch.setattr(registry.fs, "put", put_then_wait)
    return copied, resume


def register_in_thread(registry, model_file, tmp_path, key):
    """Register with a small SavedModel folder in a thread; (thread, outcomes: the record or the error)."""
    saved_model = tmp_path / f"saved-{key}"
    saved_model.mkdir()
    (saved_model / "saved_model.pb").write_bytes(b"graph")
    outcomes = []

    def write():
        try:
            outcomes.append(
                registry.register(
                    "digits",
                    model_file=model_file,
                    metadata={"status": "registered"},
                    idempotency_key=key,
                    saved_model_dir=saved_model,
                )
            )
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcomes.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    return thread, outcomes


def test_gc_never_takes_the_claim_of_a_registration_still_copying(registry, model_file, tmp_path, monkeypatch):
    """Issue 28: a gc whose grace was shorter than a slow upload removed the claimed folder, and the
    registration then committed a version without its model."""
    copied, resume = pause_after_copying(registry, monkeypatch)
    thread, outcomes = register_in_thread(registry, model_file, tmp_path, "slow")
    assert copied.wait(120)
    assert [u["live"] for u in registry.unfinished("digits")] == [True]
    assert registry.gc("digits", grace=timedelta(0)) == [], "a live writer's claim is never taken"
    resume.set()
    thread.join(120)
    assert outcomes[0]["version"] == 1
    registry.load("digits", 1)  # the model is there and verified


def test_a_version_whose_claim_vanished_while_copying_is_not_committed(registry, model_file, tmp_path, monkeypatch):
    copied, resume = pause_after_copying(registry, monkeypatch)
    thread, outcomes = register_in_thread(registry, model_file, tmp_path, "raced")
    assert copied.wait(120)
    registry.fs.rm(f"{registry.root}/digits/versions/1", recursive=True)  # as an older gc did
    resume.set()
    thread.join(120)
    assert isinstance(outcomes[0], VersionClaimLost), outcomes
    assert "was not committed: its claim was removed" in str(outcomes[0])
    assert registry.versions("digits") == []
    monkeypatch.undo()
    retried = register(registry, model_file, "raced")  # the register step's retry
    registry.load("digits", retried["version"])


def test_gc_takes_a_claim_whose_writer_is_dead_and_leaves_one_alive_elsewhere(registry, model_file):
    from kerasflow.models.liveness import holder_fields

    now = datetime.now(UTC).isoformat(timespec="seconds")
    dead = {**holder_fields(3600), "pid": 2**22 + 1}  # this host, no such process
    elsewhere = {**holder_fields(3600), "host": "another-node", "pid": 1}
    for number, holder in [(1, dead), (2, elsewhere)]:
        body = {"idempotency_key": f"writer-{number}", "claimed_at": now, **holder}
        put(registry, f"digits/versions/{number}/claim.json", json.dumps(body).encode())
    assert [u["live"] for u in registry.unfinished("digits")] == [False, True]
    assert registry.gc("digits", grace=timedelta(0)) == [1]
    assert [u["version"] for u in registry.unfinished("digits")] == [2]


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


def test_a_rollback_never_undoes_a_move_it_did_not_see(registry, model_file, monkeypatch):
    for run in ("a", "b", "c"):
        register(registry, model_file, run)
    registry.set_alias("digits", "production", 1, reason="first", actor="test")
    registry.set_alias("digits", "production", 2, reason="better", actor="test")
    read_history = registry.alias_history

    def history_then_a_promotion(name, alias):
        history = read_history(name, alias)
        registry.set_alias(name, alias, 3, reason="promoted meanwhile", actor="another run")
        return history

    monkeypatch.setattr(registry, "alias_history", history_then_a_promotion)
    with pytest.raises(AliasMoved, match="v3"):
        registry.rollback("digits", "production", actor="test")
    assert registry.alias_target("digits", "production") == 3, "the promotion the rollback did not see stands"


def test_a_rejected_version_cannot_take_an_alias(registry, model_file):
    register(registry, model_file, "a", status="rejected")
    with pytest.raises(RegistryError, match="rejected by its gate"):
        registry.set_alias("digits", "production", 1, reason="please", actor="test")
    assert registry.alias_target("digits", "production") is None


def test_a_tampered_model_is_refused(registry, model_file):
    register(registry, model_file, "a")
    put(registry, "digits/versions/1/model.keras", model_file.read_bytes() + b"tampered")
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


def test_a_storage_root_given_for_a_registry_is_named_as_one(registry, model_file):
    """Issue 30: ``ModelRegistry(root)`` said only "has no alias 'production'" for a model its registry holds."""
    register(registry, model_file, "a")
    registry.set_alias("digits", "production", 1, reason="first", actor="test")
    root = ModelRegistry(registry.url.removesuffix("/registry"))
    hint = f"{root.url} looks like a storage root (it holds registry/); use ModelRegistry('{registry.url}')"
    for lookup in (
        lambda: root.resolve("digits", "production"),
        lambda: root.load("digits", "production"),
        lambda: root.get("digits", 1),
    ):
        with pytest.raises(RegistryError) as info:
            lookup()
        assert str(info.value).endswith(f"; {hint}")

    # The registry itself, missing an alias or a version, says only that.
    with pytest.raises(RegistryError) as info:
        registry.resolve("digits", "staging")
    assert str(info.value) == "model 'digits' has no alias 'staging'"
    with pytest.raises(RegistryError, match=r"has no version 2; `kerasflow models list digits` shows"):
        registry.get("digits", 2)


def test_an_alias_moves_only_from_the_version_the_caller_expected(registry, model_file):
    from kerasflow.models.registry import AliasMoved

    for key in ("run-1", "run-2", "run-3"):
        register(registry, model_file, key)
    registry.set_alias("digits", "production", 1, reason="first", actor="test", expected_version=None)
    # Two runs judged against v1: the first moves it, the second finds it moved and leaves it.
    registry.set_alias("digits", "production", 2, reason="judged against v1", actor="a", expected_version=1)
    with pytest.raises(AliasMoved, match="points at v2, not v1 as expected; it was not moved to v3") as info:
        registry.set_alias("digits", "production", 3, reason="judged against v1", actor="b", expected_version=1)
    assert info.value.current == 2
    assert [e["version"] for e in registry.alias_history("digits", "production")] == [1, 2]


def test_of_many_movers_expecting_the_same_version_exactly_one_moves_it(registry, model_file):
    from kerasflow.models.registry import AliasMoved

    for key in ("base", *(f"run-{i}" for i in range(6))):
        register(registry, model_file, key)
    registry.set_alias("digits", "production", 1, reason="base", actor="test")
    ready, outcomes = threading.Barrier(6), []

    def move(version: int) -> None:
        ready.wait()
        try:
            registry.set_alias("digits", "production", version, reason="r", actor="t", expected_version=1)
            outcomes.append(version)
        except AliasMoved:
            outcomes.append(None)

    threads = [threading.Thread(target=move, args=(version,)) for version in range(2, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    moved = [v for v in outcomes if v is not None]
    assert len(outcomes) == 6 and len(moved) == 1
    assert [e["version"] for e in registry.alias_history("digits", "production")] == [1, moved[0]]
