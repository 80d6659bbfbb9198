"""The project's Evidently workspace: one Evidently project per registered model, one snapshot per
monitor pass that ran Evidently's drift report, and a dashboard that draws drift over time.

The workspace is a folder that ``evidently ui --workspace`` (or ``trustops drift-ui``) serves:
``<project root>/.trustops/evidently`` unless ``TRUSTOPS_EVIDENTLY_WORKSPACE`` names another.

A pass's snapshot is keyed by (model name, version, first capture step, last capture step), the
batches the pass checked: its id is derived from that key, so a pass that was killed after its
snapshot but before its watermark, and re-checks the same batches, finds the snapshot there and
adds none.  (The key is also in the snapshot's tags and metadata; reading those back would mean
parsing every snapshot, megabytes each.)  A snapshot file is written whole or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trustops.files import write_atomically
from trustops.paths import STATE_DIR_NAME, project_root

logger = logging.getLogger(__name__)

WORKSPACE_ENV = "TRUSTOPS_EVIDENTLY_WORKSPACE"
WORKSPACE_DIR_NAME = "evidently"
DASHBOARD_TAB = "Drift over time"
SHARE_PANEL = "Share of drifted columns"
COUNT_PANEL = "Number of drifted columns"
DRIFT_METRIC = "evidently:metric_v2:DriftedColumnsCount"  # the DataDriftPreset's dataset-level metric
# Ids derived from names: the same model always has the same project, the same pass the same snapshot.
_NAMESPACE = uuid.UUID("3f0c2a4e-5b7d-4c8e-9a1f-2d6b8e4c7a10")


def workspace_path(root: Path | None = None) -> Path:
    """The Evidently workspace folder: ``TRUSTOPS_EVIDENTLY_WORKSPACE``, else ``<root>/.trustops/evidently``."""
    if path := os.environ.get(WORKSPACE_ENV):
        return Path(path).expanduser().resolve()
    return (root or project_root()) / STATE_DIR_NAME / WORKSPACE_DIR_NAME


def has_projects(path: Path) -> bool:
    """Whether ``path`` is a workspace that holds at least one project (what a monitor pass writes)."""
    return path.is_dir() and any((child / "metadata.json").is_file() for child in path.iterdir())


@dataclass(frozen=True)
class PassSnapshot:
    """What names one monitor pass's snapshot: the model version and the capture steps it checked."""

    model_name: str
    model_version: str
    first_step: int
    last_step: int

    @property
    def snapshot_id(self) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, f"{self.model_name}\0{self.model_version}\0{self.first_step}\0{self.last_step}")

    @property
    def name(self) -> str:
        return f"{self.model_name} v{self.model_version}, capture steps {self.first_step}-{self.last_step}"

    @property
    def tags(self) -> list[str]:
        return ["trustops", f"model_version={self.model_name}/{self.model_version}"]

    @property
    def metadata(self) -> dict[str, str]:
        return {"model_name": self.model_name, "model_version": str(self.model_version),
                "first_step": str(self.first_step), "last_step": str(self.last_step)}  # fmt: skip


def project_id(model_name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"project\0{model_name}")


def drift_panels() -> list[Any]:
    """The dashboard's panels: share (line) and number (bars) of drifted columns, one point per pass."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel

    def value(kind: str) -> PanelMetric:
        return PanelMetric(legend=kind, metric=DRIFT_METRIC, metric_labels={"value_type": kind})

    return [
        line_plot_panel(SHARE_PANEL, [value("share")], size="half",
                        description="per monitor pass, over its most recent rows (Evidently's DataDriftPreset)"),
        bar_plot_panel(COUNT_PANEL, [value("count")], size="half",
                       description="per monitor pass, over its most recent rows (Evidently's DataDriftPreset)"),
    ]  # fmt: skip


def open_project(workspace: Any, model_name: str) -> Any:
    """The model's Evidently project in ``workspace``, created with its dashboard when missing (idempotent)."""
    from evidently.sdk.models import ProjectModel

    pid = project_id(model_name)
    project = workspace.get_project(pid)
    if project is None:
        project = workspace.add_project(ProjectModel(
            id=pid, name=model_name,
            description=f"Drift of the inputs of registered model {model_name!r}: one snapshot per trustops monitor pass.",
        ))  # fmt: skip
    _add_missing_panels(workspace, pid)
    return project


def _add_missing_panels(workspace: Any, pid: uuid.UUID) -> None:
    """The drift panels on their tab, each once.  (Evidently 0.7's ``dashboard.add_panel`` lists a
    panel twice on a tab that already exists, so the dashboard model is edited and saved whole.)"""
    from evidently.sdk.models import DashboardTabModel

    dashboard = workspace.get_dashboard(pid)
    drawn = {panel.title for panel in dashboard.panels}
    missing = [panel for panel in drift_panels() if panel.title not in drawn]
    if not missing:
        return
    tab = next((tab for tab in dashboard.tabs if tab.title == DASHBOARD_TAB), None)
    if tab is None:
        tab = DashboardTabModel(title=DASHBOARD_TAB, panels=[])
        dashboard.tabs.append(tab)
    dashboard.panels.extend(missing)
    tab.panels.extend(panel.id for panel in missing)
    workspace.save_dashboard(pid, dashboard)


def add_pass_snapshot(run: Any, key: PassSnapshot, path: Path | None = None) -> bool:
    """Add ``run`` (an ``evidently.Snapshot``) as the pass ``key``'s snapshot; ``False`` when it is already there."""
    from evidently.ui.workspace import Workspace

    path = workspace_path() if path is None else path
    path.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(str(path))
    project = open_project(workspace, key.model_name)
    if str(key.snapshot_id) in {str(s) for s in workspace.list_runs(project.id)}:
        return False
    _write_whole(path / str(project.id) / "snapshots" / f"{key.snapshot_id}.json", run.to_snapshot_model().dict())
    return True


def _write_whole(target: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as Evidently's local storage does, through a temporary name that the
    workspace ignores (not a UUID), so a killed pass leaves no half-written snapshot behind."""
    from evidently.legacy.utils import NumpyEncoder

    write_atomically(target, json.dumps(document, cls=NumpyEncoder))


def record_pass(run: Any, key: PassSnapshot, path: Path | None = None) -> bool | None:
    """:func:`add_pass_snapshot`, but a failure is a one-line warning, never the pass's failure: ``None`` then."""
    try:
        return add_pass_snapshot(run, key, path)
    except Exception as error:  # noqa: BLE001 - the trend is a view; the pass's checks and alerts go on
        logger.warning("Evidently workspace not updated for %s: %s: %s", key.name, type(error).__name__, error)
        return None


def pass_timestamp(captured_at: float | None) -> datetime:
    """When the pass's data was served: its last batch's capture time, else now (local time, as Evidently stamps runs)."""
    return datetime.now() if captured_at is None else datetime.fromtimestamp(captured_at)
