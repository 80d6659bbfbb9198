"""The short table a run ends with."""

from __future__ import annotations

import io
from collections.abc import Sequence

from trustops.metric_names import TEST_ACCURACY, read_metric
from trustops.paths import default_tracking_uri


_NEVER_WRAP = 1_000_000  # columns: rich lays a table out no wider than its console


def cell_text(value: object) -> str:
    """How a table shows a value: floats to 4 decimals, ``None`` as ``-``."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table for people, drawn by rich: a header, a rule of ``-``, then one line per row.

    Nothing is wrapped or cut whatever the width (a long row runs on, as in a log or a pipe, and
    a terminal folds it); a caller that must fit a width shortens the cells first, as
    :meth:`trustops.compare.Comparison.to_text` does.  Cells are plain text: rich markup,
    emoji codes and highlighting are not applied, and no colour codes are written.
    """
    from rich.box import Box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # rich's SIMPLE_HEAD in ASCII: no edges, blank column lines, a rule of "-" under the header.
    rule_under_header = Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)
    table = Table(box=rule_under_header, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for header in headers:
        table.add_column(Text(header), no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell_text(value)) for value in row))
    out = io.StringIO()
    Console(file=out, width=_NEVER_WRAP, color_system=None).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def ui_hint() -> str:
    from trustops.tracking import is_local_store  # loads MLflow: only once a job has something to show

    uri = default_tracking_uri()
    if is_local_store(uri):
        return "Open the MLflow UI to compare runs:  trustops ui   (then browse http://127.0.0.1:5000)"
    return f"Compare runs in the MLflow UI at {uri}"


def print_training_summary(summaries: Sequence) -> None:
    headers = ["run", "activation", "dp ε (spent)", "test acc", "ECE", "registered", "mlflow run"]
    rows = []
    for s in summaries:
        registered = f"{s.registration['registered_model']} v{s.registration['version']}" if s.registration.get("version") else "no"
        rows.append([
            s.run_name,
            s.settings.model.activation,
            s.training.get("dp_epsilon"),
            read_metric(s.metrics, TEST_ACCURACY),
            s.metrics.get("test_ece"),
            registered,
            s.mlflow_run_id[:12],
        ])
    print()
    print(format_table(headers, rows))
    print()
    print(f"Experiment {summaries[0].experiment_name!r} in {summaries[0].tracking_uri}" if summaries else "")
    print(ui_hint())


def print_detection_summary(summaries: Sequence) -> None:
    headers = ["run", "model", "PGD ε", "attack success", "adv acc", "detection rate", "baseline rate", "p-value"]
    rows = [[s.run_name, s.model, s.settings.attack.epsilon, s.attack["attack_success_rate"], s.attack["adversarial_accuracy"],
             s.detection["detection_rate"], s.detection["baseline_detection_rate"], s.detection["p_value"]] for s in summaries]
    print()
    print(format_table(headers, rows))
    print()
    print("Detection rate: share of 100-vs-100 MMD tests (adversarial batch vs reference) that reject at alpha;")
    print("baseline rate: the same on held-out clean validation data (should sit near alpha).")
    for s in summaries:
        # Said out loud: without class matching, PGD on a CNN is barely visible at the penultimate layer.
        unmatched = sorted(k.removeprefix("class_matched_") for k, v in s.detection.items() if k.startswith("class_matched_") and not v)
        if unmatched:
            print(f"{s.run_name}: class-matched references did not apply to {', '.join(unmatched)} (the reference has too few "
                  "rows of the predicted classes for detect.n_samples); those rates use unmatched draws.")
    print(ui_hint())
