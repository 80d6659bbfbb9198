"""The seeded examples in the chart docstrings run as doctests (pytest is not run with --doctest-modules)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "monitors.control_charts.individuals",
    "monitors.control_charts.xbar_s",
    "monitors.control_charts.attribute",
    "monitors.control_charts.ewma",
    "monitors.control_charts.cusum",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4, f"{name} lost its example"
    assert result.failed == 0
