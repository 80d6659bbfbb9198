"""Statistical process control charts over trust metrics, each also a monitor plugin.

===================  ===============  ======================================  ===============
class                plugin name      statistic                               score / threshold
===================  ===============  ======================================  ===============
IndividualsChart     ``individuals``  single observations                     rule margin / 0
XbarSChart           ``xbar_s``       subgroup mean and standard deviation    rule margin / 0
PChart               ``p_chart``      fraction nonconforming of n             rule margin / 0
NPChart              ``np_chart``     number nonconforming of n               rule margin / 0
EWMAChart            ``ewma``         exponentially weighted moving average   abs(z) / L
CUSUMChart           ``cusum``        two-sided tabular CUSUM (in sigmas)     max(C+, C-) / h
===================  ===============  ======================================  ===============

Every chart: ``fit(reference)`` is Phase I, ``check(batch)``/``update(x)`` are Phase II, and an
alarm (a signal) is always ``score > threshold``.  :func:`plot_chart` draws one as a PNG and
:mod:`monitors.control_charts.run_length` simulates run lengths through the same code.
"""

from monitors.control_charts.attribute import NPChart, PChart
from monitors.control_charts.base import ChartPoint, ChartState, ControlChart
from monitors.control_charts.constants import a3, b3, b4, b5, b6, c4
from monitors.control_charts.cusum import CUSUMChart
from monitors.control_charts.ewma import EWMAChart
from monitors.control_charts.individuals import IndividualsChart
from monitors.control_charts.plotting import plot_chart
from monitors.control_charts.run_length import (
    TEXTBOOK_CASES,
    RunLengthEstimate,
    average_run_length,
    first_signals,
    run_lengths,
)
from monitors.control_charts.run_rules import WESTERN_ELECTRIC_RULES, ShewhartPanel, WesternElectricRule
from monitors.control_charts.shewhart import ShewhartChart
from monitors.control_charts.xbar_s import XbarSChart

CHARTS: tuple[type[ControlChart], ...] = (IndividualsChart, XbarSChart, PChart, NPChart, EWMAChart, CUSUMChart)
"""Every chart class, for contract tests and registration."""

__all__ = [
    "CHARTS",
    "TEXTBOOK_CASES",
    "WESTERN_ELECTRIC_RULES",
    "CUSUMChart",
    "ChartPoint",
    "ChartState",
    "ControlChart",
    "EWMAChart",
    "IndividualsChart",
    "NPChart",
    "PChart",
    "RunLengthEstimate",
    "ShewhartChart",
    "ShewhartPanel",
    "WesternElectricRule",
    "XbarSChart",
    "a3",
    "average_run_length",
    "b3",
    "b4",
    "b5",
    "b6",
    "c4",
    "first_signals",
    "plot_chart",
    "run_lengths",
]
