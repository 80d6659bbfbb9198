"""`trustops monitor` in two project checkouts that share one S3 storage setting (and one tracking store).

The real CLI, the ZenML monitor pipeline and SeaweedFS: the second checkout's pass continues
from the watermark, charts and outbox the first one left on S3, and a pass that finds the
S3 lease held skips with exit code 3.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.team.conftest import new_project
from trustops.monitoring.state_store import S3StateStore
from trustops.monitoring.watermark import exclusive_run

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.trains_model]

MODEL = "shared-state"
MONITOR = ("monitor", "--model", MODEL, "--monitors", "mmd_adversarial")


def test_a_second_checkout_continues_the_monitor_state_on_s3(s3_env, s3_bucket, tmp_path) -> None:
    setting = json.dumps({"uri": f"s3://{s3_bucket}/team", "endpoint_url": s3_env.endpoint_url, "region": s3_env.region})
    first, second = new_project(tmp_path / "a"), new_project(tmp_path / "b")
    for checkout in (first, second):
        (checkout.root / "trustops-storage.json").write_text(setting)
    shared = {"MLFLOW_TRACKING_URI": first.tracking_uri}  # a team's tracking server, here the first checkout's store

    trained = first.trustops("train", "trainer=smoke", "dp=off", "tracking.experiment_name=shared",
                             f"tracking.registered_model_name={MODEL}", env=shared)
    assert trained.returncode == 0, trained.stderr[-3000:]
    scored = first.trustops("predict", "--model", MODEL, "--input", "data/digits.parquet", "--batch-size", "300", env=shared)
    assert scored.returncode == 0, scored.stderr[-3000:]
    monitored = first.trustops(*MONITOR, env=shared)
    assert monitored.returncode == 0 and "Monitored 6 batch(es)" in monitored.stdout, monitored.stderr[-3000:]

    more = second.root / "more.parquet"
    pd.read_parquet(second.root / "data" / "digits.parquet").head(600).drop(columns=["split"]).to_parquet(more)
    scored = second.trustops("predict", "--model", MODEL, "--input", str(more), "--batch-size", "300", env=shared)
    assert scored.returncode == 0, scored.stderr[-3000:]
    continued = second.trustops(*MONITOR, env=shared)
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert "Monitored 2 batch(es) (capture steps 6..7)" in continued.stdout, continued.stdout  # only what is new

    state = S3StateStore(f"s3://{s3_bucket}/team/monitoring/{MODEL}/v1", endpoint_url=s3_env.endpoint_url)
    assert json.loads(state.read("watermark.json").data)["last_step"] == 7
    chart = json.loads(state.read("charts/mmd_adversarial.json").data)
    assert [point["step"] for point in chart["points"]] == list(range(8))  # each batch charted once, by either checkout
    assert not any((checkout.root / ".trustops" / "monitoring").exists() for checkout in (first, second))

    with exclusive_run(state):  # a pass in progress on another worker holds the lease
        skipped = first.trustops(*MONITOR, env=shared)
    assert skipped.returncode == 3 and "in progress" in skipped.stderr and "Traceback" not in skipped.stderr
    quiet = first.trustops(*MONITOR, env=shared)
    assert quiet.returncode == 0 and "nothing to monitor" in quiet.stdout, quiet.stderr[-3000:]
    assert state.read("run.lock") is None  # every pass released its lease

