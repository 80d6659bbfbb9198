"""Where a model version's monitor state lives: a local folder or ``s3://bucket/prefix``, behind one small interface.

The monitor keeps a handful of small objects per model version (``watermark.json``,
``charts/<monitor>.json``, ``alerts/state.json``, ``alerts/pass.json``, ``alerts/outbox.jsonl``,
``alerts/delivered.jsonl``) and one lock for a pass (``run.lock``).  A :class:`StateStore` gives
each object a *version token* when it is read, and every write that matters is a
compare-and-set against it:

* ``write(key, data, expect=None)`` creates the object only if it is absent;
* ``write(key, data, expect=token)`` replaces it only if it is unchanged since it was read;
* a write that loses raises :class:`StateConflict` and changes nothing.

So two monitor passes on two machines cannot both move a watermark forward: one's write
loses.  ``append`` adds lines to a log (the alert outbox) without ever losing a line another
writer appended, and can skip a line a predicate says is already there (an alert id), in the
same atomic step.  ``lease`` holds the lock of one pass.

Two implementations:

:class:`LocalStateStore`
    A folder, in the layout earlier releases wrote (so existing state keeps working).  A
    replacement is a temporary file, fsync and rename; compare-and-set holds an ``flock`` on
    the object's folder while it compares and renames; the lease is an ``flock`` on
    ``run.lock``, which the kernel releases when the process dies.
:class:`S3StateStore`
    Objects under ``s3://bucket/prefix``.  Compare-and-set is S3's conditional write
    (``PutObject`` with ``If-None-Match: *`` or ``If-Match: <ETag>``), which AWS S3, MinIO and
    SeaweedFS honour (SeaweedFS atomically under concurrent writers only since its fix of
    issue 8800, March 2026; the contract tests race writers on the installed 4.48).  An
    append is a compare-and-set loop on the whole object.  The lease is an object created with
    ``If-None-Match: *`` and renewed by a background thread; a holder that died leaves it, and
    it expires ``lease_seconds`` after its last renewal, judged on the *server's* clock (the
    object's ``Last-Modified`` against the response's ``Date``), so clocks of the workers
    need not agree.

:func:`open_state` turns a location (a folder, an ``s3://`` URI, or either as a ``Path``) into
a store.  Only an S3 location imports boto3.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Final

from trustops.errors import ConfigError, ServiceError, TrustopsError
from trustops.files import fsync_folder, write_atomically

try:
    import fcntl
except ImportError:  # not POSIX: local passes are then not protected from each other
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_KEY = "run.lock"
#: How long an S3 lease lasts after its last renewal; the holder renews it every third of that.
LEASE_SECONDS = 300.0
#: Attempts of an S3 append's compare-and-set loop before it gives up (each loses only to another writer).
APPEND_ATTEMPTS = 25


class MonitorRunInProgress(TrustopsError, RuntimeError):
    """Another monitor run holds the lock for this model and capture store: this one is skipped."""

    exit_code = 3  # a skip, not a failure: cron mail and schedulers can tell the two apart


class StateConflict(TrustopsError, RuntimeError):
    """A compare-and-set write found the object changed, present or gone since it was read; nothing was written."""


class StateStoreUnavailable(ServiceError):
    """The state store could not be reached or refused a request."""


class _Any:
    def __repr__(self) -> str:
        return "ANY"


#: ``expect=ANY``: write whatever is there (no compare-and-set).
ANY: Final = _Any()


@dataclass(frozen=True)
class Stored:
    """An object's bytes and its version token (opaque; compare it only with another token of the same store)."""

    data: bytes
    version: str


