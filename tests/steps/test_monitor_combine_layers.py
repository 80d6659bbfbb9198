"""The monitor's multi-layer test (``trustops monitor --combine-layers``), through the product path.

A model trained with ``capture.layers=[block1]`` (the digits MLP's first hidden layer, ``features.2``)
captures that layer beside ``penultimate`` in its reference and in the traffic served through it;
the pass's ``mmd_adversarial`` test then combines both layers (Fisher's statistic, one set of
permutations shared by the layers) and says which ones, in its details, its MLflow params and its
alerts.  The model is trained once per module in a copy of the session's smoke-model project
(tests/conftest.py), whose own ``trustops-digits`` v1 stands for a model trained before
``capture.layers`` existed.

Seeds and tolerance: the traffic is the digits test split (fixed by the data's split seed), and each
batch's permutations are seeded by its capture step (``checks.batch_seed``), so every p-value here is
reproducible.  With one statistical monitor the page level is 1/500: a clean batch pages with
probability at most 0.002, so the three clean batches stay quiet except with probability <= 0.006
(measured: p = 0.152, 0.26, 0.038).  The shifted batch (every pixel +4 on a 0-16 scale) gets the
smallest p-value its 499 permutations allow, 1/500, which is the page level: no permutation of the
pooled rows gave a combined statistic as large as the observed one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trustops.capture import ActivationCapture, CapturedStep
from trustops.monitoring.budget import page_levels
from trustops.monitoring.batch_check import Traffic, ViewFailure, batch_views, check_batch, combine_overrides, fit_monitors
from trustops.monitoring.reference import Reference

MODEL = "combine-digits"
OLD_MODEL = "trustops-digits"  # the smoke model: trained without capture.layers
LAYERS = ("block1", "penultimate")
CAPTURED = "features.2,penultimate"  # what block1 stands for on the digits MLP


@pytest.fixture(scope="module")
def project(smoke_model, tmp_path_factory):
    project = smoke_model.copy_to(tmp_path_factory.mktemp("combine-project"))
    result = project.trustops("train", "trainer=smoke", "dp=off", "capture.layers=[block1]",
                              f"tracking.registered_model_name={MODEL}", "tracking.experiment_name=combine-train", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project


def _serve(project, name: str, batches: list[torch.Tensor]) -> None:
    """Each batch as one PREDICT step, captured the way a server captures it (the model's own layers)."""
    from trustops.registry import resolve_registered_model

    found = resolve_registered_model(name, "latest", project.client())
    with project.mlflow_globals() as mlflow:
        model = mlflow.pytorch.load_model(found.model_uri).eval()
    for batch in batches:
        with ActivationCapture(model, found.capture_uri, mode="predict"), torch.no_grad():
            model(batch)


def _test_split(project) -> torch.Tensor:
    import pandas as pd

    test = pd.read_parquet(project.root / "data" / "digits.parquet").query("split == 'test'")
    return torch.from_numpy(test.filter(like="pixel_").to_numpy("float32")).reshape(-1, 1, 8, 8)


def _outbox(project, name: str) -> list[dict]:
    path = project.root / ".trustops" / "monitoring" / name / "v1" / "alerts" / "outbox.jsonl"
    return [json.loads(line)["alert"] for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_combined_layers_stay_quiet_on_clean_traffic_and_page_on_a_shift_naming_the_layers(project):
    x = _test_split(project)
    clean = [x[:100], x[100:200], x[200:300]]
    _serve(project, MODEL, [clean[0], (x[300:] + 4.0).clamp(0.0, 16.0), clean[1], clean[2]])  # step 1 is shifted

    result = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial", "--combine-layers", *LAYERS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Monitored 4 batch(es)" in result.stdout

    client = project.client()
    experiment = client.get_experiment_by_name("trustops-monitoring").experiment_id
    (run,) = [r for r in client.search_runs([experiment]) if r.data.tags.get("no_op") == "false"]
    assert run.data.params["mmd_adversarial.combine_layers"] == CAPTURED
    alarms = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "mmd_adversarial.alarm")}
    p_values = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "mmd_adversarial.p_value")}
    level = float(run.data.params["mmd_adversarial.page_level"])
    assert level == pytest.approx(1 / 500)
    print(f"combined p-values by capture step: {p_values} (page level {level:g})")  # shown by pytest -rP
    assert alarms == {0: 0.0, 1: 1.0, 2: 0.0, 3: 0.0}, p_values
    assert p_values[1] <= level < min(p_values[s] for s in (0, 2, 3))

    (alert,) = [a for a in _outbox(project, MODEL) if a["monitor"] == "incident" and a["kind"] == "distribution_shift"
                and a["step"] == 1]
    assert alert["details"]["mmd_adversarial.layers"] == CAPTURED
    assert "MMD on layers features.2 + penultimate, combined by Fisher's method" in alert["headline"]


