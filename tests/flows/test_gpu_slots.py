"""Two retrains on one node share its GPUs through the Prefect global concurrency limit `gpu`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime

import pytest

from tests.flows.helpers import THREE_EPOCHS

pytestmark = pytest.mark.usefixtures("prefect_server")

ONE_SLOT = [*THREE_EPOCHS, "--set", "runtime.gpu_slots=1"]


def window(output: str) -> tuple[datetime, datetime]:
    """When a run held its slot: from 'holding' to 'released' (console timestamps)."""
    stamps = {}
    for event in ("holding", "released"):
        match = re.search(rf"^(\d\d:\d\d:\d\d\.\d+) \| INFO .* - {event} 1 slot\(s\) of 'gpu'", output, re.M)
        assert match, output
        stamps[event] = datetime.strptime(match.group(1), "%H:%M:%S.%f")
    return stamps["holding"], stamps["released"]


def test_two_concurrent_runs_with_a_limit_of_one_take_turns(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="gpu", limit=1))
    try:
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "kerasflow.flows.cli", "train", *ONE_SLOT, "--set", f"storage.root={root}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
            for root in (tmp_path / "a", tmp_path / "b")
        ]
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name("gpu")
    (a_start, a_end), (b_start, b_end) = (window(out) for out in outputs)
    assert a_end <= b_start or b_end <= a_start, f"overlap: a {a_start}-{a_end}, b {b_start}-{b_end}"
    assert all("waiting for 1 slot(s) of the 'gpu' concurrency limit" in out for out in outputs)
