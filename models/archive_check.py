"""Bounds on a ``.keras`` archive, checked before Keras reads any of it.

A model file from the registry is untrusted input: anyone who can write to the bucket can
plant one and rewrite its recorded sha256. Keras's own guards start at 4 GiB and only
look at compression ratios, so a small archive can still make a loader unpack gigabytes
of assets, build a 17 GB kernel from one ``Dense(units=2**26)``, or read an HDF5 dataset
that declares gigabytes it does not store. Checked here, in order, each against a bound
of :class:`ArchiveLimits`:

1. the members: their number, names and declared sizes (each and in all), their
   compression ratio; assets only where a lookup layer keeps its vocabulary;
2. the config: its size and depth, and every object it names (:mod:`allowed_objects`);
3. the weights: every HDF5 dataset stores the bytes it declares, numbers only, and the
   variables the config builds (counted without allocating them) fit in what is stored;
   no layer's output per example exceeds ``max_activation_elements``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kerasflow.models import private_apis
from kerasflow.models.allowed_objects import refusals, trusted_modules
from kerasflow.models.errors import ModelFileError

MiB, GiB = 1 << 20, 1 << 30
CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE, ASSETS_DIR = "config.json", "metadata.json", "model.weights.h5", "assets/"
# Layers that keep a vocabulary in assets/, and how many files each writes there
# (TextVectorization writes its own and its inner lookup layer's).
_LOOKUP_LAYERS = {"StringLookup": 1, "IntegerLookup": 1, "TextVectorization": 2}


class UnsafeModelError(ModelFileError):
    """A model file that names code kerasflow does not load, or breaks a bound on its size."""


@dataclass(frozen=True)
class ArchiveLimits:
    """What a model file may declare. The defaults admit models far larger than the zoo's
    (tens of millions of parameters) and refuse the bombs long before memory runs out.

    Args:
        max_members: entries the archive may hold, folders included.
        max_config_bytes: bytes of ``config.json``.
        max_config_depth: levels of nesting of the config.
        max_asset_bytes: bytes of every vocabulary under ``assets/`` together.
        max_weights_bytes: bytes ``model.weights.h5`` may declare, and its datasets together.
        max_total_bytes: bytes every member declares together.
        max_expansion: declared size over stored size of a member over 1 MiB.
        max_activation_elements: values one example may produce at one layer's output.
    """

    max_members: int = 1_000
    max_config_bytes: int = 64 * MiB
    max_config_depth: int = 200
    max_asset_bytes: int = 256 * MiB  # all vocabularies together
    max_weights_bytes: int = 16 * GiB
    max_total_bytes: int = 16 * GiB + 512 * MiB
    max_expansion: int = 100  # uncompressed / stored, per member over 1 MiB (Keras writes members stored)
    max_activation_elements: int = 1 << 27  # per example, per layer output (512 MiB of float32)


DEFAULT_LIMITS = ArchiveLimits()


def _fail(path: str | os.PathLike, why: str) -> UnsafeModelError:
    return UnsafeModelError(f"model file {os.fspath(path)} refused: {why}")


def _size(n: float) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def check_members(
    archive: zipfile.ZipFile, path: str | os.PathLike, limits: ArchiveLimits
) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, after bounding their number, names and sizes.

    Args:
        archive: the opened ``.keras`` archive.
        path: the archive's file, named in the refusal.
        limits: the bounds to check.

    Raises:
        UnsafeModelError: a bound is broken, a member is not part of a Keras 3 model file, a name
            appears twice, or ``config.json`` or ``model.weights.h5`` is missing.
    """
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise _fail(path, f"it has {len(infos)} members, expected at most {limits.max_members}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if name.endswith("/"):
            continue
        if name in members:
            raise _fail(path, f"member {name!r} appears twice")
        if name not in (CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE) and not name.startswith(ASSETS_DIR):
            raise _fail(path, f"member {name[:80]!r} is not part of a Keras 3 model file (config, weights, assets)")
        if info.file_size > MiB and info.file_size > limits.max_expansion * max(info.compress_size, 1):
            raise _fail(
                path,
                f"member {name!r} declares {_size(info.file_size)} but stores {_size(info.compress_size)} "
                f"(over {limits.max_expansion}x): a decompression bomb",
            )
        members[name] = info
    if CONFIG_FILE not in members:
        raise _fail(path, f"it has no {CONFIG_FILE}; it is not a Keras 3 model file (save it with model.save())")
    if WEIGHTS_FILE not in members:
        raise _fail(path, f"it has no {WEIGHTS_FILE}; kerasflow writes and loads HDF5 weights only")
    bounds = {
        CONFIG_FILE: limits.max_config_bytes,
        METADATA_FILE: MiB,
        WEIGHTS_FILE: limits.max_weights_bytes,
    }
    for name, bound in bounds.items():
        if name in members and members[name].file_size > bound:
            raise _fail(path, f"{name} declares {_size(members[name].file_size)}, expected at most {_size(bound)}")
    assets = sum(info.file_size for name, info in members.items() if name.startswith(ASSETS_DIR))
    if assets > limits.max_asset_bytes:
        raise _fail(path, f"its assets declare {_size(assets)}, expected at most {_size(limits.max_asset_bytes)}")
    total = sum(info.file_size for info in members.values())
    if total > limits.max_total_bytes:
        raise _fail(path, f"it declares {_size(total)} in all, expected at most {_size(limits.max_total_bytes)}")
    return members


def read_config(archive: zipfile.ZipFile, path: str | os.PathLike, limits: ArchiveLimits) -> dict[str, Any]:
    """config.json, read within its bound and parsed; depth is bounded by the checks after.

    Args:
        archive: the opened ``.keras`` archive.
        path: the archive's file, named in the refusal.
        limits: its ``max_config_bytes`` bounds what is read.

    Raises:
        UnsafeModelError: ``config.json`` is over its bound, nested too deep to parse, not JSON, or not a
            JSON object.
    """
    with archive.open(CONFIG_FILE) as f:
        raw = f.read(limits.max_config_bytes + 1)
    if len(raw) > limits.max_config_bytes:
        raise _fail(path, f"{CONFIG_FILE} is over {_size(limits.max_config_bytes)}")
    try:
        config = json.loads(raw)
    except RecursionError:
        raise _fail(path, f"{CONFIG_FILE} is nested deeper than {limits.max_config_depth} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _fail(path, f"{CONFIG_FILE} is not JSON ({error})") from None
    if not isinstance(config, dict):
        raise _fail(path, f"{CONFIG_FILE} holds a {type(config).__name__}, expected an object")
    return config


def check_objects(
    config: dict[str, Any], path: str | os.PathLike, *, trusted_packages: Iterable[str], limits: ArchiveLimits
) -> None:
    """Refuse, naming it, the first object of the config that is not an allowed Keras object.

    The compile config (loss, metrics, optimizer) is never deserialized: models load with
    ``compile=False`` (models/io.py), so it is not an object Keras will build.

    Args:
        config: the parsed ``config.json``.
        path: the archive's file, named in the refusal.
        trusted_packages: packages whose registered classes may load; their modules the config names are
            imported first, so those classes are registered.
        limits: its ``max_config_depth`` bounds the walk.

    Raises:
        UnsafeModelError: an object may not be loaded, or a trusted package's module cannot be imported.
    """
    structure = {key: value for key, value in config.items() if key != "compile_config"}
    for module in trusted_modules(structure, trusted_packages=trusted_packages):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise _fail(path, f"module {module!r} of a trusted package cannot be imported ({error})") from None
    for why in refusals(structure, trusted_packages=trusted_packages, max_depth=limits.max_config_depth):
        raise _fail(
            path,
            f"{why}. kerasflow loads only Keras's own layers and functions and the registered classes of "
            "trusted packages; rebuild the model from those and register it again",
        )


def check_assets(config: dict[str, Any], members: dict[str, zipfile.ZipInfo], path: str | os.PathLike) -> None:
    """Assets only as vocabularies, at most one for each lookup layer of the config.

    Args:
        config: the parsed ``config.json``, whose lookup layers are counted.
        members: the archive's members by name (:func:`check_members`).
        path: the archive's file, named in the refusal.

    Raises:
        UnsafeModelError: an asset is not a ``vocabulary.txt``, or there are more than the lookup layers write.
    """
    assets = [name for name in members if name.startswith(ASSETS_DIR)]
    allowed = _count_classes(config, _LOOKUP_LAYERS)
    strays = [name for name in assets if not name.endswith("/vocabulary.txt")]
    if strays:
        raise _fail(path, f"asset {strays[0][:80]!r} is not a vocabulary of a lookup layer")
    if len(assets) > allowed:
        raise _fail(path, f"it holds {len(assets)} vocabularies where the lookup layers of its config write {allowed}")


def _count_classes(config: Any, weights: dict[str, int]) -> int:
    """The sum over the config's objects of ``weights[class_name]``."""
    count, stack = 0, [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("class_name")
            count += weights.get(name, 0) if isinstance(name, str) else 0
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def stored_weight_bytes(archive: zipfile.ZipFile, path: str | os.PathLike, limits: ArchiveLimits) -> int:
    """Bytes of every HDF5 dataset of the weights, each checked to store what it declares.

    Args:
        archive: the opened ``.keras`` archive.
        path: the archive's file, named in the refusal.
        limits: its ``max_weights_bytes`` bounds the datasets' declared bytes together.

    Returns:
        The bytes the datasets declare together.

    Raises:
        UnsafeModelError: the weights are not HDF5, a dataset holds no numbers or stores less than it
            declares, or they declare over ``max_weights_bytes``.
    """
    import h5py

    datasets: list[tuple[str, Any]] = []
    with archive.open(WEIGHTS_FILE) as raw:
        try:
            weights = h5py.File(raw, "r")
        except OSError as error:
            raise _fail(path, f"{WEIGHTS_FILE} is not an HDF5 file ({error})") from None
        with weights:
            weights.visititems(
                lambda name, obj: datasets.append((name, obj)) if isinstance(obj, h5py.Dataset) else None
            )
            total = 0
            for name, dataset in datasets:
                if dataset.dtype.kind not in "biufc":
                    raise _fail(path, f"weight {name!r} holds {dataset.dtype}, expected numbers")
                declared = (
                    math.prod(dataset.shape) * dataset.dtype.itemsize if dataset.shape else dataset.dtype.itemsize
                )
                stored = dataset.id.get_storage_size()
                if dataset.shape and declared > 0 and stored < declared:
                    raise _fail(
                        path,
                        f"weight {name!r} declares shape {tuple(dataset.shape)} ({_size(declared)}) "
                        f"but stores {_size(stored)}",
                    )
                total += declared
                if total > limits.max_weights_bytes:
                    raise _fail(path, f"its weights declare over {_size(limits.max_weights_bytes)}")
    return total


def check_built_sizes(config: dict[str, Any], path: str | os.PathLike, *, stored: int, limits: ArchiveLimits) -> None:
    """Build the config without allocating its variables; refuse one that needs more than is stored.

    Keras builds the whole model before it reads a weight, so a config that declares a
    huge layer allocates it before any mismatch is noticed. Under Keras's
    ``StatelessScope`` variables record their shape and defer their allocation; they are
    counted, then dropped without ever being allocated.

    Args:
        config: the parsed ``config.json``.
        path: the archive's file, named in the refusal.
        stored: bytes the weights store (:func:`stored_weight_bytes`).
        limits: its ``max_activation_elements`` bounds each layer's output per example.

    Raises:
        UnsafeModelError: the config does not build a model, builds more bytes of variables than the
            weights store (past 1 % and 1 MiB), or a layer outputs too many values per example.
    """
    import keras

    structure = {key: value for key, value in config.items() if key != "compile_config"}
    try:
        with private_apis.unallocated_variables():
            model = keras.saving.deserialize_keras_object(structure, safe_mode=True)
        needed = sum(math.prod(v.shape) * _itemsize(v.dtype) for v in model.variables)
        widest = max((_per_example(layer) for layer in private_apis.sublayers(model)), default=0)
    except UnsafeModelError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        raise _fail(path, f"its config does not build a model: {root_cause(error)}") from None
    # Seed generators' states are built but not saved: a small allowance, never gigabytes.
    if needed > stored + stored // 100 + MiB:
        raise _fail(
            path,
            f"its config builds {_size(needed)} of variables but its weights store {_size(stored)}",
        )
    if widest > limits.max_activation_elements:
        raise _fail(
            path,
            f"a layer of its config outputs {widest:,} values per example, expected at most "
            f"{limits.max_activation_elements:,}",
        )


def _itemsize(dtype: Any) -> int:
    import numpy as np

    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 4  # bfloat16 and other ml_dtypes: bounded by 4 for counting


def _per_example(layer: Any) -> int:
    """Values one example produces at ``layer``'s outputs (0 when the layer was not called)."""
    try:
        outputs = layer.output
    except (AttributeError, ValueError):
        return 0
    import keras

    widest = 0
    for tensor in keras.tree.flatten(outputs):
        shape = getattr(tensor, "shape", None) or ()
        dims = [d for d in shape[1:] if d is not None]
        widest = max(widest, math.prod(dims) if dims else 1)
    return widest


def root_cause(error: BaseException) -> str:
    """The innermost exception's first line, short: what Keras chains around it is noise.

    Args:
        error: the exception raised, with the exceptions it was raised from.

    Returns:
        ``<type>: <first line>`` of the innermost exception, the line cut at 300 characters.
    """
    while error.__cause__ is not None or (error.__context__ is not None and not error.__suppress_context__):
        error = error.__cause__ or error.__context__
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first[:300]}"


def check_archive(
    path: str | os.PathLike, *, trusted_packages: Iterable[str] = (), limits: ArchiveLimits = DEFAULT_LIMITS
) -> None:
    """Refuse ``path`` unless every bound holds and every object it names may be loaded.

    Args:
        path: a local ``.keras`` file.
        trusted_packages: packages whose registered classes the file may use.
        limits: the bounds the archive must keep.

    Raises:
        UnsafeModelError: the file is not a zip archive, breaks a bound, or names an object that may not be
            loaded.
    """
    trusted = tuple(trusted_packages)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise _fail(path, f"it is not a Keras 3 archive ({error}); save it with model.save()") from None
    with archive:
        members = check_members(archive, path, limits)
        config = read_config(archive, path, limits)
        check_objects(config, path, trusted_packages=trusted, limits=limits)
        check_assets(config, members, path)
        stored = stored_weight_bytes(archive, path, limits)
    check_built_sizes(config, path, stored=stored, limits=limits)
