"""One trust report per registered model version: `trustops report --model NAME[:VERSION|@ALIAS]`.

Everything on the page is read back from MLflow, never recomputed: the version's training run
(accuracy, calibration, ε), its latest finished `trustops detect` run (detection rate, the
false-positive baseline, the layer table) and the trust studies run on the same data (prediction
difference, robustness).  Each figure carries its interval and, where the literature has one, the
published figure it should be read against.  The page is written as Markdown and HTML and logged
to the version's training run under ``trust_report/``, so the MLflow UI shows it beside the model.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustops.metric_names import TEST_ACCURACY, read_metric

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from trustops.registry import RegisteredModel

REPORT_ARTIFACT_DIR = "trust_report"
WILSON_Z = 1.959963984540054  # two-sided 95%

# What each part of the report is read against (checked against the papers; see the README's study section).
ANCHORS = {
    "dp": "Fashion-MNIST, end-to-end CNN at ε = 3 (δ = 1e-5): ≈ 86% (Tramèr & Boneh, ICLR 2021); tanh CNN ≈ 86%, "
          "ReLU several points lower (Papernot et al., AAAI 2021). No published anchor for the 8×8 digits.",
    "detection": "LADIS (SageMaker Model Monitor + Debugger): detection rate rises from ≈ 3% at the first layer to 100% at "
                 "the penultimate layer; the clean baseline should stay near α.",
    "pd": "SmeLU (Shamir, Lin & Coviello, 2020): lower prediction difference than ReLU at matched accuracy.",
}


@dataclass
class Figure:
    quantity: str
    value: str
    interval: str = "—"
    anchor: str = "—"


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)
    note: str = ""
    table: pd.DataFrame | None = None
    source: str = ""  # the MLflow run the figures come from


@dataclass
class TrustReport:
    model: str
    version: int
    sections: list[Section]

    def markdown(self) -> str:
        lines = [f"# Trust report: {self.model} v{self.version}", ""]
        for section in self.sections:
            lines += [f"## {section.title}", ""]
            if section.source:
                lines += [section.source, ""]
            if section.figures:
                lines += ["| quantity | value | 95% interval | read against |", "|---|---|---|---|"]
                lines += [f"| {f.quantity} | {f.value} | {f.interval} | {f.anchor} |" for f in section.figures]
                lines.append("")
            if section.table is not None and len(section.table):
                lines += [_markdown_table(section.table), ""]
            if section.note:
                lines += [section.note, ""]
        return "\n".join(lines)

    def html(self) -> str:
        from markdown_it import MarkdownIt

        body = MarkdownIt("commonmark").enable("table").render(self.markdown())
        style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
                 "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>Trust report: {self.model} v{self.version}</title>"
                f"<style>{style}</style></head><body>{body}</body></html>\n")


def wilson_interval(successes: float, trials: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    centre = (p + WILSON_Z**2 / (2 * trials)) / (1 + WILSON_Z**2 / trials)
    half = WILSON_Z * math.sqrt(p * (1 - p) / trials + WILSON_Z**2 / (4 * trials**2)) / (1 + WILSON_Z**2 / trials)
    return (max(0.0, centre - half), min(1.0, centre + half))


def build_trust_report(client: MlflowClient, model: RegisteredModel) -> TrustReport:
    training = client.get_run(model.run_id)
    sections = [_training_section(training, model)]
    detect = _latest_run(client, f"tags.model_version = '{model.name}/{model.version}'")
    sections.append(_detection_section(client, detect))
    data_hash = model.tags.get("data_hash") or training.data.tags.get("data_hash")
    sections.append(_reproducibility_section(client, data_hash))
    sections.append(_robustness_section(client, data_hash))
    return TrustReport(model=model.name, version=model.version, sections=sections)


def write_trust_report(report: TrustReport, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    markdown, html = folder / "trust_report.md", folder / "trust_report.html"
    markdown.write_text(report.markdown(), encoding="utf-8")
    html.write_text(report.html(), encoding="utf-8")
    return markdown, html


def _training_section(run: Run, model: RegisteredModel) -> Section:
    metrics, params = run.data.metrics, run.data.params
    section = Section("Accuracy and privacy", source=f"Training run `{run.info.run_id}` ({run.info.run_name}).")
    if (accuracy := read_metric(metrics, TEST_ACCURACY)) is not None:
        rows = int(metrics.get("test_rows", 0))
        interval = "—" if not rows else "{:.3f}–{:.3f} (Wilson, {} test rows)".format(*wilson_interval(accuracy * rows, rows), rows)
        section.figures.append(Figure("test accuracy", f"{accuracy:.4f}", interval, ANCHORS["dp"]))
    if (ece := metrics.get("test_ece")) is not None:
        section.figures.append(Figure("expected calibration error (test)", f"{ece:.4f}"))
    epsilon = metrics.get("dp_epsilon")
    delta = model.tags.get("dp_delta") or params.get("dp.target_delta")
    section.figures.append(Figure(
        "differential privacy ε spent",
        "off (no DP)" if epsilon is None else f"{epsilon:.3f}" + (f" at δ = {float(delta):.2g}" if delta not in (None, "None") else ""),
        "exact (RDP accountant)" if epsilon is not None else "—",
    ))
    section.figures.append(Figure("activation", params.get("model.activation", model.tags.get("activation", "—"))))
    return section


def _detection_section(client: MlflowClient, run: Run | None) -> Section:
    section = Section("Adversarial detection (LADIS)")
    if run is None:
        section.note = "No finished `trustops detect` run for this version yet: run `trustops detect model_name=NAME model_version=N`."
        return section
    metrics, params = run.data.metrics, run.data.params
    section.source = (f"`trustops detect` run `{run.info.run_id}` ({run.info.run_name}): PGD "
                      f"{params.get('attack.norm', '?')} ε = {params.get('attack.epsilon', '?')}.")
    tests = int(float(params.get("detect.n_tests", 0) or 0))
    if "attack_success_rate" in metrics:
        section.figures.append(Figure("attack success rate", f"{metrics['attack_success_rate']:.3f}"))
    if "detection_rate" in metrics:
        section.figures.append(Figure(
            f"detection rate, penultimate layer ({tests} tests)" if tests else "detection rate, penultimate layer",
            f"{metrics['detection_rate']:.3f}",
            _interval(metrics.get("detection_rate_ci_low"), metrics.get("detection_rate_ci_high")), ANCHORS["detection"]))
    if "baseline_detection_rate" in metrics:
        alpha = params.get("detect.alpha")
        high = metrics.get("baseline_detection_rate_ci_high")
        section.figures.append(Figure(
            "false-positive baseline (clean held-out)", f"{metrics['baseline_detection_rate']:.3f}",
            "—" if high is None else f"≤ {high:.3f}", f"α = {alpha}" if alpha else "—"))
    matched = {k.removeprefix("class_matched_"): v for k, v in metrics.items() if k.startswith("class_matched_")}
    if matched:
        section.note = "Class-matched references: " + ", ".join(
            f"{batch} {'applied' if value else 'not applicable (too few reference rows of the predicted classes)'}"
            for batch, value in sorted(matched.items()))
    section.table = _logged_table(client, run, "detection/layer_table.json")
    return section


def _reproducibility_section(client: MlflowClient, data_hash: str | None) -> Section:
    section, table = _study_section(client, data_hash, "reproducibility", "Reproducibility (prediction difference)",
                                    models="its own models, trained like this one")  # fmt: skip
    for _, row in table.iterrows() if table is not None else ():
        pairs = int(row.get("pairs", 0))
        section.figures.append(Figure(
            f"relative PD, {row['variant']} ({pairs} pairs)", f"{row['relative_pd_mean']:.4f}",
            _mean_interval(row["relative_pd_mean"], row.get("relative_pd_std", 0.0), pairs), ANCHORS["pd"]))
    return section


def _robustness_section(client: MlflowClient, data_hash: str | None) -> Section:
    section, table = _study_section(client, data_hash, "robustness", "Robustness (accuracy under PGD)", models="its own models")
    section.table = table
    return section


def _study_section(client: MlflowClient, data_hash: str | None, study: str, title: str, *, models: str) -> tuple[Section, pd.DataFrame | None]:
    """A section for the latest ``trustops trust <study>`` on this data, and its table; a note saying how to run it when there is none."""
    section = Section(title)
    run, table = _latest_study(client, data_hash, study)
    if table is None:
        section.note = f"No {study} study on this data yet: `trustops trust {study}`."
    else:
        section.source = f"Study `{run.info.run_id}` on the same data ({models})."
    return section, table


def _latest_study(client: MlflowClient, data_hash: str | None, study: str) -> tuple[Run | None, pd.DataFrame | None]:
    """The latest summary run of ``trustops trust <study>`` on the data ``data_hash`` and its table (``<study>/<study>.csv``)."""
    if not data_hash:
        return None, None
    run = _latest_run(client, f"tags.trustops_job = '{study}_summary' and tags.data_hash = '{data_hash}'")
    table = _logged_csv(client, run, f"{study}/{study}.csv") if run else None
    return run, (table if table is not None and len(table) else None)


def _latest_run(client: MlflowClient, filter_string: str) -> Run | None:
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not experiments:
        return None
    runs = client.search_runs(experiments, filter_string=f"{filter_string} and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def _logged_table(client: MlflowClient, run: Run, path: str) -> pd.DataFrame | None:
    import json

    import pandas as pd

    try:
        local = client.download_artifacts(run.info.run_id, path)
    except Exception:  # noqa: BLE001 - an older run without the table: the page says so by its absence
        return None
    logged = json.loads(Path(local).read_text())
    return pd.DataFrame(logged["data"], columns=logged["columns"])


def _logged_csv(client: MlflowClient, run: Run, path: str) -> pd.DataFrame | None:
    import pandas as pd

    try:
        return pd.read_csv(client.download_artifacts(run.info.run_id, path))
    except Exception:  # noqa: BLE001 - see _logged_table
        return None


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"{low:.3f}–{high:.3f}"


def _mean_interval(mean: float, std: float, n: int) -> str:
    """Student-t 95% interval of a mean over ``n`` pairs."""
    if n < 2 or std != std:
        return "—"
    from scipy import stats

    half = float(stats.t.ppf(0.975, n - 1)) * float(std) / math.sqrt(n)
    return f"{mean - half:.4f}–{mean + half:.4f}"


def _markdown_table(table: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return re.sub(r"\|", "/", str(value))

    out = io.StringIO()
    columns = list(table.columns)
    out.write("| " + " | ".join(map(str, columns)) + " |\n")
    out.write("|" + "---|" * len(columns) + "\n")
    for _, row in table.iterrows():
        out.write("| " + " | ".join(cell(row[c]) for c in columns) + " |\n")
    return out.getvalue().rstrip("\n")


__all__ = ["TrustReport", "build_trust_report", "wilson_interval", "write_trust_report"]
