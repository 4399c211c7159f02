"""The `kerasflow` command: exit codes, messages and the models commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("prefect_server")

# Two epochs: judged on accuracy alone (the recipe's per-class recall of 0.85 needs a full run).
SMOKE = ["--set", "training.epochs=2", "--set", "training.early_stopping.enabled=false", "--set", "gate.per_class={}"]


def run(*args, env: dict[str, str] | None = None):
    """Run the real command in a child process, against the session's Prefect server (or in ``env`` alone)."""
    from prefect.settings import PREFECT_API_URL

    if env is None:
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    result = subprocess.run(
        [sys.executable, "-m", "kerasflow.flows.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )
    return result.returncode, result.stdout + result.stderr


def test_recipes_lists_one_line_each():
    code, out = run("recipes")
    assert code == 0
    from kerasflow.flows.recipes import recipe_names

    assert len(out.strip().splitlines()) == len(recipe_names()) == 7
    assert out.startswith("cifar10_cnn") and "digits" in out


def test_recipes_reference_prints_the_committed_reference(monkeypatch):

    monkeypatch.delenv("KERASFLOW_ROOT", raising=False)
    code, out = run("recipes", "--reference")
    assert code == 0
    assert out == (Path(__file__).resolve().parents[3] / "docs" / "recipe-reference.md").read_text()


def test_bad_config_exits_2_with_one_message_and_writes_nothing(root):
    code, out = run("train", "--set", "training.epochs=zero")
    assert code == 2
    assert "training.epochs: received 'zero'" in out
    assert not root.exists()
    code, out = run("train", "no_such_recipe")
    assert code == 2 and "expected one of" in out


def test_k8s_render_prints_a_service_and_an_indexed_job_or_names_the_missing_image():
    import yaml

    args = ["k8s", "render", "digits", "--job-url", "s3://b/kf/runs/r1/job.json", "--run-id", "r1"]
    image = ["--set", "runtime.launcher.image=registry.example/kerasflow:gpu", "--set", "runtime.launcher.workers=3"]
    rendered = subprocess.run(
        [sys.executable, "-m", "kerasflow.flows.cli", *args, *image], capture_output=True, text=True, timeout=300
    )
    assert rendered.returncode == 0, rendered.stderr
    service, job = yaml.safe_load_all(rendered.stdout)  # stdout is the manifests alone, for kubectl apply -f -
    assert (service["kind"], job["kind"]) == ("Service", "Job")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 3
    code, out = run(*args)
    assert code == 2 and "received runtime.launcher.image=None" in out


def test_train_promote_reject_rollback_and_inspect(root):
    code, out = run("train", *SMOKE, "--set", "gate.value.accuracy.min=0.2")
    assert code == 0, out
    assert "digits v1 promoted to 'production' (first promotion)" in out
    assert "gate      passed" in out and f"root      {root}" in out

    code, out = run("train", *SMOKE)
    assert code == 0 and "training definition unchanged since digits v1" in out

    code, out = run("train", *SMOKE, "--force", "--set", "gate.value.accuracy.min=1.01")
    assert code == 3, out
    assert "rejected by the gate, 'production' unchanged" in out
    assert "REJECTED" in out
    # One message and the summary; the traceback went to the Prefect API, not the terminal.
    assert "Traceback" not in out and out.count("rejected by the gate") == 1, out

    code, out = run("train", *SMOKE, "--force", "--set", "gate.value.accuracy.min=0.2", "--set", "gate.change={}")
    assert code == 0, out
    assert "digits v3 promoted to 'production' (was v1)" in out

    code, out = run("models", "list", "--json")
    assert code == 0
    assert json.loads(out) == [{"name": "digits", "versions": 3, "aliases": {"production": 3}}]

    code, out = run("models", "list", "digits", "--json")
    rows = json.loads(out)
    assert [(r["version"], r["status"], r["aliases"]) for r in rows] == [
        (1, "registered", []),
        (2, "rejected", []),
        (3, "registered", ["production"]),
    ]

    code, out = run("models", "show", "digits@production", "--json")
    assert code == 0 and json.loads(out)["version"] == 3

    code, out = run("models", "promote", "digits", "2")
    assert code == 2 and "rejected by its gate" in out

    code, out = run("models", "rollback", "digits")
    assert code == 0 and "production v3 -> v1 (rollback)" in out
    code, out = run("models", "show", "digits")
    assert code == 0 and out.startswith("digits v1 (registered)")

    code, out = run("models", "promote", "digits", "3", "--alias", "staging")
    assert code == 0 and "staging (none) -> v3" in out

    code, out = run("models", "show", "../evil@1")
    assert code == 2 and "expected lowercase" in out
    code, out = run("models", "show", "digits@9")
    assert code == 2 and "has no version 9" in out


def test_train_without_a_configured_server_uses_the_embedded_one(root, tmp_path):
    """What `make run` does on a fresh machine: no PREFECT_API_URL, a fresh Prefect home."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    result = subprocess.run(
        [sys.executable, "-m", "kerasflow.flows.cli", "train", *SMOKE, "--set", "gate.value.accuracy.min=0.2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "digits v1 promoted to 'production' (first promotion)" in result.stdout
    # The server's database is the root's: a job on another root at the same time has its own.
    assert (root / ".prefect" / "prefect.db").exists(), "the run was recorded by the embedded server"
    assert not (tmp_path / "prefect-home" / "prefect.db").exists(), "not in the Prefect home every job shares"
    # What the terminal shows: no link to the server that is gone once the command ends, no TFDS
    # "downloading" for arrays already in memory, no TFDS warning about its own deprecated attribute.
    shown = result.stdout + result.stderr
    for noise in ("View at http", "Downloading and preparing dataset", "downloaded and prepared", "FeatureConnector"):
        assert noise not in shown, noise


def test_models_history_and_gc(tmp_path):
    from datetime import UTC, datetime, timedelta

    import keras

    from kerasflow.models import io
    from kerasflow.models.registry import ModelRegistry

    root = tmp_path / "root"
    registry = ModelRegistry(str(root / "registry"))
    io.save_model(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), tmp_path / "m.keras")
    for key in ("a", "b"):
        registry.register("digits", model_file=tmp_path / "m.keras", metadata={}, idempotency_key=key)
    registry.set_alias("digits", "production", 1, reason="first", actor="ci")
    registry.set_alias("digits", "production", 2, reason="better", actor="ci", flow_run_id="run-2")
    registry.rollback("digits", "production", actor="ci")
    dead = root / "registry" / "digits" / "versions" / "3"
    dead.mkdir()
    claimed = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    (dead / "claim.json").write_text(json.dumps({"idempotency_key": "dead", "claimed_at": claimed}))

    code, out = run("models", "history", "digits", "--root", str(root), "--json")
    assert code == 0, out
    history = json.loads(out)
    assert [(h["seq"], h["version"], h["previous_version"], h["reason"]) for h in history] == [
        (1, 1, None, "first"),
        (2, 2, 1, "better"),
        (3, 1, 2, "rollback"),
    ]
    code, out = run("models", "history", "digits", "--root", str(root))
    assert code == 0 and out.splitlines()[1].split()[2:5] == ["v1", "->", "v2"] and "run run-2" in out

    code, out = run("models", "gc", "digits", "--root", str(root), "--dry-run")
    assert code == 0 and out.startswith("v3: unfinished, claimed") and dead.exists()
    code, out = run("models", "gc", "digits", "--root", str(root))
    assert code == 0 and "removed 1 unfinished version(s): [3]" in out
    assert not dead.exists() and [m["version"] for m in registry.versions("digits")] == [1, 2]


def test_bad_recipes_and_bad_data_are_one_message_without_a_traceback(root, tmp_path):
    import gzip

    from tests.tables import event_frame

    bomb = tmp_path / "bomb.yaml"
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb.write_text("model:\n  params:\n" + "".join(f"    {line}\n" for line in levels))
    code, out = run("train", str(bomb))
    assert code == 2 and "Traceback" not in out
    assert out.strip() == (
        f"error: recipe file {bomb} is refused: with its YAML aliases (*name) expanded it holds more than 100,000 "
        "values, far more than any recipe (an alias bomb?); write the values out without nested aliases"
    )

    whole = gzip.compress(event_frame().to_csv(index=False).encode())
    (tmp_path / "events.csv.gz").write_bytes(whole[: len(whole) // 2])
    code, out = run("train", "fraud_tabular", "--set", f"data.url={tmp_path / 'events.csv.gz'}")
    assert code == 1 and "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and f"{tmp_path / 'events.csv.gz'}: check 'readable' failed" in errors[0]
    assert out.count("materializing files source") == 1, "not retried"
    assert not (root / "registry").exists()
