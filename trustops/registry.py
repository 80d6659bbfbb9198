"""Find a registered model and what it was trained on (its run's resolved config and capture store)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from trustops.errors import ConfigError
from trustops.settings import TrainSettings


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: int
    run_id: str
    model_uri: str
    tags: dict[str, str]
    training: TrainSettings

    @property
    def capture_uri(self) -> str | None:
        return self.tags.get("capture_uri")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "model_uri": self.model_uri,
                "tags": self.tags, "training": self.training.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RegisteredModel:
        return cls(**{**values, "training": TrainSettings.from_dict(values["training"])})


def _strip_targets(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_targets(v) for k, v in node.items() if not k.startswith("_")}
    if isinstance(node, list):
        return [_strip_targets(v) for v in node]
    return node


def resolve_registered_model(name: str, version: str, client: MlflowClient | None = None) -> RegisteredModel:
    """``version`` is a number, ``latest``, or ``@alias``."""
    client = client or MlflowClient()
    try:
        if version.startswith("@"):
            found = client.get_model_version_by_alias(name, version[1:])
        elif version == "latest":
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise ConfigError(f"No versions of registered model {name!r}. Train one with `trustops train` first.")
            found = max(versions, key=lambda v: int(v.version))
        else:
            found = client.get_model_version(name, version)
    except MlflowException as error:
        raise ConfigError(f"Registered model {name!r} version {version!r} was not found: {error.message}") from error
    config = yaml.safe_load(open(client.download_artifacts(found.run_id, "config/resolved.yaml")))
    training = TrainSettings.from_dict(_strip_targets(config))
    return RegisteredModel(
        name=name, version=int(found.version), run_id=found.run_id, model_uri=f"models:/{name}/{found.version}",
        tags=dict(found.tags), training=training,
    )
