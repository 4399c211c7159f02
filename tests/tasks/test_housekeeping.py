"""Housekeeping on a local disk and on S3: what is in use or may still be written is never removed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import fsspec
import pytest

from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.housekeeping import sweep_datasets, sweep_runs
from kerasflow.tasks.refs import DatasetRef, TrainedModel

KIB = b"x" * 1024
GRACE, KEEP, RETENTION = timedelta(hours=1), timedelta(days=30), timedelta(days=30)


@pytest.fixture(params=["local", "s3"])
def storage_root(request, tmp_path):
    if request.param == "s3":
        return request.getfixturevalue("s3_root")
    return str(tmp_path / "root")


def put(root: str, relative: str, body: bytes = KIB) -> None:
    fs, path = fsspec.core.url_to_fs(f"{root}/{relative}")
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, body)


def exists(root: str, relative: str) -> bool:
    fs, path = fsspec.core.url_to_fs(f"{root}/{relative}")
    fs.invalidate_cache()
    return fs.exists(path)


def publish(root: str, fingerprint: str, attempt: str, files: int = 2) -> None:
    """A dataset as materialize() leaves it: the attempt's files, then ref.json naming it."""
    for i in range(files):
        put(root, f"datasets/{fingerprint}/{attempt}/digits/1.0.0/shard-{i}", KIB)
    ref = DatasetRef(
        fingerprint=fingerprint,
        storage_root=root,
        uri=f"{root}/datasets/{fingerprint}",
        builder_path=f"{attempt}/digits/1.0.0",
        num_bytes=files * len(KIB),
        source="sample",
        splits={"train": 1},
        feature_key="image",
        label_key="label",
        feature_shape=(8, 8, 1),
        feature_dtype="float32",
        num_classes=2,
        class_names=("a", "b"),
    )
    put(root, f"datasets/{fingerprint}/ref.json", ref.model_dump_json().encode())


def lease(root: str, key: str, *, run_id: str, live: bool) -> None:
    """A training lease as TrainingLease writes it: live (renewed, unexpired) or released."""
    now = time.time()
    record = {"generation": 1, "host": "gpu-box", "pid": 1, "flow_run_id": run_id, "renewed_at": now}
    record |= {"expires_at": now + 3600, "released": False} if live else {"expires_at": 0.0, "released": True}
    put(root, f"training/{key}/lease/{1:08d}.json", json.dumps(record).encode())


@pytest.fixture
def installation(storage_root, tmp_path):
    return build_installation(storage_root, tmp_path)


def build_installation(root: str, tmp_path) -> str:
    """A root a few months of retraining leave: versions, runs, a pending training, dead attempts."""
    publish(root, "a" * 16, "attempt-a")  # digits v1 was trained on it
    put(root, f"datasets/{'a' * 16}/attempt-dead/digits/1.0.0/shard-0")  # a writer of A that died
    publish(root, "b" * 16, "attempt-b")  # published, then the run failed: nothing uses it
    put(root, f"datasets/{'c' * 16}/attempt-c/digits/1.0.0/shard-0")  # never published (killed, or writing)
    publish(root, "d" * 16, "attempt-d")  # a finished training not registered yet trained on it
    model = tmp_path / "m.keras"
    model.write_bytes(KIB)
    registry = ModelRegistry(f"{root}/registry")
    metadata = {"dataset": {"fingerprint": "a" * 16}, "run_id": "run-v1", "status": "rejected"}
    registry.register("digits", model_file=model, metadata=metadata, idempotency_key="k1")
    for run_id in ("run-v1", "run-old", "run-pending", "run-live"):
        put(root, f"runs/{run_id}/model.keras")
        put(root, f"runs/{run_id}/metrics.json", b"{}")
    trained = TrainedModel(
        run_id="run-pending",
        model_uri=f"{root}/runs/run-pending/model.keras",
        sha256="0" * 64,
        dataset_fingerprint="d" * 16,
        epochs_completed=3,
        initial_epoch=0,
        history={},
        strategy="default",
        replicas=1,
        global_batch_size=32,
        train_seconds=1.0,
    )
    put(root, "training/digits-pending/trained.json", trained.model_dump_json().encode())
    lease(root, "digits-live", run_id="run-live", live=True)
    return root


