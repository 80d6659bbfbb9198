"""The DVC stage ``prepare_fashion_mnist``, and `make run` (``trustops run``) reproducing the digits stage alone.

The main job must run on a machine without Debian's dataset-fashion-mnist: it reproduces and pushes
the ``prepare`` stage by name, never the whole dvc.yaml.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from trustops.cli import build_parser
from trustops.dvc_data import FASHION_MNIST_STAGE, PREPARE_STAGE, reproduce_default_data
from trustops.lineage import file_md5

REPO_ROOT = Path(__file__).resolve().parents[2]
# What a clone holds for the digits stage; trustops/data/fashion_mnist.py is left out on purpose:
# the main job must not need anything of the Fashion-MNIST stage.
CLONE_FILES = ["dvc.yaml", "dvc.lock", ".dvc/config", ".dvcignore", "data/.gitignore", "trustops/data/digits.py", "trustops/data/split.py"]


def test_the_stage_runs_trustops_prepare_for_fashion_mnist_into_its_declared_output():
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    stage = stages[FASHION_MNIST_STAGE]
    argv = stage["cmd"].split()
    assert argv[:2] == ["trustops", "prepare"]
    args = build_parser().parse_args(argv[1:])
    assert (args.dataset, args.seed, args.source_dir) == ("fashion_mnist", 0, None)
    assert stage["outs"] == [{args.out: {"cache": False}}] and args.out == "data/fashion_mnist.npz"  # not cached or pushed
    assert {"trustops/data/fashion_mnist.py", "trustops/data/split.py"} <= set(stage["deps"])
    assert build_parser().parse_args(stages[PREPARE_STAGE]["cmd"].split()[1:]).dataset == "digits"


def test_the_main_job_reproduces_and_pushes_the_digits_stage_only(tmp_path, monkeypatch):
    for name in CLONE_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    # As after someone ran `dvc repro prepare_fashion_mnist` and committed dvc.lock: a locked output
    # this machine never had.
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    lock["stages"][FASHION_MNIST_STAGE] = {
        "cmd": "trustops prepare --dataset fashion_mnist --out data/fashion_mnist.npz --seed 0",
        "deps": [{"path": path, "hash": "md5", "md5": digit * 32, "size": 1}
                 for path, digit in (("trustops/data/fashion_mnist.py", "1"), ("trustops/data/split.py", "2"))],
        "outs": [{"path": "data/fashion_mnist.npz", "hash": "md5", "md5": "0" * 32, "size": 1}],
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)

    # From another folder (this checkout, itself a DVC repo): the stage is the project's, not the cwd's.
    monkeypatch.chdir(REPO_ROOT)
    ran = reproduce_default_data(tmp_path, push=True)

    assert ran == [PREPARE_STAGE]
    assert not (tmp_path / "data" / "fashion_mnist.npz").exists()
    digits_md5 = lock["stages"][PREPARE_STAGE]["outs"][0]["md5"]
    assert file_md5(tmp_path / "data" / "digits.parquet") == digits_md5
    remote = tmp_path / ".trustops" / "dvc-remote" / "files" / "md5"
    assert [p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()] == [f"{digits_md5[:2]}/{digits_md5[2:]}"]
