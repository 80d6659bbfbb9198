"""Experiments never enter production traffic: `trustops detect` captures into a store of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustops.capture import open_capture

pytestmark = pytest.mark.e2e


def test_detect_leaves_the_models_production_store_alone(trained):
    production = open_capture(trained.capture_uri)
    predict_before = production.steps("predict")
    eval_before = production.steps("eval")

    result = trained.project.trustops(
        "detect", f"model_name={trained.name}", "experiment_name=isolation-detect",
        "detect.n_tests=10", "detect.layer_table_epsilons=[2.0]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    production = open_capture(trained.capture_uri)
    assert production.steps("predict") == predict_before, "the detect run wrote into the model's production store"
    assert production.steps("eval") == eval_before

    client = trained.project.client()
    (run,) = client.search_runs([client.get_experiment_by_name("isolation-detect").experiment_id])
    tags = run.data.tags
    assert tags["reference_capture_uri"] == trained.capture_uri
    experiment_store = Path(tags["capture_uri"])
    assert experiment_store.parent == trained.project.root / ".trustops" / "captures" / "experiments"
    assert experiment_store.name == run.info.run_name
    batches = open_capture(str(experiment_store))
    assert batches.steps("predict") == [0, 1]  # the clean and the adversarial batch
    assert [batches.read_step("predict", s).meta["batch"] for s in (0, 1)] == ["clean", "adversarial"]
    assert 0.0 <= run.data.metrics["detection_rate"] <= 1.0
