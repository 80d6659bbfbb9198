"""Monitor state stores for the tests: a local folder, and a prefix on the session's SeaweedFS server.

``state_store`` is parametrized over both implementations, so every test that takes it is a
contract test: the local folder (today's layout) and S3 (conditional writes on a real
S3-compatible server) must behave the same.
"""

from __future__ import annotations

import math
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trustops.monitoring.state_store import LocalStateStore, S3StateStore, StateStore, open_state

#: A short S3 lease, so that expiry and renewal are observable within a test.
TEST_LEASE_SECONDS = 3.0


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, *, lease_seconds: float = TEST_LEASE_SECONDS) -> StateStore:
    if kind == "local":
        return LocalStateStore(tmp_path / f"state-{uuid.uuid4().hex[:6]}")
    server = request.getfixturevalue("s3_env")
    bucket = request.getfixturevalue("s3_bucket")
    return S3StateStore(f"s3://{bucket}/team/monitoring/digits/v3", endpoint_url=server.endpoint_url,
                        lease_seconds=lease_seconds)


def reopen(store: StateStore) -> StateStore:
    """Another handle on the same state, as a new process would open it."""
    if isinstance(store, S3StateStore):
        return S3StateStore(store.location, endpoint_url=store.endpoint_url, lease_seconds=store.lease_seconds)
    return open_state(store.location)


def race(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together; each result, or the exception it raised."""
    start = threading.Barrier(count)

    def one(i: int):
        start.wait()
        try:
            return work(i)
        except Exception as error:  # the outcome under test
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def state_store(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    return make_store(store_kind, request, tmp_path)


# --- hand-made pass records (no model, no stack) ------------------------------------------------------------------

LEVEL = 1 / 1000  # the page level of both charted monitors in these records


def score(p_value: float):
    from trustops.monitoring.records import MonitorScore

    return MonitorScore(score=-math.log10(p_value), threshold=3.0, alarm=p_value <= LEVEL, p_value=p_value, page_level=LEVEL)


def checked(p_values: dict[int, tuple[float, float]]):
    """Checked batches: capture step -> (mean-confidence p, feature-squeezing p)."""
    from trustops.monitoring.records import BatchScores, CheckedBatches

    batches = [BatchScores(step=step, batch_size=100, scores={"mean_confidence": score(shift), "feature_squeezing": score(squeeze)})
               for step, (shift, squeeze) in sorted(p_values.items())]
    return CheckedBatches(batches=batches, page_levels={"mean_confidence": LEVEL, "feature_squeezing": LEVEL},
                          false_page_budget=500.0)


def collected(after: int | None, steps, capture_uri: str = "/captures"):
    from trustops.monitoring.records import ChunkRef, CollectedCaptures

    return CollectedCaptures(capture_uri=capture_uri, after=after, chunks=[ChunkRef(key=f"c{s}", steps=[s]) for s in steps])


def model_info(capture_uri: str = "/captures"):
    from trustops.registry import RegisteredModel
    from trustops.settings import TrainSettings

    return RegisteredModel(name="digits", version=3, run_id="r", model_uri="models:/digits/3",
                           tags={"capture_uri": capture_uri}, training=TrainSettings())
