"""The control chart in MLflow's own UI: `trustops monitor` passes add to one monitoring run, drawn with its limits in Chromium.

The session's smoke-trained model (in a copy of its project), six captured batches (the fifth shifted) monitored in two passes by the
real CLI, then `trustops ui` on loopback and a real headless Chromium on the monitoring run's
metric page.  With ``TRUSTOPS_SCREENSHOTS=docs/images`` the page's screenshot is kept there
(``mlflow-monitoring-chart.png``, the README's picture).  The passes also run Evidently's drift
report (``--drift-report always``), so `trustops drift-ui` draws drift per pass in Evidently's
own dashboard (``evidently-drift-dashboard.png``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.pipelines.conftest import REPO_ROOT
from tests.conftest import SMOKE_MODEL_NAME, SMOKE_TRAINING_EXPERIMENT
from tests.pipelines.served_model import load_served, trustops_ui
from trustops.monitoring.mlflow_chart import (
    CENTER_LINE,
    CHART_CENTER,
    CHART_SIGNAL,
    CHART_UCL,
    CHART_VALUE,
    MODEL_VERSION_TAG_PREFIX,
    PARENT_RUN_TAG,
    chart_metric,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
MODEL = SMOKE_MODEL_NAME  # the session's smoke model (tests/conftest.py), in this module's copy of its project
CHART = "prediction_shift"  # the chart drawn; the brightened batch (step 4) moves the class mix
KEYS = [chart_metric(CHART, q) for q in (CHART_VALUE, CHART_CENTER, CHART_UCL, CHART_SIGNAL)]
SCREENSHOTS_ENV = "TRUSTOPS_SCREENSHOTS"
# Each pass also runs Evidently's drift report, into a workspace of this project's (named, so a
# variable in the caller's environment cannot move it).
DRIFT = "evidently_drift"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def evidently_env(project) -> dict[str, str]:
    from trustops.monitoring.evidently_workspace import WORKSPACE_ENV

    return {WORKSPACE_ENV: str(project.root / ".trustops" / "evidently"), "DO_NOT_TRACK": "1"}


@pytest.fixture(scope="module")
def project(smoke_model, tmp_path_factory):
    """A copy of the session's smoke-model project: ``{MODEL}`` v1, trained by `trustops train trainer=smoke dp=off`."""
    return smoke_model.copy_to(tmp_path_factory.mktemp("chart-project"))


@pytest.fixture(scope="module")
def monitored(project):
    """Six batches through a registered model, monitored in two `trustops monitor` passes (3 + 3)."""
    served = load_served(project, MODEL)
    x = served.images
    batches = [x[:60], x[60:120], x[120:180], x[180:240], (x[240:300] + 6.0).clamp(0.0, 16.0), x[300:359]]
    for first, last in ((0, 3), (3, 6)):
        for batch in batches[first:last]:
            served.serve(batch)
        result = project.trustops("monitor", "--model", MODEL, "--monitors", CHART, DRIFT, "--drift-report", "always",
                                  env=evidently_env(project))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Evidently workspace not updated" not in result.stdout + result.stderr
        assert "Monitored 3 batch(es)" in result.stdout
    client = project.client()
    experiment = client.get_experiment_by_name("trustops-monitoring")
    (monitoring,) = client.search_runs([experiment.experiment_id], filter_string=f"tags.model_version = '{MODEL}/1' and "
                                       "tags.`trustops.monitoring_run` != ''")
    return client, experiment, monitoring


def test_two_passes_are_children_of_one_monitoring_run_linked_to_the_model_version(monitored):
    client, experiment, monitoring = monitored
    passes = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{monitoring.info.run_id}'",
                                order_by=["attributes.start_time ASC"])
    assert len(passes) == 2 and len({run.info.run_name for run in passes}) == 2
    assert all(run.info.run_name.startswith("pass-") and run.info.status == "FINISHED" for run in passes)
    # Each pass's input: the batches it monitored, named by their capture steps.
    inputs = [[(d.dataset.name, {t.key: t.value for t in d.tags}.get("mlflow.data.context")) for d in run.inputs.dataset_inputs]
              for run in passes]
    assert inputs == [[("capture steps 0-2", "monitoring")], [("capture steps 3-5", "monitoring")]]
    version = client.get_model_version(MODEL, "1")
    assert version.tags[MODEL_VERSION_TAG_PREFIX + "production"] == monitoring.info.run_id
    assert monitoring.info.run_name == f"monitor {MODEL} v1"
    # MLflow 3: the version was registered from a logged model (source `models:/<model_id>`), the run's input.
    model_id = version.source.removeprefix("models:/")
    assert monitoring.data.tags["model_id"] == model_id
    assert [m.model_id for m in client.get_run(monitoring.info.run_id).inputs.model_inputs] == [model_id]


