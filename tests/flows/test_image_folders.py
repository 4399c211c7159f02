"""Images in class folders on S3 (moto's server over HTTP): train the CIFAR-style CNN, and refuse bad folders."""

from __future__ import annotations

import os
import re

import fsspec
import numpy as np
import pytest

from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
from tests.tables import IMAGE_CLASSES, write_image_folders

pytestmark = pytest.mark.usefixtures("prefect_server")

IMAGES = ["data.source=images", "data.image_size=[32, 32]"]


def test_an_image_folder_on_s3_trains_the_cifar_cnn_with_augmentation(s3_root, s3_bucket):
    write_image_folders(f"{s3_bucket}/photos", per_class=24)
    config = load_recipe(
        "cifar10_cnn",
        [
            *IMAGES,
            f"data.url={s3_bucket}/photos",
            "training.epochs=6",
            "training.batch_size=16",
            "training.learning_rate=0.002",
            "training.early_stopping.enabled=false",
            "model.augmentation={flip: horizontal, rotation: 0.05, zoom: 0.1}",
            "gate.value={accuracy: {min: 0.6}}",
        ],
    )
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    metadata = ModelRegistry(f"{s3_root}/registry").get("cifar10-cnn", 1)
    dataset = metadata["dataset"]
    assert dataset["class_names"] == sorted(IMAGE_CLASSES) and dataset["feature_shape"] == [32, 32, 3]
    assert sum(dataset["splits"].values()) == 72
    # Statistics: the classes and the sizes the images came in (24 to 47 pixels a side).
    train = dataset["statistics"]["train"]
    assert {name for name, _ in train["label"]["top"]} == set(IMAGE_CLASSES)
    assert train["columns"]["image_size"]["unique"] > 5
    model = ModelRegistry(f"{s3_root}/registry").load("cifar10-cnn", 1)
    assert [type(layer).__name__ for layer in model.layers[1:4]] == ["RandomFlip", "RandomRotation", "RandomZoom"]
    # The augmentation acts in training only: the saved model scores an image the same way twice.
    image = np.full((1, 32, 32, 3), 128.0, dtype="float32")
    np.testing.assert_allclose(model.predict(image, verbose=0), model.predict(image, verbose=0))


def test_images_are_stored_encoded_and_decoded_to_the_configured_size(tmp_path):
    written = write_image_folders(str(tmp_path / "photos"), per_class=5)
    data = DataConfig(source="images", url=str(tmp_path / "photos"), image_size=(20, 30), color_mode="grayscale")
    ref = materialization.materialize(load_source(data), str(tmp_path / "root"))
    assert ref.feature_shape == (20, 30, 1) and ref.image_size == (20, 30)
    images, labels = [], []
    for split in ("train", "validation", "test"):
        for x, y in load_batches(ref, split, batch_size=4).as_numpy_iterator():
            images.append(x)
            labels.append(y)
    pixels, labels = np.concatenate(images), np.concatenate(labels)
    assert pixels.shape == (15, 20, 30, 1) and pixels.dtype == np.float32 and 0 <= pixels.min() <= pixels.max() <= 255
    assert sorted(labels.tolist()) == [0] * 5 + [1] * 5 + [2] * 5
    # Stored as they came: the dataset holds about the files' bytes, not decoded pixels.
    files = sum(len(fsspec.open(key, "rb").open().read()) for keys in written.values() for key in keys)
    assert ref.num_bytes < 2 * files
    # The same folder listed again is the same dataset; one new image is a new one.
    before = fingerprint(identify(data))
    assert fingerprint(identify(data)) == before == ref.fingerprint
    (tmp_path / "photos" / "eel" / "extra.png").write_bytes((tmp_path / "photos" / "eel" / "0000.png").read_bytes())
    assert fingerprint(identify(data)) != before


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda url: fsspec.open(f"{url}/dog/0003.png", "wb").open().write(b"\x89PNG\r\n\x1a\n garbage"),
            r"dog/0003.png: check 'image' failed: cannot be decoded",
        ),
        (
            lambda url: fsspec.open(f"{url}/cat/notes.txt", "wb").open().write(b"hello"),
            r"cat/notes.txt: check 'format' failed: not an image file",
        ),
        (
            lambda url: fsspec.open(f"{url}/owl/", "wb").open().write(b""),
            r"check 'class folders' failed: class folder\(s\) \['owl'\] hold no image",
        ),
    ],
    ids=["corrupt image", "not an image", "empty class folder"],
)
def test_a_bad_image_folder_is_one_error_naming_the_key_and_nothing_is_stored(s3_root, s3_bucket, damage, message):
    url = f"{s3_bucket}/photos"
    write_image_folders(url, per_class=4)
    damage(url)
    data = DataConfig(source="images", url=url, image_size=(16, 16))
    with pytest.raises(DataValidationError, match=message):
        materialization.materialize(load_source(data), s3_root)
    assert not fsspec.filesystem("s3").glob(f"{s3_root}/datasets/*/ref.json")


