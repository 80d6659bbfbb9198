"""The served classifier: an MLflow pyfunc that captures every request like a Debugger hook.

``mlflow models serve -m models:/trustops-digits/1`` loads :class:`CapturingClassifier`,
which runs the trained ``nn.Module`` and records each request as one PREDICT-mode step
(``inputs``, ``penultimate``, ``outputs`` = logits) in the model's capture store, the one its
training run wrote the EVAL reference to.  Steps are numbered on from the last committed
step, so they increase monotonically across server restarts.

The same MLmodel also carries the ``pytorch`` flavor (see :func:`save_model`), so
``mlflow.pytorch.load_model("models:/NAME/VERSION")`` keeps returning the bare ``nn.Module``.

Capture never breaks serving: a store that cannot be opened or written is logged on the
``trustops.serving`` logger (ERROR, with the running count) and counted in
:attr:`CapturingClassifier.capture_failures`; the request is answered all the same.

Configuration (``model_config``, overridable at load time or by the environment):

=====================  ==============================================================
``capture_uri``        the capture store; ``TRUSTOPS_CAPTURE_URI`` overrides it, and
                       ``off`` / an empty value (either place) turns capture off
``capture_backend``    ``native`` (default) or ``smdebug``
``input_shape``        the model's input shape without the batch axis, e.g. ``[64]``
``feature_columns``    the training feature columns (DataFrame input is read by name; a
                       table that names some of them but lacks others is refused)
``classes``            the class labels, in output order
``flush_interval``     seconds a captured step may wait before it is written (0.5)
``torch_threads``      intra-op threads for a forward pass (1); ``TRUSTOPS_TORCH_THREADS``
                       overrides it, 0 leaves torch's own setting
=====================  ==============================================================

Why one thread: the digits models do tens of microseconds of arithmetic per batch, and torch's
default pool (one thread per core) spends more than that waking and joining its threads; on a
machine shared with other processes the pool's threads also wait for cores, and a forward pass
measured 5-10x slower with two threads than with one (``python -m bench.bench_predict``).
Each thread computes whole rows, so the results are the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from torch import nn

log = logging.getLogger("trustops.serving")

CAPTURE_URI_ENV = "TRUSTOPS_CAPTURE_URI"
THREADS_ENV = "TRUSTOPS_TORCH_THREADS"
PYTORCH_ARTIFACT = "pytorch_model"
#: After a store could not be opened, wait this long before the next attempt (seconds).
REOPEN_BACKOFF = 30.0
_OFF = ("", "off", "none", "false", "0")


def _capture_uri(config: Mapping[str, Any], override: str | None = None) -> str | None:
    uri = override if override is not None else os.environ.get(CAPTURE_URI_ENV, config.get("capture_uri"))
    if uri is None or str(uri).strip().lower() in _OFF:
        return None
    return str(uri)


def _torch_threads(config: Mapping[str, Any]) -> int:
    raw = os.environ.get(THREADS_ENV, config.get("torch_threads", 1))
    try:
        threads = int(raw)
    except (TypeError, ValueError):
        threads = -1
    if threads < 0:
        from trustops.errors import ConfigError

        raise ConfigError(f"`torch_threads` ({THREADS_ENV}) must be an integer >= 0 (0: torch's default). Got: {raw!r}")
    return threads


@contextlib.contextmanager
def _intra_op_threads(threads: int):
    """Run torch ops with ``threads`` intra-op threads (0: as they are), restoring the setting after."""
    previous = torch.get_num_threads()
    if not threads or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class CapturingClassifier(mlflow.pyfunc.PythonModel):
    """A classifier that answers with class probabilities and captures each request.

    ``predict`` takes shape-(N, *input_shape) raw rows (an array, nested lists, or a DataFrame
    holding the feature columns; a tabular model's categorical columns hold their category values
    in a DataFrame or a string/object array, turned into codes with the vocabulary the model
    carries, and codes in a numeric array) and returns shape-(N, n_classes) float32 class
    probabilities (softmax of the logits; the logits themselves are captured as ``outputs``).
    Each call is one forward pass, so one PREDICT step; :attr:`last_step` is its number
    (``None`` when that request was not captured).

    Build it from a module with :meth:`from_module`; MLflow builds it via :meth:`load_context`.
    """

    def __init__(self) -> None:
        self.model: nn.Module | None = None
        self.config: dict[str, Any] = {}
        #: Beats ``TRUSTOPS_CAPTURE_URI`` and the config (set by callers such as ``predict_file``).
        self.capture_uri_override: str | None = None
        self.capture_failures = 0
        self.captured_steps = 0
        self.last_step: int | None = None
        #: Recorded with the next captured step (e.g. ``{"labels": [...]}`` for the accuracy monitor).
        self.step_meta: dict[str, Any] = {}
        self._capture = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    # The lock and the open capture belong to one process; never pickle them.
    def __getstate__(self) -> dict[str, Any]:
        return {"config": dict(self.config)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()
        self.config = state.get("config", {})

    @classmethod
    def from_module(cls, model: nn.Module, config: Mapping[str, Any]) -> CapturingClassifier:
        wrapper = cls()
        wrapper.model = model.eval()
        wrapper.config = dict(config)
        _torch_threads(wrapper.config)  # a bad setting fails here, not on the first request
        return wrapper

    def load_context(self, context: Any) -> None:
        from trustops.tracking import load_pytorch_model

        self.model = load_pytorch_model(context.artifacts[PYTORCH_ARTIFACT])
        self.config = dict(context.model_config or {})
        _torch_threads(self.config)

    # -- capture -------------------------------------------------------------------------
    @property
    def capture_uri(self) -> str | None:
        return _capture_uri(self.config, self.capture_uri_override)

    def _record_failure(self, what: str, error: BaseException) -> None:
        self.capture_failures += 1
        log.error(
            "Capture %s failed (%d capture failure(s) so far; the request is answered without capture): %s",
            what, self.capture_failures, error,
        )

    def _open_capture(self):
        if self._capture is not None:
            return self._capture
        uri = self.capture_uri
        if uri is None or time.monotonic() < self._retry_at:
            return None
        from trustops.capture import ActivationCapture

        try:
            self._capture = ActivationCapture(
                self.model, uri, mode="predict", backend=self.config.get("capture_backend") or "native",
                flush_interval=float(self.config.get("flush_interval", 0.5)),
            ).attach()
        except Exception as error:  # any store failure (permissions, network, a foreign layout)
            self._retry_at = time.monotonic() + REOPEN_BACKOFF
            self._record_failure(f"store {uri} could not be opened", error)
            return None
        log.info("Capturing PREDICT steps into %s from step %d", uri, self._capture.writer.next_step("predict"))
        return self._capture

    def flush(self) -> None:
        """Wait until every captured step is in the store (failures are counted, not raised)."""
        with self._lock:
            if self._capture is not None:
                try:
                    self._capture.flush()
                except Exception as error:
                    self._record_failure("flush", error)

    def close(self) -> None:
        """Flush and close the capture; the next request opens it again."""
        with self._lock:
            capture, self._capture = self._capture, None
            if capture is not None:
                try:
                    capture.close()
                except Exception as error:
                    self._record_failure("close", error)

    # -- inference -----------------------------------------------------------------------
    @property
    def categories(self) -> dict[str, list[str]]:
        """Categorical column -> training vocabulary, from the model's own preprocessing (empty if none)."""
        return dict(getattr(getattr(self.model, "standardize", None), "categories", None) or {})

    def _as_tensor(self, model_input: Any) -> torch.Tensor:
        columns = list(self.config.get("feature_columns") or [])
        categories = self.categories
        if isinstance(model_input, Mapping) and not isinstance(model_input, pd.DataFrame):  # a named tensor input
            (model_input,) = model_input.values()
        if categories and not isinstance(model_input, pd.DataFrame) and np.asarray(model_input).dtype.kind in "OUS":
            # Rows holding category names: a table in the training column order.  (Numeric arrays
            # are the model's own input, categorical columns already as codes.)
            model_input = pd.DataFrame(np.asarray(model_input, dtype=object).reshape(len(model_input), -1), columns=columns)
        if isinstance(model_input, pd.DataFrame):
            named = [c for c in columns if c in model_input.columns]
            if columns and named and len(named) < len(columns):
                from trustops.errors import DataError

                missing = [c for c in columns if c not in model_input.columns]
                raise DataError(f"The input lacks {len(missing)} of the model's feature columns: {', '.join(map(repr, missing[:5]))}"
                                f"{' ...' if len(missing) > 5 else ''}.")
            if named:
                model_input = model_input[columns]
            raw = bool(named) or any(not pd.api.types.is_numeric_dtype(t) for t in model_input.dtypes)
            if categories and raw:  # a table of raw values; an unnamed numeric one holds codes already
                from trustops.training.tensors import encode_rows

                model_input = encode_rows(model_input if named else model_input.set_axis(columns, axis=1), columns, categories)
            else:
                model_input = model_input.to_numpy()
        values = np.asarray(model_input, dtype=np.float32)
        shape = tuple(self.config.get("input_shape") or values.shape[1:])
        try:
            values = values.reshape(len(values), *shape)
        except ValueError:
            from trustops.errors import DataError

            raise DataError(
                f"Inputs of shape {values.shape} do not fit the model's input shape (N, {', '.join(map(str, shape))})."
            ) from None
        return torch.from_numpy(np.ascontiguousarray(values))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of one batch, captured as one PREDICT step when the store allows."""
        from trustops.capture import CaptureError

        if self.model is None:
            raise RuntimeError("CapturingClassifier has no model: use from_module() or load it with MLflow.")
        # Hooks share one buffer per capture: one forward pass at a time.
        with self._lock, torch.inference_mode(), _intra_op_threads(_torch_threads(self.config)):
            capture = self._open_capture()
            self.last_step = None
            if capture is None:
                return self.model(inputs)
            capture.meta = self.step_meta
            try:
                logits = self.model(inputs)
            except CaptureError as error:
                # The writer reports an earlier background write failure here; answer anyway.
                self._record_failure(f"write to {capture.writer.store.uri}", error)
                capture.detach()
                try:
                    logits = self.model(inputs)
                finally:
                    capture.attach()
                return logits
            self.last_step = capture.last_step
            self.captured_steps += 1
            return logits

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        inputs = self._as_tensor(model_input)
        with _intra_op_threads(_torch_threads(self.config)):
            logits = self.forward(inputs)
            return torch.softmax(logits.float(), dim=-1).numpy()


# -- logging the model ---------------------------------------------------------------------
def save_model(
    path: str | os.PathLike,
    mlflow_model: Any = None,
    *,
    pytorch_model: nn.Module,
    model_config: Mapping[str, Any],
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    **_: Any,
) -> None:
    """Save one MLmodel with two flavors: this pyfunc (served) and ``pytorch`` (the bare module).

    The pickled ``nn.Module`` is saved once, as the pyfunc's artifact ``pytorch_model``; the
    ``pytorch`` flavor points into it, so ``mlflow.pytorch.load_model`` reads the same file.
    Used as an MLflow flavor module by :func:`log_model` (``Model.log`` calls it).
    """
    from mlflow.models import Model

    from trustops.tracking import mlflow_pytorch

    mlflow_model = mlflow_model if mlflow_model is not None else Model()
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        torch_dir = Path(tmp) / PYTORCH_ARTIFACT
        # Pickle, not torch.export: capture needs the named submodules (penultimate).
        mlflow_pytorch().save_model(
            pytorch_model, torch_dir, serialization_format="pickle", pip_requirements=list(pip_requirements or ())
        )
        torch_flavor = Model.load(torch_dir / "MLmodel").flavors["pytorch"]
        mlflow.pyfunc.save_model(
            path,
            mlflow_model=mlflow_model,
            python_model=CapturingClassifier(),
            artifacts={PYTORCH_ARTIFACT: str(torch_dir)},
            model_config=dict(model_config),
            signature=signature,
            input_example=input_example,
            pip_requirements=list(pip_requirements) if pip_requirements is not None else None,
        )
    mlflow_model.add_flavor(
        "pytorch", **{**torch_flavor, "model_data": f"artifacts/{PYTORCH_ARTIFACT}/{torch_flavor['model_data']}"}
    )
    mlflow_model.save(str(path / "MLmodel"))


def log_model(
    pytorch_model: nn.Module,
    *,
    name: str = "model",
    model_config: Mapping[str, Any],
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
):
    """Log the capturing pyfunc (with the ``pytorch`` flavor alongside) to the active run.

    Returns MLflow's ``ModelInfo``.  The serving-input check MLflow runs after logging is
    off: it would score the input example and so write a PREDICT step into the store.
    """
    import sys

    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name=name,
        flavor=sys.modules[__name__],
        pytorch_model=pytorch_model,
        model_config=model_config,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        validate_serving_input=False,
    )
