"""Captures on a real S3-compatible server (SeaweedFS, started by the session fixture)."""

import logging

import pytest
import torch

from trustops.capture import (
    ActivationCapture,
    CaptureNotFoundError,
    CaptureStoreUnavailableError,
    CorruptChunkError,
    open_capture,
    open_store,
)
from trustops.models.networks import build_classifier

pytestmark = pytest.mark.integration


def _capture(uri, endpoint_url, backend, n=4, *, flush_every=None):
    """Capture ``n`` batches; ``flush_every=k`` cuts a chunk every k steps (native)."""
    torch.manual_seed(0)
    model = build_classifier("mlp", (64,), 10).eval()
    batches = [torch.rand(3, 64) * 16 for _ in range(n)]
    outputs = []
    with ActivationCapture(model, uri, backend=backend, endpoint_url=endpoint_url) as capture, torch.no_grad():
        for i, x in enumerate(batches, 1):
            outputs.append(model(x))
            if flush_every and i % flush_every == 0:
                capture.flush()
    return batches, outputs


@pytest.mark.parametrize("backend", ["native", "smdebug"])
def test_round_trip_on_s3(s3_env, s3_bucket, tmp_path, backend):
    uri = f"s3://{s3_bucket}/models/m1"
    batches, outputs = _capture(uri, s3_env.endpoint_url, backend, flush_every=2)
    reader = open_capture(uri, endpoint_url=s3_env.endpoint_url, cache_dir=tmp_path / "mirror")
    assert reader.backend == backend
    assert reader.steps("predict") == [0, 1, 2, 3]
    assert reader.steps("predict", after=1) == [2, 3]
    for captured, x, y in zip(reader.iter_steps("predict"), batches, outputs, strict=True):
        assert torch.equal(captured.tensors["inputs"], x)
        assert torch.equal(captured.tensors["outputs"], y)
    # More steps arrive; the same reader sees only what is new.
    _capture(uri, s3_env.endpoint_url, backend, n=2)
    assert reader.steps("predict", after=3) == [4, 5]


def test_smdebug_trial_mirrored_from_s3_is_read_by_smdebug(s3_env, s3_bucket, tmp_path):
    from smdebug import modes
    from smdebug.trials import create_trial

    uri = f"s3://{s3_bucket}/trial"
    _capture(uri, s3_env.endpoint_url, "smdebug", n=3)
    open_capture(uri, endpoint_url=s3_env.endpoint_url, cache_dir=tmp_path / "mirror").steps("predict")
    trial = create_trial(str(tmp_path / "mirror"))
    assert trial.steps(mode=modes.PREDICT) == [0, 1, 2]
    assert "penultimate_output_0" in trial.tensor_names()


def test_corrupt_chunk_on_s3_is_reported(s3_env, s3_bucket):
    uri = f"s3://{s3_bucket}/c"
    _capture(uri, s3_env.endpoint_url, "native", n=4, flush_every=2)
    client = s3_env.client()
    [data_key] = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="c/predict/data/")["Contents"] if o["Key"].endswith("000000000001-000000000000.bin")]
    body = client.get_object(Bucket=s3_bucket, Key=data_key)["Body"].read()
    client.put_object(Bucket=s3_bucket, Key=data_key, Body=body[:-5])
    reader = open_capture(uri, endpoint_url=s3_env.endpoint_url)
    with pytest.raises(CorruptChunkError, match="predict steps 0-1.*truncated") as info:
        next(reader.iter_steps("predict"))
    assert info.value.steps == (0, 1)
    assert [s.step for s in reader.iter_steps("predict", after=1)] == [2, 3]


def test_nothing_captured_or_no_bucket_on_s3(s3_env, s3_bucket):
    with pytest.raises(CaptureNotFoundError, match=f"Nothing was captured at s3://{s3_bucket}/empty"):
        open_capture(f"s3://{s3_bucket}/empty", endpoint_url=s3_env.endpoint_url)
    with pytest.raises(CaptureNotFoundError, match="bucket 'no-such-bucket-x' does not exist"):
        open_capture("s3://no-such-bucket-x/p", endpoint_url=s3_env.endpoint_url)


def test_rejected_credentials_never_appear_in_errors_or_logs(s3_env, s3_bucket, monkeypatch, caplog):
    wrong_secret = "wrong-secret-0123456789abcdef"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)
    caplog.set_level(logging.DEBUG, logger="trustops")
    store = open_store(f"s3://{s3_bucket}/p", endpoint_url=s3_env.endpoint_url, retries=1)
    with pytest.raises(CaptureStoreUnavailableError, match="refused") as info:
        store.put("k", b"v")
    for text in (str(info.value), repr(store), caplog.text):
        assert wrong_secret not in text and s3_env.secret_key not in text
        assert s3_env.access_key not in text
    assert s3_env.endpoint_url in str(info.value)
