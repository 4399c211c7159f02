"""Exclusive create and whole replacement of small objects on any fsspec filesystem.

Registry versions, alias moves and dataset materializations all commit by creating one
small object that must not exist yet. On object stores a PUT appears whole, so ``xb``
(S3: ``If-None-Match: *``) is enough. On a local disk ``O_EXCL`` would expose the file
while it is being written, so the body is written aside and hard-linked into place:
link(2) is atomic and fails when the name exists. Keep bodies small: moto's S3 server
checks the condition non-atomically for large bodies.
"""

from __future__ import annotations

import os
import tempfile

from fsspec.implementations.local import LocalFileSystem


def create_exclusive(fs, path: str, body: bytes) -> bool:
    """Create ``path`` holding ``body``, whole; False when it exists already.

    Args:
        fs: the fsspec filesystem.
        path: the object's path on ``fs``, without protocol; its folder is made when missing.
        body: the object's bytes, small (a JSON record).
    """
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        fd, aside = tempfile.mkstemp(dir=parent, prefix=".aside-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.link(aside, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(aside)
        return True
    try:
        with fs.open(path, "xb") as f:
            f.write(body)
    except FileExistsError:
        return False
    return True


def replace_whole(fs, path: str, body: bytes) -> None:
    """Write ``path`` so that readers see the old body or the new one, never a part.

    One PUT on an object store; on a local disk the body is written aside and renamed
    over the old file (rename(2) is atomic).

    Args:
        fs: the fsspec filesystem.
        path: the object's path on ``fs``, without protocol; its folder must exist on a local disk.
        body: the object's new bytes.
    """
    if isinstance(fs, LocalFileSystem):
        fd, aside = tempfile.mkstemp(dir=path.rsplit("/", 1)[0], prefix=".aside-")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(aside, path)
    else:
        fs.pipe_file(path, body)
