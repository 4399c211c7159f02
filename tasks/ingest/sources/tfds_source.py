"""TFDS sources: a registered TFDS dataset under ``data.data_dir``, or a prepared TFDS folder at a URL.

Both are reduced to the configured feature and label and the configured splits
(:func:`_from_builder`); a remote ``data_dir`` or folder is copied to the local cache
first, since TensorFlow reads only local paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError, DataConfig
from kerasflow.tasks.data.source_data import SPLITS, SourceData, dataset_name, fingerprint
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources import PREPARED_TFDS, arrays, downloads, files, register_source


def tfds_builder(data: DataConfig):
    """The TFDS builder of ``data.name``; a remote ``data_dir`` is synced to the local cache first.

    TensorFlow reads only local paths, so a prepared dataset under ``s3://.../tfds`` is
    downloaded once (concurrently) into ``<cache>/tfds/`` and read from there.

    Raises:
        ConfigError: a remote ``data.data_dir`` holds no prepared dataset of that name, or ``data.name`` is not
            a TFDS dataset.
    """
    import tensorflow_datasets as tfds

    data_dir = data.data_dir
    if data_dir and not storage.is_local(data_dir):
        base = data.name.split(":")[0].split("/")[0]
        local = storage.cache_dir(data_dir) / "tfds"
        try:
            storage.download_dir(storage.join(data_dir, base), local / base)
        except FileNotFoundError:
            raise ConfigError(
                f"received data.data_dir={data_dir!r}: it holds no prepared dataset {base!r}; prepare it with "
                f"`tfds build {base} --data_dir=<local dir>` and upload that folder there"
            ) from None
        data_dir = str(local)
    try:
        return tfds.builder(data.name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ConfigError(f"received data.name={data.name!r}: not a TFDS dataset ({error})") from None


def load_tfds(data: DataConfig, identity: dict[str, Any]) -> SourceData:
    """A TFDS dataset, prepared under ``data.data_dir`` (downloaded there if local and allowed).

    Args:
        data: the recipe's ``data`` section (name, data_dir, feature and label keys, splits).
        identity: the source's identity, recorded with the dataset.

    Raises:
        ConfigError: the dataset, its feature key or its label key is not what the recipe says.
        DownloadUnreachable: the dataset must be downloaded and a download host cannot be reached.
    """
    import requests

    builder = tfds_builder(data)
    if not builder.is_prepared():
        downloads.check_hosts(data.name, (builder.url_infos or {}).keys())  # once, quickly, before TFDS retries
    try:
        builder.download_and_prepare()
    except requests.ConnectionError as error:
        raise downloads.unreachable(data.name, downloads.host_of(error), error) from None
    return _from_builder(builder, data, identity, name=data.name.split("/")[0])


def load_prepared_dir(data: DataConfig, identity: dict[str, Any]) -> SourceData:
    """A prepared TFDS dataset folder at a URL, copied to the local cache when remote.

    Args:
        data: the recipe's ``data`` section (url, feature and label keys, splits).
        identity: the source's identity; its fingerprint names the local copy of a remote folder.

    Raises:
        ConfigError: the feature key or the label key is not what the recipe says.
    """
    import tensorflow_datasets as tfds

    url = data.url or ""
    local = Path(url.removeprefix("file://"))
    if not storage.is_local(url):
        local = storage.download_dir(url, storage.cache_dir(url) / "tfds-dirs" / fingerprint(identity))
    builder = tfds.builder_from_directory(str(local))
    return _from_builder(builder, data, identity, name=builder.info.name)


def _from_builder(builder, data: DataConfig, identity: dict[str, Any], *, name: str) -> SourceData:
    """The configured splits of a prepared TFDS builder, reduced to the feature and the label."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    source_features = builder.info.features
    feature_key, label_key = data.feature_key, data.label_key
    for key in (feature_key, label_key):
        if key not in source_features:
            raise ConfigError(
                f"received data.{'feature_key' if key == feature_key else 'label_key'}={key!r}, "
                f"expected one of the features of {data.name}: {sorted(source_features.keys())}"
            )
    feature = source_features[feature_key]
    label_feature = source_features[label_key]
    if isinstance(feature, tfds.features.Text):
        stored_feature = tfds.features.Text()
    else:
        # Raw tensors decode far faster than PNG-encoded images in the training pipeline.
        stored_feature = tfds.features.Tensor(shape=feature.shape, dtype=feature.np_dtype)
    if data.labels == "numbers":  # a regression target: any scalar numeric feature, stored as float32
        scalar = tuple(getattr(label_feature, "shape", ()) or ()) == ()
        if not scalar or not np.issubdtype(label_feature.np_dtype, np.number):
            raise ConfigError(
                f"received data.label_key={label_key!r} for a regression, but it is {label_feature!r}; "
                "expected a scalar number per example"
            )
        stored_label, class_names = tfds.features.Tensor(shape=(), dtype=np.float32), []
    elif isinstance(label_feature, tfds.features.ClassLabel):
        stored_label, class_names = tfds.features.ClassLabel(names=label_feature.names), list(label_feature.names)
    else:
        raise ConfigError(
            f"received data.label_key={label_key!r}, a {type(label_feature).__name__} and not a ClassLabel; "
            "a classifier needs class labels (set model.task: regression if it is a number to predict)"
        )
    features = tfds.features.FeaturesDict({feature_key: stored_feature, label_key: stored_label})
    numbers = data.labels == "numbers"

    def reduce(ex):
        label = tf.cast(ex[label_key], tf.float32) if numbers else ex[label_key]
        return {feature_key: ex[feature_key], label_key: label}

    splits = {}
    for role in SPLITS:
        spec = data.tfds_splits.get(role)
        if spec is None:
            continue
        ds = builder.as_dataset(split=spec).map(reduce)
        splits[role] = ds.take(data.limit) if data.limit else ds
    return SourceData(
        name=dataset_name(name),
        features=features,
        splits=splits,
        feature_key=feature_key,
        label_key=label_key,
        class_names=class_names,
        identity=identity,
        labels=data.labels,
    )


