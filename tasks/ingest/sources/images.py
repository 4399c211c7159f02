"""Images in class folders on any fsspec URL: list, fingerprint, download, check, store encoded.

``data.url`` is a folder or prefix with one subfolder per class, as
``keras.utils.image_dataset_from_directory`` reads it (``.../cat/0001.png``); the formats
are JPEG, PNG, BMP and GIF (its first frame). Listing names the content: the sorted (key,
size, ETag or mtime) of every image, as for tables, so a new image is a new fingerprint
and nothing is downloaded when the fingerprint is materialized already. The images are
fetched by one concurrent get (to a temporary folder, not memory); each is read once to
check it (a damaged file, or one training's decoder cannot read, fails with its key
named), record its size and hash it, and let go; the store reads them again, block by
block (:class:`StoredImages`), so memory holds a block of images, not the folder. They are
stored as they came, encoded, in blocks of :data:`BLOCK_IMAGES`: the input pipeline
decodes and resizes them to ``data.image_size`` (tasks/data/pipeline.py), so the
stored dataset is the size of the images, not of their pixels. Each image's split comes
from a hash of its bytes and class, like a table row's.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kerasflow.tasks import storage
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import splits as split_rule
from kerasflow.tasks.data.source_data import PIXEL_COLUMNS, SIZE_COLUMN, SourceData, dataset_name
from kerasflow.tasks.data.statistics import DatasetStatistics, split_statistics
from kerasflow.tasks.failures import DataValidationError, KerasflowError
from kerasflow.tasks.ingest.sources import arrays, register_source
from kerasflow.tasks.ingest.sources import files as files_module
from kerasflow.tasks.ingest.sources.arrays import Blocks
from kerasflow.tasks.ingest.sources.files import TableFile

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Encoded images per stored TFDS example (TFDS writes one example at a time in Python).
BLOCK_IMAGES = 64
IMAGE_KEY = "image"


def list_images(url: str) -> tuple[list[TableFile], list[str]]:
    """Every image under ``url`` (sorted) and the class folders (sorted); bad layouts are one error each.

    Raises:
        DataValidationError: no class folder, an image outside one, a file that is not an image, or an
            empty class folder.
    """
    fs, root = storage.filesystem(url)
    root = root.rstrip("/")
    try:
        with storage.reaching(url):
            entries = fs.ls(root, detail=True)
            found = fs.find(root, detail=True)
    except FileNotFoundError:
        entries, found = [], {}
    local = storage.is_local(url)
    folders = {e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"}
    # An object store lists an empty folder as the zero-byte object that marks it ("photos/owl/");
    # a disk lists its folders as folders, so a zero-byte file there is a file, not a class.
    markers = {
        p[len(root) :].strip("/")
        for p, i in found.items()
        if i.get("type") == "directory" or (not local and not i.get("size") and not p.lower().endswith(IMAGE_SUFFIXES))
    }
    classes = sorted(folders | {m for m in markers if m and "/" not in m})
    if not classes:
        raise DataValidationError(
            f"{url}: check 'class folders' failed: no subfolder; put each class's images in a folder of its own "
            "(.../cat/0001.png, .../dog/0001.png), as keras.utils.image_dataset_from_directory reads them"
        )
    files, per_class = [], dict.fromkeys(classes, 0)
    for path, info in sorted(found.items()):
        relative = path[len(root) :].strip("/")
        if info.get("type") == "directory" or not relative or relative.endswith("/") or relative in per_class:
            continue  # a folder, or an object store's marker of an (empty) folder
        key = path if local else fs.unstrip_protocol(path)
        parts = relative.split("/")
        if len(parts) != 2 or parts[0] not in per_class:
            raise DataValidationError(
                f"{key}: check 'layout' failed: images belong directly in a class folder of {url} "
                "(<class>/<image>); move it there or out of data.url"
            )
        if not relative.lower().endswith(IMAGE_SUFFIXES):
            raise DataValidationError(
                f"{key}: check 'format' failed: not an image file ({', '.join(IMAGE_SUFFIXES)}); "
                "move it out of data.url"
            )
        if local and info.get("type") != "file":
            info = linked_file(key, info)  # the listing describes a link itself, not what it points to
        per_class[parts[0]] += 1
        version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        files.append(TableFile(url=key, path=path, size=int(info.get("size") or 0), version=str(version)))
    empty = [name for name, count in per_class.items() if not count]
    if empty:
        raise DataValidationError(
            f"{url}: check 'class folders' failed: class folder(s) {empty} hold no image; add images or remove "
            "the folder (every folder is a class the model would predict)"
        )
    return files, classes


def class_of(file: TableFile, url: str) -> str:
    """The class folder ``file`` is in.

    Args:
        file: an image, as :func:`list_images` lists it.
        url: the folder the images are under (not used: the class is the image's parent folder).
    """
    return file.url.rstrip("/").rsplit("/", 2)[-2]


def load_images(data: DataConfig, identity: dict[str, Any]) -> SourceData:
    """The images ``identity`` lists, checked and split, as blocks of encoded images with their class ids.

    Args:
        data: the recipe's ``data`` section (split, limit, image size, color mode).
        identity: the source's identity: the images and the class folders, sorted.

    Raises:
        DataValidationError: an image cannot be decoded.
    """
    import tensorflow_datasets as tfds

    files = files_module.from_identity(identity["files"])
    classes = list(identity["classes"])
    index = {name: i for i, name in enumerate(classes)}
    # The folder lives as long as the stored column reads from it (until the split is written).
    downloads = tempfile.TemporaryDirectory(prefix="kerasflow-images-")
    local = files_module.download_files(files, Path(downloads.name))
    # One image at a time: checked, sized and hashed, then let go; the store reads each again.
    digests = np.empty(len(files), dtype=np.uint64)
    sizes = np.empty(len(files), dtype=object)
    pixel_columns = PIXEL_COLUMNS[data.color_mode]
    means = np.empty((len(files), len(pixel_columns)), dtype=np.float64)
    for i, (file, path) in enumerate(zip(files, local, strict=True)):
        content = read_listed(path, file)
        sizes[i], means[i] = _checked_image(file.url, content, mode="L" if data.color_mode == "grayscale" else "RGB")
        digests[i] = content_digest(content, seed=data.seed)
    encoded = StoredImages(files, local, digests, seed=data.seed, folder=downloads)
    labels = np.array([index[class_of(f, data.url or "")] for f in files], dtype=np.int64)
    cut = split_rule.assign(
        _content_hashes(digests, labels, classes, seed=data.seed),
        validation=data.fractions.validation,
        test=data.fractions.test,
        limit=data.limit,
    )
    features = tfds.features.FeaturesDict(
        {
            IMAGE_KEY: tfds.features.Tensor(shape=(None,), dtype=np.object_),
            "label": tfds.features.Tensor(shape=(None,), dtype=np.int64, encoding=tfds.features.Encoding.BYTES),
        }
    )
    columns = {IMAGE_KEY: encoded, "label": labels}
    statistics = DatasetStatistics(
        {
            split: split_statistics(
                {SIZE_COLUMN: sizes, **{name: means[:, k] for k, name in enumerate(pixel_columns)}},
                categorical=[SIZE_COLUMN],
                labels=labels,
                class_names=classes,
                rows=rows,
            )
            for split, rows in cut.items()
        }
    )
    return SourceData(
        name=dataset_name((data.url or "images").rstrip("/").rsplit("/", 1)[-1] or "images"),
        features=features,
        splits={split: Blocks(columns, rows, rows_per_block=BLOCK_IMAGES) for split, rows in cut.items()},
        feature_key=IMAGE_KEY,
        label_key="label",
        class_names=classes,
        identity=identity,
        counts={split: len(rows) for split, rows in cut.items()},
        rows_per_example=BLOCK_IMAGES,
        statistics=statistics,
        image_size=tuple(data.image_size),
        channels=3 if data.color_mode == "rgb" else 1,
    )


def linked_file(key: str, info: dict[str, Any]) -> dict[str, Any]:
    """The listing of the regular file a local entry links to; anything else is refused.

    A device such as ``/dev/zero`` (or a link to one) would grow memory without bound, a
    FIFO would block the read for good, and a link to nothing cannot be read at all.

    Args:
        key: the entry's path, named in the error.
        info: its listing, which describes the entry itself (a link is listed as a link).

    Raises:
        DataValidationError: the entry is not a regular file nor a link to one.
    """
    if info.get("islink"):
        try:
            target = os.stat(key)  # follows the link
        except OSError:
            what = "a link to nothing"
        else:
            if stat.S_ISREG(target.st_mode):
                return {**info, "type": "file", "size": target.st_size, "mtime": target.st_mtime}
            what = "a link to a device, FIFO or socket"
    else:
        what = "a device, FIFO or socket"
    raise DataValidationError(
        f"{key}: check 'regular file' failed: {what}, not an image file; put the image itself there, "
        "or move the entry out of data.url"
    )


def read_listed(path: Path, file: TableFile) -> bytes:
    """The bytes of ``file``, read no further than the size it was listed with.

    Args:
        path: its local copy (or the file itself, on a local disk).
        file: the file as listed; its ``size`` bounds the read.

    Raises:
        KerasflowError: the file is longer or shorter than listed: it changed while it was ingested, so the
            read is retried (a file still being written is complete on a later try).
    """
    with open(path, "rb") as handle:
        content = handle.read(file.size + 1)
    if len(content) != file.size:
        raise KerasflowError(
            f"{file.url}: {'more' if len(content) > file.size else 'fewer'} bytes than the {file.size} listed: "
            "it changed while it was ingested; the ingest is tried again"
        )
    return content


def _checked_image(url: str, content: bytes, *, mode: str) -> tuple[str, tuple[float, ...]]:
    """``<width>x<height>`` of the encoded image and its mean intensity per channel of ``mode`` (RGB or L).

    A file training could not decode fails with its key.

    Pillow reads it whole first (a truncated file, or one whose pixels would exceed
    Pillow's decompression-bomb bound, fails here); then TensorFlow's decoder, the one
    training uses, must read it too: Pillow reads TIFF, PPM, ICO, TGA and 1-bit BMP,
    which training would refuse on every run after the dataset was published.
    """
    import tensorflow as tf
    from PIL import Image, ImageStat, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as image:
            image.load()  # the whole image: a truncated file fails here, not in training
            size, kind = f"{image.width}x{image.height}", f"{image.format} ({image.mode})"
            # The channels the model reads (a GIF's first frame, a palette resolved), as TensorFlow decodes it.
            means = tuple(ImageStat.Stat(image.convert(mode)).mean)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
        raise DataValidationError(
            f"{url}: check 'image' failed: cannot be decoded ({type(error).__name__}: {error}); the file is damaged "
            "or not an image: replace it, or move it out of data.url"
        ) from None
    try:
        tf.io.decode_image(content, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        raise DataValidationError(
            f"{url}: check 'image' failed: a {kind} image, which training's decoder (TensorFlow's: JPEG, PNG, GIF, "
            "BMP of 8, 24 or 32 bits, WebP) cannot read; convert it to PNG or JPEG, or move it out of data.url"
        ) from None
    return size, means


def content_digest(content: bytes, *, seed: int) -> int:
    """One image's bytes as a uint64 (blake2b keyed by the seed): half of what places it in a split."""
    return int.from_bytes(hashlib.blake2b(content, digest_size=8, key=str(seed).encode()).digest(), "little")


def _content_hashes(digests: np.ndarray, labels: np.ndarray, classes: list[str], *, seed: int) -> np.ndarray:
    """One uint64 per image from its bytes' digest and its class name, mixed with the seed."""
    class_words = split_rule.text_hashes(np.asarray(classes, dtype=str), seed=seed)[labels]
    return split_rule.mix64(digests.astype(np.uint64) ^ class_words)


class StoredImages:
    """The encoded images as a column the store reads block by block, never all at once.

    Indexed by an array of image numbers (as :class:`~kerasflow.tasks.ingest.sources.arrays.Blocks`
    cuts a block), it reads those images, each checked against the digest taken when it was
    first read: an image rewritten in between would be stored in a split its new bytes do
    not belong to.

    Args:
        files: the images, as listed.
        local: each image's local path (the file itself, or its download).
        digests: each image's :func:`content_digest` from the first read.
        seed: the seed of the digests.
        folder: the downloads' temporary folder, kept as long as this column is.
    """

    def __init__(
        self, files: list[TableFile], local: list[Path], digests: np.ndarray, *, seed: int, folder: Any = None
    ):
        self.files, self.local, self.digests, self.seed, self.folder = files, local, digests, seed, folder

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, numbers: np.ndarray) -> np.ndarray:
        out = np.empty(len(numbers), dtype=object)
        for k, i in enumerate(np.asarray(numbers, dtype=np.int64)):
            content = read_listed(self.local[i], self.files[i])
            if content_digest(content, seed=self.seed) != int(self.digests[i]):
                raise KerasflowError(
                    f"{self.files[i].url}: changed while it was ingested (its bytes differ from the first read); "
                    "the ingest is tried again"
                )
            out[k] = content
        return out


class ImageFolderSource:
    """``data.source: images``: a folder or prefix with one subfolder of images per class."""

    def identify(self, data: DataConfig) -> dict[str, Any]:
        """What identifies the images ``data.url`` holds: every image's key, size and version, and the classes.

        Raises:
            DataValidationError: the folder's layout is not one subfolder of images per class.
        """
        files, classes = list_images(data.url or "")
        return {
            "source": "images",
            "files": files_module.identity(files),
            "classes": classes,
            "image_size": list(data.image_size),
            "color_mode": data.color_mode,
            **arrays.cut_identity(data),
        }

    def load(
        self, data: DataConfig, identity: dict[str, Any], *, downloaded: dict[str, Path] | None = None
    ) -> SourceData:
        """The images ``identity`` lists, checked and split (:func:`load_images`).

        Args:
            data: the recipe's ``data`` section.
            identity: what :meth:`identify` returned.
            downloaded: not used: the images are fetched here.
        """
        return load_images(data, identity)


register_source("images", ImageFolderSource())
