"""A registered version's SavedModel is the portable artifact: it scores in a process that never imports kerasflow.

For each kind of data kerasflow trains (the bundled digits, a typed table with numbers, text
categories and gaps, a folder of images), a model is trained and registered through
``train_flow`` and some rows are scored by ``predict_flow``; then a child Python process, in
isolated mode and unable to import kerasflow, loads the version's ``saved_model/`` with
TensorFlow alone, feeds it the same rows as a client would prepare them (the table's
columns from a pandas DataFrame of ``object`` columns, and again as NumPy ``<U`` arrays; the
images decoded from their files) and writes its outputs, which must equal ``predict``'s
probabilities to 1e-5. A model of one input takes it as ``inputs`` whatever the training
process built before. ``model.keras`` is not portable: a typed table's names kerasflow's own
layers (``StackColumns``, ``FillMissing``...), which Keras alone cannot build. What a client
needs is written in docs/concepts/storage.md, "Scoring without kerasflow".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect import flow

from kerasflow.flows.predict import predict_flow
from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import DataConfig, TrainConfig
from kerasflow.tasks.ingest import ingest
from kerasflow.tasks.score.inputs import split_batches
from tests.tables import IMAGE_CLASSES, tickets_frame, transactions_frame, write_frame, write_image_folders

pytestmark = pytest.mark.usefixtures("prefect_server")

# The client, as a team would write it: TensorFlow, NumPy and pandas. It runs under
# ``python -I`` (no PYTHONPATH, no current folder on sys.path), and since kerasflow is
# installed in this environment, a finder refuses it, so an import anywhere (TensorFlow
# reviving a Keras object, say) fails the client instead of passing unnoticed.
CLIENT = '''
import importlib.abc
import json
import sys


class NoKerasflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "kerasflow":
            raise ImportError(f"the client imported {name}")
        return None


sys.meta_path.insert(0, NoKerasflow())

import numpy as np
import pandas as pd
import tensorflow as tf

request = json.loads(open(sys.argv[1]).read())
serve = tf.saved_model.load(request["saved_model"]).signatures["serve"]
_, specs = serve.structured_input_signature  # input name -> tf.TensorSpec


def run(feed):
    (outputs,) = serve(**feed).values()  # one output: the probabilities
    return outputs.numpy()


MISSING_TEXT, MISSING_INTEGER = "(missing)", -(2**63)


def table_column(values, spec, *, unicode, free_text=False):
    """A column as its input wants it: a missing category is "(missing)", a missing free text "", an
    integer -2**63, a number NaN."""
    if spec.dtype == tf.string:
        text = values.astype(object).where(values.notna(), "" if free_text else MISSING_TEXT)
        return np.array(text.tolist(), dtype=str) if unicode else text.to_numpy(dtype=object)
    if spec.dtype == tf.int64:
        return values.astype("Int64").to_numpy(dtype="int64", na_value=MISSING_INTEGER)
    return values.to_numpy(dtype="float32", na_value=np.nan)


results, dtypes = {}, {}
if request["kind"] == "arrays":
    results["arrays"] = run({"inputs": np.load(request["rows"])})
elif request["kind"] == "images":
    height, width, channels = specs["inputs"].shape[1:]
    pixels = []
    for path in request["images"]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        pixels.append(tf.image.resize(image, (height, width), method="bilinear"))
    results["images"] = run({"inputs": tf.stack(pixels)})
else:
    frame = pd.read_parquet(request["rows"])
    for how in ("object", "unicode"):
        feed = {
            name: table_column(
                frame[request["columns"][name]],
                spec,
                unicode=how == "unicode",
                free_text=request["columns"][name] in request.get("free_text", []),
            )
            for name, spec in specs.items()
        }
        dtypes[how] = sorted({column.dtype.kind for column in feed.values()})
        results[how] = run(feed)

keras_alone = None
if "model_file" in request:  # model.keras, by Keras alone: a typed table's names kerasflow's layers
    try:
        tf.keras.models.load_model(request["model_file"], compile=False)
    except Exception as error:
        keras_alone = str(error)

np.savez(request["output"], **results)
print(json.dumps({
    "keras_alone": keras_alone,
    "inputs": {name: [spec.dtype.name, list(spec.shape)] for name, spec in specs.items()},
    "outputs": {name: [spec.dtype.name, list(spec.shape)] for name, spec in serve.structured_outputs.items()},
    "dtypes": dtypes,
    "kerasflow": sorted(module for module in sys.modules if module.partition(".")[0] == "kerasflow"),
}))
'''


def score_without_kerasflow(tmp_path: Path, *, saved_model: Path, kind: str, **request) -> tuple[dict, dict]:
    """Run the client in a child process on ``saved_model``; its outputs (by feed) and what it saw.

    Args:
        tmp_path: the test's folder, where the client, its request and its outputs are written.
        saved_model: the version's ``saved_model/`` folder.
        kind: ``arrays`` (a ``.npy`` of examples), ``images`` (image files) or ``table`` (a Parquet file).
        **request: what the kind reads: ``rows``, ``images``, ``columns`` (input name -> column name),
            ``free_text`` (the columns of the ``text`` type: a missing one is fed as "").

    Returns:
        (output name -> the outputs, the client's report: signature, dtypes fed, kerasflow modules imported).
    """
    client, request_file, output = tmp_path / "client.py", tmp_path / "request.json", tmp_path / "served.npz"
    client.write_text(CLIENT)
    request_file.write_text(
        json.dumps({"saved_model": str(saved_model), "kind": kind, "output": str(output), **request})
    )
    done = subprocess.run(
        [sys.executable, "-I", str(client), str(request_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{kind}: the client saw inputs {report['inputs']} and outputs {report['outputs']}")
    assert report["kerasflow"] == [], f"the client imported {report['kerasflow']}"
    with np.load(output) as outputs:
        return {name: outputs[name] for name in outputs.files}, report


def probabilities(frame: pd.DataFrame, class_names: list[str]) -> np.ndarray:
    """The probabilities ``predict`` wrote, one column per class in ``class_names``' order."""
    return frame[[f"p_{name}" for name in class_names]].to_numpy("float64")


def assert_same_scores(served: np.ndarray, predicted: np.ndarray, *, kind: str) -> None:
    """The SavedModel's outputs equal predict's probabilities to 1e-5; prints the largest difference."""
    served = np.asarray(served, "float64")
    assert served.shape == predicted.shape, (served.shape, predicted.shape)
    print(f"{kind}: max abs difference {np.abs(served - predicted).max():.3g} over {served.size} values")
    np.testing.assert_allclose(served, predicted, rtol=0, atol=1e-5)


def saved_model_of(root: Path, name: str, version: int) -> Path:
    """The version's SavedModel folder, as the registry records it."""
    registry = ModelRegistry(f"{root}/registry")
    path = Path(registry.version_url(name, version).removeprefix("file://")) / "saved_model"
    assert registry.get(name, version)["saved_model_uri"] == f"file://{path}"
    assert path == root / "registry" / name / "versions" / str(version) / "saved_model"
    return path


@flow(name="test-ingest")
def ingest_in_a_flow(data: DataConfig, root: str):
    """The ingest task in a flow of its own: the stored dataset ``data`` names (ingested once, then reused)."""
    return ingest(data, root=root)


def test_the_digits_savedmodel_scores_the_test_split_as_predict_does_without_kerasflow(root, tmp_path):
    summary = train_flow(config=TrainConfig.smoke())
    assert summary.outcome == "promoted", summary.message
    output = tmp_path / "scores.parquet"
    predict_flow(model="digits@1", output=str(output))
    frame = pd.read_parquet(output)
    # The same rows, in the order predict scored them: the stored test split.
    dataset = ingest_in_a_flow(TrainConfig.smoke().data, str(root))
    pixels = np.concatenate([x for x, _ in split_batches(dataset, "test", rows=256)])
    assert len(pixels) == len(frame) and list(frame["row"]) == list(range(len(frame)))
    np.save(tmp_path / "pixels.npy", pixels)

    served, report = score_without_kerasflow(
        tmp_path, saved_model=saved_model_of(root, "digits", 1), kind="arrays", rows=str(tmp_path / "pixels.npy")
    )

    assert report["inputs"] == {"inputs": ["float32", [None, 8, 8, 1]]}
    assert list(report["outputs"].values()) == [["float32", [None, 10]]]
    class_names = ModelRegistry(f"{root}/registry").get("digits", 1)["dataset"]["class_names"]
    assert_same_scores(served["arrays"], probabilities(frame, class_names), kind="digits")


# Every column type of a table, with gaps: numbers (a missing one NaN), text and integer categories (a
# missing one its own category), a hashed text column and a hashed cross.
TABLE_COLUMNS = [
    "data.columns={amount: float_normalized, hour: {type: float_discretized, num_bins: 6}, "
    "country: string_categorical, merchant_category: {type: string_hashed, num_bins: 16}, "
    "channel: string_categorical, customer_age: float_normalized, mcc: integer_categorical}",
    "data.crosses=[{columns: [country, channel], num_bins: 16}]",
]


def with_mcc(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with an integer category column (a merchant category code), missing where the category is."""
    codes = {"grocery": 5411, "fuel": 5541, "restaurants": 5812, "travel": 4722}
    return frame.assign(mcc=frame["merchant_category"].map(codes).astype("Int64"))


def test_a_typed_tables_savedmodel_scores_objects_and_unicode_arrays_as_predict_does_without_kerasflow(root, tmp_path):
    url = write_frame(str(tmp_path / "train.parquet"), with_mcc(transactions_frame(800, seed=2, fraud_rate=0.3)))
    overrides = [f"data.url={url}", "training.epochs=2", "gate.value={}", "gate.change={}", *TABLE_COLUMNS]
    summary = train_flow(config=load_recipe("fraud_tabular", overrides))
    assert summary.outcome == "promoted", summary.message
    # New rows with every kind of gap and a country never seen in training.
    incoming = with_mcc(transactions_frame(60, seed=11)).drop(columns=["label"])
    incoming.loc[:4, "country"] = "xx"
    incoming.loc[5:9, "amount"] = np.nan
    incoming.loc[10:14, ["country", "merchant_category", "channel"]] = None
    incoming.loc[15:19, "customer_age"] = np.nan
    incoming = incoming.assign(txn_id=[f"t{i}" for i in range(len(incoming))])
    rows = write_frame(str(tmp_path / "incoming.parquet"), incoming)
    assert incoming["mcc"].isna().sum() > 10 and incoming["country"].isna().sum() >= 5
    output = tmp_path / "scores.parquet"
    predict_flow(
        model="fraud-tabular@1", output=str(output), data=DataConfig(source="files", url=rows), key_column="txn_id"
    )
    frame = pd.read_parquet(output)
    assert list(frame["txn_id"]) == list(incoming["txn_id"])

    metadata = ModelRegistry(f"{root}/registry").get("fraud-tabular", 1)
    columns = list(metadata["dataset"]["column_types"])
    served, report = score_without_kerasflow(
        tmp_path,
        saved_model=saved_model_of(root, "fraud-tabular", 1),
        kind="table",
        rows=rows,
        columns={column: column for column in columns},  # plain names: each input is named after its column
        model_file=str(saved_model_of(root, "fraud-tabular", 1).parent / "model.keras"),
    )

    # model.keras is no client's artifact: Keras alone cannot build kerasflow's own layers.
    layers = "FillMissing|MissingIndicator|StackColumns|TakeColumns"
    assert re.search(rf"Could not locate class '({layers})'", report["keras_alone"]), report["keras_alone"][:300]

    dtypes = {"amount": "float32", "hour": "float32", "customer_age": "float32", "mcc": "int64"}
    assert report["inputs"] == {c: [dtypes.get(c, "string"), [None]] for c in columns}
    assert list(report["outputs"].values()) == [["float32", [None, 1]]]
    assert report["dtypes"] == {"object": ["O", "f", "i"], "unicode": ["U", "f", "i"]}
    # One sigmoid: the probability of the second class, class_names[1].
    class_names = metadata["dataset"]["class_names"]
    assert class_names == ["0", "1"]
    expected = probabilities(frame, class_names)[:, 1:]
    assert_same_scores(served["object"], expected, kind="typed table, object columns")
    assert_same_scores(served["unicode"], expected, kind="typed table, <U arrays")


def test_a_text_tables_savedmodel_scores_raw_text_as_predict_does_without_kerasflow(root, tmp_path):
    # The guide's IMDB model trained from a file: support tickets, a free-text description beside a category
    # (training's tickets all have one, so no two rows are alike; some of those scored have none).
    columns = (
        "data.columns={description: {type: text, output_mode: multi_hot, max_tokens: 200}, product: string_categorical}"
    )
    url = write_frame(str(tmp_path / "tickets.parquet"), tickets_frame(300, seed=1).dropna())
    config = TrainConfig.smoke(data={"source": "files", "url": url, "label_column": "queue"}, model={"name": "tickets"})
    config = config.with_overrides([columns, "model.family=imdb_text", "gate.value={}"])
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    incoming = tickets_frame(30, seed=7).drop(columns=["queue"])
    incoming.loc[:2, "description"] = None
    incoming.loc[3, "description"] = "Zyxx qwerty, REFUND!!!"
    rows = write_frame(str(tmp_path / "incoming.parquet"), incoming)
    output = tmp_path / "scores.parquet"
    predict_flow(model="tickets@1", output=str(output), data=DataConfig(source="files", url=rows))
    frame = pd.read_parquet(output)

    served, report = score_without_kerasflow(
        tmp_path,
        saved_model=saved_model_of(root, "tickets", 1),
        kind="table",
        rows=rows,
        columns={column: column for column in ("description", "product")},
        free_text=["description"],
    )

    assert report["inputs"] == {"description": ["string", [None]], "product": ["string", [None]]}
    metadata = ModelRegistry(f"{root}/registry").get("tickets", 1)
    assert metadata["builder"]["reference"] == "imdb_text"
    class_names = metadata["dataset"]["class_names"]
    assert list(report["outputs"].values()) == [["float32", [None, len(class_names)]]]
    expected = probabilities(frame, class_names)
    assert_same_scores(served["object"], expected, kind="text table, object columns")
    assert_same_scores(served["unicode"], expected, kind="text table, <U arrays")


def test_an_image_folders_savedmodel_scores_image_files_as_predict_does_without_kerasflow(root, tmp_path):
    from PIL import Image

    write_image_folders(str(tmp_path / "photos"), per_class=8)
    data = {"source": "images", "url": str(tmp_path / "photos"), "image_size": [16, 16]}
    config = TrainConfig.smoke(data=data, model={"name": "pets"}, training={"batch_size": 8}, gate={"value": {}})
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    incoming = tmp_path / "incoming"
    write_image_folders(str(incoming), per_class=2, seed=5)
    Image.new("L", (25, 30), 90).save(incoming / "gray.jpg")  # grayscale, fed to an RGB model
    output = tmp_path / "scores.parquet"
    predict_flow(model="pets@1", output=str(output), data=DataConfig(source="files", url=str(incoming)))
    frame = pd.read_parquet(output)
    assert len(frame) == 7

    served, report = score_without_kerasflow(
        tmp_path,
        saved_model=saved_model_of(root, "pets", 1),
        kind="images",
        images=[str(incoming / key) for key in frame["image"]],
    )

    assert report["inputs"] == {"inputs": ["float32", [None, 16, 16, 3]]}
    assert list(report["outputs"].values()) == [["float32", [None, 3]]]
    class_names = ModelRegistry(f"{root}/registry").get("pets", 1)["dataset"]["class_names"]
    assert class_names == sorted(IMAGE_CLASSES)
    assert_same_scores(served["images"], probabilities(frame, class_names), kind="image folder")


@pytest.mark.parametrize("api", ["functional", "sequential"])
def test_a_one_input_models_serve_argument_is_inputs_however_many_models_the_process_built_before(tmp_path, api):
    import keras
    import tensorflow as tf

    from kerasflow.models import io

    def build(name: str | None = None):
        inputs = keras.Input((3,), name=name)
        if api == "sequential":
            return keras.Sequential([inputs, keras.layers.Dense(2)])
        return keras.Model(inputs, keras.layers.Dense(2)(inputs))

    rows = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    # Keras numbers an unnamed input by what the process built before (keras_tensor, keras_tensor_7...).
    for number, model in enumerate([build(), build(), build("pixels")]):
        serve = tf.saved_model.load(str(io.export_saved_model(model, tmp_path / str(number)))).signatures["serve"]
        name = "pixels" if number == 2 else io.SERVING_INPUT  # a builder's own name is kept
        assert list(serve.structured_input_signature[1]) == [name]
        outputs = serve(**{name: rows})["output_0"].numpy()
        np.testing.assert_allclose(outputs, model.predict(rows, verbose=0), rtol=1e-6, atol=1e-6)
