"""deploy/Dockerfile and deploy/docker-compose.yml, checked without a Docker engine.

Neither can be built or started here (no Docker engine on this machine or in CI). What
can be checked is checked: the Dockerfile installs this project as a plain package (no
source tree) for a non-root user; the compose file parses, its secrets come
only from the environment, and every setting it names is one Prefect, botocore or
kerasflow actually reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
PREFECT_YAML = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_the_gpu_image_is_tensorflows_gpu_base_at_the_pinned_version():
    import tensorflow as tf

    default_base = re.search(r"^ARG BASE=(\S+)$", DOCKERFILE, re.MULTILINE).group(1)
    assert default_base == f"tensorflow/tensorflow:{tf.__version__}-gpu"
    assert ("FROM", "${BASE}") in _instructions()


def test_the_image_installs_kerasflow_and_runs_as_a_non_root_user():
    instructions = _instructions()
    kinds = [kind for kind, _ in instructions]
    copied = {args.split()[0]: args.split()[-1] for kind, args in instructions if kind == "COPY"}
    # The packages go to a build folder, not the working directory (a kerasflow/ folder there
    # would shadow the installed package); deploy/ is there for `prefect deploy`.
    assert {"kerasflow", "flows", "tasks", "models", "deploy"} <= set(copied)
    assert all(copied[d].startswith("/tmp/kerasflow-src/") for d in ("kerasflow", "flows", "tasks", "models"))
    install = next(args for kind, args in instructions if kind == "RUN" and "pip install '/tmp/kerasflow-src" in args)
    assert "[k8s]'" in install, "the GPU pool's worker and pods need the Kubernetes extra"
    assert "pip install -e" not in DOCKERFILE, "a plain install: recipes and templates are package data"
    assert "rm -rf /tmp/kerasflow-src" in install
    user = [args for kind, args in instructions if kind == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert kinds.index("USER") > max(i for i, kind in enumerate(kinds) if kind == "COPY")
    # Prefect's Kubernetes worker passes the flow-run command as args: no ENTRYPOINT may swallow it.
    assert "ENTRYPOINT" not in kinds


def test_the_dependency_layer_installs_what_pyproject_declares(tmp_path):
    import subprocess
    import sys
    import tomllib

    layer = next(args for kind, args in _instructions() if kind == "RUN" and "tomllib" in args)
    snippet = re.search(r'python3 -c "(.+?)" > /tmp/requirements.txt', layer).group(1)
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    snippet = snippet.replace("/tmp/kerasflow-src/pyproject.toml", str(tmp_path / "pyproject.toml"))
    printed = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True).stdout
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert printed.splitlines() == project["dependencies"] + project["optional-dependencies"]["k8s"]


def test_compose_has_a_server_on_postgres_a_store_and_a_worker_of_the_cpu_pool():
    services = COMPOSE["services"]
    assert {"postgres", "prefect-server", "minio", "worker"} <= set(services)
    server_env = services["prefect-server"]["environment"]
    assert server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://prefect:")
    cpu_pool = PREFECT_YAML["definitions"]["work_pools"]["cpu"]["name"]
    assert services["worker"]["command"][:5] == ["prefect", "worker", "start", "--pool", cpu_pool]


def test_compose_deploys_only_what_its_own_worker_can_run():
    setup = " ".join(COMPOSE["services"]["setup"]["command"])
    names = re.findall(r"--name (\S+)", setup)
    by_name = {d["name"]: d for d in PREFECT_YAML["deployments"]}
    assert names and set(names) <= set(by_name)
    # `prefect deploy` refuses a deployment whose pool does not exist; only the CPU pool does here.
    assert {by_name[n]["work_pool"]["name"] for n in names} == {"kerasflow-cpu"}
    assert "work-pool create kerasflow-cpu --type process --base-job-template deploy/work-pools/process.json" in setup


def test_compose_secrets_come_only_from_the_environment():
    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}: {key} must be ${{VAR:?...}}"
            assert "://" not in str(value) or "@" not in str(value) or "${" in str(value), f"{name}: {key}"


def test_every_setting_compose_names_is_one_that_is_read():
    from prefect.settings import Settings
    from prefect.settings.legacy import _get_valid_setting_names

    prefect_settings = set(_get_valid_setting_names(Settings))
    # The AWS variables botocore reads (what s3fs and moto clients use).
    botocore = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    sources = "\n".join(p.read_text() for d in ("flows", "tasks", "models") for p in (ROOT / d).rglob("*.py"))
    images = {
        "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"},
        "minio": {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"},
    }
    for name, service in COMPOSE["services"].items():
        for key in service.get("environment") or {}:
            if key.startswith("PREFECT_"):
                assert key in prefect_settings, f"{name}: {key} is not a Prefect setting"
            elif key.startswith("KERASFLOW_"):
                assert f'"{key}"' in sources, f"{name}: kerasflow never reads {key}"
            elif key.startswith("AWS_"):
                assert key in botocore, f"{name}: {key}"
            else:
                assert key in images.get(name, set()) | {"DO_NOT_TRACK"}, f"{name}: unexpected setting {key}"


def test_the_worker_root_is_a_storage_root_kerasflow_accepts(monkeypatch):
    from kerasflow.tasks.config import StorageConfig

    worker_env = COMPOSE["services"]["worker"]["environment"]
    monkeypatch.setenv("KERASFLOW_ROOT", worker_env["KERASFLOW_ROOT"])
    assert StorageConfig().root == "s3://kerasflow/root"
    assert worker_env["AWS_ENDPOINT_URL"] == "http://minio:9000"
