"""ZenML's Model Control Plane for a registered model: one ZenML model version per training run.

``trustops train`` creates a version of the ZenML model named like the MLflow registered model
(``tracking.registered_model_name``), named itself after the training run, and attaches the
training pipeline to it, so ZenML links the run and every artifact it makes (the trained
``nn.Module`` as a model artifact).  The ``register_model`` step records the link both ways: the
MLflow version carries the ZenML version's id and number as tags (:data:`MODEL_VERSION_ID_TAG`,
:data:`MODEL_VERSION_NUMBER_TAG`), and the ZenML version carries the MLflow model's name, version,
run id and URIs as metadata (``mlflow.registered_model``, ``mlflow.model_version``,
``mlflow.run_id``, ``mlflow.model_uri``, ``mlflow.logged_model_uri``; :func:`record_registration`).
Each monitor pass of that MLflow version attaches to the same ZenML version (:func:`monitored_model`),
found through that tag.

A ZenML model version has no state of its own, so trustops keeps one in its metadata,
:data:`STATUS_KEY`, in step with MLflow's two-phase registration (:mod:`trustops.lifecycle`):

=================  ==========================================================================
``pending``        created, the training run not finished (a killed run's version stays
                   pending, as its MLflow version does)
``ready``          the run finished and registered the MLflow version its metadata names,
                   which is ready too
``unregistered``   the run finished with ``tracking.register=false``: artifacts, no MLflow version
``failed``         the run failed, or its process was killed (marked by the next command that
                   reconciles abandoned runs); the version also gets the ZenML tag ``failed``
                   (not the ``archived`` stage: ZenML lets one version at a time hold a stage)
=================  ==========================================================================

ZenML is imported only inside these functions: ``trustops monitor``'s no-op pass never gets here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trustops.lifecycle import FAILED, PENDING, READY, STATUS_TAG

if TYPE_CHECKING:
    from uuid import UUID

    from zenml import Model

logger = logging.getLogger(__name__)

# On the MLflow model version: the ZenML model version it belongs to.
MODEL_VERSION_ID_TAG = "zenml.model_version_id"
MODEL_VERSION_NUMBER_TAG = "zenml.model_version_number"

# On the ZenML model version: trustops' status (same key as the MLflow version's status tag).
STATUS_KEY = STATUS_TAG
UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class ZenMLModelVersion:
    """The ZenML model version a pipeline run is attached to."""

    model: str
    number: int
    id: UUID

    def as_model(self) -> Model:
        """The ``zenml.Model`` to attach a pipeline to this version (by number: never creates one)."""
        from zenml import Model

        # Not into a model registry component: the register_model step registers in MLflow itself.
        return Model(name=self.model, version=self.number, save_models_to_registry=False)

    def mlflow_tags(self) -> dict[str, str]:
        return {MODEL_VERSION_ID_TAG: str(self.id), MODEL_VERSION_NUMBER_TAG: str(self.number)}


def create_training_version(model_name: str, run_name: str) -> ZenMLModelVersion:
    """A new version of ZenML model ``model_name`` (created if missing) for training run ``run_name``, marked pending.

    The version is named after the run (ZenML, MLflow and the version then share one name),
    unless that name is a number or a stage, which ZenML reserves; then ZenML numbers it only.
    """
    from zenml.client import Client
    from zenml.enums import ModelStages
    from zenml.exceptions import EntityExistsError

    client = Client()
    try:
        client.get_model(model_name, hydrate=False)
    except KeyError:
        try:  # without a registry component's copy: the MLflow registry is where the model is registered
            client.create_model(name=model_name, save_models_to_registry=False,
                                description=f"Models trained by trustops, registered in MLflow as {model_name!r}.")
        except EntityExistsError:  # a concurrent training run created it first
            pass
    reserved = run_name.isnumeric() or run_name.lower() in ModelStages.values()
    try:
        created = client.create_model_version(model_name, name=None if reserved else run_name,
                                              description=f"trustops training run {run_name}")
    except EntityExistsError:  # a run name given twice (tracking.run_name)
        created = client.create_model_version(model_name, description=f"trustops training run {run_name}")
    version = ZenMLModelVersion(model_name, created.number, created.id)
    set_status(version.id, PENDING)
    return version


def set_status(model_version_id: UUID, status: str, **metadata: Any) -> None:
    """Record ``status`` (and any further ``metadata``) on the ZenML model version; the newest value of a key wins."""
    from zenml import log_metadata

    log_metadata(metadata={STATUS_KEY: status, **metadata}, model_version_id=model_version_id)


def current_version() -> ZenMLModelVersion | None:
    """In a step: the ZenML model version its pipeline run is attached to; ``None`` when it has none.

    Also ``None`` outside a pipeline run (a step called through ``step.entrypoint(...)`` in a test).
    """
    from zenml import get_step_context

    try:
        model_version = get_step_context().model_version
    except RuntimeError:
        return None
    if model_version is None:
        return None
    return ZenMLModelVersion(model_version.model.name, model_version.number, model_version.id)


def record_registration(version: ZenMLModelVersion, *, registered_model: str, model_version: int, run_id: str,
                        logged_model_uri: str) -> None:
    """The ZenML side of the two-way link: the MLflow version this ZenML version was registered as.

    Still ``pending``: it becomes ``ready`` after its MLflow version (:func:`finish_training_version`).
    """
    from zenml.metadata.metadata_types import Uri

    set_status(version.id, PENDING, **{
        "mlflow.registered_model": registered_model, "mlflow.model_version": model_version, "mlflow.run_id": run_id,
        "mlflow.model_uri": Uri(f"models:/{registered_model}/{model_version}"),
        "mlflow.logged_model_uri": Uri(logged_model_uri),  # MLflow 3's logged model, the version's source
    })


def finish_training_version(version: ZenMLModelVersion, *, registered: bool) -> None:
    """The training run finished: ``ready`` when it registered an MLflow version, else ``unregistered``.

    Never raises: the model is trained and (when registered) ready in MLflow, which is what serving
    and monitoring read; a version left ``pending`` here is only a stale label, said in a warning.
    """
    status = READY if registered else UNREGISTERED
    try:
        set_status(version.id, status)
    except Exception as error:  # noqa: BLE001
        logger.warning("Could not mark ZenML model %s version %s as %s (it still reads pending): %s",
                       version.model, version.number, status, error)


def settle_unfinished_training_version(version: ZenMLModelVersion, run_name: str) -> None:
    """After ``trustops train`` failed: mark the version ``failed`` (and archive it) when its run failed.

    A run that may still go on (an asynchronous orchestrator that timed out, or whose wait was
    interrupted), or that completed before trustops failed, stays ``pending``, like its MLflow
    version.  Never raises: the training error that brought us here is the one to report.
    """
    try:
        from zenml.client import Client

        client = Client()
        try:
            status = client.get_pipeline_run(run_name, hydrate=False).status
        except KeyError:
            status = None  # the run never started
        if status is not None and (not status.is_finished or status.value == "completed"):
            return  # still going, or it completed and trustops failed after it: pending, as its MLflow version stays
        set_status(version.id, FAILED)
        client.update_model_version(version.model, version.id, add_tags=[FAILED])
    except Exception as error:  # noqa: BLE001 - housekeeping after a failure must not hide it
        logger.warning("Could not mark ZenML model %s version %s as failed: %s", version.model, version.number, error)


def monitored_model(tags: dict[str, str]) -> Model | None:
    """The ``zenml.Model`` a monitor pass of an MLflow model version attaches to, from the version's ``tags``.

    ``None`` (the pass runs without a ZenML model) when the version was registered before trustops
    linked ZenML model versions, or the ZenML store no longer has that version (another store,
    or deleted).
    """
    version_id = tags.get(MODEL_VERSION_ID_TAG)
    if not version_id:
        return None
    from zenml.client import Client

    try:
        found = Client().get_model_version(model_version_name_or_number_or_id=version_id, hydrate=False)
    except (KeyError, ValueError):  # not in this store, or not an id
        logger.info("ZenML model version %s (tag %s) is not in this ZenML store; the monitor pass runs without it.",
                    version_id, MODEL_VERSION_ID_TAG)
        return None
    return ZenMLModelVersion(found.model.name, found.number, found.id).as_model()
