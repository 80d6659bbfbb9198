"""Discovery through the `trustops.monitors` entry-point group, as a third-party package would use it."""

from __future__ import annotations

import sys
import textwrap

import pytest

from monitors import MonitorConfigError, UnknownMonitorError, available_monitors, get_monitor, register_monitor
from monitors import registry
from monitors.base import Monitor, MonitorResult


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real (tiny) distribution on sys.path: a module and a dist-info with its entry points."""
    (tmp_path / "tiny_monitor.py").write_text(textwrap.dedent('''
        from monitors.base import Monitor, MonitorResult

        class MeanAboveMonitor(Monitor):
            name = "mean_above"

            def __init__(self, limit: float = 1.0):
                self.limit = limit

            def check(self, batch):
                mean = float(sum(batch) / len(batch))
                return MonitorResult(alarm=mean > self.limit, score=mean, threshold=self.limit)
    '''))
    dist_info = tmp_path / "tiny_monitor-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-monitor\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[trustops.monitors]\nmean_above = tiny_monitor:MeanAboveMonitor\nbroken = tiny_monitor_missing:Nope\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    yield
    sys.modules.pop("tiny_monitor", None)


def test_an_installed_plugin_is_discovered_and_runs(installed_plugin):
    with pytest.warns(UserWarning, match="'broken'.*failed to load"):
        names = available_monitors()
    assert "mean_above" in names and "broken" not in names
    monitor = get_monitor("mean_above")(limit=2.0)
    assert monitor.check([3.0, 4.0]).alarm and not monitor.check([1.0, 2.0]).alarm


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(UnknownMonitorError, match="Unknown monitor 'nope'. Registered monitors: .*mmd_adversarial"):
        get_monitor("nope")


def test_a_duplicate_name_is_refused_unless_forced():
    class Impostor(Monitor):
        name = "ewma"

        def check(self, batch):
            return MonitorResult(alarm=False, score=0.0, threshold=1.0)

    available_monitors()
    with pytest.raises(MonitorConfigError, match="already registered"):
        register_monitor(Impostor)
    register_monitor(Impostor, force=True)
    assert get_monitor("ewma") is Impostor  # the autouse fixture restores the real one afterwards


def test_a_nameless_monitor_is_refused():
    class Nameless(Monitor):
        def check(self, batch):
            raise NotImplementedError

    with pytest.raises(MonitorConfigError, match="non-empty `name`"):
        register_monitor(Nameless)
