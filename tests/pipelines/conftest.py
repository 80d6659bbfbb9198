"""An isolated trustops project per test module: its own MLflow store, ZenML store and data."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Project:
    root: Path

    @property
    def env(self) -> dict[str, str]:
        # COLUMNS and LINES go too: pytest-xdist's workers set them to 80x24, and the CLI fits its
        # tables to them, so a child's output would depend on how pytest was started.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ZENML_")) and k not in ("COLUMNS", "LINES")}
        env.update(TRUSTOPS_PROJECT_ROOT=str(self.root), PYTHONUNBUFFERED="1")
        return env

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / '.trustops' / 'mlflow.db'}"

    def trustops(self, *args: str, timeout: float = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run the real CLI in a child process, as a user would (``env`` adds variables)."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "trustops"), *args],
            cwd=self.root, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        )

    def python(self, code: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``code`` in a child interpreter inside this project (its own ZenML and MLflow stores).

        From a script file: ZenML finds its source root from the main module's file.
        """
        script = self.root / "probe.py"
        script.write_text(code)
        return subprocess.run([sys.executable, str(script)], cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    @contextlib.contextmanager
    def mlflow_globals(self):
        """Point MLflow's process-wide tracking and registry URIs at this project, then restore them."""
        import mlflow

        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield mlflow
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def copy_to(self, root: Path) -> Project:
        """An independent copy of this project at ``root`` (new or empty): its MLflow and ZenML stores, artifacts and captures.

        The stores hold absolute paths (artifact locations, the model's ``capture_uri`` tag and
        ``model_config``, ZenML's artifact store), so each one naming this project is rewritten to
        name the copy; what the copy's tests write never reaches this project.  Fails if any file
        of the copy still names this project.
        """
        assert not root.exists() or not any(root.iterdir()), f"{root} is not empty"
        shutil.copytree(self.root, root, symlinks=True, dirs_exist_ok=True)
        old, new = str(self.root), str(root)
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            data = path.read_bytes()
            if data.startswith(b"SQLite format 3\x00"):
                _relocate_sqlite(path, old, new)
            elif old.encode() in data:
                path.write_bytes(data.replace(old.encode(), new.encode()))  # text files (MLmodel, YAML, JSON)
        left = [str(p) for p in root.rglob("*") if p.is_file() and old.encode() in p.read_bytes()]
        assert not left, f"the copy still names {old}: {left}"
        return Project(root)


def _relocate_sqlite(path: Path, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` in every text value of every table of the SQLite database at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
                name = f'"{column}"'
                db.execute(f"UPDATE \"{table}\" SET {name} = replace({name}, ?, ?) "
                           f"WHERE typeof({name}) = 'text' AND instr({name}, ?) > 0", (old, new, old))
                db.execute(f"UPDATE \"{table}\" SET {name} = CAST(replace(CAST({name} AS TEXT), ?, ?) AS BLOB) "
                           f"WHERE typeof({name}) = 'blob' AND instr({name}, CAST(? AS BLOB)) > 0", (old, new, old))
        db.commit()
        db.execute("VACUUM")  # no stale copy of an old value left in a free page


def new_digits_project(root: Path) -> Project:
    """A project folder (no DVC pipeline) with the digits data in ``root``."""
    from trustops.data.digits import export_digits  # imports scikit-learn: not at collection

    (root / "dvc.yaml").write_text("stages: {}\n")
    export_digits(root / "data" / "digits.parquet")
    return Project(root)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return new_digits_project(tmp_path_factory.mktemp("project"))
