"""A one-node Slurm cluster on 127.0.0.1 in a temporary folder, for tests.

Debian's ``slurm-wlm`` and ``munge``: munged with its own key and socket, slurmctld and
slurmd with a generated ``slurm.conf`` (free ports, state, spool and logs in the folder).
The node is ``localhost`` with 2 CPUs, so a job runs 2 tasks, and its name resolves
everywhere: TensorFlow's SlurmClusterResolver turns node names into worker addresses.
No plugin needs systemd or cgroups (``proctrack/linuxproc``, ``task/none``). Clients
find the cluster through ``SLURM_CONF`` (:attr:`SlurmCluster.env`). Every daemon runs
in a session of its own, so stopping kills its whole process group; jobs still running
are cancelled first, so no training outlives the cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REQUIRED_ENV = "KERASFLOW_E2E_SLURM"
# The same ceiling as the Prefect servers' (tests/conftest.py): daemons are waited for
# until they answer, so a loaded machine makes the test slow, not failed.
STARTUP_ENV = "KERASFLOW_SERVER_STARTUP_SECONDS"
BINARIES = ("munged", "slurmctld", "slurmd", "srun", "sbatch", "squeue", "scontrol", "sinfo", "scancel")
INSTALL = "apt-get install -y slurm-wlm munge"
NODE = "localhost"

CONF = """\
ClusterName=kerasflow-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={home}/state
SlurmdSpoolDir={home}/spool
SlurmctldPidFile={home}/slurmctld.pid
SlurmdPidFile={home}/slurmd.pid
SlurmctldLogFile={home}/log/slurmctld.log
SlurmdLogFile={home}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
# A finished job stays visible to `scontrol show job` for 10 minutes (no accounting here).
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdParameters=config_overrides
MailProg=/bin/true
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _which(name: str) -> str | None:
    # The daemons are in /usr/sbin, which a non-root PATH may lack.
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def slurm_missing() -> list[str]:
    return [name for name in BINARIES if _which(name) is None]


def require_slurm() -> None:
    """Skip (or fail, when ``KERASFLOW_E2E_SLURM=required``) without Slurm's binaries."""
    missing = slurm_missing()
    if not missing:
        return
    message = f"no {', '.join(missing)} on PATH: {INSTALL}"
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(f"{REQUIRED_ENV}=required but {message}")
    pytest.skip(message)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SlurmCluster:
    """munged, slurmctld and slurmd under ``home``; a context manager that stops them all."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.conf = home / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._daemons: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self) -> SlurmCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        for folder in ("munge", "state", "spool", "log"):
            (self.home / folder).mkdir(parents=True, exist_ok=True, mode=0o700)
        key = self.home / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        socket_path = self.home / "munge" / "munge.socket"
        munge = self.home / "munge"
        self._daemon(
            "munged",
            # --force: the temporary folder's parents are world-writable (/tmp), which munged
            # refuses for a system install; nobody else shares this key or socket.
            [
                _which("munged"),
                "--foreground",
                "--force",
                f"--socket={socket_path}",
                f"--key-file={key}",
                f"--pid-file={munge}/munged.pid",
                f"--log-file={munge}/munged.log",
                f"--seed-file={munge}/munged.seed",
            ],
        )
        self._wait("munged's socket", lambda: socket_path.exists())
        ctld_port, slurmd_port = _free_ports(2)
        self.conf.write_text(
            CONF.format(
                host=socket.gethostname().split(".")[0],
                ctld_port=ctld_port,
                slurmd_port=slurmd_port,
                munge_socket=socket_path,
                home=self.home,
                node=NODE,
            )
        )
        self._daemon("slurmctld", [_which("slurmctld"), "-D", "-c", "-f", str(self.conf)])
        self._daemon("slurmd", [_which("slurmd"), "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait("node localhost idle in sinfo", self._node_idle)

    def _daemon(self, name: str, command: list[str]) -> None:
        log = (self.home / "log" / f"{name}.out").open("wb")
        with log:
            process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._daemons.append((name, process))

    def _node_idle(self) -> bool:
        done = self.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        return done.returncode == 0 and done.stdout.strip() == "idle"

    def _wait(self, what: str, ready) -> None:
        bound = float(os.environ.get(STARTUP_ENV, "600"))
        deadline = time.monotonic() + bound
        while not ready():
            for name, process in self._daemons:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {process.returncode} waiting for {what}:\n{self.logs()}"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {bound:g}s ({STARTUP_ENV}):\n{self.logs()}")
            time.sleep(0.2)

    def run(self, *command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}\n{self.logs()}")
        return done

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for log in sorted((self.home / "log").glob("*")) + sorted((self.home / "munge").glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel every job and wait for it to end, then stop the daemons (whole process groups)."""
        if any(name == "slurmctld" and p.poll() is None for name, p in self._daemons):
            with contextlib.suppress(Exception):
                self.run("scancel", "--full", "--user=root", check=False, timeout=30)
                deadline = time.monotonic() + 60
                while self.run("squeue", "-h", "-o", "%i", check=False, timeout=30).stdout.strip():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
        for _, process in reversed(self._daemons):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                process.wait()
        self._daemons.clear()