def test_the_training_run_logs_each_setting_once_and_its_data_splits_as_inputs(monitored):
    client = monitored[0]
    (training,) = client.search_runs([client.get_experiment_by_name(SMOKE_TRAINING_EXPERIMENT).experiment_id])
    spellings: dict[str, list[str]] = {}
    for key in training.data.params:  # `capture.uri` and `capture_uri` would be one setting logged twice
        spellings.setdefault(key.replace(".", "_"), []).append(key)
    assert [keys for keys in spellings.values() if len(keys) > 1] == []
    inputs = sorted((d.dataset.name, {t.key: t.value for t in d.tags}["mlflow.data.context"], d.dataset.digest)
                    for d in training.inputs.dataset_inputs)
    assert [(name, context) for name, context, _ in inputs] == [
        ("digits test", "testing"), ("digits train", "training"), ("digits val", "validation")]
    assert len({digest for _, _, digest in inputs}) == 3


@contextlib.contextmanager
def chromium_page(tmp_path: Path) -> Iterator[Page]:
    """A page of a real headless Chromium with its own profile under ``tmp_path``; the browser closes after the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 740},
        )  # fmt: skip
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_mlflow_draws_the_control_chart_with_its_limits_in_a_real_browser(project, monitored, tmp_path):
    _, experiment, monitoring = monitored
    run_id = monitoring.info.run_id
    with trustops_ui(project, "ui") as url:  # the MLflow UI
        # MLflow's REST API: every capture step of both passes, each with its centre line, limit and signal.
        histories = {}
        for key in KEYS:
            query = urllib.parse.urlencode({"run_id": run_id, "metric_key": key})
            with urllib.request.urlopen(f"{url}/api/2.0/mlflow/metrics/get-history?{query}", timeout=30) as response:
                histories[key] = sorted((m["step"], m["value"]) for m in json.load(response)["metrics"])
        assert all([step for step, _ in points] == [0, 1, 2, 3, 4, 5] for points in histories.values()), histories
        assert histories[KEYS[1]] == [(s, pytest.approx(CENTER_LINE)) for s in range(6)]
        limit = histories[KEYS[2]][0][1]
        signals = [step for step, value in histories[KEYS[3]] if value == 1.0]
        assert signals == [step for step, value in histories[KEYS[0]] if value >= limit] and 4 in signals  # the shifted batch

        page_query = "&".join([
            f"runs={json.dumps([run_id])}", f"metric={urllib.parse.quote(json.dumps(KEYS[0]))}",
            f"experiments={json.dumps([experiment.experiment_id])}", f"plot_metric_keys={urllib.parse.quote(json.dumps(KEYS))}",
            "plot_layout={}", "x_axis=step", "y_axis_scale=linear", "line_smoothness=1", "show_point=true",
            "deselected_curves=[]", "last_linear_y_axis_range=[]",
        ])
        screenshot = tmp_path / "mlflow-monitoring-chart.png"
        with chromium_page(tmp_path) as page:
            page.goto(f"{url}/#/metric/{urllib.parse.quote(KEYS[0], safe='')}?{page_query}",
                      wait_until="domcontentloaded", timeout=60_000)
            # What the chart draws: plotly keeps each drawn series (name, x, y) on its graph element.
            page.wait_for_function(
                "() => { const g = document.querySelector('.js-plotly-plot');"
                f" return g && g.data && g.data.length >= {len(KEYS)} && g.data.every(t => t.x && t.x.length >= 6); }}",
                timeout=90_000)
            traces = page.evaluate(
                "() => document.querySelector('.js-plotly-plot').data.map(t => ({x: Array.from(t.x), y: Array.from(t.y)}))")
            legend = page.inner_text("body")  # the chart's legend: "<run name> (<metric>)" per series
            # MLflow's assistant panel opens beside the chart; closed, the chart has the page's width.
            if page.get_by_role("button", name="Close").count():
                page.get_by_role("button", name="Close").first.click()
            page.wait_for_timeout(1000)  # the chart redraws at the new width
            page.screenshot(path=str(screenshot))

    # The chart draws each series as a line and as its points (two traces, in the order of plot_metric_keys).
    series = []
    for trace in traces:
        if not series or series[-1] != (trace["x"], trace["y"]):
            series.append((trace["x"], trace["y"]))
    assert len(series) == len(KEYS), series
    for key, (x, y) in zip(KEYS, series):
        assert x == [0, 1, 2, 3, 4, 5] and y == pytest.approx([value for _, value in histories[key]]), (key, x, y)
        assert f"({key})" in legend, legend
    assert screenshot.stat().st_size > 10_000
    keep_screenshot(screenshot)


def keep_screenshot(screenshot: Path) -> None:
    if keep := os.environ.get(SCREENSHOTS_ENV):
        folder = Path(keep) if Path(keep).is_absolute() else REPO_ROOT / keep
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, folder / screenshot.name)


def drift_ui(project):
    """`trustops drift-ui` on a free loopback port, as a user starts it; yields the URL it prints."""
    return trustops_ui(project, "drift-ui", "--timeout", "240", env=evidently_env(project), timeout=300,
                       ready=lambda url, log: f"Evidently UI on {url}/" in log)  # the line it prints once the UI answers


def test_evidently_draws_drift_per_monitor_pass_in_a_real_browser(project, monitored, tmp_path):
    from trustops.monitoring.evidently_workspace import project_id

    client, experiment, monitoring = monitored
    passes = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{monitoring.info.run_id}'")
    # Each pass logged its HTML report, drawn from the run that is also its workspace snapshot.
    assert [run.data.tags.get(f"{DRIFT}_report_step") for run in sorted(passes, key=lambda r: r.info.start_time)] == ["2", "5"]
    pid = project_id(MODEL)
    screenshot = tmp_path / "evidently-drift-dashboard.png"
    with drift_ui(project) as url:
        with urllib.request.urlopen(f"{url}/api/projects/{pid}/info", timeout=30) as response:
            assert json.load(response)["name"] == MODEL
        with chromium_page(tmp_path) as page:
            served = []  # what the dashboard's panels asked Evidently for: one series per panel
            page.on("response", lambda r: served.append(r) if r.url.endswith("/data_series_batch") else None)
            page.goto(f"{url}/projects/{pid}", wait_until="domcontentloaded", timeout=60_000)
            # MUI X charts: a mark per point of the line, a bar per non-zero value.
            page.wait_for_function("() => document.querySelectorAll('.MuiMarkElement-root').length >= 2"
                                   " && document.querySelectorAll('.MuiBarElement-root').length >= 1", timeout=90_000)
            page.wait_for_timeout(1500)  # the charts' entry animation
            marks = page.evaluate("() => Array.from(document.querySelectorAll('.MuiMarkElement-root'))"
                                  ".map(c => [+c.getAttribute('cx'), +c.getAttribute('cy')]).sort((a, b) => a[0] - b[0])")
            bars = page.evaluate("() => Array.from(document.querySelectorAll('.MuiBarElement-root'))"
                                 ".map(r => [+r.getAttribute('x'), +r.getAttribute('height')]).sort((a, b) => a[0] - b[0])")
            series = {}
            for response in served:
                body = response.json()
                (drawn,) = body["series"]
                series[drawn["params"]["value_type"]] = ([s["metadata"] for s in body["sources"]], drawn["values"])
            page.screenshot(path=str(screenshot))

    assert sorted(series) == ["count", "share"], series
    for sources, values in series.values():  # one point per pass, in time order, named by its capture steps
        assert [(m["model_version"], m["first_step"], m["last_step"]) for m in sources] == [("1", "0", "2"), ("1", "3", "5")]
        assert len(values) == 2
    (_, share), (_, count) = series["share"], series["count"]
    assert count == [pytest.approx(s * 64) for s in share]  # 64 pixel columns
    assert share[1] > share[0]  # the brightened batch moves pixel columns
    assert len(marks) == 2 and marks[1][1] < marks[0][1]  # the line rises (SVG y grows downwards)
    assert sum(c > 0 for c in count) <= len(bars) <= 2 and bars[-1][1] == max(h for _, h in bars)  # the last bar is tallest
    assert screenshot.stat().st_size > 10_000
    keep_screenshot(screenshot)
