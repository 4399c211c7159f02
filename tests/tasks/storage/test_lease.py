"""The lease on a training: one live holder, taken over when expired, released or dead."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kerasflow.tasks.storage.lease import LeaseLostError, LeaseView, TrainingBusyError, TrainingLease


@pytest.fixture(params=["local", "s3"])
def state_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "training" / "digits-abc")
    return request.getfixturevalue("s3_root") + "/training/digits-abc"


def test_a_live_holder_keeps_the_training_and_the_newcomer_is_told_who(state_url):
    with TrainingLease(state_url, seconds=30, description="digits-abc", flow_run_id="run-1").held(wait_seconds=0):
        newcomer = TrainingLease(state_url, seconds=30, flow_run_id="run-2")
        assert newcomer.live_holder()["flow_run_id"] == "run-1"  # what housekeeping keeps the run folder for
        with pytest.raises(TrainingBusyError, match=r"held by a live run: flow run run-1 on host .* \(pid \d+\)"):
            newcomer.acquire(wait_seconds=0.5, poll_seconds=0.1)
    # Released on exit: the next run takes it at once.
    started = time.monotonic()
    with TrainingLease(state_url, seconds=30).held(wait_seconds=0) as lease:
        assert lease.generation == 2
    assert time.monotonic() - started < 5


def test_an_expired_lease_is_taken_over_and_its_old_holder_learns_it_lost(state_url):
    old = TrainingLease(state_url, seconds=1, flow_run_id="stalled")
    old.acquire(wait_seconds=0)  # no heartbeat: it stalls
    new = TrainingLease(state_url, seconds=30, flow_run_id="fresh")
    new.acquire(wait_seconds=5, poll_seconds=0.2)
    assert new.generation == old.generation + 1
    with pytest.raises(LeaseLostError, match="to flow run fresh"):
        old.renew()


def test_the_lease_of_a_killed_process_on_this_host_is_taken_at_once(tmp_path):
    url = str(tmp_path / "training" / "digits-abc")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import time; from kerasflow.tasks.storage.lease import TrainingLease; "
                f"TrainingLease({url!r}, seconds=600).acquire(wait_seconds=0); "
                "print('held', flush=True); time.sleep(600)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(TrainingBusyError):
        TrainingLease(url, seconds=600).acquire(wait_seconds=0)
    holder.kill()
    holder.wait()
    lease = TrainingLease(url, seconds=600)
    assert lease.live_holder() is None
    lease.acquire(wait_seconds=0)  # 600 s from expiry, but its holder is gone
    assert lease.generation == 2


def test_a_holder_that_cannot_renew_stops_before_its_lease_could_be_taken(tmp_path):
    lease = TrainingLease(str(tmp_path / "t"), seconds=1, description="digits-abc")
    lease.acquire(wait_seconds=0)  # no heartbeat: as if storage stopped answering
    lease.check()
    time.sleep(0.9)
    with pytest.raises(LeaseLostError, match="could not renew the lease on training digits-abc"):
        lease.check()


def test_a_worker_stops_publishing_once_its_launchers_lease_was_taken_over(tmp_path):
    url = str(tmp_path / "t")
    launcher = TrainingLease(url, seconds=1)
    launcher.acquire(wait_seconds=0)
    chief = LeaseView(url, generation=launcher.generation, description="digits-abc")
    chief.check()
    TrainingLease(url, seconds=30).acquire(wait_seconds=5, poll_seconds=0.2)  # the launcher died; taken over
    with pytest.raises(LeaseLostError, match="was taken over"):
        chief.check()
