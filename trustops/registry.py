"""Find a registered model and what it was trained on (its run's resolved config and capture store)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import yaml

from trustops.errors import ConfigError
from trustops.lifecycle import READY, STATUS_TAG
from trustops.settings import TrainSettings, rebuild

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient


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
        return asdict(self)


def split_model_spec(name: str, version: str = "latest") -> tuple[str, str]:
    """``NAME@ALIAS`` (with ``version`` left at ``latest``) -> ``(NAME, "@ALIAS")``; anything else unchanged."""
    if "@" not in name:
        return name, version
    bare, alias = name.split("@", 1)
    if not bare or not alias or "@" in alias:
        raise ConfigError(f"A model is NAME, NAME@ALIAS or NAME with a version. Got: {name!r}")
    if version not in ("latest", "", f"@{alias}"):
        raise ConfigError(f"Give a model as NAME@ALIAS or as NAME with a version, not both. Got: {name!r} and version {version!r}")
    return bare, f"@{alias}"


def resolve_registered_model(name: str, version: str = "latest", client: MlflowClient | None = None) -> RegisteredModel:
    """The registered model ``name`` (or ``NAME@ALIAS``) at ``version``: a number, ``latest`` or ``@alias``.

    Only versions whose training run finished are ever returned (two-phase registration, see
    :mod:`trustops.lifecycle`): ``latest`` is the newest such version, and a version named
    explicitly or by alias that is not ready is refused with a :class:`ConfigError`.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    name, version = split_model_spec(name, version)
    try:
        if version.startswith("@"):
            found = client.get_model_version_by_alias(name, version[1:])
            _require_ready(client, found)
        elif version == "latest":
            found = _latest_ready(client, name)
        else:
            found = client.get_model_version(name, version)
            _require_ready(client, found)
    except MlflowException as error:
        raise ConfigError(f"Registered model {name!r} version {version!r} was not found: {error.message}") from error
    config = yaml.safe_load(open(client.download_artifacts(found.run_id, "config/resolved.yaml")))
    training = rebuild(TrainSettings, config)  # the run's Hydra config, its `_target_` keys ignored
    return RegisteredModel(
        name=name, version=int(found.version), run_id=found.run_id, model_uri=f"models:/{name}/{found.version}",
        tags=dict(found.tags), training=training,
    )


def readiness(client: MlflowClient, version: ModelVersion) -> tuple[bool, str]:
    """Whether ``version`` may be served, and (when not) the status of the run it came from.

    A version trustops registered carries ``trustops.status``: ``ready`` once its run finished.
    One registered otherwise (by hand, or before two-phase registration) is ready when its run
    FINISHED.
    """
    from mlflow.exceptions import MlflowException

    status = version.tags.get(STATUS_TAG)
    if status == READY:
        return True, "FINISHED"
    try:
        run_status = client.get_run(version.run_id).info.status if version.run_id else "missing"
    except MlflowException:
        run_status = "missing"
    return (status is None and run_status == "FINISHED"), run_status


def _require_ready(client: MlflowClient, version: ModelVersion) -> None:
    ready, run_status = readiness(client, version)
    if ready:
        return
    if run_status == "FINISHED":
        why = f"run {version.run_id} FINISHED but its process stopped before marking the version ready"
    else:
        why = f"run {version.run_id} is {run_status}"
    raise ConfigError(f"Model {version.name} version {version.version} comes from a training run that did not finish "
                      f"({why}); use a ready version or retrain.")


def _latest_ready(client: MlflowClient, name: str) -> ModelVersion:
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version), reverse=True)
    if not versions:
        raise ConfigError(f"No versions of registered model {name!r}. Train one with `trustops train` first.")
    for version in versions:
        if readiness(client, version)[0]:
            return version
    raise ConfigError(f"No ready version of registered model {name!r}: all {len(versions)} come from training runs that "
                      "did not finish. Train one with `trustops train`.")
