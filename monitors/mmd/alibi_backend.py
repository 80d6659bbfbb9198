"""Optional engine: alibi-detect's ``MMDDrift`` with its PyTorch backend.

alibi-detect 0.11.5 and later are under the Business Source License 1.1: production use needs
a licence from Seldon.  It is therefore optional, imported only when ``backend="alibi_detect"``
is chosen, and never at import of trustops.

alibi-detect's kernel *averages* the Gaussian bandwidths where ours sums them, so its MMD² is
multiplied by the number of bandwidths here.  Its p-value, ``#{b : S_b >= S_0} / P``, is turned
back into the exceedance count and reported with the +1 correction like our own engine.  For
the critical value, alibi-detect returns the ``(int(p_val * P) + 1)``-th largest permuted MMD²;
constructing it with ``p_val = (j + 0.5) / P`` makes that exactly the ``(j + 1)``-th largest
that :func:`monitors.mmd.pvalues.critical_value` defines, so ``score > threshold`` agrees with
``p_value <= alpha`` for this backend too.  (alibi-detect's own ``is_drift`` is not used.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from monitors.errors import MonitorDependencyError
from monitors.mmd.kernel import GaussianKernelSum
from monitors.mmd.pvalues import max_exceedances

INSTALL_HINT = (
    "Install it (check your Business Source License first) with\n"
    "  uv pip install --no-deps alibi-detect==0.13.0 "
    "transformers==4.57.6 huggingface-hub==0.36.2 tokenizers==0.22.2 safetensors==0.8.0 "
    "numba==0.68.1 llvmlite==0.50.0 dill==0.3.9 toml==0.10.2 catalogue==2.0.10\n"
    "(--no-deps: alibi-detect 0.13 declares numpy<2 and numba<0.60, which would replace the "
    "project's numpy; its MMD path runs with numpy 2 and numba 0.68), or use backend='trustops'."
)


def load_mmd_drift() -> Any:
    """alibi-detect's ``MMDDrift`` class, or a :class:`MonitorDependencyError` with the install hint."""
    try:
        from alibi_detect.cd import MMDDrift
    except ImportError as error:
        raise MonitorDependencyError(
            f"backend='alibi_detect' needs alibi-detect 0.13 and the packages it imports, "
            f"which could not be imported ({error}). {INSTALL_HINT}"
        ) from error
    return MMDDrift


def alibi_permutation_test(
    x: np.ndarray, y: np.ndarray, kernel: GaussianKernelSum, *, n_permutations: int, alpha: float, seed: int
) -> tuple[float, float, float]:
    """``(mmd2, p_value, threshold)`` of alibi-detect's permutation test of ``x`` vs ``y``, on our scale.

    ``x``, ``y`` are standardized shape-(n, D) and (m, D) arrays; ``seed`` seeds torch's global
    generator, which alibi-detect's permutations draw from, inside ``torch.random.fork_rng``
    so the caller's global random state is left as it was.
    """
    mmd_drift = load_mmd_drift()
    j = max_exceedances(alpha, n_permutations)
    detector = mmd_drift(
        x,
        backend="pytorch",
        p_val=(max(j, 0) + 0.5) / n_permutations,
        sigma=np.asarray(kernel.bandwidths, dtype=x.dtype),
        n_permutations=n_permutations,
        configure_kernel_from_x_ref=False,
        device="cpu",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        p_alibi, distance, distance_threshold = detector.score(y)
    exceedances = round(p_alibi * n_permutations)
    # alibi-detect keeps the permuted MMD² in a float32 tensor and compares the observed value
    # with them in float32; rounding the observed value the same way keeps the rule exact.
    observed = float(np.float32(distance))
    scale = kernel.diagonal
    threshold = distance_threshold * scale if j >= 0 else math.inf
    return observed * scale, (1 + exceedances) / (n_permutations + 1), threshold
