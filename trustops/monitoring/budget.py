"""The false-page budget and each monitor's share of it: plain arithmetic, checked before anything heavy loads.

The user sets one number, the *false-page budget* ``B``: the expected number of clean batches
between false pages, all monitors together (default 500).  It is split evenly over the enabled
statistical monitors: each pages when its exact p-value is at most ``1 / (B x count)``, so by
the union bound a clean batch pages with probability at most ``1 / B``.  Resampling monitors
need at least ``ceil(1 / level) - 1`` resamples to reach their level at all.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from trustops.errors import ConfigError

DEFAULT_FALSE_PAGE_BUDGET = 500.0
# When a pass renders Evidently's HTML drift report over its rows.
DRIFT_REPORTS = ("on_shift", "always", "never")
DEFAULT_MONITORS = (
    "mmd_adversarial", "prediction_shift", "mean_confidence", "evidently_drift", "feature_squeezing",
    "input_expectations", "accuracy",
)
COMBINED_MONITOR = "mmd_adversarial"  # the one monitor that tests several layers together
# Monitors that page on a p-value at their share of the budget; the rest are contract checks.
STATISTICAL = {"mmd_adversarial", "prediction_shift", "mean_confidence", "evidently_drift", "feature_squeezing", "accuracy"}
# Monitors whose p-value comes from resampling, and the option that sets how many resamples at most.
RESAMPLING_OPTION = {"mmd_adversarial": "n_permutations", "prediction_shift": "max_draws", "mean_confidence": "max_draws",
                     "evidently_drift": "max_draws"}


def check_false_page_budget(budget: Any) -> float:
    """The budget as a float ``> 0``, or a :class:`ConfigError` that says what is allowed."""
    problem = (f"The false-page budget must be a number of clean batches between false pages (> 0), e.g. 500. "
               f"Got: {budget!r}")
    if isinstance(budget, str):
        try:
            budget = float(budget)
        except ValueError:
            raise ConfigError(problem) from None
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or not math.isfinite(budget) or budget <= 0:
        raise ConfigError(problem)
    return float(budget)


def page_levels(names: list[str] | tuple[str, ...], budget: Any) -> dict[str, float]:
    """Each statistical monitor's probability limit: the budget's false-page rate ``1 / budget``, split evenly."""
    statistical = [name for name in names if name in STATISTICAL]
    budget = check_false_page_budget(budget)
    return {name: 1.0 / (budget * len(statistical)) for name in statistical}


def resamples_for_level(level: float) -> int:
    """The fewest resamples with which a p-value can reach ``level``: ``ceil(1 / level) - 1``."""
    return max(1, math.ceil(1.0 / level - 1e-9) - 1)


def check_permutations(levels: dict[str, float], permutations: int | None) -> None:
    """Refuse a resample count too small for some monitor's page level: no batch could ever page."""
    if permutations is None:
        return
    if isinstance(permutations, bool) or not isinstance(permutations, numbers.Integral) or permutations < 1:
        raise ConfigError(f"The permutation count must be a whole number >= 1. Got: {permutations!r}")
    short = {name: resamples_for_level(level) for name, level in levels.items()
             if name in RESAMPLING_OPTION and permutations < resamples_for_level(level)}
    if short:
        name, needed = max(short.items(), key=lambda item: item[1])
        raise ConfigError(
            f"{permutations} permutations cannot reach the page limit 1/{round(1 / levels[name]):,} of {', '.join(sorted(short))}: "
            f"the smallest p-value would be 1/{permutations + 1:,}. Use at least {needed:,}, or a smaller false-page budget."
        )


def permutation_overrides(names: list[str] | tuple[str, ...], permutations: int | None) -> dict[str, dict[str, int]]:
    """The resampling monitors' options for a user-set permutation count (none: each uses what its level needs)."""
    if permutations is None:
        return {}
    return {name: {RESAMPLING_OPTION[name]: int(permutations)} for name in names if name in RESAMPLING_OPTION}