def _link_to_zero(folder):
    os.symlink("/dev/zero", folder / "cat" / "endless.png")


def _fifo(folder):
    os.mkfifo(folder / "cat" / "pipe.png")


def _dangling(folder):
    os.symlink(folder / "gone.png", folder / "dog" / "moved.png")


def _empty_file_at_the_top(folder):
    (folder / "cover.png").write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_link_to_zero, r"cat/endless.png: check 'regular file' failed: a link to a device, FIFO or socket"),
        (_fifo, r"cat/pipe.png: check 'regular file' failed: a device, FIFO or socket"),
        (_dangling, r"dog/moved.png: check 'regular file' failed: a link to nothing"),
        (_empty_file_at_the_top, r"cover.png: check 'layout' failed: images belong directly in a class folder"),
    ],
    ids=["link to /dev/zero", "FIFO", "dangling link", "empty file at the top"],
)
def test_only_regular_files_in_class_folders_are_read(tmp_path, damage, message):
    folder = tmp_path / "photos"
    write_image_folders(str(folder), per_class=3)
    damage(folder)
    data = DataConfig(source="images", url=str(folder), image_size=(16, 16))
    # Refused at listing, before any byte is read: a FIFO would block the read for good, /dev/zero fill memory.
    with pytest.raises(DataValidationError, match=message):
        identify(data)


def test_a_link_to_an_image_is_read_as_the_image(tmp_path):
    folder = tmp_path / "photos"
    write_image_folders(str(folder), per_class=3)
    os.symlink(folder / "cat" / "0000.png", folder / "cat" / "linked.png")
    data = DataConfig(source="images", url=str(folder), image_size=(16, 16))
    ref = materialization.materialize(load_source(data), str(tmp_path / "root"))
    assert sum(ref.splits.values()) == 10


def test_an_image_that_changed_since_it_was_listed_is_retried_not_read_past_its_size(tmp_path):
    from kerasflow.tasks.failures import DeterministicFailure, KerasflowError

    folder = tmp_path / "photos"
    write_image_folders(str(folder), per_class=3)
    data = DataConfig(source="images", url=str(folder), image_size=(16, 16))
    identity = identify(data)
    with open(folder / "dog" / "0001.png", "ab") as grown:
        grown.write(b"\0" * 4096)  # still being written when it was listed
    with pytest.raises(KerasflowError, match=r"dog/0001.png: more bytes than the \d+ listed") as raised:
        load_source(data, identity)
    assert not isinstance(raised.value, DeterministicFailure)  # a later try reads the finished file


