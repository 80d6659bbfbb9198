"""ZenML steps: thin wrappers that call trustops code and record results on the MLflow run.

The training pipeline's steps are re-exported here, lazily (PEP 562): importing any step module
imports this package first, and a monitor pass (or one Airflow task) must not pay for the
libraries of every other stage; the training step alone imports Lightning, about 7 s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_MODULE_OF = {
    "load_data": "steps.data.load_data",
    "validate_data": "steps.data.validate_data",
    "train_model": "steps.training.train_model",
    "evaluate_model": "steps.evaluation.evaluate_model",
    "register_model": "steps.registry.register_model",
}

__all__ = list(_MODULE_OF)

if TYPE_CHECKING:
    from steps.data.load_data import load_data
    from steps.data.validate_data import validate_data
    from steps.evaluation.evaluate_model import evaluate_model
    from steps.registry.register_model import register_model
    from steps.training.train_model import train_model


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'steps' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)
