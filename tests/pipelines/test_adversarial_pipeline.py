"""`trustops detect` on the session's six-epoch model: attack, inference capture, MMD detection, all in MLflow."""

from __future__ import annotations

import pytest

from tests.conftest import SIX_EPOCH_MODEL_NAME as MODEL
from trustops.capture import open_capture

pytestmark = [pytest.mark.e2e, pytest.mark.trains_model]  # trains the session's six-epoch model if no test has yet


@pytest.fixture(scope="module")
def project(six_epoch_model, tmp_path_factory):
    """A copy of the session's six-epoch model project: ``MODEL`` v1, from `trustops train trainer.max_epochs=6 dp=off`."""
    return six_epoch_model.copy_to(tmp_path_factory.mktemp("detect-project"))


def test_detect_reads_the_captured_reference_and_logs_the_ladis_report(project):
    result = project.trustops("detect", f"model_name={MODEL}", "experiment_name=e2e-detect",
                              "detect.n_tests=40", "detect.layer_table_epsilons=[2.0]", "detect.combine_layers=[input,penultimate]")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "detection rate" in result.stdout

    client = project.client()
    (run,) = client.search_runs([client.get_experiment_by_name("e2e-detect").experiment_id])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["detection_rate"] > 0.8 and metrics["baseline_detection_rate"] < 0.2
    assert metrics["attack_success_rate"] > 0.3 and metrics["adversarial_accuracy"] < metrics["clean_accuracy"]
    assert "layer_detection_rate.penultimate.pgd_linf_eps2" in metrics
    # input + penultimate, one permutation-calibrated combination: as powerful, and as calibrated (40 tests, seed 0)
    assert metrics["combined_detection_rate"] > 0.8 and metrics["combined_baseline_detection_rate"] < 0.2
    assert metrics["combined_detection_rate_ci_low"] <= metrics["combined_detection_rate"] <= metrics["combined_detection_rate_ci_high"]
    assert run.data.tags["model_version"] == f"{MODEL}/1"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "detection")}
    assert {"detection/top_k_suspicious.json", "detection/layer_table.json", "detection/embedding_pca.png",
            "detection/layer_table.png", "detection/top_k_suspicious.png"} <= artifacts
    import pandas as pd

    # MLflow tables: {"columns": [...], "data": [[...], ...]}, what the UI and mlflow.load_table read.
    layers, top_k = (pd.read_json(client.download_artifacts(run.info.run_id, f"detection/{name}.json",
                                                            str(project.root / "tables")), orient="split")
                     for name in ("layer_table", "top_k_suspicious"))
    assert "penultimate" in set(layers["layer"]) and "pgd linf eps=2" in layers.columns
    assert len(top_k) > 0 and {"index", "score"} <= set(top_k.columns)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "attack")} == {"attack/attack_examples.png"}

    model_store = open_capture(run.data.tags["reference_capture_uri"])
    assert len(model_store.steps("eval")) >= 6  # one validation pass per epoch: the reference
    assert not model_store.steps("predict")  # the experiment never entered production traffic
    reader = open_capture(run.data.tags["capture_uri"])  # the run's own store
    assert len(reader.steps("predict")) == 2  # the clean and the adversarial batch
    assert {"penultimate"} <= set(reader.layers("predict"))

    # The model's trust report quotes these same figures, with their intervals, and is logged to its training run.
    reported = project.trustops("report", "--model", MODEL, "--out", "reports-e2e")
    assert reported.returncode == 0, reported.stderr[-3000:]
    page = (project.root / "reports-e2e" / f"{MODEL}-v1" / "trust_report.md").read_text()
    assert run.info.run_id in page
    assert f"| {metrics['detection_rate']:.3f} | {metrics['detection_rate_ci_low']:.3f}–{metrics['detection_rate_ci_high']:.3f} |" in page
    assert "pgd linf eps=2" in page and "Tramèr & Boneh" in page
    version = client.get_model_version(MODEL, "1")
    test_accuracy = client.get_run(version.run_id).data.metrics["test_accuracy"]
    assert f"| test accuracy | {test_accuracy:.4f} |" in page and "Wilson" in page
    logged = {a.path for a in client.list_artifacts(version.run_id, "trust_report")}
    assert logged == {"trust_report/trust_report.md", "trust_report/trust_report.html"}
    assert "<table>" in (project.root / "reports-e2e" / f"{MODEL}-v1" / "trust_report.html").read_text()


def test_detect_on_an_unknown_model_fails_before_any_run(project):
    result = project.trustops("detect", "model_name=no-such-model", "experiment_name=e2e-detect-missing")
    assert result.returncode == 2
    assert "no-such-model" in result.stderr and "Traceback" not in result.stderr
    assert project.client().get_experiment_by_name("e2e-detect-missing") is None