class TfdsSource:
    """``data.source: tfds``: a TFDS dataset by name (prepared under ``data.data_dir``)."""

    def identify(self, data: DataConfig) -> dict[str, Any]:
        """What identifies the TFDS dataset ``data.name``: its name, version, config, the splits and the limit.

        Raises:
            ConfigError: ``data.name`` is not a TFDS dataset.
        """
        builder = tfds_builder(data)
        return {
            "source": "tfds",
            "name": data.name,
            "version": str(builder.version),
            "config": builder.builder_config.name if builder.builder_config else None,
            "splits": dict(sorted(data.tfds_splits.items())),
            "limit": data.limit,
            **arrays.label_identity(data),
        }

    def load(
        self, data: DataConfig, identity: dict[str, Any], *, downloaded: dict[str, Path] | None = None
    ) -> SourceData:
        """The TFDS dataset, prepared if it is not yet (:func:`load_tfds`).

        Args:
            data: the recipe's ``data`` section.
            identity: what :meth:`identify` returned.
            downloaded: not used: TFDS downloads its own files.
        """
        return load_tfds(data, identity)


class PreparedTfdsSource:
    """A prepared TFDS folder named by ``data.source: files`` (``<name>/<version>`` with its info)."""

    def identify(self, data: DataConfig) -> dict[str, Any]:
        """What identifies the prepared folder ``data.url``: its files' keys, sizes, versions; the splits and keys.

        Raises:
            DataValidationError: ``data.window`` is set, or the folder holds no file.
        """
        if data.window is not None:
            raise DataValidationError(
                f"{data.url}: check 'window' failed: data.window selects day partitions of tables, and this is "
                "a prepared TFDS dataset; drop data.window, or point data.url at the tables"
            )
        return {
            "source": "files",
            "tfds_dir": data.url,
            "files": files.identity(files.list_files(data.url or "", suffixes=None)),
            "splits": dict(sorted(data.tfds_splits.items())),
            "keys": [data.feature_key, data.label_key],
            "limit": data.limit,
            **arrays.label_identity(data),
        }

    def load(
        self, data: DataConfig, identity: dict[str, Any], *, downloaded: dict[str, Path] | None = None
    ) -> SourceData:
        """The prepared folder, copied to the local cache when remote (:func:`load_prepared_dir`).

        Args:
            data: the recipe's ``data`` section.
            identity: what :meth:`identify` returned.
            downloaded: not used: the folder is copied here.
        """
        return load_prepared_dir(data, identity)


register_source("tfds", TfdsSource())
register_source(PREPARED_TFDS, PreparedTfdsSource())
