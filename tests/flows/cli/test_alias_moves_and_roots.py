"""The `kerasflow` command's alias moves by hand (who and why, the event they send) and roots it cannot use."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.flows.cli.test_cli import SMOKE, run

pytestmark = pytest.mark.usefixtures("prefect_server")


def _two_versions(root: Path, name: str):
    """A registry under ``root`` holding versions 1 and 2 of ``name``, trained on data-1 and data-2."""
    import keras

    from kerasflow.models import io
    from kerasflow.models.registry import ModelRegistry

    registry = ModelRegistry(str(root / "registry"))
    model_file = root.parent / f"{name}.keras"
    io.save_model(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), model_file)
    for key in ("1", "2"):
        registry.register(
            name, model_file=model_file, metadata={"dataset": {"fingerprint": f"data-{key}"}}, idempotency_key=key
        )
    return registry


def test_a_manual_move_records_its_reason_and_actor_and_sends_the_event_a_flow_sends(tmp_path):
    import getpass
    from datetime import UTC, datetime

    from tests.flows.helpers import model_events

    root = tmp_path / "root"
    _two_versions(root, "audited")
    since = datetime.now(UTC)
    code, out = run(
        "models", "promote", "audited", "1", "--root", str(root), "--reason", "first release", "--actor", "ana"
    )
    assert code == 0 and "audited: production (none) -> v1" in out, out
    code, out = run("models", "promote", "audited", "2", "--root", str(root), "--reason", "ticket 42")
    assert code == 0, out
    code, out = run(
        "models", "rollback", "audited", "--root", str(root), "--reason", "latency doubled", "--actor", "ben"
    )
    assert code == 0 and "production v2 -> v1 (rollback)" in out, out

    me = getpass.getuser()  # the command's environment is this one
    code, out = run("models", "history", "audited", "--root", str(root), "--json")
    assert code == 0, out
    assert [(h["version"], h["reason"], h["actor"], h["flow_run_id"]) for h in json.loads(out)] == [
        (1, "manual promotion: first release", "ana", None),
        (2, "manual promotion: ticket 42", me, None),
        (1, "rollback: latency doubled", "ben", None),
    ]
    code, out = run("models", "history", "audited", "--root", str(root))
    assert code == 0 and out.splitlines()[2].endswith("v2 -> v1  rollback: latency doubled  by ben"), out

    # Each move is the flow's promotion event: its name, resource and payload, with who and why.
    stored = model_events("audited", since=since, expected=3)
    assert [(e.event, e.resource.id, e.resource.name) for e in stored] == [
        ("kerasflow.model.promoted", "kerasflow.model.audited", "audited")
    ] * 3
    assert [e.payload for e in stored] == [
        {"version": 1, "alias": "production", "fingerprint": "data-1", "actor": "ana",
         "reason": "manual promotion: first release"},
        {"version": 2, "previous_version": 1, "alias": "production", "fingerprint": "data-2", "actor": me,
         "reason": "manual promotion: ticket 42"},
        {"version": 1, "previous_version": 2, "alias": "production", "fingerprint": "data-1", "actor": "ben",
         "reason": "rollback: latency doubled"},
    ]  # fmt: skip

    code, out = run("models", "promote", "audited", "2", "--root", str(root), "--actor", " ")
    assert code == 2 and "received --actor ' ', expected a name" in out, out


def test_without_user_or_logname_the_actor_is_the_os_user_never_unknown(tmp_path):
    import pwd

    from prefect.settings import PREFECT_API_URL

    root = tmp_path / "root"
    _two_versions(root, "unnamed")
    env = {k: v for k, v in os.environ.items() if k not in ("LOGNAME", "USER", "LNAME", "USERNAME")}
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    code, out = run("models", "promote", "unnamed", "1", "--root", str(root), env=env)
    assert code == 0, out
    code, out = run("models", "history", "unnamed", "--root", str(root), "--json", env=env)
    try:
        expected = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        expected = f"uid:{os.getuid()}"
    assert [h["actor"] for h in json.loads(out)] == [expected]


def test_the_actor_is_the_uid_when_no_name_is_known(monkeypatch):
    import pwd

    from kerasflow.flows.cli.models import default_actor

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert default_actor() == f"uid:{os.getuid()}"
    monkeypatch.setenv("LOGNAME", "cron")
    assert default_actor() == "cron"


def test_a_manual_move_without_a_prefect_server_sends_no_event_and_starts_no_server(tmp_path):
    root = tmp_path / "root"
    _two_versions(root, "offline")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    code, out = run("models", "promote", "offline", "1", "--root", str(root), env=env)
    assert code == 0 and "offline: production (none) -> v1" in out, out
    assert "no kerasflow.model.promoted event sent: no Prefect server is configured (PREFECT_API_URL)" in out, out
    assert not (tmp_path / "prefect-home" / "prefect.db").exists(), "no server was started for one event"


@pytest.mark.parametrize("kind", ["s3 without credentials", "a file", "a read-only folder"])
def test_train_on_a_root_it_cannot_use_exits_2_with_one_message_and_writes_nothing(kind, request, tmp_path):
    if kind == "s3 without credentials":
        root = f"{request.getfixturevalue('s3_bucket')}/kerasflow"
        request.getfixturevalue("no_aws_credentials")
        expected = f"error: no credentials to sign requests to {root} at s3 endpoint http://127.0.0.1:"
    elif kind == "a file":
        path = tmp_path / "kerasflow-root"
        path.write_text("notes")
        root, expected = str(path), f"error: received storage.root={str(path)!r}: {path} is a file, not a folder; "
    else:
        folder = request.getfixturevalue("unwritable_folder")
        root, expected = (
            str(folder),
            f"error: received storage.root={str(folder)!r}: this user cannot write in {folder}",
        )

    code, out = run("train", *SMOKE, "--set", f"storage.root={root}")

    assert code == 2, out
    assert "Traceback" not in out and "Retry" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(expected), out
    if kind == "s3 without credentials":
        import fsspec

        assert fsspec.filesystem("s3", key="testing", secret="testing-secret").find(root) == []
    elif kind == "a file":
        assert Path(root).read_text() == "notes"
    else:
        assert list(Path(root).iterdir()) == []
