"""Run lifecycle: who owns an MLflow run, and ending the runs whose owner process is gone.

Every MLflow run trustops opens carries its owner as tags (host, PID and the process's start
time, so a recycled PID is not mistaken for the owner).  A process killed with SIGKILL, or a
machine that lost power, leaves its run RUNNING forever; :func:`reconcile_abandoned_runs`,
called at the start of ``trustops train``, ``monitor``, ``detect`` and ``compare``, ends such
runs as KILLED and stops their ZenML pipeline runs.  Runs owned by another host are left alone:
whether their process lives cannot be known from here.

A model version is registered by the training pipeline with ``trustops.status=pending`` and
becomes ``ready`` only once the whole training run finished (:func:`mark_version_ready`); the
registry resolves ``latest``, aliases and explicit versions only to ready versions.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

OWNER_HOST_TAG = "trustops.owner.host"
OWNER_PID_TAG = "trustops.owner.pid"
OWNER_START_TAG = "trustops.owner.start"  # the owner process's start time (see process_start_time)
RECONCILED_TAG = "trustops.reconciled"

STATUS_TAG = "trustops.status"  # on a model version: pending until its training run finished, then ready
PENDING = "pending"
READY = "ready"
FAILED = "failed"  # on a ZenML model version whose training run failed or was killed (trustops.zenml_model)

# ZenML statuses of a pipeline run that is still going; an abandoned one in these is stopped.
_ZENML_ACTIVE = ("initializing", "provisioning", "queued", "running", "stopping")


def process_start_time(pid: int) -> str | None:
    """An opaque, exact start-time stamp of process ``pid`` on this host; ``None`` if it does not exist.

    Linux: the start time in clock ticks since boot from ``/proc/<pid>/stat``; elsewhere psutil's
    creation time.  Only ever compared with a value read the same way on the same host.
    """
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except OSError:
            return None
        # Field 22; the command name (field 2) may hold spaces and parentheses, so split after it.
        return text[text.rindex(")") + 2:].split()[19]
    try:
        import psutil

        return f"{psutil.Process(pid).create_time():.3f}"
    except Exception:  # psutil missing, or no such process
        return None


def owner_tags() -> dict[str, str]:
    """The tags that name this process as the owner of a run."""
    pid = os.getpid()
    return {OWNER_HOST_TAG: socket.gethostname(), OWNER_PID_TAG: str(pid), OWNER_START_TAG: process_start_time(pid) or ""}


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: str

    @classmethod
    def of(cls, run: Run) -> Owner | None:
        tags = run.data.tags
        try:
            return cls(tags[OWNER_HOST_TAG], int(tags[OWNER_PID_TAG]), tags.get(OWNER_START_TAG, ""))
        except (KeyError, ValueError):
            return None  # a run trustops did not open, or opened before owners were recorded

    def is_gone(self) -> bool:
        """True when this host is the owner's and the owner process no longer runs.

        A live PID with another start time is a recycled PID: the owner is gone.  On another host
        nothing can be known, so False.
        """
        if self.host != socket.gethostname():
            return False
        started = process_start_time(self.pid)
        return started is None or (bool(self.start) and started != self.start)


def reconcile_abandoned_runs(tracking_uri: str, *, root: Path | None = None, client: MlflowClient | None = None) -> list[str]:
    """End the RUNNING MLflow runs whose owner process on this host is gone, as KILLED.

    Their ZenML pipeline runs (same name, in the project's ZenML store), if still active, are
    marked stopped.  Cheap when nothing is abandoned: for a local SQLite store one read-only
    query that imports no MLflow, otherwise one ``search_runs``; ZenML is imported only when
    something is abandoned.  Never raises for an unreachable store: reconciling is housekeeping, and the
    command that called it reports the store's problem itself.

    Returns
    -------
    list[str]
        The MLflow run ids ended as KILLED.
    """
    try:
        abandoned = _abandoned_runs(tracking_uri, client)
    except Exception as error:  # noqa: BLE001 - housekeeping must not stop the command
        logger.debug("Could not look for abandoned runs in %s: %s", tracking_uri, error)
        return []
    if not abandoned:
        return []
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient(tracking_uri, tracking_uri)
    ended = []
    for run in abandoned:
        owner = Owner.of(run)
        note = f"owner process {owner.pid} on {owner.host} was gone; ended as KILLED on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        try:
            client.set_tag(run.info.run_id, RECONCILED_TAG, note)
            client.set_terminated(run.info.run_id, "KILLED")
        except Exception as error:  # noqa: BLE001 - another process may have ended it meanwhile
            logger.debug("Could not end abandoned run %s: %s", run.info.run_id, error)
            continue
        ended.append(run.info.run_id)
        logger.info("Run %s (%s) was left RUNNING by process %s, which is gone; marked KILLED.",
                    run.info.run_name, run.info.run_id[:12], owner.pid)
    stop_zenml_runs([run.info.run_name for run in abandoned if run.info.run_id in ended], root=root)
    return ended


def _abandoned_runs(tracking_uri: str, client: MlflowClient | None) -> list[Run]:
    if tracking_uri.startswith("sqlite:///"):
        database = tracking_uri.removeprefix("sqlite:///")
        if not os.path.exists(database):
            return []  # no store yet, so no run in it; opening it here would create it
        if _peek_owned_running(database) is False:
            return []  # the common case, answered without importing MLflow
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient(tracking_uri, tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    running = client.search_runs(
        experiments, filter_string=f"attributes.status = 'RUNNING' and tags.`{OWNER_HOST_TAG}` = '{socket.gethostname()}'",
        run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
    )
    return [run for run in running if (owner := Owner.of(run)) is not None and owner.is_gone()]


def _peek_owned_running(database: str) -> bool | None:
    """Whether a local SQLite store holds a RUNNING run owned by a process of this host that is gone.

    Read-only, with the standard library, from MLflow's ``runs`` and ``tags`` tables; ``None``
    when unsure (a schema it does not know, a locked database): the caller then asks MLflow.
    """
    import sqlite3

    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            rows = connection.execute(
                "SELECT pid.value, start.value FROM runs r "
                "JOIN tags host ON host.run_uuid = r.run_uuid AND host.key = ? AND host.value = ? "
                "JOIN tags pid ON pid.run_uuid = r.run_uuid AND pid.key = ? "
                "LEFT JOIN tags start ON start.run_uuid = r.run_uuid AND start.key = ? "
                "WHERE r.status = 'RUNNING' AND r.lifecycle_stage = 'active'",
                (OWNER_HOST_TAG, socket.gethostname(), OWNER_PID_TAG, OWNER_START_TAG)).fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    try:
        return any(Owner(socket.gethostname(), int(pid), start or "").is_gone() for pid, start in rows)
    except ValueError:
        return None


def stop_zenml_runs(run_names: list[str], *, root: Path | None = None) -> None:
    """Mark the named ZenML pipeline runs, and their unfinished steps, stopped if they are still active."""
    if not run_names:
        return
    try:
        from trustops.stack import configure_zenml_environment

        configure_zenml_environment(root)
        from zenml.client import Client
        from zenml.enums import ExecutionStatus
        from zenml.orchestrators import publish_utils

        client = Client()
        for name in run_names:
            try:
                pipeline_run = client.get_pipeline_run(name, hydrate=False)
            except KeyError:
                continue  # not a ZenML run, or another ZenML store
            if pipeline_run.status.value not in _ZENML_ACTIVE:
                continue
            for step_run in client.list_run_steps(pipeline_run_id=pipeline_run.id, size=100):
                if step_run.status.value in _ZENML_ACTIVE:
                    publish_utils.publish_step_run_status_update(step_run.id, status=ExecutionStatus.STOPPED)
            publish_utils.publish_pipeline_run_status_update(pipeline_run.id, status=ExecutionStatus.STOPPED,
                                                             status_reason="the trustops process running it was killed")
            try:
                _fail_pending_model_version(client, pipeline_run.id)
            except Exception as error:  # noqa: BLE001 - the version's label; the run is stopped either way
                logger.warning("Could not mark the ZenML model version of run %s failed: %s: %s", name, type(error).__name__, error)
    except Exception as error:  # noqa: BLE001 - housekeeping: the MLflow side is what users read
        logger.debug("Could not stop ZenML runs %s: %s", run_names, error)


def _fail_pending_model_version(client: Any, pipeline_run_id: Any) -> None:
    """A stopped training run's ZenML model version still reads pending: mark it failed (metadata and tag).

    A monitor run attaches to a ready version, which this leaves alone.
    """
    from zenml import log_metadata

    version = client.get_pipeline_run(pipeline_run_id).model_version  # hydrated: with its model version
    if version is None or version.run_metadata.get(STATUS_TAG) != PENDING:
        return
    log_metadata(metadata={STATUS_TAG: FAILED}, model_version_id=version.id)
    client.update_model_version(version.model.id, version.id, add_tags=[FAILED])


def end_interrupted_run(run_name: str, experiment_name: str, tracking_uri: str, *, root: Path | None = None) -> None:
    """After SIGTERM or Ctrl-C reached a pipeline: its MLflow run ends KILLED, its ZenML run stopped.

    ZenML's step runner has already ended the MLflow run as FAILED (it treats the interrupt as a
    step failure), or, when the signal came between steps, the last step left it FINISHED; either
    way the pipeline did not finish, and KILLED says so.
    """
    try:
        import mlflow
        from mlflow.tracking import MlflowClient

        while mlflow.active_run() is not None:
            mlflow.end_run("KILLED")
        client = MlflowClient(tracking_uri, tracking_uri)
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            runs = client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{run_name}'")
            for run in runs:
                client.set_terminated(run.info.run_id, "KILLED")
    except Exception as error:  # noqa: BLE001 - the next command's reconcile ends it instead
        logger.debug("Could not end MLflow run %s as KILLED: %s", run_name, error)
    stop_zenml_runs([run_name], root=root)


def mark_version_ready(client: MlflowClient, name: str, version: int | str) -> None:
    """The second phase of registration: the version's training run finished, so it may be served."""
    client.set_model_version_tag(name, str(version), STATUS_TAG, READY)
