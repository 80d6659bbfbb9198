"""Which model version a name means, and where it captures, read without importing MLflow.

A scheduled ``trustops monitor`` usually finds nothing new, and then its whole cost is start-up:
importing MLflow and opening its SQLite store take about 9 s of a 12 s no-op pass on 2 cores
(``bench/bench_cli_latency.py``).  To decide "nothing new" the pass needs only the version's
number and its ``capture_uri`` tag, so for a local SQLite store this module reads them with the
standard library, read-only, from MLflow's registry tables (``model_versions``,
``model_version_tags``, ``registered_model_aliases``: unchanged since MLflow 2).

It answers only when the answer is certain and otherwise returns ``None``, and the caller
resolves through MLflow (:func:`trustops.registry.resolve_registered_model`), which also gives
the errors users read: any other store, a schema it does not know, a name in several
workspaces, a version or alias that does not exist.  It applies the registry's rule for which
versions are visible (a version is ready once its training run completed, see
:data:`READY_TAG`), and the pass that finds work resolves through MLflow again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

#: The model-version tag that makes a version visible to ``latest`` and aliases (set when its training run completed).
READY_TAG = ("trustops.status", "ready")


@dataclass(frozen=True)
class IndexedVersion:
    name: str
    version: int
    capture_uri: str | None


def split_model_reference(name: str, version: str = "latest") -> tuple[str, str]:
    """``NAME@ALIAS`` to ``(NAME, "@ALIAS")``; anything else unchanged."""
    if "@" in name:
        base, _, alias = name.partition("@")
        return base, f"@{alias}"
    return name, version


def peek_model_version(tracking_uri: str, name: str, version: str = "latest") -> IndexedVersion | None:
    """The version ``name``/``version`` resolves to and its capture store, or ``None`` when unsure."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    if not database.is_file():
        return None
    name, version = split_model_reference(name, version)
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0) as connection:
            return _lookup(connection, name, version)
    except sqlite3.Error:
        return None  # locked, another schema, not MLflow's: MLflow itself will say what is wrong


def _lookup(connection: sqlite3.Connection, name: str, version: str) -> IndexedVersion | None:
    workspaces = connection.execute(
        "SELECT COUNT(DISTINCT workspace) FROM model_versions WHERE name = ?", (name,)).fetchone()[0] \
        if _has_column(connection, "model_versions", "workspace") else 1
    if workspaces != 1:
        return None
    if version.startswith("@"):
        row = connection.execute(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", (name, version[1:])).fetchone()
        if row is None:
            return None
        number = int(row[0])
    elif version == "latest":
        row = connection.execute(
            "SELECT MAX(v.version) FROM model_versions v JOIN model_version_tags t ON t.name = v.name AND t.version = v.version "
            "WHERE v.name = ? AND t.key = ? AND t.value = ?", (name, *READY_TAG)).fetchone()
        if row is None or row[0] is None:
            return None
        number = int(row[0])
        newer = connection.execute(
            "SELECT COUNT(*) FROM model_versions v WHERE v.name = ? AND v.version > ? AND NOT EXISTS "
            "(SELECT 1 FROM model_version_tags t WHERE t.name = v.name AND t.version = v.version AND t.key = ?)",
            (name, number, READY_TAG[0])).fetchone()[0]
        if newer:
            return None  # a newer version without a status (registered by hand or before statuses): the registry decides
    elif version.isdigit():
        number = int(version)
    else:
        return None
    tags = dict(connection.execute(
        "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?", (name, number)).fetchall())
    if tags.get(READY_TAG[0]) != READY_TAG[1]:
        return None  # not visible, or not there: the registry explains which
    return IndexedVersion(name=name, version=number, capture_uri=tags.get("capture_uri"))


def _has_column(connection: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in connection.execute(f"PRAGMA table_info({table})"))
