"""Where a run's inputs came from: the data's DVC hash and the code's git commit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml


def file_md5(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """MD5 of a file's bytes: the hash DVC 3 records for a file output."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def dvc_lock_hashes(root: Path) -> dict[str, str]:
    """``{output path: md5}`` for every output recorded in ``<root>/dvc.lock``."""
    lock_file = root / "dvc.lock"
    if not lock_file.is_file():
        return {}
    lock = yaml.safe_load(lock_file.read_text()) or {}
    hashes = {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if "md5" in out:
                hashes[str((root / out["path"]).resolve())] = out["md5"]
    return hashes