def check_monitor_request(names: list[str] | tuple[str, ...], budget: Any, drift_report: str, permutations: int | None) -> float:
    """Names, budget, report option and permutation count, checked before anything is read; returns the budget."""
    unknown = [name for name in names if name not in DEFAULT_MONITORS]
    if unknown:
        raise ConfigError(f"Unknown or unusable monitor(s) {', '.join(unknown)}. Monitors the loop can run: "
                          f"{', '.join(sorted(DEFAULT_MONITORS))}.")
    if not names:
        raise ConfigError(f"No monitors to run. Monitors the loop can run: {', '.join(sorted(DEFAULT_MONITORS))}.")
    budget = check_false_page_budget(budget)
    if drift_report not in DRIFT_REPORTS:
        raise ConfigError(f"The drift report must be one of {', '.join(DRIFT_REPORTS)}. Got: {drift_report!r}")
    check_permutations(page_levels(names, budget), permutations)
    return budget


@dataclass(frozen=True)
class PassOptions:
    """What a monitor pass checks, and how: one value for ``trustops monitor``, ``trustops schedule`` (in-process,
    crontab or ZenML), the ZenML pipeline, :func:`.loop.monitor_pass` and the benchmarks.

    ``monitors``: the monitor plugins to run; ``false_page_budget``: expected clean batches between
    false pages, all monitors together; ``drift_report``: Evidently's report ``on_shift``, ``always``
    or ``never``; ``permutations``: the resampling monitors' count (``None``: what each one's page
    level needs); ``combine_layers``: layer names that the MMD monitor tests together, one Fisher
    combination calibrated by shared permutations (empty: the penultimate layer alone).  A request
    holds them as the user wrote them; the pass resolves them against the model
    (:func:`.reference.resolve_combined_layers`).  A bad value raises :class:`ConfigError` at construction.
    """

    monitors: tuple[str, ...] = tuple(DEFAULT_MONITORS)
    false_page_budget: float = DEFAULT_FALSE_PAGE_BUDGET
    drift_report: str = "on_shift"
    permutations: int | None = None
    combine_layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Every rule is checked here, before anything is read: a request from the command line (strings, lists,
        # ``None`` for "the default") and a value ZenML rebuilt in a step are held to the same form.
        from trustops.settings import check_combine_layers

        names = tuple(self.monitors) if self.monitors else None
        if names is None:
            raise ConfigError(f"No monitors to run. Monitors the loop can run: {', '.join(sorted(DEFAULT_MONITORS))}.")
        budget = check_monitor_request(names, self.false_page_budget, self.drift_report, self.permutations)
        combined = check_combine_layers(self.combine_layers, "--combine-layers") or ()
        if combined and COMBINED_MONITOR not in names:
            raise ConfigError(f"--combine-layers combines layers in the {COMBINED_MONITOR} monitor, which this pass does not "
                              f"run (monitors: {', '.join(names)}). Add it to --monitors, or drop --combine-layers.")
        object.__setattr__(self, "monitors", names)
        object.__setattr__(self, "false_page_budget", budget)
        object.__setattr__(self, "combine_layers", combined)

    @classmethod
    def requested(cls, monitors: list[str] | None = None, **options: Any) -> PassOptions:
        """The options as a command line gives them: ``monitors=None`` (no ``--monitors``) means every monitor."""
        return cls(monitors=tuple(monitors) if monitors is not None else DEFAULT_MONITORS, **options)

    def command_flags(self) -> list[str]:
        """The ``trustops monitor`` flags that ask for these options (defaults left out), e.g. for a crontab line."""
        defaults = PassOptions()
        flags: list[str] = []
        if self.monitors != defaults.monitors:
            flags += ["--monitors", *self.monitors]
        if self.false_page_budget != defaults.false_page_budget:
            flags += ["--false-page-budget", repr(self.false_page_budget)]
        if self.drift_report != defaults.drift_report:
            flags += ["--drift-report", self.drift_report]
        if self.permutations is not None:
            flags += ["--permutations", str(self.permutations)]
        if self.combine_layers:
            flags += ["--combine-layers", *self.combine_layers]
        return flags