@pytest.mark.parametrize(
    ("fmt", "mode", "kind"),
    [("TIFF", "RGB", "TIFF (RGB)"), ("PPM", "RGB", "PPM (RGB)"), ("ICO", "RGB", "ICO"), ("BMP", "1", "BMP (1)")],
)
def test_an_image_training_could_not_decode_is_refused_at_ingest_naming_it(tmp_path, fmt, mode, kind):
    from PIL import Image

    folder = tmp_path / "photos"
    write_image_folders(str(folder), per_class=3)
    pixels = (np.random.default_rng(0).random((20, 20, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).convert(mode).save(folder / "cat" / "0001.png", format=fmt)  # named .png
    data = DataConfig(source="images", url=str(folder), image_size=(16, 16))
    expected = rf"cat/0001.png: check 'image' failed: a {re.escape(kind)}.* cannot read"
    with pytest.raises(DataValidationError, match=expected):
        materialization.materialize(load_source(data), str(tmp_path / "root"))
    assert not list((tmp_path / "root").glob("datasets/*/ref.json"))  # nothing published


def test_a_decompression_bomb_is_bad_data_naming_the_file_not_a_retry(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "photos"
    write_image_folders(str(folder), per_class=3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the 24-48 pixel squares become bombs
    data = DataConfig(source="images", url=str(folder), image_size=(16, 16))
    with pytest.raises(DataValidationError, match=r"check 'image' failed: cannot be decoded \(DecompressionBombError"):
        load_source(data)


def test_images_are_read_again_block_by_block_when_stored_and_a_rewritten_one_is_caught(tmp_path):
    from kerasflow.tasks.failures import DeterministicFailure, KerasflowError

    folder = tmp_path / "photos"
    write_image_folders(str(folder), per_class=3)
    data = DataConfig(source="images", url=str(folder), image_size=(16, 16))
    source = load_source(data)  # checked and hashed, one image at a time; no image is held
    target = folder / "cat" / "0002.png"
    content = bytearray(target.read_bytes())
    content[-20] ^= 0xFF  # the same size, other bytes: it would belong to another split
    target.write_bytes(bytes(content))
    with pytest.raises(KerasflowError, match=r"cat/0002.png: changed while it was ingested") as raised:
        materialization.materialize(source, str(tmp_path / "root"))
    assert not isinstance(raised.value, DeterministicFailure)  # retried: the next try lists the new bytes
    assert not list((tmp_path / "root").glob("datasets/*/ref.json"))


def test_a_folder_of_images_is_scored_one_row_per_image_keyed_by_its_path(root, tmp_path):
    # `kerasflow predict NAME --data <folder>` with an image model ingested the folder as a training set.
    import pandas as pd
    from PIL import Image

    from kerasflow.flows.predict import predict_flow
    from kerasflow.tasks.config import TrainConfig

    write_image_folders(str(tmp_path / "photos"), per_class=8)
    data = {"source": "images", "url": str(tmp_path / "photos"), "image_size": [16, 20]}
    training = {"batch_size": 8}
    summary = train_flow(
        config=TrainConfig.smoke(data=data, model={"name": "pets"}, training=training, gate={"value": {}})
    )
    assert summary.outcome == "promoted", summary.message
    # New images: some in a class folder (named or not as a class), some loose, one grayscale JPEG.
    incoming = tmp_path / "incoming"
    write_image_folders(str(incoming / "batch-2"), per_class=2, seed=5)
    Image.new("RGB", (30, 40), (200, 60, 40)).save(incoming / "loose.png")
    Image.new("L", (25, 25), 90).save(incoming / "gray.jpg")
    output = str(tmp_path / "scores.parquet")

    scored = predict_flow(model="pets", output=output, data=DataConfig(source="files", url=str(incoming)))

    frame = pd.read_parquet(output)
    assert scored.rows == len(frame) == 8
    assert sorted(frame["image"]) == sorted(
        [f"batch-2/{name}/{i:04d}.png" for name in IMAGE_CLASSES for i in range(2)] + ["gray.jpg", "loose.png"]
    )
    assert set(frame["prediction"]) <= set(IMAGE_CLASSES)
    probabilities = frame[[f"p_{name}" for name in sorted(IMAGE_CLASSES)]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The same numbers as the registered model on the images decoded as training decodes them.
    import tensorflow as tf

    from kerasflow.tasks.data.stored_examples import decoded_image

    model = ModelRegistry(f"{root}/registry").load("pets", 1)
    pixels = np.stack(
        [decoded_image(tf.io.read_file(str(incoming / key)), height=16, width=20, channels=3) for key in frame["image"]]
    )
    np.testing.assert_allclose(model.predict(pixels, verbose=0), probabilities, atol=1e-5)

    (incoming / "notes.txt").write_text("not an image")
    with pytest.raises(DataValidationError, match=r"notes.txt: check 'format' failed: not an image file"):
        predict_flow(
            model="pets", output=str(tmp_path / "again.parquet"), data=DataConfig(source="files", url=str(incoming))
        )
    assert not (tmp_path / "again.parquet").exists()
