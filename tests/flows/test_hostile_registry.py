"""A registry an attacker wrote to: planted model files and metadata, through the flows and the CLI.

Anyone who can write to the bucket can replace a version's model.keras and rewrite the
sha256 in its metadata.json to match. Such a production model must not run code, must
not be loaded twice, must not switch the gate's change checks off, and the metadata must
not make kerasflow reach a URL it names.
"""

from __future__ import annotations

import http.server
import json
import threading
import zipfile

import pytest

from kerasflow.flows.predict import predict_flow
from kerasflow.flows.train import train_flow
from kerasflow.models import io
from kerasflow.models.registry import parse_model_ref
from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.gate import GateRejected
from tests.flows.cli.test_cli import run
from tests.flows.helpers import flow_run_record

pytestmark = pytest.mark.usefixtures("prefect_server")


class CountingServer:
    """An HTTP server on loopback that counts every request it gets (and serves nothing)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                self.send_response(404)
                self.end_headers()

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def listener():
    server = CountingServer()
    yield server
    server.close()


def version_dir(root, name="digits", version=1):
    return root / "registry" / name / "versions" / str(version)


def rewrite_metadata(root, edit, name="digits", version=1):
    path = version_dir(root, name, version) / "metadata.json"
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))


def plant(root, name="digits", version=1):
    """Replace the version's model with one whose Dense activation is os.system; fix up its sha256."""
    model_file = version_dir(root, name, version) / "model.keras"
    with zipfile.ZipFile(model_file) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(files["config.json"])
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["activation"] = {"module": "os", "class_name": "function", "config": "system"}
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(model_file, "w") as archive:
        for member, body in files.items():
            archive.writestr(member, body)
    sha256 = io.sha256_file(model_file)
    rewrite_metadata(root, lambda m: m.update(sha256=sha256), name, version)


def test_metadata_urls_are_never_followed(root, tmp_path, listener):
    train_flow(config=TrainConfig.smoke())

    def elsewhere(metadata):
        metadata["model_uri"] = f"{listener.url}/model.keras"
        metadata["saved_model_uri"] = f"{listener.url}/saved_model"
        metadata["files"] = {name: f"{listener.url}/{name}" for name in metadata.get("files", {})}
        metadata["dataset"]["uri"] = f"{listener.url}/dataset"

    rewrite_metadata(root, elsewhere)
    scored = predict_flow(model="digits@production", output=str(tmp_path / "scores.parquet"))
    assert scored.rows > 0  # the model and data came from the version's folder and the root, as always

    def data_elsewhere(metadata):
        metadata["config"]["data"] = {"source": "files", "url": f"{listener.url}/incoming.csv"}

    rewrite_metadata(root, data_elsewhere)
    with pytest.raises(ConfigError, match=r"names data at 'http://127.0.0.1:\d+/incoming.csv', outside the storage"):
        predict_flow(model="digits@production", output=str(tmp_path / "other.parquet"))
    assert listener.requests == []
    assert not (tmp_path / "other.parquet").exists()


def test_a_planted_production_model_is_refused_once_and_fails_the_gate(root, tmp_path):
    first = train_flow(config=TrainConfig.smoke())
    assert first.outcome == "promoted"
    plant(root)

    # Scoring: refused by name, in one attempt (retrying cannot change the file's bytes).
    state = predict_flow(model="digits@production", output=str(tmp_path / "s.parquet"), return_state=True)
    assert state.is_failed()
    with pytest.raises(io.UnsafeModelError, match=r"the function os.system, which is not a Keras activation"):
        state.result()
    _, task_runs, _ = flow_run_record(state.state_details.flow_run_id, tasks=("score",))
    assert [t.run_count for t in task_runs["score"]] == [1]

    # Retraining: the production model exists but cannot be evaluated, so the gate fails by name,
    # instead of promoting the candidate with no change checks.
    with pytest.raises(
        GateRejected, match=r"baseline digits v1 could not be evaluated: model file of digits v1 \(.*\) refused"
    ):
        train_flow(config=TrainConfig.smoke(), force=True)
    from kerasflow.models.registry import ModelRegistry

    registry = ModelRegistry(f"{root}/registry")
    assert registry.alias_target("digits", "production") == 1
    assert registry.get("digits", 2)["status"] == "rejected"

    # A team that changed the model's inputs can say so: then the gate judges on bounds alone, and says that.
    summary = train_flow(config=TrainConfig.smoke(gate={"unusable_baseline": "ignore"}), force=True)
    assert summary.outcome == "promoted"
    baseline_check = next(c for c in summary.gate.checks if c.kind == "baseline")
    assert baseline_check.verdict == "no baseline" and "judged on absolute bounds alone" in baseline_check.detail

    # The command line: exit 1, the cause once, no traceback.
    plant(root, version=3)
    code, out = run("predict", "digits@production", "--output", str(tmp_path / "cli.parquet"), "--root", str(root))
    assert code == 1, out
    assert out.count("refused") == 1 and "Traceback" not in out
    assert f"error: model file of digits v3 ({version_dir(root, version=3).as_uri()}/model.keras) refused: " in out
    assert "the function os.system" in out


def test_an_empty_alias_is_refused():
    with pytest.raises(ValueError, match="nothing after '@'"):
        parse_model_ref("digits@")
    assert parse_model_ref("digits") == ("digits", "production")
