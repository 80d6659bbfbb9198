"""The chart stage: each monitor's p-values on a probability-limit chart, persisted between passes.

A p-value has a known in-control law (uniform, or stochastically larger for a conservative
test), so the chart needs no Phase I: it plots ``-log10 p`` against the upper limit
``-log10 page_level`` and signals when ``p <= page_level``.  Its in-control run length is
geometric with mean ``1 / page_level`` batches, and the loop's false-page budget sets the level
(see :mod:`trustops.monitoring.batch_check`); the ``monitor_calibration`` benchmark measures it on
held-out traffic.  3-sigma limits on ``-log10 p`` would signal at ``p < 0.018`` (an in-control
run length of 55, not 370): the law of ``-log10 p`` is exponential, not normal.

A chart remembers the last capture step it charted, so a pass repeated after a crash (the
watermark had not moved yet) does not put the same batch on the chart twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path

from trustops.failpoints import failpoint
from trustops.monitoring.records import ChartedPoints, ChartPoint, CheckedBatches
from trustops.monitoring.state_store import StateConflict, StateStore, open_state
from trustops.monitoring.watermark import damaged, parse_state

KEPT_POINTS = 500  # the most recent points drawn on a chart's picture
SAVE_ATTEMPTS = 5  # a chart another pass saved in between is merged again, at most this often


class ChartBook:
    """The charts of one model version, stored as ``<name>.json`` (state) and ``<name>.png`` in ``store``.

    ``store`` is the ``charts`` folder of the state (a folder, an ``s3://`` location or a
    :class:`~trustops.monitoring.state_store.StateStore`).  Saving is compare-and-set per chart:
    when another pass saved the chart since it was loaded, the points this book added are
    merged onto the saved ones again, past the saved ``last_step``, so no batch is charted twice.
    """

    def __init__(self, store: StateStore | Path | str) -> None:
        self.store = open_state(store)
        self.points: dict[str, list[dict]] = {}
        self.last_step: dict[str, int | None] = {}
        self._versions: dict[str, str | None] = {}
        self._added: dict[str, list[dict]] = {}

    @property
    def folder(self) -> Path | None:
        return self.store.local_folder()

    def _read(self, name: str) -> tuple[list[dict], int | None, str | None]:
        key = f"{name}.json"
        stored = self.store.read(key)
        if stored is None:
            return [], None, None
        saved = parse_state(stored.data, self.store.where(key))
        if "last_step" not in saved:
            raise damaged(self.store.where(key), "no last_step", ": the chart starts a new picture")
        return list(saved.get("points", [])), saved["last_step"], stored.version

    def load(self, name: str) -> None:
        if name in self.points:
            return
        self.points[name], self.last_step[name], self._versions[name] = self._read(name)
        self._added[name] = []

    def append(self, name: str, point: dict) -> None:
        """Add ``point`` (``step``, ``value``, ``ucl``) to the loaded chart ``name``."""
        self.points[name].append(point)
        self._added[name].append(point)
        self.last_step[name] = point["step"]

    def save(self) -> None:
        for name in self.points:
            if not self._added[name]:
                continue  # nothing new on this chart: nothing to write
            for _ in range(SAVE_ATTEMPTS):
                body = json.dumps({"last_step": self.last_step[name], "points": self.points[name][-KEPT_POINTS:]})
                try:
                    self._versions[name] = self.store.write(f"{name}.json", body.encode("utf-8"), expect=self._versions[name])
                    break
                except StateConflict:  # another pass saved this chart since it was loaded
                    points, last_step, self._versions[name] = self._read(name)
                    newer = [p for p in self._added[name] if last_step is None or p["step"] > last_step]
                    self.points[name] = points + newer
                    self.last_step[name] = newer[-1]["step"] if newer else last_step
            else:
                raise StateConflict(f"The chart {self.store.where(name + '.json')} changed under each of {SAVE_ATTEMPTS} "
                                    "attempts to save it; nothing is lost (the next pass charts these batches).")

    def picture_path(self, name: str) -> Path:
        """Where the chart's picture is drawn: in the state folder, or (state on S3) a local copy MLflow can log."""
        folder = self.folder
        if folder is None:
            where = hashlib.sha256(self.store.location.encode()).hexdigest()[:16]
            folder = Path(tempfile.gettempdir()) / "trustops-charts" / where  # one picture per chart, overwritten
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.png"

    def keep_picture(self, name: str, path: Path) -> None:
        if self.folder is None and path.is_file():  # state on S3: the picture goes next to the chart's state, as in a local folder
            self.store.write(f"{name}.png", path.read_bytes())


def chart_batches(checked: CheckedBatches, *, state: Path | str | StateStore, title_suffix: str) -> ChartedPoints:
    """Append every batch's p-values to their charts, save the charts and draw them."""
    book = ChartBook(open_state(state).child("charts"))
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
            book.append(name, {"step": point.step, "value": point.value, "ucl": point.ucl})
            charted.points.append(point)
    book.save()
    # A picture only where this pass signalled: drawing costs ~0.5 s a chart, paid on every
    # scheduled pass otherwise, and MLflow's metric history (value and limit per step) shows
    # every chart anyway.
    for name in sorted({point.chart for point in charted.points if point.signal}):
        picture = plot_p_value_chart(book.points[name], book.picture_path(name), title=f"{name} ({title_suffix})")
        book.keep_picture(name, picture)
        charted.images.append(str(picture))
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
