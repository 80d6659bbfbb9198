"""Per-sample feature-squeezing scores (Xu, Evans and Qi, NDSS 2018) for the ``feature_squeezing`` monitor.

Each squeezer maps inputs to a coarser copy: 1, 2 and 3 bits per value over the data's value
range (every input kind has a range; a median filter, the paper's other squeezer, wipes out the
detail of 8 x 8 digits and changed clean predictions as much as attacked ones).  The score of
a sample is the largest L1 distance between the model's class probabilities on the input and on
a squeezed copy.  The squeezers catch different attack strengths: on the digits MLP, 3 bits
flagged PGD at L-inf 1 and 2, 1 bit the stronger L-inf 4 and L2 16 attacks.
"""

from __future__ import annotations

import torch
from torch import nn

BIT_DEPTHS = (1, 2, 3)


def reduce_bit_depth(inputs: torch.Tensor, bits: int, value_range: tuple[float, float]) -> torch.Tensor:
    """``inputs`` rounded to ``2**bits`` evenly spaced levels spanning ``value_range`` (values outside are clamped)."""
    low, high = value_range
    levels = 2**bits - 1
    unit = ((inputs.double() - low) / (high - low)).clamp(0.0, 1.0)
    return (torch.round(unit * levels) / levels * (high - low) + low).to(inputs.dtype)


@torch.no_grad()
def squeezing_scores(model: nn.Module, inputs: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Shape-(N,) largest L1 distance between the probabilities on ``inputs`` and on each squeezed copy."""
    low, high = float(value_range[0]), float(value_range[1])
    if not high > low:
        raise ValueError(f"`value_range` must have high > low. Got: {value_range!r}")
    inputs = inputs.float()
    squeezed = [reduce_bit_depth(inputs, bits, (low, high)) for bits in BIT_DEPTHS]
    # One forward pass over the input and its squeezed copies together.
    probabilities = torch.softmax(model(torch.cat([inputs, *squeezed])), dim=1).view(len(BIT_DEPTHS) + 1, len(inputs), -1)
    return (probabilities[1:] - probabilities[0]).abs().sum(dim=2).amax(dim=0)
