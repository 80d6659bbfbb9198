"""MLflow conventions shared by every trustops run.

Every run carries the same trust metric names and tags, so runs line up side by side
in the MLflow UI's comparison view.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


from trustops.paths import default_artifact_root, default_tracking_uri

MAX_PARAM_LENGTH = 6000


def mlflow_pytorch() -> ModuleType:
    """``mlflow.pytorch``, imported without its Lightning autologging.

    On import, ``mlflow.pytorch`` imports ``pytorch_lightning`` (which ``lightning`` installs
    beside itself) only to offer autologging and a checkpoint callback, trustops uses neither,
    and skips both when that import fails.  Every process that saves or loads a model paid for it:
    each monitor pass, ``detect``, ``predict``, each Airflow task (``bench.bench_cli_latency``'s
    ``import_monitor_step`` rows).  So the first import is made with ``pytorch_lightning`` marked
    unimportable, then unmarked for anyone who needs it.
    """
    if "mlflow.pytorch" not in sys.modules and "pytorch_lightning" not in sys.modules:
        sys.modules["pytorch_lightning"] = None  # type: ignore[assignment]  # import fails: ImportError
        try:
            return importlib.import_module("mlflow.pytorch")
        finally:
            del sys.modules["pytorch_lightning"]
    return importlib.import_module("mlflow.pytorch")


def load_pytorch_model(model_uri: str) -> nn.Module:
    """The ``torch.nn.Module`` MLflow's pytorch flavor stored at ``model_uri``, in eval mode."""
    return mlflow_pytorch().load_model(model_uri).eval()


def is_local_store(tracking_uri: str) -> bool:
    return not tracking_uri.startswith(("http://", "https://", "databricks"))


# MLflow 3's UI opens an experiment in the view its kind names; untagged ones it may infer as
# GenAI (traces, judges, prompts).  trustops experiments hold model training and monitoring runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"

# Settings the run already records under another name: the `capture_uri`/`capture_backend` run
# tags (readers and search filters use them), and MLflow itself logs the registered model's
# `model_config`, which holds both, as params of those names.  So not also as `capture.*` params.
RECORDED_AS_TAGS = {"capture.uri": "capture_uri", "capture.backend": "capture_backend"}


def ensure_experiment(name: str, tracking_uri: str | None = None, root: Path | None = None) -> str:
    """The id of experiment ``name``, created with the project's artifact folder if the store is local.

    The experiment is tagged as model development (:data:`EXPERIMENT_KIND_TAG`), so MLflow 3
    opens its runs and charts; an experiment that already names a kind keeps it.
    """
    tracking_uri = tracking_uri or default_tracking_uri(root)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        from mlflow.exceptions import MlflowException

        try:
            return client.create_experiment(name, artifact_location=experiment_artifact_location(tracking_uri, root),
                                            tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})  # fmt: skip
        except MlflowException:
            # Another process (two monitor passes of different versions starting together) created
            # it between the lookup and the insert: use theirs.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before trustops tagged its experiments
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return experiment.experiment_id