def name(entry) -> str:
    """The last two parts of an entry's URL: ``<fingerprint>/<attempt>``, ``datasets/<fingerprint>``, ``runs/<id>``."""
    return "/".join(entry.url.rstrip("/").rsplit("/", 2)[-2:])


def names(entries) -> list[str]:
    return sorted(map(name, entries))


def size(root: str, relative: str) -> int:
    fs, path = fsspec.core.url_to_fs(f"{root}/{relative}")
    return fs.size(path)


def test_datasets_gc_removes_dead_attempts_and_unused_datasets_only(installation):
    root = installation
    now = datetime.now(UTC)

    fresh = sweep_datasets(root, grace=GRACE, keep=KEEP)
    assert fresh.removed == [], "attempts changed within the grace period may still be written"
    reasons = {name(entry): entry.reason for entry in fresh.kept}
    assert reasons[f"{'c' * 16}/attempt-c"].startswith("unpublished attempt changed")
    assert reasons[f"datasets/{'a' * 16}"] == "used by digits v1 (rejected)"
    assert reasons[f"datasets/{'d' * 16}"].startswith("used by training digits-pending, finished")
    assert reasons[f"datasets/{'b' * 16}"].startswith("unused, but training digits-live is in progress")

    lease(root, "digits-live", run_id="run-live", live=False)  # that training ended
    later = sweep_datasets(root, grace=GRACE, keep=KEEP, dry_run=True, now=now + timedelta(hours=2))
    assert names(later.removed) == [f"{'a' * 16}/attempt-dead", f"{'c' * 16}/attempt-c"]
    assert later.bytes_freed == 2 * len(KIB)
    assert exists(root, f"datasets/{'a' * 16}/attempt-dead"), "a dry run removes nothing"

    unused = 2 * len(KIB) + size(root, f"datasets/{'b' * 16}/ref.json")
    month = sweep_datasets(root, grace=GRACE, keep=KEEP, now=now + timedelta(days=31))
    assert names(month.removed) == [f"{'a' * 16}/attempt-dead", f"{'c' * 16}/attempt-c", f"datasets/{'b' * 16}"]
    assert month.bytes_freed == 2 * len(KIB) + unused
    for gone in (f"{'a' * 16}/attempt-dead", "c" * 16, "b" * 16):
        assert not exists(root, f"datasets/{gone}")
    for kept in (f"{'a' * 16}/ref.json", f"{'a' * 16}/attempt-a/digits/1.0.0/shard-1", f"{'d' * 16}/ref.json"):
        assert exists(root, f"datasets/{kept}")


def test_runs_gc_removes_old_finished_runs_and_keeps_what_a_version_or_training_uses(installation):
    root = installation
    now = datetime.now(UTC)

    assert sweep_runs(root, retention=RETENTION).removed == []
    dry = sweep_runs(root, retention=RETENTION, dry_run=True, now=now + timedelta(days=31))
    assert names(dry.removed) == ["runs/run-old"] and dry.bytes_freed == len(KIB) + 2
    assert {entry.url.rsplit("/", 1)[-1]: entry.reason for entry in dry.kept} == {
        "run-v1": "used by digits v1 (rejected)",
        "run-pending": "used by training digits-pending, finished and not registered yet",
        "run-live": "used by training digits-live, in progress (live lease)",
    }
    assert exists(root, "runs/run-old/model.keras")
    done = sweep_runs(root, retention=RETENTION, now=now + timedelta(days=31))
    assert names(done.removed) == ["runs/run-old"] and not exists(root, "runs/run-old")
    assert all(exists(root, f"runs/{run}/model.keras") for run in ("run-v1", "run-pending", "run-live"))


