"""Exclusive creation on S3 (If-None-Match: *): of writers racing for one key, exactly one wins."""

from __future__ import annotations

import threading

import fsspec

from kerasflow.models.exclusive import create_exclusive


def test_of_sixteen_writers_racing_for_each_key_exactly_one_creates_it(s3_bucket):
    """What the registry's sequence numbers rest on; the S3 fixture makes moto honour it as S3 does."""
    keys, writers = 20, 16
    wins: dict[int, list[int]] = {key: [] for key in range(keys)}
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        fs = fsspec.filesystem("s3", skip_instance_cache=True)  # a client of its own, like another process
        start.wait()
        for key in range(keys):
            if create_exclusive(fs, f"{s3_bucket}/race/{key}.json", f"{writer}".encode()):
                wins[key].append(writer)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    for key, winners in wins.items():
        assert len(winners) == 1, f"key {key}: created by writers {winners}"
        assert fs.cat_file(f"{s3_bucket}/race/{key}.json") == str(winners[0]).encode()
