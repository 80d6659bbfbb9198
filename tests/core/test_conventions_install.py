"""The install works off this machine: without the local wheel folder, torch 2.13.0+cpu comes from
PyTorch's CPU index (an extra index next to PyPI), and `make lock` resolves from the same sources.

This machine cannot reach that index, so the tests read the commands `make -n` would run, and run
``requirements/lock.sh`` against a recording stand-in for uv.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"



def uv_commands(*make_args: str) -> list[list[str]]:
    """The uv commands `make -n -B install` would run (-B: as on a machine with no install yet)."""
    done = subprocess.run(["make", "-n", "-B", "install", *make_args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    return [shlex.split(line) for line in done.stdout.splitlines() if "/uv pip " in line]


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def test_without_the_wheel_folder_torch_comes_from_pytorchs_cpu_index(tmp_path):
    commands = uv_commands(f"WHEELS={tmp_path / 'absent'}")
    sync = next(c for c in commands if c[1:3] == ["pip", "sync"])
    assert sync[-1] == "requirements/lock.txt"
    # An extra index: PyPI stays the default index for everything else.
    assert flag_values(sync, "--extra-index-url") == [TORCH_CPU_INDEX]
    assert flag_values(sync, "--index-url") == [] and flag_values(sync, "--default-index") == []
    assert flag_values(sync, "--index-strategy") == ["unsafe-best-match"]
    assert "--find-links" not in sync
    for command in commands:
        assert not any("/whl/cu" in arg or "cuda" in arg.lower() for arg in command), command


def test_with_the_wheel_folder_the_install_stays_offline(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for command in uv_commands(f"WHEELS={wheels}"):
        assert flag_values(command, "--find-links") == [str(wheels)]
        assert "--extra-index-url" not in command and not any("download.pytorch.org" in a for a in command)


def test_the_lock_pins_the_cpu_build_and_no_cuda_package():
    lines = [line.strip() for line in (REPO_ROOT / "requirements" / "lock.txt").read_text().splitlines()]
    pins = dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0+cpu"
    assert not [name for name in pins if name.lower().startswith(("nvidia-", "triton"))]


@pytest.mark.parametrize("wheels_present", [False, True], ids=["fresh-machine", "wheel-folder"])
def test_lock_sh_resolves_from_the_same_sources_as_the_install(tmp_path, wheels_present):
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "requirements", project / "requirements")
    wheels = tmp_path / "wheels"
    if wheels_present:
        wheels.mkdir()
    recorded = tmp_path / "uv-args"
    fake_uv = tmp_path / "uv"
    # Records its arguments and writes a lock as `uv pip compile -o FILE` would.
    fake_uv.write_text(f"""#!/usr/bin/env bash
printf '%s\\n' "$@" > {shlex.quote(str(recorded))}
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then printf 'numpy==2.3.0\\ntorch==2.13.0+cpu\\n' > "$2"; fi; shift; done
""")
    fake_uv.chmod(fake_uv.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "UV": str(fake_uv), "WHEELS": str(wheels)}
    subprocess.run([str(project / "requirements" / "lock.sh")], env=env, check=True, timeout=60)

    argv = recorded.read_text().splitlines()
    assert argv[:3] == ["pip", "compile", "requirements/main.in"]
    assert flag_values(argv, "--index-strategy") == ["unsafe-best-match"]
    if wheels_present:
        assert flag_values(argv, "--find-links") == [str(wheels)] and "--extra-index-url" not in argv
    else:
        assert flag_values(argv, "--extra-index-url") == [TORCH_CPU_INDEX] and "--find-links" not in argv
    lock = (project / "requirements" / "lock.txt").read_text()
    assert lock.startswith("numpy==2.3.0\ntorch==2.13.0+cpu\n")
    assert lock.endswith((REPO_ROOT / "requirements" / "no-deps.txt").read_text())


def test_lock_sh_refuses_a_lock_that_lost_the_cpu_build(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "requirements", project / "requirements")
    fake_uv = tmp_path / "uv"
    fake_uv.write_text('#!/usr/bin/env bash\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && printf "torch==2.13.0\\nnvidia-cublas==13\\n" > "$2"; shift; done\n')
    fake_uv.chmod(fake_uv.stat().st_mode | stat.S_IEXEC)
    done = subprocess.run([str(project / "requirements" / "lock.sh")], env={**os.environ, "UV": str(fake_uv)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "torch==2.13.0+cpu" in done.stderr


def test_training_imports_no_transformers_though_the_alibi_reference_is_installed():
    """alibi-detect's import needs transformers, and with transformers in the environment every `import lightning`
    imports it too (torchmetrics' text metrics), seconds per training process: the reference lives in its own folder."""
    from monitors.mmd.alibi_backend import REFERENCE_FOLDER

    code = "import sys, lightning, trustops.training.trainer; print(sorted(m for m in ('transformers', 'alibi_detect') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT, timeout=300)
    assert out.stdout.strip() == "[]"
    assert (REFERENCE_FOLDER / "alibi_detect").is_dir() and (REFERENCE_FOLDER / "transformers").is_dir()
