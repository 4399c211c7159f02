"""Durations on the command line: a finite number of 0 or more, or exit 2 naming the option."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kerasflow.flows.cli import app


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["datasets", "gc"], "--grace-hours"),
        (["datasets", "gc"], "--keep-days"),
        (["runs", "gc"], "--retention-days"),
        (["models", "gc", "digits"], "--grace-minutes"),
    ],
)
@pytest.mark.parametrize("value", ["inf", "1e12", "nan", "-1"])
def test_a_duration_that_is_not_a_finite_number_of_0_or_more_exits_2_naming_the_option(
    tmp_path, command, option, value
):
    (tmp_path / "registry" / "digits" / "versions" / "1").mkdir(parents=True)  # a claim gc could take
    result = CliRunner().invoke(app, [*command, "--root", str(tmp_path), option, value])
    assert result.exit_code == 2, result.output
    assert f"received {option} {float(value)}, expected a number of 0 or more" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert (tmp_path / "registry" / "digits" / "versions" / "1").is_dir()  # nothing removed


def test_a_duration_of_a_century_or_less_is_taken(tmp_path):
    result = CliRunner().invoke(app, ["runs", "gc", "--root", str(tmp_path), "--retention-days", "36525"])
    assert result.exit_code == 0, result.output
