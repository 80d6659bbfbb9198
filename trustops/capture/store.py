"""Capture stores: where captured chunks live, addressed by a URI.

A store is a flat key -> bytes space with the three operations capture needs:

* ``put`` is complete-or-absent: a local store writes a temporary file and renames it
  into place; an S3 store does a single ``PutObject``.  A reader therefore never sees a
  half-written object.  (Which objects make a *step* visible is up to the format: both
  formats write a step's data before the object that commits it.)
* ``list(prefix, start_after=key)`` returns keys in lexical order after ``key``; on S3
  this is ``ListObjectsV2(StartAfter=...)``, so "what arrived since step N" costs one
  request per 1000 new keys, not a listing of all history.
* ``get`` reads one object.
* ``create`` is ``put`` only if the key does not exist yet, decided atomically by the store
  (a hard link on a local folder, ``PutObject`` with ``If-None-Match: *`` on S3): of several
  writers creating one key, exactly one succeeds.  Step leases rely on it.

S3 credentials come from boto3's usual chain (environment variables, profile, instance
role); the store never holds them itself, and they appear in no repr, log line or error.
"""

from __future__ import annotations

import abc
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from trustops.capture.errors import CaptureConfigError, CaptureNotFoundError, CaptureStoreUnavailableError

Buffer = bytes | bytearray | memoryview

# AWS bucket naming rules: 3-63 characters of lowercase letters, digits, dots and hyphens,
# starting and ending with a letter or digit.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _as_parts(data: Buffer | Sequence[Buffer]) -> Sequence[Buffer]:
    return [data] if isinstance(data, (bytes, bytearray, memoryview)) else data


