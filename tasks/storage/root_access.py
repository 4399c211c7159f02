"""Whether a storage root can be used at all: found before any work, a retry being no help.

A root on S3 needs credentials to sign its requests. botocore finds none only once a
request is signed, and every retrying step would meet the same lack again, so it is read
here from the filesystem's own credential chain, with no request: a store that is down
stays the steps' to retry. A local root must be a folder this process can create files
in. Its mode bits do not say so (root writes past them; a read-only mount, the immutable
attribute or an NFS server refuse root too), so a file is created there and removed at
once: nothing is left in a root that passes, and nothing is made in one that is refused.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from fsspec.asyn import sync

from kerasflow.tasks.failures import ConfigError

# botocore's errors for credentials it cannot find or use; matched by name so that a
# local root never imports botocore (s3fs is optional).
_CREDENTIALS_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound")


def credentials_error(error: BaseException) -> BaseException | None:
    """The exception in ``error``'s chain saying the store's credentials are missing, or None.

    Args:
        error: an exception raised by a filesystem call, or by an exception raised from it.
    """
    chain: BaseException | None = error
    while chain is not None:
        if type(chain).__name__ in _CREDENTIALS_ERRORS:
            return chain
        chain = chain.__cause__ or chain.__context__
    return None


def lacks_credentials(fs: Any) -> bool:
    """Whether ``fs`` is an S3 filesystem that would send its requests unsigned, for want of credentials.

    The credentials are looked for as s3fs looks for them: its own key and secret, else
    its session's chain (environment, profile, container or instance role). The store is
    not asked; an anonymous filesystem needs none.

    Args:
        fs: an fsspec filesystem; any but s3fs's has nothing to check here.

    Raises:
        botocore.exceptions.ProfileNotFound: the profile named (AWS_PROFILE) does not exist.
    """
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    if "s3" not in protocols or not hasattr(fs, "session"):
        return False
    if fs.anon or (fs.key and fs.secret) or fs.client_kwargs.get("aws_access_key_id"):
        return False
    fs.connect()  # builds the session s3fs signs with; its first call would, too
    return sync(fs.loop, fs.session.get_credentials) is None


def check_folder(root: str, path: Path) -> None:
    """Refuse ``path`` as a local root unless it is a folder this process can create files in, or can be made in one.

    The file tried is created in the root, or in its nearest parent that exists when the
    root is not made yet, and removed at once.

    Args:
        root: the root as configured, named in the message.
        path: the local folder it names.

    Raises:
        ConfigError: the root, or the nearest of its parents that exists, is a file; or this process cannot
            create a file in that folder (read-only, not its own, a read-only mount).
    """
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            if existing == path:
                raise ConfigError(
                    f"received storage.root={root!r}: {path} is a file, not a folder; set storage.root "
                    "(or KERASFLOW_ROOT) to a folder, or move the file away"
                )
            raise ConfigError(
                f"received storage.root={root!r}: {existing} is a file, so no folder can be made under it; set "
                "storage.root (or KERASFLOW_ROOT) to a folder elsewhere"
            )
        probe = existing / f".kerasflow-write-check-{uuid.uuid4().hex[:12]}"
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as error:
        raise ConfigError(
            f"received storage.root={root!r}: this user cannot write in {existing} ({error.strerror or error}); "
            "give it write access (chmod, chown) or set storage.root (or KERASFLOW_ROOT) to a folder it can write"
        ) from None
    os.unlink(probe)
