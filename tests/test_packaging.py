"""kerasflow installs like any library: one import namespace, package data, a cheap import.

The wheel test builds the wheel from a copy of the sources and installs it into a fresh
virtual environment that borrows this one's dependencies (TensorFlow, Keras, Prefect) as
a plain path entry, so nothing is downloaded and the checkout's editable install is not
seen. It then works in a copy of docs/examples/team_project/, a team's project with its
own ``flows/``, ``tasks.py`` and ``models/``: the names kerasflow's source folders have.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

import kerasflow

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
TEAM_PROJECT = ROOT / "docs" / "examples" / "team_project"
# What the wheel is built from: the project's metadata and the package folders, nothing else.
SOURCES = ("pyproject.toml", "README.md", "kerasflow", "flows", "tasks", "models")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _package_folders() -> dict[str, Path]:
    """Every folder that installs, by package name, from the package-dir mapping."""
    folders = {}
    for package, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for path in [base, *sorted(p for p in base.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
            folders[".".join([package, *path.relative_to(base).parts])] = path
    return folders


def test_every_folder_of_flows_tasks_and_models_installs_under_kerasflow():
    assert SETUPTOOLS["package-dir"] == {
        "kerasflow": "kerasflow",
        "kerasflow.flows": "flows",
        "kerasflow.tasks": "tasks",
        "kerasflow.models": "models",
    }
    assert sorted(SETUPTOOLS["packages"]) == sorted(_package_folders())
    assert PYPROJECT["project"]["scripts"] == {"kerasflow": "kerasflow.flows.cli:main"}
    assert [p.name for p in (ROOT / "kerasflow").iterdir() if p.name != "__pycache__"] == ["__init__.py"]


def test_every_file_the_code_reads_is_package_data():
    package_data = SETUPTOOLS["package-data"]
    for package, folder in _package_folders().items():
        for path in folder.iterdir():
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                globs = package_data.get(package, [])
                assert any(fnmatch.fnmatch(path.name, g) for g in globs), f"{path} is not package data of {package}"


def test_import_kerasflow_loads_nothing_else_and_changes_nothing():
    """``import kerasflow`` is cheap and inert: no other module loaded, the environment untouched."""
    probe = (
        "import os, sys; before, env = set(sys.modules), dict(os.environ); import kerasflow; "
        "print('\\n'.join(sorted(set(sys.modules) - before))); "
        "print('environment changed' if dict(os.environ) != env else '')"
    )
    # Without the suite's Prefect settings, so a default kerasflow set would show.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    assert result.stdout.split() == ["kerasflow"]
    # -X importtime: "import time: self [us] | cumulative | imported package"
    kerasflow_us = next(
        int(line.split("|")[1]) for line in result.stderr.splitlines() if line.rstrip().endswith("| kerasflow")
    )
    assert kerasflow_us < 50_000, f"import kerasflow took {kerasflow_us} us"


def test_the_public_api_names_the_flows_config_registry_and_steps():
    assert set(kerasflow.__all__) == set(kerasflow._EXPORTS)
    for name in kerasflow.__all__:
        value = getattr(kerasflow, name)
        assert value is not None and name in dir(kerasflow)
    from prefect import Flow
    from prefect.tasks import Task

    assert isinstance(kerasflow.train_flow, Flow) and isinstance(kerasflow.predict_flow, Flow)
    steps = ("ingest", "validate", "train", "evaluate", "gate", "register", "promote")
    assert [getattr(kerasflow, step).name for step in steps] == list(steps)
    assert all(isinstance(getattr(kerasflow, step), Task) for step in steps)
    assert kerasflow.load_recipe("digits").model.name == "digits"
    assert kerasflow.__version__ == importlib.metadata.version("kerasflow")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = kerasflow.nope


def _run(args, *, cwd, env=None, timeout=300):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """A fresh virtual environment with kerasflow installed from its wheel, and nothing from the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=IGNORE)
        else:
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", source], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("kerasflow-*.whl")

    env = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", env], cwd=tmp)
    python = env / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).strip())
    # This environment's dependencies as a plain path entry: its .pth files (the editable
    # install's finder among them) are not run, so the checkout's kerasflow is invisible.
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([python, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps", "--no-index",
          "--ignore-installed", wheel], cwd=tmp)  # fmt: skip
    return env, purelib