class CaptureStore(abc.ABC):
    """A key -> bytes store with atomic puts and ordered listing."""

    uri: str

    @abc.abstractmethod
    def put(self, key: str, data: Buffer | Sequence[Buffer]) -> None:
        """Store ``data`` (one buffer, or parts written back to back) under ``key``, atomically."""

    @abc.abstractmethod
    def put_file(self, key: str, path: str | os.PathLike) -> None:
        """Move the local file ``path`` into the store under ``key``, atomically; ``path`` is consumed."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; :class:`CaptureNotFoundError` when there are none."""

    @abc.abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if nothing is stored there; ``False`` when something is."""

    @abc.abstractmethod
    def list(self, prefix: str, *, start_after: str | None = None) -> Iterator[str]:
        """Keys under ``prefix`` (which ends with ``/`` or is empty), in lexical order, after ``start_after``."""

    def exists(self, key: str) -> bool:
        try:
            self.get(key)
        except CaptureNotFoundError:
            return False
        return True

    @property
    def local_root(self) -> Path | None:
        """The folder holding the keys, for a local store; ``None`` for a remote one."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class LocalStore(CaptureStore):
    """Keys are files under ``root``; names starting with ``.`` (temporary files) are never listed."""

    def __init__(self, root: str | os.PathLike, *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        self.fsync = fsync

    @property
    def local_root(self) -> Path:
        return self.root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _temp_path(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.parent / f".{final.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp"

    def put(self, key: str, data: Buffer | Sequence[Buffer]) -> None:
        final = self._path(key)
        temp = self._temp_path(final)
        try:
            with open(temp, "wb") as f:
                for part in _as_parts(data):
                    f.write(part)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def create(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        temp = self._temp_path(final)
        try:
            with open(temp, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            # link() fails when the name exists, and publishes the complete file in one step
            # (O_EXCL alone would let a reader see the file before its bytes).
            os.link(temp, final)
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)
        return True

    def put_file(self, key: str, path: str | os.PathLike) -> None:
        final = self._path(key)
        temp = self._temp_path(final)
        # A move within one file system is a rename; across file systems it copies, so the
        # copy goes to a temporary name first and is renamed into place only when complete.
        shutil.move(os.fspath(path), temp)
        os.replace(temp, final)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise CaptureNotFoundError(f"No object {key!r} in the capture store {self.uri}.") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str, *, start_after: str | None = None) -> Iterator[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return iter(())
        return self._walk(base, prefix, start_after)

    def _walk(self, folder: Path, key_prefix: str, start_after: str | None) -> Iterator[str]:
        try:
            entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
        except FileNotFoundError:
            return
        # Sort as the keys sort: a folder "a" holds keys "a/...", which sort after a file "a-1".
        keyed = sorted(((e.name + "/" if e.is_dir() else e.name), e) for e in entries)
        for name, entry in keyed:
            key = key_prefix + name
            if entry.is_dir():
                # Every key under this folder starts with `key`; skip it when all of them sort
                # before start_after (the cheap "steps after N" listing relies on this).
                if start_after is not None and key < start_after and not start_after.startswith(key):
                    continue
                yield from self._walk(Path(entry.path), key, start_after)
            elif start_after is None or key > start_after:
                yield key


def redact_url(url: str | None) -> str | None:
    """``url`` without any user:password part, safe to show in messages."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class _Refused(NamedTuple):
    """A conditional request the server refused: 412 (the key exists) or 409 (a concurrent write)."""

    status: int | None


class S3Store(CaptureStore):
    """Keys are objects under ``s3://bucket/prefix`` on AWS S3 or an S3-compatible server.

    Parameters
    ----------
    bucket, prefix
        Where the capture lives; ``prefix`` may be empty.
    endpoint_url
        The S3 endpoint, e.g. ``http://127.0.0.1:8333`` for a SeaweedFS server. ``None`` uses
        boto3's resolution (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else AWS).
    retries
        Total attempts per request (botocore "standard" retry mode, exponential back-off).
    connect_timeout, read_timeout
        Seconds, per attempt.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        retries: int = 3,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        if retries < 1:
            raise CaptureConfigError(f"`retries` must be >= 1. Got: {retries}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.retries = retries
        custom_endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # S3-compatible servers are addressed by host:port, where virtual-hosted bucket
            # names (bucket.host) do not resolve.
            s3={"addressing_style": "path"} if custom_endpoint else {},
        )
        # A session of its own: the default session is not thread-safe, and the writer thread
        # and the caller's thread both use this client.
        self._client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        self.endpoint_url = redact_url(self._client.meta.endpoint_url)

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r}, endpoint_url={self.endpoint_url!r})"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, operation: str, *, _precondition_ok: bool = False, **kwargs: Any) -> Any:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError as BotoConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **kwargs)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", "Unknown"))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if _precondition_ok and (code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)):
                return _Refused(status)
            if code in ("NoSuchBucket",):
                raise CaptureNotFoundError(
                    f"The bucket {self.bucket!r} does not exist at the S3 endpoint {self.endpoint_url} (for {self.uri})."
                ) from None
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                raise CaptureNotFoundError(f"No object {kwargs.get('Key')!r} at {self.uri} ({self.endpoint_url}).") from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status == 403:
                raise CaptureStoreUnavailableError(
                    f"The S3 endpoint {self.endpoint_url} refused {operation} on {self.uri} ({code}). "
                    "Check the credentials boto3 picks up (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) "
                    "and that they may access the bucket."
                ) from None
            raise CaptureStoreUnavailableError(
                f"S3 request {operation} on {self.uri} at {self.endpoint_url} failed with {code} (HTTP {status})."
            ) from None
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise CaptureStoreUnavailableError(
                f"No usable AWS credentials for {self.uri} ({type(e).__name__}). Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE."
            ) from None
        except BotoConnectionError as e:
            raise CaptureStoreUnavailableError(
                f"Could not reach the S3 endpoint {self.endpoint_url} for {self.uri} after {self.retries} attempt(s) "
                f"({type(e).__name__}). Check that the server is running and listening there, and that endpoint_url "
                "(or AWS_ENDPOINT_URL_S3) names it."
            ) from None
        except BotoCoreError as e:
            raise CaptureStoreUnavailableError(
                f"S3 request {operation} on {self.uri} at {self.endpoint_url} failed ({type(e).__name__})."
            ) from None

    def put(self, key: str, data: Buffer | Sequence[Buffer]) -> None:
        parts = _as_parts(data)
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._call("put_object", Key=self._key(key), Body=bytes(body) if isinstance(body, memoryview) else body)

    def put_file(self, key: str, path: str | os.PathLike) -> None:
        self.put(key, Path(path).read_bytes())
        os.unlink(path)

    def get(self, key: str) -> bytes:
        return self._call("get_object", Key=self._key(key))["Body"].read()

    def create(self, key: str, data: bytes) -> bool:
        for _ in range(self.retries):
            answer = self._call("put_object", _precondition_ok=True, Key=self._key(key), Body=bytes(data), IfNoneMatch="*")
            if not isinstance(answer, _Refused):
                return True
            if answer.status != 409:
                return False
            # 409 ConditionalRequestConflict: a concurrent write to the key; S3 asks for a retry.
            time.sleep(0.05)
        return False

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._key(key))
        except CaptureNotFoundError:
            return False
        return True

    def list(self, prefix: str, *, start_after: str | None = None) -> Iterator[str]:
        full_prefix = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        kwargs: dict[str, Any] = {"Prefix": full_prefix, "MaxKeys": 1000}
        if start_after is not None:
            kwargs["StartAfter"] = self._key(start_after)
        while True:
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", ()):
                yield item["Key"][strip:]
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
            kwargs.pop("StartAfter", None)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (for tests and first-time set-up)."""
        try:
            self._call("head_bucket")
        except CaptureNotFoundError:
            self._call("create_bucket")


def parse_capture_uri(uri: str | os.PathLike) -> tuple[str, str, str]:
    """Split a capture URI into ``(scheme, location, prefix)``.

    ``("file", "/abs/folder", "")`` for a local folder (a plain path or ``file://``), and
    ``("s3", bucket, prefix)`` for ``s3://bucket/prefix``.
    """
    if isinstance(uri, os.PathLike):
        return "file", os.fspath(uri), ""
    if not isinstance(uri, str) or not uri.strip():
        raise CaptureConfigError(f"A capture URI must be a non-empty string or path. Got: {uri!r}")
    text = uri.strip()
    if "://" not in text:
        return "file", text, ""
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme == "file":
        if not rest.startswith("/"):
            raise CaptureConfigError(f"A file:// capture URI needs an absolute path (file:///data/capture). Got: {uri!r}")
        return "file", rest, ""
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise CaptureConfigError(
                f"Malformed capture URI {uri!r}: the bucket name must be 3-63 lowercase letters, digits, dots or "
                f"hyphens, starting and ending with a letter or digit (s3://bucket/prefix). Got bucket {bucket!r}."
            )
        parts = prefix.strip("/").split("/") if prefix.strip("/") else []
        if any(part in ("", ".", "..") for part in parts):
            raise CaptureConfigError(f"Malformed capture URI {uri!r}: the prefix must not contain empty, '.' or '..' parts.")
        return "s3", bucket, prefix.strip("/")
    raise CaptureConfigError(
        f"Unsupported capture URI scheme {scheme!r} in {uri!r}. Use a local folder (a path or file:///path) or s3://bucket/prefix."
    )


def open_store(
    uri: str | os.PathLike | CaptureStore,
    *,
    endpoint_url: str | None = None,
    retries: int = 3,
    connect_timeout: float = 3.0,
    read_timeout: float = 30.0,
    fsync: bool = True,
) -> CaptureStore:
    """The capture store a URI names (a store passes through unchanged).

    Parameters
    ----------
    uri
        A local folder (path or ``file:///abs/path``) or ``s3://bucket/prefix``.
    endpoint_url
        S3 only: the endpoint of an S3-compatible server.
    retries, connect_timeout, read_timeout
        S3 only: bounded retries before :class:`CaptureStoreUnavailableError`.
    fsync
        Local only: flush each object to disk before it is renamed into place.
    """
    if isinstance(uri, CaptureStore):
        return uri
    scheme, location, prefix = parse_capture_uri(uri)
    if scheme == "file":
        return LocalStore(location, fsync=fsync)
    return S3Store(
        location, prefix, endpoint_url=endpoint_url, retries=retries, connect_timeout=connect_timeout, read_timeout=read_timeout
    )
