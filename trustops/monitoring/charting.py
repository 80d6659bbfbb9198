"""The chart stage: each monitor's p-values on a probability-limit chart, persisted between passes.

A p-value has a known in-control law (uniform, or stochastically larger for a conservative
test), so the chart needs no Phase I: it plots ``-log10 p`` against the upper limit
``-log10 page_level`` and signals when ``p <= page_level``.  Its in-control run length is
geometric with mean ``1 / page_level`` batches, and the loop's false-page budget sets the level
(see :mod:`trustops.monitoring.checks`); the ``monitor_calibration`` benchmark measures it on
held-out traffic.  3-sigma limits on ``-log10 p`` would signal at ``p < 0.018`` (an in-control
run length of 55, not 370): the law of ``-log10 p`` is exponential, not normal.

A chart remembers the last capture step it charted, so a pass repeated after a crash (the
watermark had not moved yet) does not put the same batch on the chart twice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from trustops.failpoints import failpoint
from trustops.monitoring.records import ChartedPoints, ChartPoint, CheckedBatches
from trustops.monitoring.watermark import read_state_file

KEPT_POINTS = 500  # the most recent points drawn on a chart's picture


class ChartBook:
    """The charts of one model version, stored as ``<name>.json`` (state) and ``<name>.png`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.points: dict[str, list[dict]] = {}
        self.last_step: dict[str, int | None] = {}

    def load(self, name: str) -> None:
        if name in self.points:
            return
        path = self.folder / f"{name}.json"
        saved = read_state_file(path) if path.is_file() else {"last_step": None, "points": []}
        self.points[name], self.last_step[name] = saved.get("points", []), saved["last_step"]

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, points in self.points.items():
            partial = self.folder / f"{name}.json.partial"
            partial.write_text(json.dumps({"last_step": self.last_step[name], "points": points[-KEPT_POINTS:]}))
            partial.replace(self.folder / f"{name}.json")


def chart_batches(checked: CheckedBatches, *, state: Path, title_suffix: str) -> ChartedPoints:
    """Append every batch's p-values to their charts, save the charts and draw them."""
    book = ChartBook(state / "charts")
    charted = ChartedPoints()
    for batch in checked.batches:
        for name, score in batch.scores.items():
            if score.p_value is None or score.page_level is None:
                continue
            book.load(name)
            if book.last_step[name] is not None and batch.step <= book.last_step[name]:
                continue  # charted by an earlier attempt at this pass
            point = ChartPoint(step=batch.step, chart=name, value=score.chart_value, ucl=-math.log10(score.page_level),
                               signal=score.p_value <= score.page_level, p_value=score.p_value)
            book.points[name].append({"step": point.step, "value": point.value, "ucl": point.ucl})
            book.last_step[name] = batch.step
            charted.points.append(point)
    book.save()
    # A picture only where this pass signalled: drawing costs ~0.5 s a chart, paid on every
    # scheduled pass otherwise, and MLflow's metric history (value and limit per step) shows
    # every chart anyway.
    for name in sorted({point.chart for point in charted.points if point.signal}):
        charted.images.append(str(plot_p_value_chart(book.points[name], book.folder / f"{name}.png", title=f"{name} ({title_suffix})")))
    failpoint("monitor.chart")  # chart states saved; no alert written yet
    return charted


def plot_p_value_chart(points: list[dict], path: Path, *, title: str) -> Path:
    """``-log10 p`` per capture step with its upper probability limit, signals in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] for p in points]
    values = [p["value"] for p in points]
    figure, axes = plt.subplots(figsize=(8, 3))
    axes.plot(steps, values, marker="o", markersize=3, linewidth=1, color="tab:blue", label="-log10 p")
    axes.step(steps, [p["ucl"] for p in points], where="mid", color="tab:red", linestyle="--", label="page limit")
    signals = [(s, v) for s, v, p in zip(steps, values, points) if v > p["ucl"]]
    if signals:
        axes.scatter(*zip(*signals), color="tab:red", zorder=3, label="page")
    axes.set_xlabel("capture step")
    axes.set_ylabel("-log10 p")
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
