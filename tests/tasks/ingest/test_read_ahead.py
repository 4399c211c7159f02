"""Reading ahead in a thread: the items in order, errors where they occurred, no thread left behind."""

from __future__ import annotations

import threading

import pytest

from kerasflow.tasks.ingest.read_ahead import read_ahead


def test_items_come_in_order_and_the_next_is_read_while_the_caller_holds_one():
    read = threading.Event()
    seen = []

    def items():
        for i in range(5):
            seen.append(i)
            if i == 1:
                read.set()
            yield i

    ahead = read_ahead(items())
    assert next(ahead) == 0
    # Holding item 0, the reader has gone on to item 1 without being asked.
    assert read.wait(timeout=600)
    assert list(ahead) == [1, 2, 3, 4]
    assert seen == [0, 1, 2, 3, 4]


def test_an_error_is_raised_after_every_item_before_it():
    def items():
        yield "a"
        yield "b"
        raise ValueError("part 3 of file x: bad row 7")

    got = []
    with pytest.raises(ValueError, match="bad row 7"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == ["a", "b"]


def test_a_caller_that_stops_early_stops_and_closes_the_reader():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:
            closed.set()

    ahead = read_ahead(items(), name="reader-under-test")
    assert next(ahead) == 0
    ahead.close()
    assert closed.is_set(), "the source was closed, its with blocks ended"
    assert not [t for t in threading.enumerate() if t.name == "reader-under-test"], "the reader was waited for"


def test_the_reader_starts_an_item_only_once_the_caller_took_the_one_before():
    # Memory holds the caller's part and one more: never a queue of parts read ahead.
    started = []
    third = threading.Event()

    def items():
        for i in range(4):
            started.append(i)
            if i == 2:
                third.set()
            yield i

    ahead = read_ahead(items(), depth=1)
    assert next(ahead) == 0
    # Holding item 0, the reader may read item 1 but not item 2. (Waiting cannot make
    # this fail on a slow machine: only a reader running too far ahead sets the event.)
    assert not third.wait(timeout=0.5)
    assert 2 not in started
    assert list(ahead) == [1, 2, 3]
