"""One storage setting for the three stores a run writes: DVC data, MLflow artifacts, captures.

The setting is a URI plus an optional S3 endpoint and region.  ``local`` (the default) keeps
everything under ``.trustops/``; ``s3://bucket/prefix`` puts, under that prefix,

* ``dvc/``: the default DVC remote (``s3``, with ``endpointurl`` and ``region``),
* ``mlartifacts/``: the artifact location of experiments trustops creates (or the tracking
  server's ``--artifacts-destination``),
* ``captures/<run name>``: the capture store of each training run,
* ``monitoring/<model>/v<version>``: each model version's monitor state (watermark, charts,
  alert conditions and outbox, the pass lease), so a monitor pass on any worker continues
  where the last one stopped.

``trustops storage use`` writes it to ``trustops-storage.json`` at the project root (no
secrets in it: credentials come from boto3's usual chain, the AWS environment variables or
profile, and are never logged), so a team commits it next to ``.dvc/config``.  The
environment variables ``TRUSTOPS_STORAGE_URI``, ``TRUSTOPS_STORAGE_ENDPOINT_URL`` and
``TRUSTOPS_STORAGE_REGION`` override the file.  ``TRUSTOPS_MONITOR_STATE_URI`` (a folder or
``s3://bucket/prefix``) puts the monitor state elsewhere than the storage setting says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from trustops.errors import ConfigError, ServiceError
from trustops.files import write_atomically
from trustops.paths import project_root, state_dir

STORAGE_FILE = "trustops-storage.json"
DVC_REMOTE = "s3"
ENV_URI, ENV_ENDPOINT, ENV_REGION = "TRUSTOPS_STORAGE_URI", "TRUSTOPS_STORAGE_ENDPOINT_URL", "TRUSTOPS_STORAGE_REGION"
ENV_MONITOR_STATE = "TRUSTOPS_MONITOR_STATE_URI"
# Attempts per request (botocore "standard" mode backs off exponentially between them).
S3_ATTEMPTS = 3


class StorageError(ServiceError):
    """A store the storage setting names cannot be used (unreachable, refused, no such bucket)."""


@dataclass(frozen=True)
class StorageSettings:
    """Where the DVC remote, the MLflow artifacts and the captures live.

    Parameters
    ----------
    uri
        ``"local"`` or ``s3://bucket/prefix``.
    endpoint_url
        The endpoint of an S3-compatible server (``http://127.0.0.1:8333``); ``None`` for AWS.
    region
        The S3 region; ``None`` leaves it to boto3 (``AWS_DEFAULT_REGION``, profile).
    """

    uri: str = "local"
    endpoint_url: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        if self.uri == "local":
            if self.endpoint_url or self.region:
                raise ConfigError("--endpoint-url and --region apply to s3:// storage only. Got storage 'local'.")
            return
        parts = urlsplit(self.uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(f"The storage URI must be 'local' or s3://bucket/prefix. Got: {self.uri!r}")
        if "@" in parts.netloc:
            raise ConfigError("The storage URI must not carry credentials; use the AWS environment variables or a profile.")
        from trustops.capture.store import parse_capture_uri

        try:
            parse_capture_uri(self.uri)  # the same bucket and prefix rules as the capture store
        except ValueError as error:
            raise ConfigError(str(error).replace("capture URI", "storage URI")) from None
        if self.endpoint_url:
            endpoint = urlsplit(self.endpoint_url)
            if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
                raise ConfigError(f"--endpoint-url must be an http(s) URL. Got: {self.endpoint_url!r}")
            if endpoint.username or endpoint.password:
                raise ConfigError("--endpoint-url must not carry credentials; use the AWS environment variables or a profile.")

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def bucket(self) -> str:
        return urlsplit(self.uri).netloc

    def location(self, *parts: str) -> str:
        """``s3://bucket/prefix/<parts...>``."""
        return "/".join([self.uri.rstrip("/"), *parts])

    @property
    def dvc_url(self) -> str:
        return self.location("dvc")

    @property
    def artifact_root(self) -> str:
        return self.location("mlartifacts")

    def capture_uri(self, run_name: str) -> str:
        return self.location("captures", run_name)

    @property
    def monitoring_root(self) -> str:
        """Where the monitor state of every model version lives: ``<uri>/monitoring``."""
        return self.location("monitoring")

    def describe(self) -> str:
        if not self.is_s3:
            return "local (.trustops/)"
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"{self.uri}{where}" + (f" (region {self.region})" if self.region else "")


def storage_file(root: Path | None = None) -> Path:
    return (root or project_root()) / STORAGE_FILE


def load_storage(root: Path | None = None) -> StorageSettings:
    """The setting: the environment variables if ``TRUSTOPS_STORAGE_URI`` is set, else the project file."""
    if uri := os.environ.get(ENV_URI):
        return StorageSettings(uri, os.environ.get(ENV_ENDPOINT) or None, os.environ.get(ENV_REGION) or None)
    path = storage_file(root)
    if not path.is_file():
        return StorageSettings()
    try:
        values = json.loads(path.read_text())
        return StorageSettings(values.get("uri", "local"), values.get("endpoint_url"), values.get("region"))
    except (json.JSONDecodeError, AttributeError, TypeError) as error:
        raise ConfigError(f"{path} is not a valid storage setting ({error}). Re-create it with `trustops storage use`.") from None


def monitoring_location(root: Path | None = None) -> Path | str:
    """Where monitor state lives: ``TRUSTOPS_MONITOR_STATE_URI``, else ``<storage uri>/monitoring`` when the storage
    is S3, else the project's ``.trustops/monitoring`` folder.

    Cheap (the storage file, no boto3): the no-op monitor pass calls it on every tick.
    """
    if override := os.environ.get(ENV_MONITOR_STATE):
        if override.startswith("s3://"):
            try:
                return StorageSettings(override).uri.rstrip("/")  # the storage URI's rules
            except ConfigError as error:
                raise ConfigError(f"{ENV_MONITOR_STATE}: {error}") from None
        if "://" in override:
            raise ConfigError(f"{ENV_MONITOR_STATE} must be a folder or s3://bucket/prefix. Got: {override!r}")
        return Path(override).expanduser().resolve()
    storage = load_storage(root)
    if storage.is_s3:
        return storage.monitoring_root
    return state_dir(root) / "monitoring"


def apply_storage_environment(root: Path | None = None) -> StorageSettings:
    """Make every S3 client in this process (and its children) follow the storage setting.

    boto3 reads ``AWS_ENDPOINT_URL_S3`` itself (so the capture store and its readers do),
    MLflow's S3 artifact client reads ``MLFLOW_S3_ENDPOINT_URL``.  Values the user already
    set win.  Retries are bounded through botocore's own variables.
    """
    storage = load_storage(root)
    if storage.is_s3:
        if storage.endpoint_url:
            os.environ.setdefault("AWS_ENDPOINT_URL_S3", storage.endpoint_url)
            os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", storage.endpoint_url)
        if storage.region:
            os.environ.setdefault("AWS_DEFAULT_REGION", storage.region)
        os.environ.setdefault("AWS_RETRY_MODE", "standard")
        os.environ.setdefault("AWS_MAX_ATTEMPTS", str(S3_ATTEMPTS))
    return storage


def save_storage(storage: StorageSettings, root: Path | None = None) -> Path:
    """Write the setting to the project file and point DVC's default remote at it."""
    root = root or project_root()
    path = storage_file(root)
    if storage.is_s3:
        write_atomically(path, json.dumps({k: v for k, v in asdict(storage).items() if v is not None}, indent=2) + "\n")
    else:
        path.unlink(missing_ok=True)
    if (root / ".dvc").is_dir():
        configure_dvc_remote(storage, root)
    return path


def configure_dvc_remote(storage: StorageSettings, root: Path) -> None:
    """``s3`` as the default DVC remote with the endpoint and region, or back to ``local``."""
    if storage.is_s3:
        _dvc(root, "remote", "add", "--default", "--force", DVC_REMOTE, storage.dvc_url)
        for option, value in (("endpointurl", storage.endpoint_url), ("region", storage.region)):
            if value:
                _dvc(root, "remote", "modify", DVC_REMOTE, option, value)
            else:
                _dvc(root, "remote", "modify", "--unset", DVC_REMOTE, option)
    else:
        _dvc(root, "remote", "default", "local")


def _dvc(root: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"`dvc {' '.join(args[:3])} ...` failed in {root}: {result.stderr.strip() or result.stdout.strip()}")


# ---------------------------------------------------------------------------------------------
# Checking the stores before anything is written


def check_s3_location(uri: str, *, stores: str, endpoint_url: str | None = None, timeout: float = 5.0) -> None:
    """Raise :class:`StorageError` unless the bucket of ``uri`` answers a listing with these credentials.

    ``stores`` names what lives there ("the MLflow artifact store and the capture store"), so
    the message says which store failed and what to check.  At most :data:`S3_ATTEMPTS`
    attempts, each with a ``timeout``-second connect and read limit.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, PartialCredentialsError

    from trustops.capture.store import redact_url

    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"}, connect_timeout=timeout, read_timeout=timeout,
        s3={"addressing_style": "path"} if endpoint_url else {},
    )  # fmt: skip
    client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
    where = f"{uri} (endpoint {redact_url(client.meta.endpoint_url)})"
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket" or status == 404:
            raise StorageError(f"{_cap(stores)} at {where}: the bucket {bucket!r} does not exist. Create it, or point the "
                               "storage setting at an existing bucket (`trustops storage use s3://BUCKET/PREFIX`).") from None
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken") or status == 403:
            raise StorageError(f"{_cap(stores)} at {where}: access refused ({code}). Check the credentials boto3 picks up "
                               "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and that they may read and "
                               f"write bucket {bucket!r}.") from None
        raise StorageError(f"{_cap(stores)} at {where}: the S3 request failed with {code} (HTTP {status}).") from None
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise StorageError(f"{_cap(stores)} at {where}: no usable AWS credentials ({type(error).__name__}). Set "
                           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE.") from None
    except EndpointConnectionError:
        raise StorageError(f"{_cap(stores)} at {where}: the endpoint did not answer after {S3_ATTEMPTS} attempts. Check "
                           "that the S3 server is running there and that the storage setting's --endpoint-url "
                           "(or AWS_ENDPOINT_URL_S3) names it.") from None
    except BotoCoreError as error:
        raise StorageError(f"{_cap(stores)} at {where}: the S3 request failed ({type(error).__name__}) after "
                           f"{S3_ATTEMPTS} attempts. Check the endpoint and the network.") from None


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def check_stores(stores: list[tuple[str, str | None, str | None]]) -> None:
    """Check every S3 location among ``(store name, uri, endpoint)``; stores sharing a bucket and endpoint are checked once."""
    groups: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for store, uri, endpoint in stores:
        if uri and uri.startswith("s3://"):
            groups.setdefault((urlsplit(uri).netloc, endpoint), []).append((store, uri))
    for (_, endpoint), members in groups.items():
        names = [name for name, _ in members]
        named = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        check_s3_location(members[0][1], stores=named, endpoint_url=endpoint)
