"""What the terminal shows when one of Prefect's own threads crashes: one line, not a traceback."""

import subprocess
import sys

# A real Prefect worker thread crashed through its own code path: its queue handed an
# object that is not a call, so `_run_until_shutdown` raises, Prefect logs it and re-raises.
SCRIPT = """
import threading
import prefect.main  # Prefect's logging set up, as the command has it
from prefect._internal.concurrency.threads import WorkerThread
from kerasflow.flows.cli.console import quiet_failures

quiet_failures()
worker = WorkerThread(name="APILogWorkerThread", daemon=True)
worker.start()
worker._queue.put_nowait(object())
worker.thread.join()

def ours():
    raise ValueError("a bug of our own")

thread = threading.Thread(target=ours, name="ours")
thread.start()
thread.join()
print("done")
"""


def test_a_crashed_prefect_thread_is_one_line_and_other_threads_keep_their_traceback():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    err = result.stderr
    lines = [line for line in err.splitlines() if "APILogWorkerThread" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("kerasflow: Prefect's APILogWorkerThread stopped (AttributeError:"), err
    assert "--debug shows the traceback" in lines[0]
    # Our own thread's failure is not Prefect's: its traceback stays whole.
    assert err.count("Traceback (most recent call last)") == 1, err
    assert "ValueError: a bug of our own" in err and "Exception in thread ours" in err
