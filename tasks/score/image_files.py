"""A folder of images scored by an image model: listed, read bounded, decoded as training decodes them.

``kerasflow predict NAME --data <folder or prefix>`` with a model trained on images: every
image under the folder, at any depth (class subfolders are optional and only part of the
key), is one output row keyed by its path under the folder (``cat/0001.png``, or
``0001.png`` in a flat folder). Images are read as ingest reads them (regular files only,
no further than their listed size) and decoded by the function training's input pipeline
uses (tasks/data/stored_examples.py: ``decoded_image``), to the model's recorded height,
width and channels, :data:`IMAGES_PER_BATCH` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kerasflow.tasks import storage
from kerasflow.tasks.data.stored_examples import decoded_image
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources import files as files_module
from kerasflow.tasks.ingest.sources.files import TableFile
from kerasflow.tasks.ingest.sources.images import IMAGE_SUFFIXES, linked_file, read_listed
from kerasflow.tasks.score.inputs import ScoringInput

# Images decoded and scored at a time: 256 of 256x256x3 float32 are 200 MB.
IMAGES_PER_BATCH = 256
# The output column holding each image's path under the folder.
IMAGE_KEY = "image"


def scores_images(metadata: dict[str, Any]) -> bool:
    """Whether the version was trained on images (one height x width x channels tensor, no table columns).

    Args:
        metadata: the version's metadata.
    """
    dataset = metadata.get("dataset") or {}
    shape = dataset.get("feature_shape") or []
    return not dataset.get("column_types") and len(shape) == 3 and int(shape[-1]) in (1, 3)


def names_images(url: str) -> bool:
    """Whether ``url`` names a folder or prefix of images rather than a table (a file, a glob, a folder of them).

    An image model scores either: the bundled digits, say, from a CSV of their pixel columns,
    or from a folder of image files.

    Args:
        url: what ``--data`` names.
    """
    if url.lower().endswith(files_module.SUFFIXES) or any(c in url for c in "*?["):
        return False
    fs, root = storage.filesystem(url)
    try:
        with storage.reaching(url):
            found = fs.find(root.rstrip("/"))
    except FileNotFoundError:
        return False
    return any(path.lower().endswith(IMAGE_SUFFIXES) for path in found)


def list_scored_images(url: str) -> list[TableFile]:
    """Every image under ``url``, at any depth, sorted; anything else there is refused, naming it.

    Raises:
        DataValidationError: nothing is under ``url``, or an entry is not an image file (by its suffix), or
            is a device, FIFO, socket or a link to one.
    """
    fs, root = storage.filesystem(url)
    root = root.rstrip("/")
    try:
        with storage.reaching(url):
            found = fs.find(root, detail=True)
    except FileNotFoundError:
        found = {}
    local = storage.is_local(url)
    files = []
    for path, info in sorted(found.items()):
        relative = path[len(root) :].strip("/")
        if info.get("type") == "directory" or not relative or (not local and not info.get("size")):
            continue  # a folder, or an object store's marker of one
        key = path if local else fs.unstrip_protocol(path)
        if not relative.lower().endswith(IMAGE_SUFFIXES):
            raise DataValidationError(
                f"{key}: check 'format' failed: not an image file ({', '.join(IMAGE_SUFFIXES)}); "
                "move it out of the folder to score"
            )
        if local and info.get("type") != "file":
            info = linked_file(key, info)
        version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        files.append(TableFile(url=key, path=path, size=int(info.get("size") or 0), version=str(version)))
    if not files:
        raise DataValidationError(
            f"{url}: check 'images' failed: no image under it; give the folder or prefix the images are in"
        )
    return files


def image_input(files: list[TableFile], url: str, metadata: dict[str, Any], *, folder: Path) -> ScoringInput:
    """The images ``files``, decoded to the version's input shape, :data:`IMAGES_PER_BATCH` at a time.

    Args:
        files: the images, as :func:`list_scored_images` lists them.
        url: the folder they were listed under; each key is an image's path under it.
        metadata: the version's metadata (its input's height, width and channels).
        folder: where remote images are downloaded for the duration of the scoring.
    """
    height, width, channels = (int(d) for d in metadata["dataset"]["feature_shape"])
    base = url.rstrip("/")
    keys = np.array([file.url[len(base) :].lstrip("/") if file.url.startswith(base) else file.url for file in files])
    return ScoringInput(
        source=url,
        total=len(files),
        feature_shape=(height, width, channels),
        batches=_batches(files, keys, folder=folder, shape=(height, width, channels), source=url),
        from_table=False,
    )


def _batches(
    files: list[TableFile], keys: np.ndarray, *, folder: Path, shape: tuple[int, int, int], source: str
) -> Iterator[tuple[np.ndarray, np.ndarray, None, str]]:
    import tensorflow as tf

    local = files_module.download_files(files, folder)
    height, width, channels = shape
    for start in range(0, len(files), IMAGES_PER_BATCH):
        pixels = []
        batch = slice(start, start + IMAGES_PER_BATCH)
        for file, path in zip(files[batch], local[batch], strict=True):
            content = read_listed(path, file)
            try:
                image = decoded_image(tf.constant(content), height=height, width=width, channels=channels)
            except tf.errors.InvalidArgumentError:
                raise DataValidationError(
                    f"{file.url}: check 'image' failed: TensorFlow's decoder (JPEG, PNG, GIF, BMP, WebP) cannot read "
                    "it; convert it to PNG or JPEG, or move it out of the folder to score"
                ) from None
            pixels.append(image.numpy())
        yield np.stack(pixels), keys[batch], None, source
