"""The main job's demonstration stream: clean traffic, a gradual input drift, a PGD burst, clean again.

Each batch goes through the registered model with the inference capture on, as a served model
would see it, and the monitor runs after every batch, as a schedule would.  The stream is an
experiment, not production traffic: it captures into a store of its own
(:func:`demo_capture_uri`) and is monitored with its own state, so it never moves the
production watermark or opens the production conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trustops.attacks import pgd_attack
from trustops.capture import ActivationCapture

BATCH_SIZE = 120


@dataclass(frozen=True)
class StreamBatch:
    name: str
    inputs: torch.Tensor


def demo_capture_uri(production_uri: str) -> str:
    """The demonstration stream's own capture store, next to the model's production store."""
    return f"{production_uri.rstrip('/')}-demo-stream"


def demo_batches(model, x: torch.Tensor, y: torch.Tensor, clamp: tuple[float, float], *, seed: int = 0) -> list[StreamBatch]:
    """Test batches: 2 clean, 3 drifting (brighter, noisier strokes), 2 PGD, 2 clean.

    Each batch's rows are drawn without replacement from the held-out test split: a batch with
    duplicated rows is a different distribution from clean traffic, and an exact test rightly
    notices.
    """
    generator = torch.Generator().manual_seed(seed)
    low, high = clamp

    def sample() -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randperm(len(x), generator=generator)[:BATCH_SIZE]
        return x[rows], y[rows]

    batches = [StreamBatch("clean", sample()[0]) for _ in range(2)]
    for level in (1, 2, 3):
        inputs, _ = sample()
        noise = torch.randn(inputs.shape, generator=generator) * 0.5 * level
        batches.append(StreamBatch(f"drift {level}", (inputs + 1.0 * level + noise).clamp(low, high)))
    for _ in range(2):
        inputs, labels = sample()
        epsilon = 0.125 * (high - low)
        batches.append(StreamBatch("PGD", pgd_attack(model, inputs, labels, norm="inf", epsilon=epsilon,
                                                    step_size=epsilon / 4, steps=10, clamp=clamp)))
    batches += [StreamBatch("clean", sample()[0]) for _ in range(2)]
    return batches


def serve(model, capture_uri: str, batch: StreamBatch, *, backend: str = "native") -> None:
    with ActivationCapture(model, capture_uri, mode="predict", backend=backend) as capture, torch.no_grad():
        capture.meta = {"stream_batch": batch.name}
        model(batch.inputs)
