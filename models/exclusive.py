"""Exclusive create of small objects on any fsspec filesystem: the one commit primitive.

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
    """Create ``path`` holding ``body``, whole; False when it exists already."""
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
