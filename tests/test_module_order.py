"""The order of the test modules under ``make test``: the longest measured first, tests kept in their module's order."""

from __future__ import annotations

from tests.module_order import longest_first, seconds_from_junit


def test_the_longest_modules_go_first_and_a_new_module_takes_the_median():
    nodeids = [
        "tests/test_quick.py::test_a",
        "tests/test_quick.py::test_b",
        "tests/deploy/test_slow.py::test_c[x]",
        "tests/deploy/test_slow.py::test_c[y]",
        "tests/test_new.py::test_d",
        "tests/test_middle.py::test_e",
        "tests/test_tiny.py::test_f",
    ]
    seconds = {"tests/test_quick.py": 5.0, "tests/deploy/test_slow.py": 300.0, "tests/test_middle.py": 40.0,
               "tests/test_tiny.py": 0.5}  # fmt: skip
    ordered = [nodeids[i] for i in longest_first(nodeids, seconds)]
    assert ordered == [
        "tests/deploy/test_slow.py::test_c[x]",
        "tests/deploy/test_slow.py::test_c[y]",
        "tests/test_middle.py::test_e",
        "tests/test_new.py::test_d",  # the median of the measured: 22.5 s
        "tests/test_quick.py::test_a",
        "tests/test_quick.py::test_b",
        "tests/test_tiny.py::test_f",
    ]
    assert longest_first(nodeids, {}) == list(range(len(nodeids))), "nothing measured: the collection's order"


def test_a_modules_seconds_add_its_tests_setup_call_and_teardown_from_the_junit_report(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        '<testcase classname="tests.flows.test_serve" name="test_a" time="12.25"/>'
        '<testcase classname="tests.flows.test_serve" name="test_b[x]" time="0.5"/>'
        '<testcase classname="tests.test_packaging" name="test_wheel" time="64.0"/>'
        '<testcase classname="tests.tasks.test_gate.TestChecks" name="test_c" time="0.25"/>'
        "</testsuite></testsuites>"
    )
    assert seconds_from_junit(report) == {
        "tests/flows/test_serve.py": 12.8,
        "tests/tasks/test_gate.py": 0.2,
        "tests/test_packaging.py": 64.0,
    }
