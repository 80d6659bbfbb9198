"""The README's main job in a fresh copy of the project: DVC prepares the data, the pipeline runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pipelines.conftest import REPO_ROOT, Project
from trustops.lineage import file_md5

pytestmark = pytest.mark.e2e

# What a clone holds that the DVC stage reads; the code itself is installed.
PROJECT_FILES = ["dvc.yaml", "dvc.lock", ".dvc/config", ".dvcignore", "data/.gitignore", "trustops/data/digits.py", "trustops/data/split.py"]


@pytest.fixture
def fresh_clone(tmp_path) -> Project:
    for name in PROJECT_FILES:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, target)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return Project(tmp_path)


def test_main_job_prepares_data_with_dvc_and_trains(fresh_clone):
    root = fresh_clone.root
    assert not (root / "data" / "digits.parquet").exists()
    result = fresh_clone.trustops("run", "trainer=smoke")
    assert result.returncode == 0, result.stderr[-3000:]

    data = root / "data" / "digits.parquet"
    locked = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["prepare"]["outs"][0]["md5"]
    assert file_md5(data) == locked, "the prepare stage must reproduce the committed dvc.lock exactly"
    assert (root / ".trustops" / "dvc-remote" / "files" / "md5" / locked[:2] / locked[2:]).is_file()  # pushed
    assert "test acc" in result.stdout and "trustops ui" in result.stdout
    # The stream after training: PGD traffic is flagged, and the clean batches at the end recover.
    stream = result.stdout.split("monitoring after each:", 1)[1]
    rows = [re.match(r"^(\d+)\s+(clean|drift \d|PGD)\s+(\S+)\s+(.*?)\s*$", line) for line in stream.splitlines()]
    rows = [row for row in rows if row]
    assert [row[2].split()[0] for row in rows] == ["clean", "clean", "drift", "drift", "drift", "PGD", "PGD", "clean", "clean"]
    alerts = [set(row[4].split(", ")) - {"-"} for row in rows]
    assert alerts[0] == alerts[1] == set()  # clean traffic raises nothing
    raised = [i for i, batch in enumerate(alerts) if "adversarial:mmd_adversarial" in batch]
    recovered = [i for i, batch in enumerate(alerts) if "recovered:mmd_adversarial" in batch]
    assert len(raised) == 1 and 2 <= raised[0] <= 6  # the shift is flagged once, during the drift or the PGD burst
    assert len(recovered) == 1 and recovered[0] >= 7  # and recovers only once clean traffic is back
    mmd = [float(row[3]) for row in rows]
    assert min(mmd[5:7]) > max(mmd[0:2]) and min(mmd[5:7]) > max(mmd[7:9])  # PGD batches sit far from clean ones

    data.unlink()
    pulled = subprocess.run([str(Path(shutil.which("dvc") or REPO_ROOT / ".venv/bin/dvc")), "pull"], cwd=root, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    assert file_md5(data) == locked
