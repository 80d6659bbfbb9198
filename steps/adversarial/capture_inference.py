"""Step: score the clean and adversarial batches with the inference-time capture on (PREDICT mode).

The batches go into a capture store of the run's own (:func:`experiment_capture_uri`), never into
the registered model's store: that one holds production traffic only, and the monitor would page
on an attack it was shown on purpose.
"""

from typing import Annotated, Any

import numpy as np
import torch
from torch import nn
from zenml import get_step_context, step

from trustops.capture import ActivationCapture
from trustops.errors import ConfigError
from trustops.registry import RegisteredModel
from trustops.tracking import log_batch


def experiment_capture_uri(run_name: str) -> tuple[str, str | None]:
    """``(uri, endpoint_url)`` of the capture store for an experiment run's own batches.

    ``<state>/captures/experiments/<run name>`` on local storage, ``<storage>/captures/experiments/<run name>``
    on S3 storage (beside the training runs' stores, ``captures/<run name>``).
    """
    from trustops.paths import project_root, state_dir
    from trustops.storage import load_storage

    root = project_root()
    storage = load_storage(root)
    if storage.is_s3:
        return storage.location("captures", "experiments", run_name), storage.endpoint_url
    return str(state_dir(root) / "captures" / "experiments" / run_name), None


@step(enable_cache=False)
def capture_inference(
    model: nn.Module, model_info: RegisteredModel, clean_inputs: np.ndarray, adversarial_inputs: np.ndarray
) -> Annotated[dict[str, Any], "captured_steps"]:
    """``{"clean": [step], "adversarial": [step], "capture_uri": uri, "endpoint_url": url}`` of the run's own store."""
    reference_uri = model_info.capture_uri
    if not reference_uri:
        raise ConfigError(
            f"Model {model_info.name} v{model_info.version} has no capture store (tag capture_uri): "
            "retrain it with capture on (the default, `capture=native`)."
        )
    backend = model_info.tags.get("capture_backend", "native")
    capture_uri, endpoint_url = experiment_capture_uri(get_step_context().pipeline_run.name)
    captured: dict[str, Any] = {"capture_uri": capture_uri, "endpoint_url": endpoint_url}
    with ActivationCapture(model, capture_uri, mode="predict", backend=backend, endpoint_url=endpoint_url) as capture, \
            torch.no_grad():  # fmt: skip
        for name, batch in (("clean", clean_inputs), ("adversarial", adversarial_inputs)):
            capture.meta = {"batch": name}
            model(torch.from_numpy(batch))
            captured[name] = [capture.last_step]
    log_batch(tags={"capture_uri": capture_uri, "reference_capture_uri": reference_uri, "capture_backend": backend})
    return captured