def test_a_layer_the_model_lacks_is_refused_in_one_line_before_the_pass(project):
    result = project.trustops("monitor", "--model", MODEL, "--monitors", "mmd_adversarial", "--combine-layers", "block9", "penultimate")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert "--combine-layers names unknown layer(s) ['block9']" in line
    assert "This model's layers: features.2, penultimate; aliases: block1=features.2." in line
    assert "Monitored" not in result.stdout  # no pass ran


@pytest.mark.parametrize(("arguments", "expected"), [
    (("--monitors", "mmd_adversarial", "--combine-layers", "penultimate"), "at least two distinct layer names"),
    (("--monitors", "mmd_adversarial", "--combine-layers", "block1", "block1"), "at least two distinct layer names"),
    (("--monitors", "prediction_shift", "--combine-layers", *LAYERS), "Add it to --monitors"),
])
def test_a_malformed_request_is_refused_before_anything_is_read(tmp_path, monkeypatch, capsys, arguments, expected):
    import os
    import signal

    from trustops.cli import main

    monkeypatch.setenv("TRUSTOPS_PROJECT_ROOT", str(tmp_path))  # an empty project: nothing there to read
    monkeypatch.chdir(tmp_path)
    saved, handler = dict(os.environ), signal.getsignal(signal.SIGTERM)
    try:
        code = main(["monitor", "--model", "no-such-model", *arguments])
    finally:  # main configures ZenML's environment and SIGTERM for the process
        os.environ.clear()
        os.environ.update(saved)
        signal.signal(signal.SIGTERM, handler)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and expected in line and "no-such-model" not in line  # refused before the model is looked up


def test_an_older_model_whose_reference_lacks_the_layer_gets_a_clear_message(project):
    result = project.trustops("monitor", "--model", OLD_MODEL, "--monitors", "mmd_adversarial", "--combine-layers", *LAYERS)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert f"The reference of {OLD_MODEL} v1 holds no layer(s) features.2 to combine (its captured layers: penultimate)" in line
    assert "capture.layers=[features.2]" in line


def test_a_scheduled_pass_combines_the_same_layers_and_a_bad_name_is_refused_when_scheduling(project):
    result = project.trustops("schedule", "--cron", "*/5 * * * *", "--model", MODEL, "--print-crontab", "--combine-layers", *LAYERS)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"monitor --model {MODEL} --combine-layers block1 penultimate >>" in result.stdout.strip().splitlines()[-1]
    refused = project.trustops("schedule", "--cron", "*/5 * * * *", "--model", MODEL, "--max-runs", "1", "--combine-layers", "block9", "penultimate")
    assert refused.returncode == 2 and "--combine-layers names unknown layer(s) ['block9']" in refused.stderr  # before the first tick


def test_a_capture_layer_the_model_lacks_is_refused_before_training(project):
    result = project.trustops("train", "trainer=smoke", "dp=off", "capture.layers=[block9]",
                              "tracking.registered_model_name=never-trained", "tracking.experiment_name=never-trained")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert "capture.layers names unknown layer(s) ['block9']. This model's layers: features.2, penultimate" in line
    assert project.client().get_experiment_by_name("never-trained") is None


