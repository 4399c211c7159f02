"""The order the test processes take test modules in: the longest first.

``make test`` runs the suite in three processes, a module per process at a time
(``--dist loadfile``). pytest-xdist hands out modules in the order it is given; by
default it puts those with the most tests first, which put the slowest modules (a few
tests of real trainings, clusters and kills each: multi-worker, Slurm, the end-to-end
deployment) last, so one process was still running them long after the others had
finished. Taking the longest first (the classic longest-processing-time rule) leaves
only short modules for the end.

How long a module takes is measured, not guessed: ``tests/module_seconds.json`` holds
each module's seconds from a run of the whole suite, written by ``make module-seconds``
(``python -m tests.module_order <junit.xml>``). A module not in it yet (a new one) is
given the median, so it is neither first nor last; the file only changes the order,
never which tests run, so a stale figure costs time, not correctness.
"""

from __future__ import annotations

import json
import statistics
import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

SECONDS_FILE = Path(__file__).with_name("module_seconds.json")


def module_of(nodeid: str) -> str:
    """The module part of a test's node id: ``tests/x/test_y.py::test_z[a]`` -> ``tests/x/test_y.py``."""
    return nodeid.split("::", 1)[0]


def load_seconds(path: Path = SECONDS_FILE) -> dict[str, float]:
    """Module path -> measured seconds; empty when the file is missing or unreadable."""
    try:
        seconds = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in seconds.items()} if isinstance(seconds, dict) else {}


def longest_first(nodeids: list[str], seconds: dict[str, float]) -> list[int]:
    """The positions of ``nodeids`` reordered so the modules expected to take longest come first.

    Tests keep their order within a module, and modules of equal expected time keep the
    collection's order (a stable sort).

    Args:
        nodeids: the collected tests' node ids, in collection order.
        seconds: module path -> expected seconds; a module missing from it gets the median.
    """
    default = statistics.median(seconds.values()) if seconds else 0.0
    first_seen: dict[str, int] = {}
    for nodeid in nodeids:
        first_seen.setdefault(module_of(nodeid), len(first_seen))

    def key(position: int) -> tuple[float, int]:
        module = module_of(nodeids[position])
        return (-seconds.get(module, default), first_seen[module])

    return sorted(range(len(nodeids)), key=key)


def seconds_from_junit(path: Path) -> dict[str, float]:
    """Module path -> seconds spent in it (setup, call and teardown), from pytest's ``--junitxml`` report.

    Args:
        path: the report; its test cases' ``classname`` is the module's dotted path (and class).
    """
    totals: dict[str, float] = defaultdict(float)
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        # "tests.flows.test_serve" or "tests.flows.test_serve.TestSomething": the module is the test_ part.
        end = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
        totals["/".join(parts[: end + 1]) + ".py"] += float(case.get("time", 0.0))
    return {module: round(total, 1) for module, total in sorted(totals.items())}


if __name__ == "__main__":
    print(json.dumps(seconds_from_junit(Path(sys.argv[1])), indent=1, sort_keys=True))
