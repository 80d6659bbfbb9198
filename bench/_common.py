"""What the benchmark scripts share: the machine record, peak-memory probes, workers, digits settings.

Peak memory is read from the kernel: ``VmHWM`` (the resident-set high-water mark) is reset
through ``/proc/self/clear_refs`` just before the measured call and read after it, and the
resident set size just before is subtracted, so imports and set-up do not count.  Before that
baseline is read, the C allocator hands its free pages back (glibc's ``malloc_trim``): memory
that set-up freed but the allocator kept would count in the baseline and be reused by the call
unseen, and how much it keeps depends on unrelated things (glibc raises its mmap threshold
whenever a large block is freed, so an extra import before set-up can hide tens of MiB).
Measure in a fresh process (:func:`run_worker`): a child started from a big parent inherits
nothing, and tracemalloc cannot see torch's allocations.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path("bench/results")
WORKER_MARK = "BENCH-RESULT "


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _status(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _release_free_memory() -> None:
    """Collect garbage, then return the C allocator's free pages to the kernel (glibc only; elsewhere a no-op)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def peak_memory() -> Iterator[dict[str, int]]:
    """``probe["increase_bytes"]``: the peak resident set during the block, minus the live resident set before it."""
    probe: dict[str, int] = {}
    _release_free_memory()  # the baseline counts live memory only, not free pages the block could reuse unseen
    with open("/proc/self/clear_refs", "w") as marks:
        marks.write("5")  # reset the peak-RSS mark
    probe["rss_before_bytes"] = _status("VmRSS")
    yield probe
    probe["peak_rss_bytes"] = _status("VmHWM")
    probe["increase_bytes"] = probe["peak_rss_bytes"] - probe["rss_before_bytes"]


def report_from_worker(result: Any) -> None:
    """The worker side of :func:`run_worker`: one marked JSON line on stdout."""
    print(WORKER_MARK + json.dumps(result), flush=True)


def run_worker(module: str, args: list[str], *, env: dict[str, str] | None = None, timeout: float = 900) -> Any:
    """Run ``python -m bench.<module> --worker ...`` in a fresh process and return what it reported."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--worker", *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith(WORKER_MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench.{module} worker {args} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len(WORKER_MARK) :])


def isolated_env(root: Path) -> dict[str, str]:
    """The environment of a throw-away trustops project at ``root`` (its own MLflow and ZenML stores)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ZENML_", "TRUSTOPS_"))}
    env.update(TRUSTOPS_PROJECT_ROOT=str(root), PYTHONUNBUFFERED="1", PYTHONPATH=str(Path.cwd()))
    return env


def make_project(root: Path) -> Path:
    """A minimal trustops project: ``dvc.yaml`` (the root marker) and the digits table."""
    from trustops.data.digits import export_digits

    root.mkdir(parents=True, exist_ok=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    return root


def digits_settings(
    *, family: str = "mlp", epochs: int = 2, dp: bool = False, capture: bool = False, capture_uri: str | None = None, **tracking: Any
):
    """The ``trustops train`` defaults for the digits data set, with a few knobs."""
    from trustops.data.digits import DIGITS_IMAGE_SHAPE, DIGITS_VALUE_RANGE
    from trustops.settings import (
        CaptureSettings,
        DataSettings,
        DPSettings,
        ModelSettings,
        TrackingSettings,
        TrainerSettings,
        TrainSettings,
    )

    return TrainSettings(
        data=DataSettings(
            path="data/digits.parquet", image_shape=list(DIGITS_IMAGE_SHAPE),
            value_range=list(DIGITS_VALUE_RANGE), classes=list(range(10)),
        ),
        model=ModelSettings(family=family, hidden=[32] if family == "cnn" else [64, 32]),
        trainer=TrainerSettings(max_epochs=epochs),
        dp=DPSettings(enabled=True, target_epsilon=8.0) if dp else DPSettings(enabled=False, target_epsilon=None),
        tracking=TrackingSettings(**tracking),
        capture=CaptureSettings(enabled=capture, uri=capture_uri),
    )  # fmt: skip


def write_report(name: str, report: dict[str, Any], out: Path | None = None) -> Path:
    report.setdefault("benchmark", name)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False, default=str) + "\n")
    print(f"wrote {path}", flush=True)
    return path


def epoch_clock():
    """A Lightning callback whose ``seconds`` lists each training epoch's time, validation excluded."""
    import lightning as L

    class EpochClock(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0

        def on_train_epoch_start(self, trainer, module) -> None:
            self._start = time.perf_counter()

        def on_validation_epoch_start(self, trainer, module) -> None:
            if not trainer.sanity_checking:
                self.seconds.append(time.perf_counter() - self._start)

    return EpochClock()
