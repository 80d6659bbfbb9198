"""The chart stage: each charted monitor score goes on its own individuals chart, persisted between passes.

A chart remembers the last capture step it charted, so a pass repeated after a crash (the
watermark had not moved yet) does not put the same batch on the chart twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from monitors.control_charts import IndividualsChart, plot_chart
from trustops.monitoring.records import ChartedPoints, ChartPoint, CheckedBatches

# Rule 1 (a point beyond 3σ) only: with all four Western Electric rules the in-control ARL
# drops from ~370 to ~92 batches, too many false alarms for a chart checked every batch.
# Small sustained shifts are what the EWMA/CUSUM plugins are for.
RULES = (1,)


class ChartBook:
    """The charts of one model version, stored as ``<name>.json`` (state) and ``<name>.png`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.charts: dict[str, IndividualsChart] = {}
        self.last_step: dict[str, int | None] = {}

    def existing(self) -> set[str]:
        return {path.stem for path in self.folder.glob("*.json")} if self.folder.is_dir() else set()

    def get(self, name: str, checked: CheckedBatches) -> IndividualsChart:
        if name not in self.charts:
            path = self.folder / f"{name}.json"
            if path.is_file():
                saved = json.loads(path.read_text())
                self.charts[name] = IndividualsChart.from_state_dict(saved["chart"])
                self.last_step[name] = saved["last_step"]
            elif name in checked.in_control:
                mean, sigma = checked.in_control[name]
                self.charts[name] = IndividualsChart(rules=RULES, mean=mean, sigma=sigma)
            elif name in checked.baselines:
                self.charts[name] = IndividualsChart(rules=RULES).fit(checked.baselines[name])
            else:
                raise KeyError(f"No saved chart and no Phase I baseline for {name!r}.")
            self.last_step.setdefault(name, None)
        return self.charts[name]

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, chart in self.charts.items():
            partial = self.folder / f"{name}.json.partial"
            partial.write_text(json.dumps({"last_step": self.last_step[name], "chart": chart.state_dict()}))
            partial.replace(self.folder / f"{name}.json")


def chart_batches(checked: CheckedBatches, *, state: Path, title_suffix: str) -> ChartedPoints:
    """Append every batch's charted values to their charts, save the charts and draw them."""
    book = ChartBook(state / "charts")
    charted = ChartedPoints()
    for batch in checked.batches:
        for name, score in batch.scores.items():
            if score.chart_value is None:
                continue
            chart = book.get(name, checked)
            if book.last_step[name] is not None and batch.step <= book.last_step[name]:
                continue  # charted by an earlier attempt at this pass
            point = chart.update(score.chart_value)
            book.last_step[name] = batch.step
            charted.points.append(ChartPoint(step=batch.step, chart=name, value=point.value, lcl=point.lcl,
                                             ucl=point.ucl, signal=point.signal, rules=list(point.rules)))
    book.save()
    for name, chart in book.charts.items():
        charted.images.append(str(plot_chart(chart, book.folder / f"{name}.png", title=f"{name} ({title_suffix})")))
    return charted