def config_params(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The run's params: every setting, flattened, except those recorded as a tag (:data:`RECORDED_AS_TAGS`)."""
    return {k: v for k, v in flatten(settings).items() if k not in RECORDED_AS_TAGS}


def source_tags(root: Path, *, entry_point: str | None = None) -> dict[str, str]:
    """MLflow's own source tags for a run of the project at ``root``.

    ``mlflow.source.name`` is the command that ran (default: the program and its subcommand,
    e.g. ``trustops train``); the git tags (commit, branch, origin URL, and
    ``mlflow.source.git.dirty`` when tracked files differ from the commit) are left out
    outside a git checkout.  The UI links the commit from the run page.
    """
    from mlflow.utils import mlflow_tags as t

    tags = {t.MLFLOW_SOURCE_TYPE: "LOCAL", t.MLFLOW_SOURCE_NAME: entry_point or _entry_point()}
    commit = _git(root, "rev-parse", "HEAD")
    if not commit:
        return tags
    tags[t.MLFLOW_GIT_COMMIT] = commit
    tags[t.MLFLOW_GIT_DIRTY] = "true" if _git(root, "status", "--porcelain", "--untracked-files=no") else "false"
    if (branch := _git(root, "rev-parse", "--abbrev-ref", "HEAD")) and branch != "HEAD":
        tags[t.MLFLOW_GIT_BRANCH] = branch
    if url := _git(root, "remote", "get-url", "origin"):
        tags[t.MLFLOW_GIT_REPO_URL] = url
    return tags


def _entry_point() -> str:
    import sys

    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    command = next((a for a in sys.argv[1:2] if not a.startswith("-")), "")
    return f"{program} {command}".strip()


def _git(root: Path, *args: str) -> str:
    """``git args`` in ``root``: its stripped output, ``""`` when git or the repository is missing."""
    import subprocess

    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def experiment_artifact_location(tracking_uri: str, root: Path | None = None) -> str | None:
    """Where a new experiment keeps its artifacts.

    With a tracking server, ``None``: the server's ``--artifacts-destination`` decides (so
    clients need no storage credentials).  With a local store, the storage setting's S3
    ``mlartifacts/`` prefix, else the project's ``.trustops/mlartifacts`` folder.
    """
    if not is_local_store(tracking_uri):
        return None
    from trustops.storage import load_storage

    storage = load_storage(root)
    return storage.artifact_root if storage.is_s3 else default_artifact_root(root)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"dp": {"enabled": True}}`` to ``{"dp.enabled": True}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_batch(
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, Any] | None = None,
    step: int = 0,
) -> None:
    """Log to the active run in one request (per-item calls cost a round trip each on a server)."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_batch needs an active MLflow run.")
    timestamp = mlflow.utils.time.get_current_time_millis()
    MlflowClient().log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), timestamp, step) for k, v in (metrics or {}).items() if _finite(v)],
        params=[Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


# MLflow's SQL tracking store logs a run's dataset inputs by looking up each dataset (experiment,
# name, digest) and inserting the ones it did not find.  Two runs that log the same new dataset to
# one experiment at once (parallel trainings on the same data) can both miss it, and the second
# insert then fails the unique key: the run died in `load_data` with "UNIQUE constraint failed:
# datasets.experiment_id, datasets.name, datasets.digest".  Its transaction is rolled back whole,
# so logging again finds the dataset the other run inserted and links it.
DATASET_INSERT_ATTEMPTS = 3


def log_dataset_inputs(**inputs: Any) -> None:
    """``mlflow.log_inputs(**inputs)`` on the active run, logged again where it lost that race."""
    import mlflow
    import tenacity

    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(DATASET_INSERT_ATTEMPTS),
                                 retry=tenacity.retry_if_exception(_lost_dataset_insert_race), reraise=True)
    retrying(mlflow.log_inputs, **inputs)  # at once: the other run's insert is committed when ours fails


def _lost_dataset_insert_race(error: BaseException) -> bool:
    """A unique-key failure on MLflow's ``datasets`` table: raised locally (SQLAlchemy's IntegrityError
    under MLflow's), or by a tracking server in its message (SQLite's or PostgreSQL's wording)."""
    from mlflow.exceptions import MlflowException

    text = str(error)
    return isinstance(error, MlflowException) and "datasets" in text and (
        type(error.__cause__).__name__ == "IntegrityError" or "UNIQUE constraint" in text or "duplicate key" in text)


def log_history(rows: Iterable[Mapping[str, float]], *, step_key: str = "epoch") -> None:
    """Metrics per epoch (or per ``step_key``), each at that step, so curves plot in the MLflow UI; few requests."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_history needs an active MLflow run.")
    timestamp = mlflow.utils.time.get_current_time_millis()
    metrics = [
        Metric(name, float(value), timestamp, int(row[step_key]))
        for row in rows
        for name, value in row.items()
        if name != step_key and _finite(value)
    ]
    for start in range(0, len(metrics), 1000):  # MLflow's per-request limit
        MlflowClient().log_batch(run.info.run_id, metrics=metrics[start : start + 1000])


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def dataset_source(uri: str) -> Any:
    """MLflow's dataset source for a path or URI (``s3://...``), for an input of a run.

    MLflow registers its local-file source more than once and warns on every local path that
    the path "can be interpreted in multiple ways" (each way is the same source); the warning
    says nothing to a trustops user, so it is silenced here.
    """
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        return resolve_dataset_source(uri)
