"""A real TFDS builder whose download host never resolves (``.invalid``, RFC 2606).

Importing this module registers ``kerasflow_offline_digits``. Its URL is registered in the
``checksums.tsv`` beside it, as the TFDS catalog registers its datasets' URLs, so TFDS
and kerasflow see it exactly as they see ``mnist`` on a machine without network.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

URL = "http://kerasflow-offline.invalid/digits.npz"


class KerasflowOfflineDigits(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        path = dl_manager.download(URL)
        return {"train": self._generate_examples(path), "test": self._generate_examples(path)}

    def _generate_examples(self, path):
        with np.load(path) as arrays:
            for i, (image, label) in enumerate(zip(arrays["images"], arrays["labels"], strict=True)):
                yield i, {"image": image, "label": int(label)}
