"""What each stage of a monitor pass hands to the next: collect -> check -> chart -> alert.

Plain, validated records (pydantic) so that ZenML stores each one as a readable artifact of
the monitor pipeline and the same stages also run as plain functions.  None of them holds
captured tensors: the check stage streams the chunks the collect stage listed.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from trustops.metric_names import ALARM, CHART_SIGNAL, P_VALUE, monitor_metric


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
    p_value: float | None = None  # the exact one-sided p-value; None for a contract check
    page_level: float | None = None  # the monitor's share of the false-page budget: it pages when p <= this
    details: dict[str, Any] = Field(default_factory=dict)  # the monitor's plain-number details

    @property
    def chart_value(self) -> float | None:
        """``-log10 p``: the charted value, whose limit is ``-log10 page_level``."""
        return None if self.p_value is None else -math.log10(max(self.p_value, 5e-324))


class BatchScores(BaseModel):
    step: int
    batch_size: int
    captured_at: float | None = None  # when the batch was served (seconds since the epoch), if the capture says
    scores: dict[str, MonitorScore] = Field(default_factory=dict)
    failures: dict[str, str] = Field(default_factory=dict)  # monitor -> why its check raised

    def metric_row(self) -> dict[str, float]:
        row: dict[str, float] = {"batch_size": float(self.batch_size)}
        for name, score in self.scores.items():
            row[monitor_metric(name, "score")] = score.score
            row[monitor_metric(name, ALARM)] = float(score.alarm)
            if score.p_value is not None:
                row[monitor_metric(name, P_VALUE)] = score.p_value
                row[monitor_metric(name, CHART_SIGNAL)] = float(score.p_value <= score.page_level)
        return row


class HtmlReport(BaseModel):
    step: int
    html: str


class CheckedBatches(BaseModel):
    batches: list[BatchScores] = Field(default_factory=list)
    unreadable: list[UnreadableChunk] = Field(default_factory=list)
    fit_failures: dict[str, str] = Field(default_factory=dict)
    page_levels: dict[str, float] = Field(default_factory=dict)  # monitor -> its probability limit
    false_page_budget: float | None = None  # expected clean batches between false pages, all monitors together
    html_reports: dict[str, HtmlReport] = Field(default_factory=dict)  # monitor -> its report over the pass's batches


class ChartPoint(BaseModel):
    """One batch on a monitor's p-value chart: ``value = -log10 p`` against ``ucl = -log10 page_level``."""

    step: int
    chart: str
    value: float
    ucl: float
    signal: bool
    p_value: float


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