def test_a_detect_layer_the_model_lacks_is_refused_before_any_attack(project):
    result = project.trustops("detect", f"model_name={OLD_MODEL}", "detect.combine_layers=[block9,penultimate]",
                              "experiment_name=never-attacked")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert "detect.combine_layers names unknown layer(s) ['block9']. This model's layers: input, features.2, penultimate, logits" in line
    assert project.client().get_experiment_by_name("never-attacked") is None


# --- the check stage itself, without a stack -----------------------------------------------------------------------


def _reference_and_batch(rows: int = 200, *, with_layer: bool = True):
    generator = torch.Generator().manual_seed(0)
    hidden, penultimate = torch.randn(rows, 6, generator=generator), torch.randn(rows, 4, generator=generator)
    reference = Reference(penultimate=penultimate, probabilities=torch.softmax(torch.randn(rows, 3, generator=generator), 1),
                          inputs=torch.randn(rows, 5, generator=generator), labels=torch.zeros(rows, dtype=torch.long),
                          value_range=(-5.0, 5.0), layers={"features.2": hidden, "penultimate": penultimate})
    tensors = {"penultimate": torch.randn(50, 4, generator=generator), "outputs": torch.randn(50, 3, generator=generator),
               "inputs": torch.randn(50, 5, generator=generator)}
    if with_layer:
        tensors["features.2"] = torch.randn(50, 6, generator=generator)
    traffic = Traffic(step=CapturedStep("predict", 7, tensors, {}), model=None, value_range=(-5.0, 5.0),
                      combine_layers=("features.2", "penultimate"))
    return reference, traffic


def test_the_check_stage_gives_the_mmd_monitor_both_layers_with_every_permutation():
    reference, traffic = _reference_and_batch()
    names = ["mmd_adversarial", "mean_confidence"]
    fitted, failures = fit_monitors(names, reference, page_levels(names, 500.0), combine_overrides(traffic.combine_layers))
    assert not failures and fitted["mmd_adversarial"].layers == ("features.2", "penultimate")
    check = check_batch(fitted, traffic.step.step, batch_views(fitted, traffic))
    details = check.results["mmd_adversarial"].details
    assert not check.failures and {"p_value/features.2", "p_value/penultimate"} <= set(details)
    assert 0 < details["p_value"] <= 1


def test_a_batch_captured_without_a_combined_layer_fails_that_monitor_alone_with_a_clear_reason():
    reference, _ = _reference_and_batch()
    _, traffic = _reference_and_batch(with_layer=False)  # served by an older server
    names = ["mmd_adversarial", "mean_confidence"]
    fitted, _ = fit_monitors(names, reference, page_levels(names, 500.0), combine_overrides(traffic.combine_layers))
    views = batch_views(fitted, traffic)
    assert isinstance(views["mmd_adversarial"], ViewFailure)
    check = check_batch(fitted, traffic.step.step, views)
    assert "mean_confidence" in check.results and set(check.failures) == {"mmd_adversarial"}
    assert "Layer 'features.2' was not captured in predict step 7" in check.failures["mmd_adversarial"]
    assert "Captured layers: inputs, outputs, penultimate" in check.failures["mmd_adversarial"]


def test_a_single_layer_pass_keeps_the_sequential_test():
    assert combine_overrides(None) == {} and combine_overrides(["penultimate"]) == {}
    assert combine_overrides(["features.2", "penultimate"]) == {"mmd_adversarial": {"stop_after": None}}


def test_a_capture_records_the_layers_its_model_was_trained_to_capture(tmp_path: Path):
    import pickle

    from trustops.capture import open_capture
    from trustops.models.networks import build_classifier
    from trustops.training.trainer import set_capture_layers

    model = build_classifier("mlp", (64,), 10).eval()
    set_capture_layers(model, ["block1"])
    served = pickle.loads(pickle.dumps(model))  # as the registry stores and the server loads it
    for backend in ("native", "smdebug"):
        with ActivationCapture(served, tmp_path / backend, mode="predict", backend=backend), torch.no_grad():
            served(torch.zeros(3, 64))
        assert open_capture(tmp_path / backend).layers("predict") == ["features.2", "inputs", "outputs", "penultimate"]