class StateStore(abc.ABC):
    """The objects of one monitor state, by key (``"watermark.json"``, ``"charts/mmd.json"``)."""

    location: str  # a folder path or s3://bucket/prefix, for messages and for open_state()

    def __str__(self) -> str:
        return self.location

    @abc.abstractmethod
    def where(self, key: str) -> str:
        """The object's full name, for messages: a file path or an ``s3://`` URI."""

    @abc.abstractmethod
    def child(self, name: str) -> StateStore:
        """The store of the sub-folder (or sub-prefix) ``name``."""

    @abc.abstractmethod
    def read(self, key: str) -> Stored | None:
        """The object and its version, or ``None`` when absent."""

    @abc.abstractmethod
    def write(self, key: str, data: bytes, *, expect: str | None | _Any = ANY) -> str:
        """Write ``data``; returns its version.

        ``expect=None``: only if absent; a version: only if unchanged since that version was
        read; :data:`ANY`: unconditionally.  A failed condition raises :class:`StateConflict`.
        """

    @abc.abstractmethod
    def delete(self, key: str, *, expect: str | _Any = ANY) -> bool:
        """Delete the object (only if at version ``expect``); ``False`` when it was absent."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """The keys under ``prefix``, sorted."""

    @abc.abstractmethod
    def append(self, key: str, payload: bytes, *, unless: Callable[[bytes], bool] | None = None) -> bool:
        """Append ``payload`` (whole lines) to the object, creating it; durable when this returns.

        ``unless(current bytes)`` true: append nothing and return ``False``; judged in the same
        atomic step as the append, so a line is never written twice by two racing writers.
        """

    @abc.abstractmethod
    def copy(self, key: str, to: str) -> None:
        """Copy the object to the key ``to`` (to set a damaged object aside before it is replaced)."""

    @abc.abstractmethod
    def lease(self, key: str = LOCK_KEY) -> contextlib.AbstractContextManager[None]:
        """Hold the lock ``key`` for a pass; :class:`MonitorRunInProgress` at once when another holds it."""

    @abc.abstractmethod
    def serialized(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Wait for the short lock ``key`` around a read-modify-write (a no-op where every write is compare-and-set)."""

    def local_folder(self) -> Path | None:
        """The folder holding the objects when they are local files, else ``None``."""
        return None


# ---------------------------------------------------------------------------------------------
# A local folder


