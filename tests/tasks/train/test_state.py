"""Backup snapshots on the storage root: published whole, only forward, restored into a fresh folder."""

from __future__ import annotations

import pytest

from kerasflow.tasks.train.state import TrainingState


@pytest.fixture(params=["local", "s3"])
def state(request, tmp_path):
    if request.param == "local":
        return TrainingState(str(tmp_path / "training" / "digits-abc"))
    return TrainingState(request.getfixturevalue("s3_root") + "/training/digits-abc")


def snapshot(folder, epoch: int):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.weights.h5").write_bytes(b"weights after epoch %d" % epoch)
    (folder / "training_metadata.json").write_text(f'{{"epoch": {epoch}, "batch": 0}}')
    return folder


def test_snapshots_are_published_forward_only_and_restored_whole(state, tmp_path):
    assert state.latest_epoch() == 0 and state.restore_into(tmp_path / "empty") == 0
    state.publish(snapshot(tmp_path / "w2", 2), 2)
    state.publish(snapshot(tmp_path / "w3", 3), 3)
    state.publish(snapshot(tmp_path / "stale", 1), 1)  # an orphaned worker's late epoch
    assert state.latest_epoch() == 3
    restored = tmp_path / "restored"
    restored.mkdir()
    assert state.restore_into(restored) == 3
    assert (restored / "latest.weights.h5").read_bytes() == b"weights after epoch 3"
    assert sorted(p.name for p in restored.iterdir()) == ["latest.weights.h5", "training_metadata.json"]
    state.clear()
    assert state.latest_epoch() == 0