def test_the_commands_print_each_folder_and_the_bytes_freed(tmp_path):
    """The CLI is a thin layer: one line per folder, a summary, exit 2 for a bad option (local disk)."""
    from typer.testing import CliRunner

    from kerasflow.flows.cli import app

    root = build_installation(str(tmp_path / "root"), tmp_path)
    cli = CliRunner()
    dry = cli.invoke(app, ["datasets", "gc", "--root", root, "--grace-hours", "0", "--keep-days", "0", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[-1] == (
        "kerasflow datasets gc: would remove 2 folder(s), would free 2.0 KiB; kept 3"
    ), dry.output
    assert f"would remove  file://{root}/datasets/{'a' * 16}/attempt-dead  1.0 KiB  unpublished attempt" in dry.output
    assert f"kept          file://{root}/datasets/{'b' * 16}" in dry.output and "is in progress" in dry.output
    assert exists(root, f"datasets/{'a' * 16}/attempt-dead")

    runs = cli.invoke(app, ["runs", "gc", "--root", root, "--retention-days", "0"])
    assert runs.exit_code == 0, runs.output
    assert runs.output.splitlines()[-1] == "kerasflow runs gc: removed 1 folder(s), freed 1.0 KiB; kept 3"
    assert not exists(root, "runs/run-old") and exists(root, "runs/run-v1")

    bad = cli.invoke(app, ["runs", "gc", "--root", root, "--retention-days", "-1"])
    assert bad.exit_code == 2 and "received --retention-days -1.0, expected a number of 0 or more" in bad.output


def test_on_s3_the_local_mirror_keeps_only_copies_of_what_stays(s3_root, tmp_path):
    """The machine's copies of a remote root's datasets and runs go by the remote's rules."""
    from kerasflow.tasks import storage

    root = build_installation(s3_root, tmp_path)
    mirror = storage.cache_dir(root)
    copies = {
        f"datasets/{'a' * 16}/attempt-a/digits/1.0.0/shard-0": "the used dataset's download",
        f"datasets/{'b' * 16}/attempt-b/digits/1.0.0/shard-0": "a download of the dataset that goes",
        f"datasets/{'e' * 16}/attempt-e/digits/1.0.0/shard-0": "staging of an ingest killed before upload",
        "runs/run-v1/model.keras": "a registered version's run",
        "runs/run-old-here/model.keras": "an old run of this machine",
    }
    for relative in copies:
        (mirror / relative).parent.mkdir(parents=True, exist_ok=True)
        (mirror / relative).write_bytes(KIB)
    lease(root, "digits-live", run_id="run-live", live=False)
    later = datetime.now(UTC) + timedelta(days=31)

    fresh = sweep_datasets(root, grace=GRACE, keep=KEEP)
    assert not any(entry.url.startswith("file://") for entry in fresh.removed), "copies within the grace stay"
    datasets = sweep_datasets(root, grace=GRACE, keep=KEEP, now=later)
    local = sorted(name(entry) for entry in datasets.removed if entry.url.startswith("file://"))
    assert local == [f"{'b' * 16}/attempt-b", f"{'e' * 16}/attempt-e"]
    assert (mirror / f"datasets/{'a' * 16}/attempt-a/digits/1.0.0/shard-0").exists()
    assert not (mirror / f"datasets/{'b' * 16}").exists() and not (mirror / f"datasets/{'e' * 16}").exists()

    runs = sweep_runs(root, retention=RETENTION, now=later)
    assert sorted(name(entry) for entry in runs.removed if entry.url.startswith("file://")) == ["runs/run-old-here"]
    assert (mirror / "runs/run-v1/model.keras").exists() and not (mirror / "runs/run-old-here").exists()


def test_an_unreadable_ref_keeps_its_dataset_whole_and_the_sweep_goes_on(installation):
    root = installation
    put(root, f"datasets/{'b' * 16}/ref.json", b'{"fingerprint": "bbbb')  # cut short by a crash or a person
    lease(root, "digits-live", run_id="run-live", live=False)

    month = sweep_datasets(root, grace=GRACE, keep=KEEP, now=datetime.now(UTC) + timedelta(days=31))
    assert names(month.removed) == [f"{'a' * 16}/attempt-dead", f"{'c' * 16}/attempt-c"]
    reason = next(entry.reason for entry in month.kept if name(entry) == f"datasets/{'b' * 16}")
    assert reason.startswith("ref.json cannot be read (") and reason.endswith("repair or remove it by hand")
    assert exists(root, f"datasets/{'b' * 16}/attempt-b/digits/1.0.0/shard-0")


@pytest.mark.parametrize("record", ["metadata", "trained"])
def test_an_unreadable_record_of_what_is_in_use_stops_the_sweep_before_it_removes_anything(
    installation, record, tmp_path
):
    from typer.testing import CliRunner

    from kerasflow.flows.cli import app
    from kerasflow.tasks.housekeeping import UnreadableRecord

    root = installation
    broken = {
        "metadata": "registry/digits/versions/1/metadata.json",
        "trained": "training/digits-pending/trained.json",
    }[record]
    assert exists(root, broken), "the layout this test corrupts"
    put(root, broken, b"\xff\xfe not json")
    later = datetime.now(UTC) + timedelta(days=31)

    for sweep in (
        lambda: sweep_datasets(root, grace=GRACE, keep=KEEP, now=later),
        lambda: sweep_runs(root, retention=RETENTION, now=later),
    ):
        with pytest.raises(UnreadableRecord, match="nothing was removed; repair or remove that file") as refused:
            sweep()
        assert broken in str(refused.value), "the message names the file"
    assert exists(root, f"datasets/{'a' * 16}/attempt-dead") and exists(root, "runs/run-old/model.keras")

    if not root.startswith("s3://"):  # the command: one line, exit 1, no traceback
        result = CliRunner().invoke(app, ["runs", "gc", "--root", root, "--retention-days", "0"])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "nothing was removed" in result.output


def publish_table(root: str, fingerprint: str, parts: list[str], *, files: dict[str, str] | None = None) -> None:
    """A table stored per file (tasks/ingest/partitions.py): its files' datasets, then its own ref.json.

    ``files``: part -> the large file's dataset it is a row range of (tasks/ingest/file_parts.py).
    """
    for part in parts:
        publish(root, part, f"attempt-{part[0]}")
    ref = DatasetRef(
        fingerprint=fingerprint,
        storage_root=root,
        uri=f"{root}/datasets/{fingerprint}",
        parts=[
            {
                "fingerprint": p,
                "uri": f"{root}/datasets/{p}",
                "builder_path": f"attempt-{p[0]}/digits/1.0.0",
                "splits": {"train": 1},
                "file_fingerprint": (files or {}).get(p),
            }
            for p in parts
        ],
        source="files",
        splits={"train": len(parts)},
        feature_key="features",
        label_key="label",
        feature_shape=(4,),
        feature_dtype="float32",
        num_classes=2,
        class_names=["0", "1"],
    )
    put(root, f"datasets/{fingerprint}/ref.json", ref.model_dump_json().encode())


def register_version_of(root: str, dataset: str, tmp_path) -> None:
    """digits v1, trained on ``dataset``: what keeps a dataset in use."""
    model = tmp_path / "m.keras"
    model.write_bytes(KIB)
    ModelRegistry(f"{root}/registry").register(
        "digits",
        model_file=model,
        metadata={"dataset": {"fingerprint": dataset}, "status": "registered"},
        idempotency_key="k",
    )


def test_the_files_of_a_table_stay_while_the_table_does(storage_root, tmp_path):
    root = storage_root
    table, files = "t" * 16, ["p" * 16, "q" * 16]
    publish_table(root, table, files)
    publish(root, "z" * 16, "attempt-z")  # a file of no table, unused
    register_version_of(root, table, tmp_path)
    month = datetime.now(UTC) + timedelta(days=31)

    swept = sweep_datasets(root, grace=GRACE, keep=KEEP, now=month)
    reasons = {name(entry): entry.reason for entry in swept.kept}
    assert reasons[f"datasets/{table}"] == "used by digits v1 (registered)"
    for file in files:
        assert reasons[f"datasets/{file}"] == f"a file of dataset {table}, which stays"
        assert exists(root, f"datasets/{file}/attempt-{file[0]}/digits/1.0.0/shard-0")
    assert names(swept.removed) == [f"datasets/{'z' * 16}"]

    # The version goes (its registry with it): the table and its files go in one sweep.
    fs, path = fsspec.core.url_to_fs(f"{root}/registry")
    fs.rm(path, recursive=True)
    swept = sweep_datasets(root, grace=GRACE, keep=KEEP, now=month)
    assert names(swept.removed) == sorted(f"datasets/{f}" for f in [table, *files])
    for gone in (table, *files):
        assert not exists(root, f"datasets/{gone}/ref.json")


def test_a_large_file_of_a_table_stays_with_its_rows_while_the_table_does(storage_root, tmp_path):
    # The table reads a small file and two row ranges of a large one; the large file's own
    # dataset (a ref.json listing the ranges) is what the next ingest finds it by.
    root = storage_root
    table, large, small, ranges = "t" * 16, "f" * 16, "p" * 16, ["r" * 16, "s" * 16]
    publish_table(root, large, ranges)
    publish_table(root, table, [small, *ranges], files=dict.fromkeys(ranges, large))
    register_version_of(root, table, tmp_path)
    month = datetime.now(UTC) + timedelta(days=31)

    reasons = {name(entry): entry.reason for entry in sweep_datasets(root, grace=GRACE, keep=KEEP, now=month).kept}
    for held in (large, small, *ranges):
        assert reasons[f"datasets/{held}"] == f"a file of dataset {table}, which stays", held
    assert exists(root, f"datasets/{large}/ref.json")

    fs, path = fsspec.core.url_to_fs(f"{root}/registry")
    fs.rm(path, recursive=True)
    swept = sweep_datasets(root, grace=GRACE, keep=KEEP, now=month)
    assert names(swept.removed) == sorted(f"datasets/{f}" for f in [table, large, small, *ranges])


def test_a_dataset_a_run_holds_stays_and_the_hold_ends_with_the_run(installation):
    """Issue 28: a dataset reused by a run in progress (between ingest and its training lease) was removed."""
    from kerasflow.tasks.storage import holds

    root = installation
    lease(root, "digits-live", run_id="run-live", live=False)
    month = datetime.now(UTC) + timedelta(days=31)
    holds.hold(root, ["b" * 16], run="run-validating")
    try:
        swept = sweep_datasets(root, grace=GRACE, keep=KEEP, now=month)
        reasons = {name(entry): entry.reason for entry in swept.kept}
        assert reasons[f"datasets/{'b' * 16}"].startswith("used by run run-validating on ")
        assert exists(root, f"datasets/{'b' * 16}/ref.json")
    finally:
        holds.release(root, run="run-validating")
    assert holds.live_holds(root).by_fingerprint == {}, "the record is gone once the run lets go"
    swept = sweep_datasets(root, grace=GRACE, keep=KEEP, now=month)
    assert f"datasets/{'b' * 16}" in names(swept.removed)


def test_a_run_that_holds_after_the_sweep_looked_gets_the_dataset_back(installation, monkeypatch):
    """The interleaving the order guards against: the sweep read what is in use, then a run held the
    dataset and read its ref.json, then the sweep came to remove it."""
    from kerasflow.tasks import housekeeping
    from kerasflow.tasks.data.materialize import find_materialized
    from kerasflow.tasks.storage import holds

    root = installation
    lease(root, "digits-live", run_id="run-live", live=False)
    before_the_hold = housekeeping.in_use(root)
    holds.hold(root, ["b" * 16], run="run-late")
    found = find_materialized(root, "b" * 16)
    monkeypatch.setattr(housekeeping, "in_use", lambda _: before_the_hold)
    try:
        swept = sweep_datasets(root, grace=GRACE, keep=KEEP, now=datetime.now(UTC) + timedelta(days=31))
    finally:
        holds.release(root, run="run-late")
    assert f"datasets/{'b' * 16}" not in names(swept.removed)
    assert find_materialized(root, "b" * 16) == found, "ref.json put back as it was"
    assert exists(root, f"datasets/{'b' * 16}/attempt-b/digits/1.0.0/shard-0")


def test_a_hold_left_by_a_dead_process_counts_for_nothing_and_is_cleared(installation):
    from kerasflow.models.liveness import holder_fields

    root = installation
    lease(root, "digits-live", run_id="run-live", live=False)
    dead = {"run": "killed", "fingerprints": ["b" * 16], **holder_fields(3600), "pid": 2**22 + 1}
    put(root, "holds/killed-0000.json", json.dumps(dead).encode())
    swept = sweep_datasets(root, grace=GRACE, keep=KEEP, now=datetime.now(UTC) + timedelta(days=31))
    assert f"datasets/{'b' * 16}" in names(swept.removed)
    assert not exists(root, "holds/killed-0000.json")
