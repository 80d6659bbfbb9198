"""One name per quantity: what the steps log to MLflow, what ``trustops compare``, the trust report,
DVC's metrics file and the README call it.

Names only, no imports: the CLI, the steps and the monitors' glue all read them from here.  A
name that older runs logged differently keeps its old spelling in :data:`OLD_NAMES`, so
:func:`read_metric` finds the value in a run of any age.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The training run (steps/evaluation, the trainer)
TEST_ACCURACY = "test_accuracy"  # accuracy on the held-out test split
TEST_ECE = "test_ece"  # expected calibration error on the test split
TEST_ROWS = "test_rows"  # the test split's size: the sample behind TEST_ACCURACY's interval
VAL_ACCURACY = "val_accuracy"  # accuracy on the validation split, per epoch
DP_EPSILON = "dp_epsilon"  # the ε spent so far (per epoch; the final value is also a tag)

# An attack on a split (trustops detect, the robustness study)
CLEAN_ACCURACY = "clean_accuracy"  # accuracy on the attacked rows before the attack
ADVERSARIAL_ACCURACY = "adversarial_accuracy"
ATTACK_SUCCESS_RATE = "attack_success_rate"

# Latent-space detection (LADIS report)
DETECTION_RATE = "detection_rate"
BASELINE_DETECTION_RATE = "baseline_detection_rate"

# A monitor pass, per monitor and capture step: ``<monitor>.<quantity>``
P_VALUE = "p_value"
ALARM = "alarm"
# The control chart of a monitoring run (trustops.monitoring.mlflow_chart)
CHART_VALUE = "chart_value"  # -log10 p of the batch
CHART_CENTER = "chart_center"  # the centre line
CHART_UCL = "chart_ucl"  # the upper control limit, -log10(page level): a point at or above it signals
CHART_SIGNAL = "chart_signal"  # 1 where the point signalled (p <= page level), else 0
CHART_QUANTITIES = (CHART_VALUE, CHART_CENTER, CHART_UCL, CHART_SIGNAL)

# Older spellings, newest first: runs logged before one name per quantity.
OLD_NAMES: dict[str, tuple[str, ...]] = {
    TEST_ACCURACY: ("accuracy",),  # training runs also logged the test accuracy as "accuracy"
}


def monitor_metric(monitor: str, quantity: str) -> str:
    """The MLflow metric name of ``quantity`` (e.g. :data:`P_VALUE`, :data:`CHART_SIGNAL`) for ``monitor``."""
    return f"{monitor}.{quantity}"


def read_metric(metrics: Mapping[str, Any], name: str) -> Any:
    """``metrics[name]``, else the value under one of its older spellings, else ``None``."""
    for key in (name, *OLD_NAMES.get(name, ())):
        if key in metrics:
            return metrics[key]
    return None
