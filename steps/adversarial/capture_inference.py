"""Step: score the clean and adversarial batches with the inference-time capture on (PREDICT mode)."""

from typing import Annotated, Any

import numpy as np
import torch
from torch import nn
from zenml import step

from trustops.capture import ActivationCapture
from trustops.errors import ConfigError
from trustops.tracking import log_batch


@step(enable_cache=False)
def capture_inference(
    model: nn.Module, model_info: dict[str, Any], clean_inputs: np.ndarray, adversarial_inputs: np.ndarray
) -> Annotated[dict[str, list[int]], "captured_steps"]:
    capture_uri = model_info["tags"].get("capture_uri")
    if not capture_uri:
        raise ConfigError(
            f"Model {model_info['name']} v{model_info['version']} has no capture store (tag capture_uri): "
            "retrain it with capture on (the default, `capture=native`)."
        )
    backend = model_info["tags"].get("capture_backend", "native")
    steps: dict[str, list[int]] = {}
    with ActivationCapture(model, capture_uri, mode="predict", backend=backend) as capture, torch.no_grad():
        for name, batch in (("clean", clean_inputs), ("adversarial", adversarial_inputs)):
            capture.meta = {"batch": name}
            model(torch.from_numpy(batch))
            steps[name] = [capture.last_step]
    log_batch(tags={"capture_uri": capture_uri, "capture_backend": backend})
    return steps
