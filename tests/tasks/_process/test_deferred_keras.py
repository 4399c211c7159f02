"""Keras's unused namespaces load on first use, and then work as if imported eagerly.

Each case runs in a fresh interpreter: the deferral only means anything before Keras's
first import, and the test process imported Keras long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sklearn", "matplotlib.pyplot")


def fresh_python(code: str) -> dict:
    """Run ``code`` in a new interpreter; the JSON it prints last."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deferred_namespaces_keep_their_heavy_imports_out_until_used_then_work():
    seen = fresh_python(
        f"""
import json, sys
from kerasflow.tasks._process.deferred_keras import defer_unused_keras_namespaces
deferred = defer_unused_keras_namespaces()
import tensorflow as tf, keras, tensorflow_datasets
before = [m for m in {HEAVY!r} if m in sys.modules]
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
model.compile(loss="mse")
model.fit(tf.zeros((4, 3)), tf.zeros((4, 2)), verbose=0)
from keras.wrappers import SKLearnRegressor
seen = {{
    "deferred": deferred,
    "before": before,
    "wrapper": keras.wrappers.SKLearnClassifier.__name__,
    "regressor": SKLearnRegressor.__name__,
    "wrappers_dir": "SKLearnClassifier" in dir(keras.wrappers),
    "gallery": keras.visualization.plot_image_gallery.__name__,
    "tf_keras": tf.keras.layers.Dense.__name__,
    "tf_keras_is_keras_3": tf.keras.layers.Dense is keras.layers.Dense,
}}
print(json.dumps({{**seen, "after": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    )
    assert seen["deferred"] == ["keras._tf_keras", "keras.wrappers", "keras.visualization", "keras.src.visualization"]
    assert seen["before"] == [], "the deferred namespaces' packages were imported at start"
    assert seen["after"] == list(HEAVY), "using a namespace loads it"
    assert seen["wrapper"] == "SKLearnClassifier" and seen["regressor"] == "SKLearnRegressor"
    assert seen["wrappers_dir"]
    assert seen["gallery"] == "plot_image_gallery"
    assert seen["tf_keras"] == "Dense" and seen["tf_keras_is_keras_3"]


def test_nothing_is_deferred_once_keras_is_imported():
    seen = fresh_python(
        """
import json, sys, keras
from kerasflow.tasks._process.deferred_keras import defer_unused_keras_namespaces
print(json.dumps({"deferred": defer_unused_keras_namespaces(), "sklearn": "sklearn" in sys.modules}))
"""
    )
    assert seen == {"deferred": [], "sklearn": True}


def test_the_command_and_the_training_worker_defer_them_before_anything_imports_keras():
    # Each entry point runs with fast_exit.run replaced by a probe of sys.modules.
    probe = """
import json, runpy, sys
from kerasflow.tasks._process import fast_exit
def probe(command):
    print(json.dumps({
        "keras": "keras" in sys.modules,
        "placeholders": sorted(k for k, m in sys.modules.items() if type(m).__name__ == "_DeferredModule"),
    }))
fast_exit.run = probe
"""
    placeholders = ["keras._tf_keras", "keras.src.visualization", "keras.visualization", "keras.wrappers"]
    command = fresh_python(probe + "from kerasflow.flows.cli import main\nmain()")
    worker = fresh_python(probe + "runpy.run_module('kerasflow.tasks.train.launch.worker', run_name='__main__')")
    assert command == worker == {"keras": False, "placeholders": placeholders}
