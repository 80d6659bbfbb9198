"""Optional engine for licence holders: :class:`AlibiDetectMMDMonitor`, whose tests alibi-detect's ``MMDDrift`` computes.

alibi-detect 0.11.5 and later are under the Business Source License 1.1: production use needs
a licence from Seldon.  It is therefore optional: this module is the one place that uses it, it
is imported only by whoever builds an :class:`AlibiDetectMMDMonitor`, and alibi-detect itself
is imported when one is constructed, never at import of trustops.

alibi-detect's kernel *averages* the Gaussian bandwidths where ours sums them, so its MMD² is
multiplied by the number of bandwidths here.  Its p-value, ``#{b : S_b >= S_0} / P``, is turned
back into the exceedance count and reported with the +1 correction like our own engine.  For
the critical value, alibi-detect returns the ``(int(p_val * P) + 1)``-th largest permuted MMD²;
constructing it with ``p_val = (j + 0.5) / P`` makes that exactly the ``(j + 1)``-th largest
that :func:`monitors.mmd.pvalues.critical_value` defines, so ``score > threshold`` agrees with
``p_value <= alpha`` for this backend too.  (alibi-detect's own ``is_drift`` is not used.)
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor

from monitors.errors import MonitorConfigError, MonitorDependencyError
from monitors.mmd.kernel import GaussianKernelSum
from monitors.mmd.pvalues import max_exceedances
from monitors.mmd_adversarial import MMDAdversarialMonitor

# Where `make install` puts alibi-detect and the packages its import needs (requirements/alibi-reference.txt):
# a folder of its own, outside the environment's site-packages, because its import needs transformers, and
# with transformers installed every `import lightning` imports it too (torchmetrics' text metrics).
REFERENCE_FOLDER = Path(sys.prefix) / "alibi-reference"
INSTALL_HINT = (
    "Install it (check your Business Source License first) with\n"
    "  uv pip install --no-deps --target .venv/alibi-reference -r requirements/alibi-reference.txt\n"
    "(--no-deps: alibi-detect 0.13 declares numpy<2 and numba<0.60, which would replace the "
    "project's numpy; its MMD path runs with numpy 2 and numba 0.68), or use MMDAdversarialMonitor."
)


def load_mmd_drift() -> Any:
    """alibi-detect's ``MMDDrift`` class (from the environment, else from :data:`REFERENCE_FOLDER`), or a
    :class:`MonitorDependencyError` with the install hint."""
    if importlib.util.find_spec("alibi_detect") is None and REFERENCE_FOLDER.is_dir():
        sys.path.append(str(REFERENCE_FOLDER))  # after site-packages: the environment's numpy and torch win
    try:
        from alibi_detect.cd import MMDDrift
    except ImportError as error:
        raise MonitorDependencyError(
            f"AlibiDetectMMDMonitor needs alibi-detect 0.13 and the packages it imports, "
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


class AlibiDetectMMDMonitor(MMDAdversarialMonitor):
    """:class:`~monitors.mmd_adversarial.MMDAdversarialMonitor` whose permutation tests alibi-detect's ``MMDDrift`` computes.

    For licence holders of alibi-detect (and as the reference the tests hold trustops to).  The
    options, the fitting, the row draws and the results are the monitor's; each test's MMD²,
    p-value and critical value come from :func:`alibi_permutation_test` on the same standardized
    rows and bandwidths.  alibi-detect permutes all rows freely and tests one array, so this
    engine takes ``class_matching=False``, ``method="permutation"``, ``stop_after=None`` and one
    layer.  ``details["backend"]`` is ``"alibi_detect"``.

    Raises
    ------
    MonitorDependencyError
        At construction, when alibi-detect cannot be imported (with the install hint).
    """

    name: ClassVar[str] = "mmd_adversarial_alibi_detect"
    backend: ClassVar[str] = "alibi_detect"

    def _validate_options(self, config: dict[str, Any]) -> dict[str, Any]:
        config = super()._validate_options(config)
        if config["method"] != "permutation":
            raise MonitorConfigError(f"AlibiDetectMMDMonitor supports method='permutation' only. Got: {config['method']!r}")
        if config["class_matching"]:
            raise MonitorConfigError(
                "AlibiDetectMMDMonitor permutes all rows freely, which would make a class-matched test "
                "conservative (trustops permutes within classes); use it with class_matching=False."
            )
        if config["stop_after"] is not None:
            raise MonitorConfigError(
                f"AlibiDetectMMDMonitor draws all n_permutations; `stop_after` must be None. Got: {config['stop_after']!r}"
            )
        load_mmd_drift()
        return config

    @classmethod
    def _unit_test_params(cls) -> list[dict[str, Any]]:
        return [{"class_matching": False, "n_permutations": 99, "seed": 0}]

    def fit(self, reference: Any, *, predictions: Any = None) -> Self:
        super().fit(reference, predictions=predictions)
        if len(self._layers) > 1:
            layers = sorted(self._layers)
            self._layers = {}
            raise MonitorConfigError(f"AlibiDetectMMDMonitor tests one layer at a time. Got {len(layers)} layers: {layers}")
        return self

    def _full_test(
        self, layers: dict[str, Tensor], rows: Tensor | None, labels: Tensor | None
    ) -> tuple[float, float, float, dict[str, float]]:
        (name, raw_batch), = layers.items()
        x, y, kernel, _ = self._test_rows(name, raw_batch, rows)
        mmd2, p_value, threshold = self._alibi_test(x, y, kernel, self._draw_seed())
        return mmd2, threshold, p_value, {"mmd2": mmd2}

    def _batched_p_values(
        self, layers: dict[str, Tensor], reference_rows: Tensor, batch_rows: Tensor, labels: Tensor | None
    ) -> Tensor:
        (name, raw_batch), = layers.items()
        p_values = []
        for x_rows, y_rows in zip(reference_rows, batch_rows):
            seed = self._draw_seed()
            x, y, kernel, _ = self._test_rows(name, raw_batch[y_rows], x_rows)
            p_values.append(self._alibi_test(x, y, kernel, seed)[1])
        return torch.tensor(p_values, dtype=torch.float64)

    def _draw_seed(self) -> int:
        """A seed for alibi-detect's permutations (torch's global generator), from the monitor's generator."""
        return int(torch.randint(0, 2**62, (1,), generator=self._generator))

    def _alibi_test(self, x: Tensor, y: Tensor, kernel: GaussianKernelSum, seed: int) -> tuple[float, float, float]:
        return alibi_permutation_test(
            x.cpu().numpy(), y.cpu().numpy(), kernel, n_permutations=self.n_permutations, alpha=self.alpha, seed=seed
        )
