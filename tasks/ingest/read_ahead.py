"""Reading the next part of a table while the last one is stored: an iterator run one item ahead in a thread.

Ingest reads a part (Parquet or CSV decoding, the checks, labels) and then stores it
(split hashes, statistics, the TFDS write), one after the other on one core while the
machine has more. Reading is pyarrow, pandas and numpy, which release the GIL for the
heavy work and touch neither TensorFlow nor Prefect, so the next part can be read in a
thread while this one is stored. Storing stays on the caller's thread: TFDS registers
builders and sets absl's logging globally.

Memory holds the part being stored and at most ``depth`` more, read or being read. An
error met while reading is raised where its item would have been, after every item
before it: a bad file fails the ingest at the same point as reading in turn.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()
# How often a reader waiting for the caller looks whether the caller has gone.
_POLL_SECONDS = 0.1


def read_ahead(items: Iterable[T], *, depth: int = 1, name: str = "kerasflow-read-ahead") -> Iterator[T]:
    """``items`` in order, produced by a thread that reads up to ``depth`` items beyond the one the caller holds.

    The reader starts on an item only once the caller has taken the one ``depth`` before
    it, so memory holds the caller's item and ``depth`` more, never a queue of them.
    When the caller stops early (an error while storing), the reader is told to stop,
    closes ``items`` (so its ``with`` blocks end in the thread that opened them) and is
    waited for: no thread outlives the ingest.

    Args:
        items: what to read; an iterator with ``close`` is closed by the reader thread.
        depth: how many items the reader may hold beyond the caller's.
        name: the reader thread's name.
    """
    buffer: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def slot_free() -> bool:
        while not stop.is_set():
            if slots.acquire(timeout=_POLL_SECONDS):
                return True
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            while slot_free():
                item = next(iterator, _END)
                buffer.put((item, None))
                if item is _END:
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the caller, raised there in order
            buffer.put((_END, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=produce, name=name, daemon=True)
    reader.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            slots.release()  # the caller holds this item: the reader may start on the next
            yield item
    finally:
        stop.set()
        reader.join()
