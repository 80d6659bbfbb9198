"""Batch scoring of new data with a registered model, capturing PREDICT-mode activations.

The CLI form is ``trustops predict --model NAME[:VERSION|@ALIAS] --input FILE [--output FILE]``
(:func:`run_predict`).  Each batch is one forward pass, so one PREDICT step in the model's
capture store; the returned table says which step holds each row (``capture_step``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from trustops.errors import ConfigError, DataError

__all__ = [
    "add_predict_arguments", "check_predict_arguments", "parse_model_spec", "predict_file", "read_inputs", "read_labels",
    "run_predict", "score_inputs",
]

INPUT_FORMATS = (".csv", ".parquet", ".pq", ".npz")
OUTPUT_FORMATS = (".csv", ".parquet", ".pq")


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` -> (name, version), version ``latest``/``3``/``@alias``."""
    if "@" in spec:
        name, alias = spec.split("@", 1)
        version = f"@{alias}"
    elif ":" in spec:
        name, version = spec.rsplit(":", 1)
    else:
        name, version = spec, "latest"
    if not name or version in ("", "@") or not (version == "latest" or version.startswith("@") or version.isdigit()):
        raise ConfigError(f"--model must be NAME, NAME:VERSION or NAME@ALIAS (VERSION a number). Got: {spec!r}")
    return name, version


def read_labels(path: str | Path, label_column: str | None, classes: list) -> np.ndarray | None:
    """shape-(N,) class indices from the input table's label column, or ``None`` when it has none.

    Labels that arrive with the batch let the ``accuracy`` monitor check it.  A label outside the
    model's classes is an error: it would silently count as a wrong prediction.
    """
    path = Path(path)
    if not label_column or path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        return None
    frame = _read_input_table(path)
    if label_column not in frame.columns:
        return None
    index = {str(c): i for i, c in enumerate(classes)}
    labels = frame[label_column].astype(str)
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{path} column {label_column!r} holds labels the model does not know: {unknown[:5]}. "
                        f"Its classes: {[str(c) for c in classes]}.")
    return labels.map(index).to_numpy(dtype=np.int64)


def _read_input_table(path: Path) -> pd.DataFrame:
    """The CSV or Parquet table at ``path``, read as training data is (``trustops.data.loading.read_table``)."""
    from trustops.data.loading import read_table

    return read_table(path, "auto")[0]


def read_inputs(
    path: str | Path, feature_columns: list[str], input_shape: tuple[int, ...], categories: dict[str, list[str]] | None = None
) -> np.ndarray:
    """shape-(N, *input_shape) float32 inputs from a CSV/Parquet table or an ``.npz`` of ``images``.

    ``categories`` (a tabular model's vocabularies) turns categorical values into codes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise DataError(f"Cannot score {path}: the input must be one of {', '.join(INPUT_FORMATS)}. Got: {suffix or '(no extension)'}")
    if not path.is_file():
        raise DataError(f"Input file not found: {path}")
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                if "images" not in arrays:
                    raise DataError(f"{path} has no 'images' array (it holds: {', '.join(arrays.files) or 'nothing'}).")
                values = arrays["images"].astype(np.float32)
        else:
            frame = _read_input_table(path)
            missing = [c for c in feature_columns if c not in frame.columns]
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                raise DataError(
                    f"{path} lacks {len(missing)} of the model's {len(feature_columns)} feature columns: {shown}."
                )
            if categories:
                from trustops.training.tensors import encode_rows

                values = encode_rows(frame, feature_columns, categories)
            else:
                values = frame[feature_columns].to_numpy(dtype=np.float32)
    except DataError:
        raise
    except Exception as error:  # pandas, pyarrow and numpy each raise their own types for a bad file
        raise DataError(f"Could not read {path}: {error}") from error
    if not np.isfinite(values).all():
        raise DataError(f"{path} holds NaN or infinite feature values; the model cannot score them.")
    try:
        return values.reshape(len(values), *input_shape)
    except ValueError:
        raise DataError(
            f"The inputs in {path} have shape {values.shape}; the model takes (N, {', '.join(map(str, input_shape))})."
        ) from None


def predict_file(
    model_name: str,
    version: str | int,
    path: str | Path,
    *,
    capture_uri: str | None = None,
    batch_size: int = 256,
) -> pd.DataFrame:
    """Score the rows (or images) of ``path`` with a registered model, capturing each batch.

    Parameters
    ----------
    model_name, version
        The registered model; ``version`` is a number, ``latest`` or ``@alias``.
    path
        CSV/Parquet with the training feature columns, or ``.npz`` with ``images``.
    capture_uri
        Capture store for the PREDICT steps; default ``TRUSTOPS_CAPTURE_URI``, else the
        model's own store (its ``capture_uri``).  ``"off"`` captures nothing.
    batch_size
        Rows per forward pass, i.e. per captured step.

    Returns
    -------
    pd.DataFrame
        One row per input: ``prediction`` (class label), ``confidence`` (its probability),
        ``prob_<class>`` per class, and ``capture_step`` (the PREDICT step, -1 if not captured).
    """
    import mlflow

    from trustops.paths import default_tracking_uri
    from trustops.registry import resolve_registered_model
    from trustops.serving.pyfunc import CapturingClassifier

    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1. Got: {batch_size}")
    tracking_uri = default_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    found = resolve_registered_model(model_name, str(version))
    loaded = mlflow.pyfunc.load_model(found.model_uri)
    try:
        wrapper = loaded.unwrap_python_model()
    except Exception:  # another pyfunc flavor (e.g. a model registered before serving capture)
        wrapper = None
    if not isinstance(wrapper, CapturingClassifier):
        raise ConfigError(
            f"{found.name} v{found.version} was registered without the capturing pyfunc; "
            "register it again with `trustops train` to score with capture."
        )
    wrapper.capture_uri_override = capture_uri
    config = wrapper.config
    inputs = read_inputs(path, list(config["feature_columns"]), tuple(config["input_shape"]), wrapper.categories)
    classes = list(config.get("classes") or [])
    labels = read_labels(path, found.training.data.label_column, classes) if classes else None
    table = score_inputs(wrapper, inputs, labels, batch_size=batch_size)
    table.attrs.update(model=f"{found.name}/{found.version}")
    return table


def score_inputs(wrapper, inputs: np.ndarray, labels: np.ndarray | None = None, *, batch_size: int = 256) -> pd.DataFrame:
    """Score shape-(N, *input_shape) ``inputs`` with a :class:`CapturingClassifier`, one captured step per batch.

    The part of :func:`predict_file` after loading (what ``bench.bench_predict`` times); closes
    the wrapper's capture at the end.  Returns the table described there.
    """
    probabilities, steps = [], []
    try:
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size]
            if labels is not None:
                wrapper.step_meta = {"labels": labels[start : start + batch_size].tolist()}
            probabilities.append(wrapper.predict(None, batch))
            steps.append(np.full(len(batch), -1 if wrapper.last_step is None else wrapper.last_step))
    finally:
        wrapper.close()
    classes = list(wrapper.config.get("classes") or range(probabilities[0].shape[1] if probabilities else 0))
    probs = np.concatenate(probabilities) if probabilities else np.zeros((0, len(classes)), np.float32)
    table = pd.DataFrame(probs, columns=[f"prob_{c}" for c in classes])
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    table.insert(0, "prediction", np.asarray(classes, dtype=object)[best] if len(probs) else [])
    table.insert(1, "confidence", probs.max(axis=1) if len(probs) else [])
    table["capture_step"] = np.concatenate(steps).astype(int) if steps else np.zeros(0, int)
    table.attrs.update(capture_failures=wrapper.capture_failures)
    return table


def add_predict_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``trustops predict`` options."""
    parser.add_argument("--model", required=True, help="NAME, NAME:VERSION or NAME@ALIAS of a registered model")
    parser.add_argument("--input", required=True, help="CSV/Parquet with the feature columns, or .npz with 'images'")
    parser.add_argument("--output", help="write the predictions here (.csv or .parquet); default: print them")
    parser.add_argument("--capture-uri", help="capture store for the PREDICT steps (default: the model's; 'off': none)")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per captured step (default: %(default)s)")
    return parser


