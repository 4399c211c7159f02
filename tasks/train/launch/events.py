"""The chief's progress, from a worker process to the launcher's Prefect logs and artifact.

A worker cannot reach the launching task's Prefect context, so the chief prints its
callback hooks as JSON lines on stdout (:class:`EventStream`) and the launcher replays
them into ``PrefectProgress`` (:func:`replay_events`), whether it reads them from a pipe
(``local_processes``) or from the chief's output file as Slurm writes it
(:func:`follow_file`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import keras

# A line the chief prints on stdout to report a callback hook to the launcher.
EVENT_PREFIX = "kerasflow-event "


class EventStream(keras.callbacks.Callback):
    """Print the progress hooks as JSON lines for the launcher to replay."""

    def _emit(self, hook: str, *args: Any) -> None:
        print(EVENT_PREFIX + json.dumps({"hook": hook, "args": list(args)}), flush=True)

    def on_train_begin(self, logs=None):
        """Print the ``on_train_begin`` event."""
        self._emit("on_train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        """Print the ``on_epoch_begin`` event.

        Args:
            epoch: the epoch starting, 0 up.
            logs: not sent.
        """
        self._emit("on_epoch_begin", epoch)

    def on_epoch_end(self, epoch, logs=None):
        """Print the ``on_epoch_end`` event with the epoch's metrics as floats.

        Args:
            epoch: the epoch ended, 0 up.
            logs: the epoch's metrics.
        """
        self._emit("on_epoch_end", epoch, {k: float(v) for k, v in (logs or {}).items()})

    def on_train_end(self, logs=None):
        """Print the ``on_train_end`` event."""
        self._emit("on_train_end")


def replay_events(lines: Iterable[str], progress: Any, logger: Any) -> None:
    """Replay the chief's callback hooks, printed as JSON lines, into ``progress``.

    Args:
        lines: the chief's stdout, line by line.
        progress: the callback whose hooks the events call (``PrefectProgress``).
        logger: where the chief's other lines, and hooks that fail, are logged.
    """
    for line in lines:
        if not line.startswith(EVENT_PREFIX):
            logger.info("chief: %s", line.rstrip())  # a print in a recipe's code, say
            continue
        event = json.loads(line[len(EVENT_PREFIX) :])
        try:
            getattr(progress, event["hook"])(*event.get("args", []))
        except Exception as error:  # noqa: BLE001 - keep reading, or the chief blocks on a full pipe
            logger.warning("could not report training progress (%s): %s", event["hook"], error)


def follow_file(path: Path, *, done: threading.Event, poll_seconds: float = 0.5) -> Iterator[str]:
    """The lines of ``path`` as they are appended, until ``done`` is set and all are read.

    The file may not exist yet (a job still queued). A line is yielded only once its
    newline is written, so a half-flushed event is never parsed.

    Args:
        path: the file, written by another process.
        done: set once the writer has ended; the rest of the file is then read and the iteration ends.
        poll_seconds: seconds between looks for the file and for new lines.
    """
    while not path.exists():
        if done.is_set():
            return
        time.sleep(poll_seconds)
    with path.open(errors="replace") as stream:
        pending = ""
        while True:
            finished = done.is_set()  # read before draining: nothing written before it is missed
            chunk = stream.readline()
            while chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
                chunk = stream.readline()
            if finished:
                if pending:
                    yield pending
                return
            time.sleep(poll_seconds)
