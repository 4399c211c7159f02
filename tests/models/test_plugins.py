"""Every extension point finds what an installed package declares, by entry point alone.

A team's package is laid out here as pip installs one (a module beside its ``.dist-info``
folder, whose ``entry_points.txt`` names what it adds) on ``sys.path``, and no test code
imports it: each registry must find the names through ``importlib.metadata`` and load them.
"""

from __future__ import annotations

import textwrap

import pytest

from kerasflow.models.builders import BUILDER_REGISTRY
from kerasflow.models.column_types import COLUMN_TYPE_REGISTRY, column_type
from kerasflow.models.plugins import PluginRegistry
from kerasflow.tasks.config import ConfigError, parse_config
from kerasflow.tasks.ingest.file_runs import TASK_RUNNER_REGISTRY
from kerasflow.tasks.ingest.sources import SOURCE_REGISTRY
from kerasflow.tasks.learning.learning_tasks import TASK_REGISTRY, choose_task
from kerasflow.tasks.train.launch import LAUNCHER_REGISTRY

TEAM_MODULE = '''
from kerasflow.models.builders import register_builder
from kerasflow.models.column_types import register_column_type
from kerasflow.tasks.learning.learning_tasks import RegressionTask


@register_builder("team_net")
def team_net(spec, **params):
    raise NotImplementedError


@register_column_type("team_money", storage="float")
def team_money(x, *, column, facts):
    return x, [column]


class Quantile(RegressionTask):
    name = "team_quantile"


QUANTILE = Quantile()


def ray_runner(config):
    return "a task runner"


class Export:
    def identify(self, data):
        return {}

    def load(self, data, identity, *, downloaded):
        raise NotImplementedError


EXPORT = Export()
'''

ENTRY_POINTS = """
[kerasflow.builders]
team_net = team_plugins

[kerasflow.column_types]
team_money = team_plugins

[kerasflow.learning_tasks]
team_quantile = team_plugins:QUANTILE

[kerasflow.task_runners]
team_ray = team_plugins:ray_runner

[kerasflow.sources]
team_export = team_plugins:EXPORT
"""

REGISTRIES = (BUILDER_REGISTRY, COLUMN_TYPE_REGISTRY, TASK_REGISTRY, TASK_RUNNER_REGISTRY, SOURCE_REGISTRY)
NAMES = ("team_net", "team_money", "team_quantile", "team_ray", "team_export")


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The team's package, installed on sys.path, and the registries as they were afterwards."""
    (tmp_path / "team_plugins.py").write_text(TEAM_MODULE)
    info = tmp_path / "team_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "team_plugins", raising=False)
    for registry in REGISTRIES:
        monkeypatch.setattr(registry, "items", dict(registry.items))
    yield


def test_each_registry_lists_and_loads_what_an_installed_package_declares(installed):
    for registry, name in zip(REGISTRIES, NAMES, strict=True):
        assert name in registry.names(), registry.group
        assert name not in registry.items, "not imported before it is asked for"
    assert callable(BUILDER_REGISTRY.get("team_net"))
    assert column_type("team_money").storage == "float"
    assert choose_task("team_quantile", num_classes=0, labels="numbers").name == "team_quantile"
    assert TASK_RUNNER_REGISTRY.get("team_ray")(None) == "a task runner"
    assert callable(SOURCE_REGISTRY.get("team_export").identify)


def test_a_recipe_names_what_an_installed_package_declares(installed):
    config = parse_config(
        {
            "model": {"task": "team_quantile", "family": "team_net"},
            "data": {"source": "files", "url": "x.csv", "label_column": "y", "columns": {"price": "team_money"}},
            "runtime": {"ingest": {"task_runner": "team_ray"}},
        }
    )
    assert config.model.task == "team_quantile"
    assert config.data.columns["price"].type == "team_money"


def test_a_launcher_entry_point_is_the_launcher_itself(tmp_path, monkeypatch):
    from kerasflow.tasks.train.launch import Launcher

    (tmp_path / "team_launch.py").write_text(
        "from kerasflow.tasks.train.launch import Launcher\n"
        "ON_THE_CLUSTER = Launcher(run=lambda job, *, logger, lease: None, on_this_node=False)\n"
    )
    info = tmp_path / "team_launch-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-launch\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kerasflow.launchers]\nteam_cluster = team_launch:ON_THE_CLUSTER\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(LAUNCHER_REGISTRY, "items", dict(LAUNCHER_REGISTRY.items))
    launcher = LAUNCHER_REGISTRY.get("team_cluster")
    assert isinstance(launcher, Launcher) and launcher.on_this_node is False


def test_an_unknown_name_is_one_error_naming_every_name_there_is():
    registry: PluginRegistry[int] = PluginRegistry(setting="things.kind", group="kerasflow.test_things")
    registry.register("one", 1)
    with pytest.raises(ValueError, match=r"received things.kind='two', expected one of \['one'\]"):
        registry.get("two")
    with pytest.raises(ConfigError, match=r"received column type 'money', expected one of \[.*'float'"):
        column_type("money")
