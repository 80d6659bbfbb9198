"""Shared test set-up: Hypothesis profiles and registry isolation."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fast", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _restore_monitor_registry():
    """Tests may register monitors; each test sees and leaves the registry as it was."""
    from monitors import registry

    saved = dict(registry._registry)
    saved_loaded = registry._entry_points_loaded
    yield
    registry._registry.clear()
    registry._registry.update(saved)
    registry._entry_points_loaded = saved_loaded