def _digest(data: bytes) -> str:
    # The content itself is the version: equal bytes are an equal state, so there is no ABA case.
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An ``flock`` on the folder itself: adds no file to the layout, and dies with the process."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class LocalStateStore(StateStore):
    """Objects as files under ``folder`` (created on the first write)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.location = str(self.folder)

    def __repr__(self) -> str:
        return f"LocalStateStore({self.location!r})"

    def _path(self, key: str) -> Path:
        return self.folder / key

    def where(self, key: str) -> str:
        return str(self._path(key))

    def child(self, name: str) -> LocalStateStore:
        return LocalStateStore(self.folder / name)

    def local_folder(self) -> Path:
        return self.folder

    def read(self, key: str) -> Stored | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return Stored(data, _digest(data))

    def _check(self, path: Path, expect: str | None | _Any) -> None:
        if expect is ANY:
            return
        try:
            current = _digest(path.read_bytes())
        except FileNotFoundError:
            current = None
        if current != expect:
            state = "absent" if current is None else "changed"
            raise StateConflict(f"{path} is {state} since it was read (expected {'absence' if expect is None else 'its version'}); "
                                "another writer got there first, nothing was written.")

    def write(self, key: str, data: bytes, *, expect: str | None | _Any = ANY) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _folder_lock(path.parent):
            self._check(path, expect)
            write_atomically(path, data)
        return _digest(data)

    def delete(self, key: str, *, expect: str | _Any = ANY) -> bool:
        path = self._path(key)
        if not path.parent.is_dir():
            return False
        with _folder_lock(path.parent):
            if not path.exists():
                return False
            self._check(path, expect)
            path.unlink()
            fsync_folder(path.parent)
        return True

    def list(self, prefix: str = "") -> list[str]:
        base = self.folder / prefix.rpartition("/")[0]  # walk only the folder the prefix names
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            # Dot-files are this store's temporary files and lock files, never objects.
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.folder).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def append(self, key: str, payload: bytes, *, unless: Callable[[bytes], bool] | None = None) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        with _folder_lock(path.parent), open(path, "ab+") as file:
            file.seek(0)
            if unless is not None and unless(file.read()):
                return False
            file.seek(0, os.SEEK_END)
            if file.tell() > 0:
                _set_aside_torn_tail(path, file)
                file.seek(0, os.SEEK_END)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        if created:
            fsync_folder(path.parent)
        return True

    def copy(self, key: str, to: str) -> None:
        # A hard link: the whole file stays under the new name, atomically, before the old name is replaced.
        os.link(self._path(key), self._path(to))

    def lease(self, key: str = LOCK_KEY) -> contextlib.AbstractContextManager[None]:
        return _file_lease(self._path(key))

    def serialized(self, key: str) -> contextlib.AbstractContextManager[None]:
        return _file_lock(self._path(key))


def _set_aside_torn_tail(path: Path, file: Any) -> None:
    """Move an unterminated last line (a write torn by a crash) to ``<path>.damaged``, then cut it off."""
    file.seek(-1, os.SEEK_END)
    if file.read(1) == b"\n":
        return
    file.seek(0)
    data = file.read()  # only after a crash: reading the whole file once is fine
    cut = data.rfind(b"\n") + 1
    damaged = path.with_name(path.name + ".damaged")
    with open(damaged, "ab") as kept:
        kept.write(data[cut:] + b"\n")
        kept.flush()
        os.fsync(kept.fileno())
    file.truncate(cut)
    logger.warning("The last line of %s was torn by a crash; it is kept in %s and was not read", path, damaged)


@contextlib.contextmanager
def _file_lease(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MonitorRunInProgress(
                    f"Another monitor run is in progress (lock {lock_path}); this run is skipped. "
                    "Schedules never start two runs at once; if no run is active, the lock is released automatically."
                ) from None
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# S3


_clients: dict[str | None, Any] = {}
_clients_lock = threading.Lock()


def _s3_client(endpoint_url: str | None) -> Any:
    """One client per endpoint and process (boto3 clients are thread-safe; making one costs ~0.2 s)."""
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    with _clients_lock:
        if endpoint_url not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5.0, read_timeout=30.0,
                # S3-compatible servers are addressed by host:port, where bucket.host does not resolve.
                s3={"addressing_style": "path"} if endpoint_url else {},
            )  # fmt: skip
            _clients[endpoint_url] = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        return _clients[endpoint_url]


class _Refused(Exception):
    """A conditional request the server refused: 412 (the condition failed) or 409 (a concurrent write)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class S3StateStore(StateStore):
    """Objects under ``s3://bucket/prefix``; credentials and endpoint from boto3's usual chain.

    Parameters
    ----------
    uri
        ``s3://bucket/prefix``.
    endpoint_url
        An S3-compatible server; ``None`` follows ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``
        (which every trustops command sets from the storage setting), else AWS.
    lease_seconds
        How long a pass's lease outlives its last renewal (a holder that died blocks that long).
    """

    def __init__(self, uri: str, *, endpoint_url: str | None = None, lease_seconds: float = LEASE_SECONDS) -> None:
        match = re.fullmatch(r"s3:/+([^/]+)/*(.*?)/*", uri)
        if not match:
            raise ConfigError(f"An S3 monitor state location must be s3://bucket/prefix. Got: {uri!r}")
        self.bucket, self.prefix = match.group(1), match.group(2)
        self.location = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint_url = endpoint_url
        self.lease_seconds = float(lease_seconds)
        self._client = _s3_client(endpoint_url)

    def __repr__(self) -> str:
        return f"S3StateStore({self.location!r})"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def where(self, key: str) -> str:
        return f"{self.location}/{key}"

    def child(self, name: str) -> S3StateStore:
        return S3StateStore(self.where(name), endpoint_url=self.endpoint_url, lease_seconds=self.lease_seconds)

    def _call(self, operation: str, *, conditional: bool = False, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if conditional and (status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")):
                raise _Refused(409 if status == 409 or code == "ConditionalRequestConflict" else 412) from None
            if code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket"):
                raise FileNotFoundError(self.where(kwargs.get("Key", "")[len(self.prefix) + 1 if self.prefix else 0:])) from None
            hint = (" Check the credentials boto3 picks up (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE)."
                    if status == 403 else " Check that the bucket exists." if code == "NoSuchBucket" else "")
            raise StateStoreUnavailable(f"The monitor state store {self.location} refused {operation} ({code}, HTTP {status})."
                                        f"{hint}") from None
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise StateStoreUnavailable(
                f"No usable AWS credentials for the monitor state store {self.location} ({type(error).__name__}). Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE."
            ) from None
        except BotoCoreError as error:
            raise StateStoreUnavailable(
                f"The monitor state store {self.location} could not be reached ({type(error).__name__}: {error}). Check the "
                "endpoint (the storage setting's --endpoint-url, or AWS_ENDPOINT_URL_S3) and the network."
            ) from None

    def read(self, key: str) -> Stored | None:
        try:
            answer = self._call("get_object", Key=self._key(key))
        except FileNotFoundError:
            return None
        return Stored(answer["Body"].read(), answer["ETag"])

    def _put(self, key: str, data: bytes, expect: str | None | _Any) -> str:
        """One conditional put; :class:`_Refused` when its condition fails.

        The version is the ETag (the MD5 of a single-part object): equal bytes, equal version,
        which is harmless here because equal bytes are an equal state.  botocore retries a
        request that timed out; if the first attempt had in fact been stored, the retry finds
        its own write and is refused, so a write can be reported lost that won.  That errs on
        the safe side (a pass that stops with exit 3 though it moved the watermark, after its
        alerts were written), never the other way.
        """
        condition = {} if expect is ANY else {"IfNoneMatch": "*"} if expect is None else {"IfMatch": expect}
        # 409 ConditionalRequestConflict: a concurrent write to the key was in flight; S3 asks for a retry,
        # and the retry's condition is judged again against whatever won.
        for attempt in range(5):
            try:
                return self._call("put_object", conditional=bool(condition), Key=self._key(key), Body=data, **condition)["ETag"]
            except FileNotFoundError:  # If-Match on an object that is gone (AWS answers 404 there)
                raise _Refused(412) from None
            except _Refused as refused:
                if refused.status != 409 or attempt == 4:
                    raise
                time.sleep(0.02 * (attempt + 1) * (1 + random.random()))
        raise AssertionError("unreachable")

    def write(self, key: str, data: bytes, *, expect: str | None | _Any = ANY) -> str:
        try:
            return self._put(key, data, expect)
        except _Refused:
            raise StateConflict(f"{self.where(key)} is {'present' if expect is None else 'changed'} since it was read; another "
                                "writer got there first, nothing was written.") from None

    def delete(self, key: str, *, expect: str | _Any = ANY) -> bool:
        try:
            self._call("head_object", Key=self._key(key))
        except FileNotFoundError:
            return False
        condition = {} if expect is ANY else {"IfMatch": expect}
        try:
            self._call("delete_object", conditional=bool(condition), Key=self._key(key), **condition)
        except _Refused:
            raise StateConflict(f"{self.where(key)} changed since it was read; it was not deleted.") from None
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        kwargs: dict[str, Any] = {"Prefix": base + prefix, "MaxKeys": 1000}
        keys = []
        while True:
            page = self._call("list_objects_v2", **kwargs)
            keys.extend(item["Key"][len(base):] for item in page.get("Contents", ()))
            if not page.get("IsTruncated"):
                return sorted(keys)
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def append(self, key: str, payload: bytes, *, unless: Callable[[bytes], bool] | None = None) -> bool:
        # S3 has no append: read, add, and put back only if nobody wrote in between.  A whole
        # object is written or not at all, so there is never a torn line to set aside.
        for attempt in range(APPEND_ATTEMPTS):
            current = self.read(key)
            data = b"" if current is None else current.data
            if unless is not None and unless(data):
                return False
            try:
                self._put(key, data + payload, None if current is None else current.version)
                return True
            except _Refused:
                time.sleep(0.01 * min(attempt + 1, 10) * (1 + random.random()))
        raise StateConflict(f"Could not append to {self.where(key)}: it changed under each of {APPEND_ATTEMPTS} attempts. "
                            "Nothing was lost; run the pass again.")

    def copy(self, key: str, to: str) -> None:
        self._call("copy_object", Key=self._key(to), CopySource={"Bucket": self.bucket, "Key": self._key(key)})

    def serialized(self, key: str) -> contextlib.AbstractContextManager[None]:
        # Every write to this store is compare-and-set (or a compare-and-set append), so there is
        # no read-modify-write a short lock would have to cover.
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def lease(self, key: str = LOCK_KEY) -> Iterator[None]:
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        held = {"version": self._take_lease(key, holder), "renewals": 0}
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(key, holder, held, stop), daemon=True,
                                   name=f"trustops-lease-{key}")
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=30)
            try:
                self.delete(key, expect=held["version"])
            except StateConflict:  # taken over after it expired: it is the new holder's now
                logger.warning("The monitor lease %s was taken over by another pass before this one released it",
                               self.where(key))
            except StateStoreUnavailable as error:  # it expires by itself
                logger.warning("Could not release the monitor lease %s (%s); it expires %.0f s after its last renewal",
                               self.where(key), error, self.lease_seconds)

    def _lease_body(self, holder: str, renewals: int) -> bytes:
        return json.dumps({"holder": holder, "lease_seconds": self.lease_seconds, "renewals": renewals}).encode()

    def _take_lease(self, key: str, holder: str) -> str:
        try:
            return self._put(key, self._lease_body(holder, 0), None)
        except _Refused:
            pass
        answer = None
        with contextlib.suppress(FileNotFoundError):
            answer = self._call("get_object", Key=self._key(key))
        if answer is None:  # released between the two requests: try once more
            try:
                return self._put(key, self._lease_body(holder, 0), None)
            except _Refused:
                raise self._held(key, {}, None) from None
        body = answer["Body"].read()
        try:
            current = json.loads(body)
            seconds = float(current.get("lease_seconds", self.lease_seconds))
        except (ValueError, TypeError, AttributeError):
            current, seconds = {}, self.lease_seconds  # damaged: it still expires
        # The server's clock on both sides: the object's Last-Modified and the response's Date.
        server_now = parsedate_to_datetime(answer["ResponseMetadata"]["HTTPHeaders"]["date"])
        age = (server_now - answer["LastModified"]).total_seconds()
        if age < seconds:
            raise self._held(key, current, seconds - age)
        try:
            version = self._put(key, self._lease_body(holder, 0), answer["ETag"])
        except _Refused:  # another pass took the expired lease first
            raise self._held(key, {}, None) from None
        logger.warning("Took over the monitor lease %s from %s: not renewed for %.0f s (it lasts %.0f s)",
                       self.where(key), current.get("holder", "an unknown holder"), age, seconds)
        return version

    def _held(self, key: str, current: dict, left: float | None) -> MonitorRunInProgress:
        who = f" by {current['holder']}" if current.get("holder") else ""
        expires = f"; it expires in {left:.0f} s unless its holder renews it" if left is not None else ""
        return MonitorRunInProgress(
            f"Another monitor run is in progress (lease {self.where(key)} held{who}{expires}); this run is skipped. "
            f"A holder that died leaves the lease until it expires; to clear it at once: aws s3 rm {self.where(key)}."
        )

    def _renew(self, key: str, holder: str, held: dict, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            held["renewals"] += 1
            try:
                held["version"] = self._put(key, self._lease_body(holder, held["renewals"]), held["version"])
            except _Refused:
                # Not renewed in time and taken over: the watermark's compare-and-set still keeps
                # the two passes from both moving it.
                logger.error("Lost the monitor lease %s to another pass", self.where(key))
                return
            except (StateStoreUnavailable, FileNotFoundError) as error:
                logger.warning("Could not renew the monitor lease %s (%s); trying again", self.where(key), error)


# ---------------------------------------------------------------------------------------------


def open_state(location: str | os.PathLike | StateStore) -> StateStore:
    """The store at ``location``: a :class:`StateStore` as it is, ``s3://bucket/prefix``, or a folder.

    ``Path("s3://bucket/x")`` reads ``s3:/bucket/x`` (pathlib folds the double slash); the ZenML
    steps hand the state location on as such a ``Path``, so that form means S3 too.
    """
    if isinstance(location, StateStore):
        return location
    text = os.fspath(location)
    if re.match(r"s3:/", text):
        return S3StateStore(text)
    return LocalStateStore(text)


def split_location(location: str | os.PathLike) -> tuple[StateStore, str]:
    """``(store of the parent, key)`` for a path to one object, e.g. ``state / "watermark.json"``."""
    text = os.fspath(location).rstrip("/")
    parent, _, name = text.rpartition("/")
    return open_state(parent or "."), name
