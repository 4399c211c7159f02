"""The getting-started pages run as written: each titled block is a file, each bash line a command.

The pages are run in order in one fresh folder (the own-model page uses the own-table
page's table), against the session's Prefect server and a storage root of their own.
A ``console`` block is an example of output and is not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("prefect_server")

PAGES = Path(__file__).resolve().parents[2] / "docs" / "getting-started"
BLOCK = re.compile(r"^```(?P<lang>\w+)(?: title=\"(?P<title>[^\"]+)\")?\n(?P<body>.*?)^```", re.S | re.M)


def blocks(page: str) -> list[tuple[str, str | None, str]]:
    """(language, title, body) of every fenced block of ``page``, in order."""
    text = (PAGES / page).read_text()
    return [(m["lang"], m["title"], m["body"]) for m in BLOCK.finditer(text)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("getting-started")


def run_page(page: str, folder: Path) -> list[str]:
    """Write the page's files and run its commands; the output of each command."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "KERASFLOW_ROOT": str(folder / ".kerasflow"),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }
    outputs = []
    found = blocks(page)
    assert any(lang == "bash" for lang, _, _ in found), f"{page} runs nothing"
    for lang, title, body in found:
        if title is not None:
            (folder / title).write_text(body)
        elif lang == "bash":
            for line in body.strip().splitlines():
                result = subprocess.run(
                    ["bash", "-c", line], cwd=folder, env=env, capture_output=True, text=True, timeout=600
                )
                assert result.returncode == 0, f"{page}: `{line}` exited {result.returncode}:\n{result.stderr}"
                outputs.append(result.stdout)
    return outputs


def test_your_own_table_trains_is_skipped_when_unchanged_and_scores_new_rows(folder):
    outputs = run_page("own-table.md", folder)
    assert "transactions v1 promoted to 'production' (first promotion)" in outputs[1]
    assert "data and training definition unchanged since transactions v1" in outputs[2]
    assert "scored 400 row(s) with transactions v1 -> scores.parquet" in outputs[4]


def test_your_own_image_folder_trains(folder):
    outputs = run_page("own-images.md", folder)
    assert "shapes v1 promoted to 'production' (first promotion)" in outputs[1]


def test_your_own_model_trains_on_the_table_and_scores(folder):
    outputs = run_page("own-model.md", folder)
    assert "transactions-mine v1 promoted to 'production' (first promotion)" in outputs[0]
    assert "scored 400 row(s) with transactions-mine v1 -> mine.parquet" in outputs[1]


def test_every_page_is_run_here():
    tested = {"own-table.md", "own-images.md", "own-model.md"}
    with_commands = {
        page.name for page in PAGES.glob("*.md") if any(lang == "bash" for lang, _, _ in blocks(page.name))
    }
    assert with_commands == tested
