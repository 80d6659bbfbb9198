"""PNG plots of a chart's retained history: centre line, limits, points, signals in red.

Uses matplotlib's Agg canvas directly (no pyplot, no display, no global state), so it is safe in
pipeline steps and threads.  matplotlib is imported on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from monitors.control_charts.base import ChartPoint, ControlChart
from monitors.control_charts.cusum import CUSUMChart
from monitors.control_charts.ewma import EWMAChart
from monitors.control_charts.run_rules import ShewhartPanel
from monitors.control_charts.shewhart import ShewhartChart
from monitors.control_charts.xbar_s import XbarSChart
from monitors.errors import MonitorInputError

SIGNAL_COLOUR = "#d62728"
POINT_COLOUR = "#1f77b4"
LIMIT_COLOUR = "#7f7f7f"


def plot_chart(chart: ControlChart, path: str | os.PathLike[str], *, title: str | None = None, dpi: int = 100) -> Path:
    """Write a PNG of ``chart.history`` to ``path`` (parent folders are created) and return the path.

    Raises
    ------
    MonitorInputError
        If the chart has no points yet.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = chart.history
    if not points:
        raise MonitorInputError(f"{type(chart).__name__} has no points to plot yet; call update() or check() first.")
    two_panels = isinstance(chart, XbarSChart)
    figure = Figure(figsize=(10, 6.5 if two_panels else 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2 if two_panels else 1, 1, sharex=True, squeeze=False)[:, 0]
    if isinstance(chart, XbarSChart):
        xbar_panel, s_panel = chart.panels
        _draw(axes[0], points, "x-bar", xbar_panel)
        _draw(axes[1], [point.companion for point in points if point.companion is not None], "s", s_panel)
    elif isinstance(chart, CUSUMChart):
        _draw_cusum(axes[0], points, chart.h)
    elif isinstance(chart, EWMAChart):
        _draw(axes[0], points, "EWMA", None)
        observations = [point.details["observation"] for point in points]
        index = [point.index for point in points]
        axes[0].plot(index, observations, ".", color=LIMIT_COLOUR, alpha=0.4, label="observation")
    else:
        _draw(axes[0], points, chart.name, chart.panel if isinstance(chart, ShewhartChart) else None)
    axes[-1].set_xlabel("observation index")
    n_signals = sum(point.signal for point in points)
    figure.suptitle(title or f"{type(chart).__name__}: {len(points)} points, {n_signals} signalling")
    for ax in axes:
        ax.legend(loc="upper left", fontsize="small")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=dpi)
    return target


def _draw(ax, points: list[ChartPoint] | tuple[ChartPoint, ...], label: str, panel: ShewhartPanel | None) -> None:
    index = np.array([point.index for point in points])
    values = np.array([point.value for point in points])
    signal = np.array([point.signal for point in points])
    ax.plot(index, values, "-o", color=POINT_COLOUR, markersize=3, linewidth=0.8, label=label)
    ax.step(index, [point.centre for point in points], where="mid", color="black", linewidth=0.8, label="centre")
    ax.step(index, [point.ucl for point in points], where="mid", color=LIMIT_COLOUR, linestyle="--", label="limits")
    ax.step(index, [point.lcl for point in points], where="mid", color=LIMIT_COLOUR, linestyle="--")
    if panel is not None and panel.rules != (1,):
        for sigmas in (1.0, 2.0):
            for sign in (-1.0, 1.0):
                ax.axhline(panel.centre + sign * sigmas * panel.sigma, color=LIMIT_COLOUR, linestyle=":", linewidth=0.6)
    if signal.any():
        ax.plot(index[signal], values[signal], "o", color=SIGNAL_COLOUR, markersize=6, label="signal")
    ax.set_ylabel(label)


def _draw_cusum(ax, points: tuple[ChartPoint, ...], h: float) -> None:
    index = np.array([point.index for point in points])
    upper = np.array([point.details["c_plus"] for point in points])
    lower = -np.array([point.details["c_minus"] for point in points])
    ax.plot(index, upper, "-o", color=POINT_COLOUR, markersize=3, linewidth=0.8, label="C+")
    ax.plot(index, lower, "-s", color="#2ca02c", markersize=3, linewidth=0.8, label="-C-")
    ax.axhline(h, color=LIMIT_COLOUR, linestyle="--", label="+/- h")
    ax.axhline(-h, color=LIMIT_COLOUR, linestyle="--")
    ax.axhline(0.0, color="black", linewidth=0.8)
    up, down = upper > h, lower < -h
    if up.any() or down.any():
        where, what = np.r_[index[up], index[down]], np.r_[upper[up], lower[down]]
        ax.plot(where, what, "o", color=SIGNAL_COLOUR, markersize=6, label="signal")
    ax.set_ylabel("CUSUM (sigmas)")