@pytest.mark.wheel
@pytest.mark.usefixtures("prefect_server")
def test_the_wheel_trains_predicts_renders_and_runs_a_worker_in_a_team_project(wheel_env, tmp_path):
    from prefect.settings import PREFECT_API_URL

    env, purelib = wheel_env
    project = tmp_path / "team_project"
    shutil.copytree(TEAM_PROJECT, project, ignore=IGNORE)
    python, cli = env / "bin" / "python", env / "bin" / "kerasflow"
    # The team's folder first on the path, as in its own shell: its flows/, tasks.py, models/.
    environ = {**os.environ, "PYTHONPATH": str(project), "PREFECT_API_URL": PREFECT_API_URL.value()}
    environ.pop("KERASFLOW_ROOT", None)

    # The collision of issue 12: `import kerasflow.flows.train` beside the team's own modules.
    probe = (
        "import json, sys, flows.nightly, tasks, models, kerasflow, kerasflow.flows.train, kerasflow.flows.cli; "
        "print(json.dumps({m: getattr(sys.modules[m], '__file__', None) for m in sorted(sys.modules) "
        "if m.split('.')[0] in ('kerasflow', 'flows', 'tasks', 'models')}))"
    )
    files = json.loads(_run([python, "-c", probe], cwd=project, env=environ))
    ours = {m: Path(f) for m, f in files.items() if m.startswith("kerasflow") and f}
    assert ours["kerasflow"] == purelib / "kerasflow" / "__init__.py"
    assert all(purelib in path.parents for path in ours.values()), ours
    assert Path(files["tasks"]) == project / "tasks.py"
    assert Path(files["models"]) == project / "models" / "__init__.py"
    assert Path(files["flows.nightly"]) == project / "flows" / "nightly.py"

    # kerasflow train on the team's recipe, its own builder and custom layer (models/net.py);
    # the training runs in a worker process (python -m kerasflow.tasks.train.launch.worker) of the
    # wheel's environment, which imports the team's builder from the team's `models`.
    root = tmp_path / "root"
    worker = ["--set", "runtime.launcher.kind=local_processes", "--set", "runtime.launcher.workers=1"]
    out = _run([cli, "train", "recipe.yaml", "--set", f"storage.root={root}", *worker], cwd=project, env=environ)
    assert "kerasflow: team-digits v1 promoted to 'production' (first promotion)" in out
    (worker_log,) = root.glob("runs/*/workers/worker-0.log")
    assert worker_log.stat().st_size > 0
    (metadata_file,) = root.glob("registry/team-digits/versions/1/metadata.json")
    assert json.loads(metadata_file.read_text())["builder"]["reference"] == "models.net:build"

    # Its registered ScaledResidual loads only when the scoring trusts the team's package.
    scores = ["predict", "team-digits", "--output", tmp_path / "scores.parquet", "--root", root]
    refused = subprocess.run([cli, *scores], cwd=project, env=environ, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1 and "'models>ScaledResidual' from a package" in refused.stderr, refused.stderr
    out = _run([cli, *scores, "--trust", "models"], cwd=project, env=environ)
    assert "kerasflow: scored 251 row(s) with team-digits v1" in out

    args = ["k8s", "render", "recipe.yaml", "--job-url", "s3://b/kf/runs/r1/job.json", "--run-id", "r1"]
    out = _run([cli, *args, "--set", "runtime.launcher.image=registry.example/kerasflow:gpu"], cwd=project, env=environ)
    service, job = yaml.safe_load_all(out)
    assert (service["kind"], job["kind"]) == ("Service", "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python3", "-m", "kerasflow.tasks.train.launch.worker", "s3://b/kf/runs/r1/job.json"]
