"""What each stage of a monitor pass hands to the next: collect -> check -> chart -> alert.

Plain, validated records (pydantic) so that ZenML stores each one as a readable artifact of
the monitor pipeline and the same stages also run as plain functions.  None of them holds
captured tensors: the check stage streams the chunks the collect stage listed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ChunkRef(BaseModel):
    key: str
    steps: list[int]


class CollectedCaptures(BaseModel):
    """The PREDICT chunks holding steps after the watermark ``after``, in step order."""

    capture_uri: str
    after: int | None
    chunks: list[ChunkRef] = Field(default_factory=list)

    @property
    def new_steps(self) -> list[int]:
        return [s for chunk in self.chunks for s in chunk.steps if self.after is None or s > self.after]


class UnreadableChunk(BaseModel):
    key: str
    steps: list[int]
    reason: str


class MonitorScore(BaseModel):
    score: float
    threshold: float
    alarm: bool
    chart_value: float | None = None  # what goes on the monitor's control chart; None when not charted
    alerts_on_alarm: bool = True  # False: the alarm is recorded, and only the chart alerts


class BatchScores(BaseModel):
    step: int
    batch_size: int
    scores: dict[str, MonitorScore] = Field(default_factory=dict)
    failures: dict[str, str] = Field(default_factory=dict)  # monitor -> why its check raised

    def metric_row(self) -> dict[str, float]:
        row: dict[str, float] = {"batch_size": float(self.batch_size)}
        for name, score in self.scores.items():
            row[f"{name}.score"] = score.score
            row[f"{name}.alarm"] = float(score.alarm)
        return row


class HtmlReport(BaseModel):
    step: int
    html: str


class CheckedBatches(BaseModel):
    batches: list[BatchScores] = Field(default_factory=list)
    unreadable: list[UnreadableChunk] = Field(default_factory=list)
    fit_failures: dict[str, str] = Field(default_factory=dict)
    # Phase I: in-control scores of clean reference batches, for charts that do not exist yet.
    baselines: dict[str, list[float]] = Field(default_factory=dict)
    in_control: dict[str, tuple[float, float]] = Field(default_factory=dict)  # (mean, sigma) known in closed form
    html_reports: dict[str, HtmlReport] = Field(default_factory=dict)  # monitor -> its report on the last batch


class ChartPoint(BaseModel):
    step: int
    chart: str
    value: float
    lcl: float | None
    ucl: float | None
    signal: bool
    rules: list[str] = Field(default_factory=list)


class ChartedPoints(BaseModel):
    points: list[ChartPoint] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)  # PNG paths, one per chart


class PassReport(BaseModel):
    """What one monitor pass did: the batches it saw, their metrics, and the alerts it raised."""

    steps: list[int] = Field(default_factory=list)
    metrics: list[dict[str, Any]] = Field(default_factory=list)  # one row per batch, keyed by metric name
    alerts: list[dict[str, Any]] = Field(default_factory=list)  # Alert.to_dict() of each raised or recovered alert
    unreadable: list[UnreadableChunk] = Field(default_factory=list)
    monitor_failures: dict[str, str] = Field(default_factory=dict)
    pending_alerts: int = 0
    watermark: int | None = None
    mlflow_run_id: str | None = None

    @property
    def no_op(self) -> bool:
        return not self.steps and not self.unreadable
