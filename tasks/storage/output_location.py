"""Where scores may be written: never over what kerasflow keeps, an input, or a file it did not write.

``kerasflow predict --output`` names a path a person typed, so it is checked before any
row is read, and the check says which rule it broke and what to do instead:

- nothing under the storage root's own folders (``registry``, ``datasets``, ``training``,
  ``runs``, ``holds``, and their local mirror for a remote root): a model file, a
  version's metadata, an alias record or a dataset's ``ref.json`` replaced by scores is
  lost for good;
- not an input file, nor a path the input's folder or glob would read next time;
- not a symbolic link, a directory, a device, a FIFO or a socket: only a regular file is
  ever replaced (``/dev/null`` stays a device);
- an existing file only when kerasflow wrote it as scores (its Parquet footer says so),
  unless the caller passes ``overwrite``: a team's own table at that path stays.

The report written beside the scores (``<stem>.skew.json``) obeys the same rules.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from collections.abc import Sequence

from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError

__all__ = [
    "KEPT_FOLDERS",
    "SCORES_METADATA_KEY",
    "OutputLocationError",
    "check_output_location",
    "check_replaceable",
]

# The folders of a storage root that hold what kerasflow keeps (tasks/storage/__init__.py: layout).
KEPT_FOLDERS = ("registry", "datasets", "training", "runs", "holds")

# The key of the Parquet footer metadata that marks a file as kerasflow's own scores.
SCORES_METADATA_KEY = b"kerasflow.scores"


class OutputLocationError(ConfigError):
    """An output path that would replace something kerasflow must not replace."""


def check_output_location(
    output: str,
    *,
    root: str,
    inputs: Sequence[str] = (),
    input_url: str | None = None,
    overwrite: bool = False,
    beside: Sequence[str] = (),
) -> None:
    """Refuse ``output`` (and the files ``beside`` it) when writing there could destroy something.

    Args:
        output: the URL the scores go to.
        root: the storage root; its kept folders are never written.
        inputs: URLs of the files being scored; none may be replaced.
        input_url: the data URL as given (a folder or a glob): an output it would list is refused.
        overwrite: replace an existing regular file that kerasflow did not write as scores.
        beside: other files written with the scores (the skew report), checked the same way.

    Raises:
        OutputLocationError: naming the rule and the fix.
    """
    for url in (output, *beside):
        _check_not_kept(url, root=root)
        _check_not_input(url, inputs=inputs, input_url=input_url)
        check_replaceable(url, overwrite=overwrite, kind="scores" if url == output else "report")


def _check_not_kept(url: str, *, root: str) -> None:
    bases = [root]
    if not storage.is_local(root):
        bases.append(str(storage.cache_dir(root)))  # the local mirror holds copies of the same records
    for base in bases:
        for folder in KEPT_FOLDERS:
            if storage.is_within(storage.join(base, folder), url):
                raise OutputLocationError(
                    f"received --output {url}, which is inside the storage root's {folder}/ folder "
                    f"({storage.join(base, folder)}), where kerasflow keeps its {_WHAT[folder]}; writing there "
                    f"would destroy them. Write the scores elsewhere, e.g. under {storage.join(root, 'scores')}"
                )


_WHAT = {
    "registry": "model versions and aliases",
    "datasets": "materialized datasets",
    "training": "trainings' state and backups",
    "runs": "runs' models and metrics",
    "holds": "runs' holds on datasets",
}


def _same(a: str, b: str) -> bool:
    if storage.is_local(a) != storage.is_local(b):
        return False
    if storage.is_local(a):
        return os.path.realpath(a.removeprefix("file://")) == os.path.realpath(b.removeprefix("file://"))
    return _remote_path(a) == _remote_path(b)


def _remote_path(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def _check_not_input(url: str, *, inputs: Sequence[str], input_url: str | None) -> None:
    for source in inputs:
        if _same(url, source):
            raise OutputLocationError(
                f"received --output {url}, which is the input file {source}: the scores would replace the data "
                "they are computed from. Write them to another path"
            )
    if input_url is None or storage.is_local(input_url) != storage.is_local(url):
        return
    if storage.is_local(url):
        path = os.path.realpath(url.removeprefix("file://"))
        pattern = os.path.abspath(input_url.removeprefix("file://"))
    else:
        path, pattern = _remote_path(url), _remote_path(input_url)
    if any(ch in pattern for ch in "*?["):
        listed = fnmatch.fnmatch(path, pattern)
    else:
        folder = os.path.realpath(pattern) if storage.is_local(url) else pattern
        listed = path.startswith(folder.rstrip("/") + "/")
    if listed:
        raise OutputLocationError(
            f"received --output {url}, which --data {input_url} would read as input the next time it is "
            "scored. Write the scores outside the data's folder or pattern"
        )


def check_replaceable(url: str, *, overwrite: bool = False, kind: str = "scores") -> None:
    """Refuse a path that is not a regular file, or a file kerasflow did not write, unless ``overwrite``.

    Args:
        url: the path about to be replaced whole.
        overwrite: accept an existing regular file whatever wrote it.
        kind: ``scores`` (a Parquet file marked as kerasflow's) or ``report`` (a skew report's JSON).

    Raises:
        OutputLocationError: the path is a link, a directory, a device, a FIFO or a socket, or a
            file kerasflow did not write (without ``overwrite``).
    """
    if storage.is_local(url):
        path = url.removeprefix("file://")
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        except NotADirectoryError:
            raise OutputLocationError(
                f"received --output {url}, whose folder is a file; name a path in a folder"
            ) from None
        what = _special(mode)
        if what is not None:
            raise OutputLocationError(
                f"received --output {url}, which is {what}; kerasflow replaces only regular files. "
                "Name a new file path"
            )
    else:
        fs, path = storage.filesystem(url)
        with storage.reaching(url):
            try:
                info = fs.info(path)
            except FileNotFoundError:
                return
        if info.get("type") == "directory":
            raise OutputLocationError(
                f"received --output {url}, which is a folder (objects exist under it); name a file path"
            )
    if overwrite or _written_by_kerasflow(url, kind):
        return
    raise OutputLocationError(
        f"received --output {url}, which holds a file kerasflow did not write as {kind}; it is left as it is. "
        "Name a new path, or pass --overwrite to replace it"
    )


def _special(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return None
    return "a device, FIFO or socket"


# A skew report is a few kilobytes a column; a larger file at its path is not one.
_REPORT_BYTES = 16 * 1024 * 1024


def _written_by_kerasflow(url: str, kind: str) -> bool:
    fs, path = storage.filesystem(url)
    try:
        with storage.reaching(url), fs.open(path, "rb") as f:
            if kind == "scores":
                import pyarrow.parquet as pq

                metadata = pq.read_schema(f).metadata or {}
                return SCORES_METADATA_KEY in metadata
            body = f.read(_REPORT_BYTES + 1)
    except storage.StorageUnavailableError:
        raise
    except (OSError, ValueError):  # unreadable, or not Parquet (pyarrow's ArrowInvalid is a ValueError)
        return False
    if len(body) > _REPORT_BYTES:
        return False
    try:
        report = json.loads(body)
    except ValueError:
        return False
    return isinstance(report, dict) and {"baseline", "current", "columns"} <= set(report)
