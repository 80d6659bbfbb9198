"""ZenML steps: thin wrappers that call trustops code and record results on the MLflow run."""

from steps.data.load_data import load_data
from steps.data.validate_data import validate_data
from steps.evaluation.evaluate_model import evaluate_model
from steps.registry.register_model import register_model
from steps.training.train_model import train_model

__all__ = ["load_data", "validate_data", "train_model", "evaluate_model", "register_model"]