def check_predict_arguments(args: argparse.Namespace) -> tuple[str, str]:
    """Refuse every bad ``trustops predict`` argument before a model is loaded or a batch scored and captured.

    Returns the model's (name, version).  What only the model can tell (its feature columns,
    its classes) is checked when the inputs are read, still before the first batch.
    """
    name, version = parse_model_spec(args.model)
    batch_size = getattr(args, "batch_size", 256)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size must be a whole number >= 1. Got: {batch_size!r}")
    source = Path(args.input)
    if source.suffix.lower() not in INPUT_FORMATS:
        raise DataError(f"Cannot score {source}: the input must be one of {', '.join(INPUT_FORMATS)}. "
                        f"Got: {source.suffix or '(no extension)'}")
    if not source.is_file():
        raise DataError(f"Input file not found: {source}")
    capture_uri = getattr(args, "capture_uri", None)
    if capture_uri is not None and capture_uri != "off":
        from trustops.capture.store import parse_capture_uri

        try:
            parse_capture_uri(capture_uri)
        except ValueError as error:
            raise ConfigError(f"--capture-uri: {error}") from None
    output = getattr(args, "output", None)
    if output:
        out = Path(output)
        if out.suffix.lower() not in OUTPUT_FORMATS:
            raise ConfigError(f"--output must end in .csv or .parquet. Got: {output}")
        if out.is_dir():
            raise ConfigError(f"--output names a folder, not a file: {output}")
        folder = next((parent for parent in out.parents if parent.exists()), Path("."))
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"--output cannot be written: {folder} is not a writable folder. Got: {output}")
        if out.resolve() == source.resolve():
            raise ConfigError(f"--output would overwrite the input {source}; name another file.")
    return name, version


def run_predict(args: argparse.Namespace) -> int:
    """``trustops predict``: score a file, write or print the predictions, return the exit code.

    Every argument is checked first (:func:`check_predict_arguments`): a bad one costs no
    scoring and leaves nothing in the capture store.
    """
    name, version = check_predict_arguments(args)
    table = predict_file(
        name, version, args.input, capture_uri=getattr(args, "capture_uri", None),
        batch_size=getattr(args, "batch_size", 256),
    )
    output = getattr(args, "output", None)
    if output:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False) if out.suffix.lower() == ".csv" else table.to_parquet(out, index=False)
        print(f"{len(table)} predictions from {table.attrs['model']} written to {out}")
    else:
        print(table.to_string(index=False, max_rows=50))
    if failures := table.attrs.get("capture_failures"):
        print(f"warning: {failures} capture failure(s); see the log for the store error")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``trustops predict`` standalone: ``python -m trustops.serving.predict --model ...``."""
    import sys

    from trustops.errors import TrustopsError

    args = add_predict_arguments(argparse.ArgumentParser(prog="trustops predict")).parse_args(argv)
    try:
        return run_predict(args)
    except TrustopsError as error:
        print(f"trustops: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

