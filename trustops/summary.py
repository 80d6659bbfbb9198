"""The short table a run ends with."""

from __future__ import annotations

from collections.abc import Sequence

from trustops.metric_names import TEST_ACCURACY, read_metric
from trustops.paths import default_tracking_uri


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join([line, rule, *body])


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
