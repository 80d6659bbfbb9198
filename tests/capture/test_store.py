"""Capture stores: URI parsing, atomic local writes, ordered listing, unreachable S3."""

import socket
import time

import pytest

from trustops.capture.errors import CaptureConfigError, CaptureNotFoundError, CaptureStoreUnavailableError
from trustops.capture.store import LocalStore, S3Store, open_store, parse_capture_uri, redact_url
from trustops.errors import ConfigError, ServiceError


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/capture", ("file", "/data/capture", "")),
        ("relative/folder", ("file", "relative/folder", "")),
        ("file:///data/capture", ("file", "/data/capture", "")),
        ("s3://captures", ("s3", "captures", "")),
        ("s3://captures/model-7/run", ("s3", "captures", "model-7/run")),
        ("s3://my.bucket-1/x/", ("s3", "my.bucket-1", "x")),
    ],
)
def test_parse_capture_uri(uri, expected):
    assert parse_capture_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("", "non-empty"),
        ("s3://", "bucket name"),
        ("s3://ab/x", "bucket name"),
        ("s3://Bad_Bucket/x", "bucket name"),
        ("s3://-bucket/x", "bucket name"),
        ("s3://bucket/a/../b", "prefix"),
        ("s3://bucket/a//b", "prefix"),
        ("gs://bucket/x", "Unsupported capture URI scheme 'gs'"),
        ("http://host/x", "Unsupported capture URI scheme 'http'"),
        ("file://relative/x", "absolute path"),
    ],
)
def test_malformed_uri_is_a_clear_config_error(uri, fragment):
    with pytest.raises(CaptureConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")) as info:
        open_store(uri)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


def test_local_put_get_and_listing_in_key_order(tmp_path):
    store = LocalStore(tmp_path)
    for key in ["m/b/2.json", "m/a-1.json", "m/a/1.json", "m/c.json", "other/x"]:
        store.put(key, key.encode())
    assert store.get("m/a/1.json") == b"m/a/1.json"
    assert list(store.list("m/")) == sorted(["m/b/2.json", "m/a-1.json", "m/a/1.json", "m/c.json"])
    assert list(store.list("m/", start_after="m/a/1.json")) == ["m/b/2.json", "m/c.json"]
    assert list(store.list("m/", start_after="m/a-1.json")) == ["m/a/1.json", "m/b/2.json", "m/c.json"]
    assert list(store.list("nothing/")) == []
    assert store.exists("m/c.json") and not store.exists("m/zzz")


def test_local_put_writes_parts_back_to_back(tmp_path):
    store = LocalStore(tmp_path)
    store.put("k", [b"ab", memoryview(b"cd"), bytearray(b"e")])
    assert store.get("k") == b"abcde"


def test_a_failed_local_put_leaves_nothing_behind(tmp_path):
    store = LocalStore(tmp_path)

    class Exploding:
        def __iter__(self):
            yield b"first part"
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.put("dir/key", Exploding())
    assert not store.exists("dir/key")
    assert [p.name for p in (tmp_path / "dir").iterdir()] == []


def test_temporary_files_are_never_listed(tmp_path):
    store = LocalStore(tmp_path)
    store.put("a/1", b"x")
    (tmp_path / "a" / ".1.123.tmp").write_bytes(b"half")
    assert list(store.list("a/")) == ["a/1"]


def test_missing_local_object_is_not_found(tmp_path):
    with pytest.raises(CaptureNotFoundError, match="No object 'nope'"):
        LocalStore(tmp_path).get("nope")


def test_redact_url_drops_userinfo():
    assert redact_url("http://user:pa55@host:9000/x") == "http://host:9000/x"
    assert redact_url("http://127.0.0.1:8333") == "http://127.0.0.1:8333"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_s3_endpoint_fails_after_bounded_retries(monkeypatch):
    secret = "s3cr3t-value-that-must-not-leak"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = f"http://user:{secret}@127.0.0.1:{_closed_port()}"
    store = open_store("s3://captures/run", endpoint_url=endpoint, retries=2, connect_timeout=0.5)
    assert isinstance(store, S3Store)
    assert secret not in repr(store)
    started = time.monotonic()
    with pytest.raises(CaptureStoreUnavailableError) as info:
        store.get("trustops-capture.json")
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "Could not reach the S3 endpoint http://127.0.0.1:" in message
    assert "after 2 attempt(s)" in message and "endpoint_url" in message
    assert secret not in message and "AKIDEXAMPLE" not in message
    assert isinstance(info.value, ServiceError)
