"""Bad input to the reader gives a clear error."""

import pytest

from trustops.capture import CaptureConfigError, CaptureNotFoundError, open_capture
from trustops.capture.store import LocalStore


@pytest.mark.parametrize("make", ["missing", "empty", "unrelated"])
def test_nothing_captured_at_the_uri(tmp_path, make):
    folder = tmp_path / "capture"
    if make != "missing":
        folder.mkdir()
    if make == "unrelated":
        (folder / "notes.txt").write_text("hello")
    with pytest.raises(CaptureNotFoundError, match="Nothing was captured at .*capture") as info:
        open_capture(folder)
    assert isinstance(info.value, FileNotFoundError)


def test_an_smdebug_folder_without_collections_is_not_a_trial(tmp_path):
    # A SageMaker job that never wrote its collections: smdebug itself would wait forever.
    LocalStore(tmp_path).put("index/000000000/000000000000_worker_0.json", b"{}")
    reader = open_capture(tmp_path)
    with pytest.raises(CaptureNotFoundError, match="no collections/ files"):
        reader.steps("predict")


def test_malformed_uri(tmp_path):
    with pytest.raises(CaptureConfigError, match="bucket name"):
        open_capture("s3://x")


def test_unknown_backend_is_rejected(tmp_path):
    from trustops.capture import make_writer

    with pytest.raises(CaptureConfigError, match="Choose one of: native, smdebug"):
        make_writer(tmp_path, backend="hdf5")
