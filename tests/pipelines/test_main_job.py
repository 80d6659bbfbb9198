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

pytestmark = [pytest.mark.e2e, pytest.mark.trains_model]

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
    # The default model, as `make run` trains it: feature squeezing tells attacks from drift only
    # for a model whose clean predictions are stable under squeezing (one epoch is not enough).
    result = fresh_clone.trustops("run")
    assert result.returncode == 0, result.stderr[-3000:]

    data = root / "data" / "digits.parquet"
    locked = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["prepare"]["outs"][0]["md5"]
    assert file_md5(data) == locked, "the prepare stage must reproduce the committed dvc.lock exactly"
    assert (root / ".trustops" / "dvc-remote" / "files" / "md5" / locked[:2] / locked[2:]).is_file()  # pushed
    assert "test acc" in result.stdout and "trustops ui" in result.stdout
    # The stream after training: drift pages as a distribution shift, PGD as suspected adversarial
    # inputs, clean traffic raises nothing, and each incident recovers once clean traffic is back.
    stream = result.stdout.split("monitoring after each:", 1)[1]
    rows = [re.match(r"^(\d+)\s+(clean|drift \d|PGD)\s+(.*?)\s*$", line) for line in stream.splitlines()]
    rows = [row for row in rows if row]
    assert [row[2].split()[0] for row in rows] == ["clean", "clean", "drift", "drift", "drift", "PGD", "PGD", "clean", "clean"]
    opened = [set(row[3].split(", ")) - {"-"} for row in rows]
    assert opened[0] == opened[1] == set()  # clean traffic raises nothing
    shift = [i for i, kinds in enumerate(opened) if "distribution_shift" in kinds]
    adversarial = [i for i, kinds in enumerate(opened) if "suspected_adversarial" in kinds]
    assert len(shift) == 1 and 2 <= shift[0] <= 5  # opened once, by the drift (at the latest by the attack)
    assert adversarial == [5]  # the first PGD batch, and never the natural drift
    assert "recovered" in opened[7] and not any("recovered" in kinds for kinds in opened[:7])
    # The stream is an experiment: it never wrote into the model's production capture store.
    production = [path for path in (root / ".trustops" / "captures").iterdir() if not path.name.endswith("-demo-stream")]
    assert production and not any((path / "predict").exists() for path in production)

    data.unlink()
    pulled = subprocess.run([str(Path(shutil.which("dvc") or REPO_ROOT / ".venv/bin/dvc")), "pull"], cwd=root, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    assert file_md5(data) == locked
