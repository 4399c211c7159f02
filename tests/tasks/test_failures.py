"""One error hierarchy: every exception kerasflow defines derives from KerasflowError, and a retry
is refused by one isinstance check."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import kerasflow.flows
import kerasflow.models
import kerasflow.tasks
from kerasflow.models.archive_check import UnsafeModelError
from kerasflow.models.registry import RegistryError, VersionClaimLost
from kerasflow.tasks.failures import (
    ConfigError,
    DataValidationError,
    DeterministicFailure,
    KerasflowError,
    retry_unless_deterministic,
)
from kerasflow.tasks.storage import StorageUnavailableError


def kerasflow_modules():
    for package in (kerasflow.flows, kerasflow.tasks, kerasflow.models):
        yield package.__name__
        for found in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if not found.name.endswith("__main__"):
                yield found.name


def test_every_exception_kerasflow_defines_derives_from_one_root():
    defined = {}
    for name in kerasflow_modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                defined[f"{name}.{value.__name__}"] = value
    assert len(defined) > 25, sorted(defined)
    outside = sorted(name for name, cls in defined.items() if not issubclass(cls, KerasflowError))
    assert outside == [], f"exceptions outside the hierarchy: {outside}"


class _State:
    def __init__(self, error: BaseException):
        self.error = error

    def result(self):
        raise self.error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ConfigError("bad recipe"), False),
        (DataValidationError("bad data"), False),
        (UnsafeModelError("a Lambda layer"), False),
        (StorageUnavailableError("S3 down"), True),
        (RegistryError("model 'digits' has no version 9"), False),
        (VersionClaimLost("claim removed"), True),
        (OSError("disk"), True),
    ],
)
def test_a_retry_is_refused_exactly_for_deterministic_failures(error, retried):
    assert retry_unless_deterministic(None, None, _State(error)) is retried
    assert isinstance(error, DeterministicFailure) is (not retried)
    # Each keeps its built-in base, so code that caught it that way still does.
    if isinstance(error, (ConfigError, UnsafeModelError)):
        assert isinstance(error, ValueError)
