"""CLI start-up: wall time of whole ``trustops`` processes, against ``python -c "import torch"``.

Run from the repository root::

    .venv/bin/python -m bench.bench_cli_latency [--quick] [--repeats 7] [--out bench/results/cli_latency.json]

Each command runs as a fresh process in a throw-away project (its own MLflow and ZenML
stores, ``bench._common.make_project``), once untimed to warm the file cache and then
``--repeats`` times, the commands in rotating order within each repeat so that a change in
machine load falls on all of them alike.  Reported: the median wall time of each, and its
ratio to the median of ``import torch`` measured in the same run (the floor a command pays
once it needs torch at all), with the load average and core count.

A command whose exit code differs from the expected one fails the benchmark: a fast wrong
answer is no answer.  Add a command with one line in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._common import isolated_env, machine, make_project, write_report


@dataclass(frozen=True)
class Command:
    name: str
    argv: tuple[str, ...]  # after `trustops`, or a whole command line when ``python`` is true
    expected_exit: int
    target_s: float | None
    python: bool = False
    env: tuple[tuple[str, str | None], ...] = ()  # set (or, with None, removed) for this command only
    stderr_says: str = ""  # a refusal must be the expected one, not any exit with the same code

    @property
    def label(self) -> str:
        return f"python {' '.join(self.argv)}" if self.python else f"trustops {' '.join(self.argv)}"


# An S3 storage setting with no credentials anywhere in boto3's chain.
_NO_S3_CREDENTIALS = (
    ("TRUSTOPS_STORAGE_URI", "s3://trustops-bench-refused/p"), ("TRUSTOPS_STORAGE_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("AWS_ACCESS_KEY_ID", None), ("AWS_SECRET_ACCESS_KEY", None), ("AWS_SESSION_TOKEN", None), ("AWS_PROFILE", None),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/trustops-bench"), ("AWS_CONFIG_FILE", "/nonexistent/trustops-bench"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
)
FLOOR = Command("import_torch", ("-c", "import torch"), 0, None, python=True)
COMMANDS = [
    Command("help", ("--help",), 0, 1.0),
    Command("config", ("config",), 0, 2.0),
    Command("bad_override", ("config", "dp.target_epsilon=-1"), 2, 2.0),
    Command("unknown_key", ("train", "nosuchkey=1"), 2, 2.0),
    # One more command is one more line here, e.g. Command("storage_show", ("storage", "show"), 0, 2.0).
    # What a training process imports before it trains (Lightning, Opacus, the networks); and the same with the
    # alibi-detect reference folder on the path, as its packages were in the environment before: torchmetrics then
    # finds transformers installed and imports it with its text metrics.
    Command("import_training", ("-c", "import trustops.training.trainer"), 0, None, python=True),
    Command("import_training_transformers", ("-c", "import sys; sys.path.append(sys.prefix + '/alibi-reference'); "
                                             "import trustops.training.trainer; assert 'transformers' in sys.modules"), 0, None, python=True),
    # What a monitor pass imports to check a batch with its model: the check step and mlflow.pytorch, which no
    # longer bring Lightning (the steps package re-exports lazily; trustops.tracking.mlflow_pytorch). The second
    # row imports them as before: the training step beside it, and mlflow.pytorch with pytorch_lightning.
    Command("import_monitor_step", ("-c", "import sys; import steps.monitoring.check_captures; from trustops.tracking import "
                                    "mlflow_pytorch; mlflow_pytorch(); assert not {'lightning', 'pytorch_lightning'} & set(sys.modules)"),
            0, None, python=True),
    Command("import_monitor_step_with_lightning", ("-c", "import steps.training.train_model, steps.monitoring.check_captures, "
                                                   "mlflow.pytorch"), 0, None, python=True),
    # A training refused because its S3 store cannot be used (no credentials): the check runs before the
    # training pipeline (Lightning, torch, ZenML) is imported.  The second row imports that pipeline first,
    # as `trustops train` did before.
    Command("refused_s3_train", ("train", "trainer=smoke"), 2, None, env=_NO_S3_CREDENTIALS,
            stderr_says="no usable AWS credentials"),
    Command("refused_s3_train_importing_pipeline", ("-c", "import sys, pipelines.training; from trustops.cli import main; "
                                                    "sys.exit(main(['train', 'trainer=smoke']))"), 2, None, python=True,
            env=_NO_S3_CREDENTIALS, stderr_says="no usable AWS credentials"),
]
# ---- no-op `trustops monitor` -------------------------------------------------------------
# Needs a registered model trained with capture on, which costs a training run (about a minute
# on 2 cores), so it is measured only with --with-monitor: the project gets a one-epoch model,
# one untimed monitor pass consumes whatever is pending, and every timed pass is then a no-op.
MONITOR_MODEL = "bench-cli-digits"
MONITOR = Command("monitor_noop", ("monitor", "--model", MONITOR_MODEL), 0, 3.0)
# --------------------------------------------------------------------------------------------


def _argv(command: Command) -> list[str]:
    if command.python:
        return [sys.executable, *command.argv]
    return [str(Path(sys.executable).with_name("trustops")), *command.argv]


def time_once(command: Command, *, root: Path, env: dict[str, str]) -> float:
    env = {**env, **{key: value for key, value in command.env if value is not None}}
    for key in (key for key, value in command.env if value is None):
        env.pop(key, None)
    start = time.perf_counter()
    done = subprocess.run(_argv(command), cwd=root, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if done.returncode != command.expected_exit or command.stderr_says not in done.stderr:
        raise RuntimeError(f"`{command.label}` exited {done.returncode}, expected {command.expected_exit} "
                           f"with {command.stderr_says!r} in its error output:\n{done.stderr[-3000:]}")
    return seconds


def train_monitored_model(root: Path, env: dict[str, str]) -> None:
    """A one-epoch registered model with captures, and one monitor pass so the timed ones are no-ops."""
    train = Command("train", ("train", "trainer=smoke", "dp=off", f"tracking.registered_model_name={MONITOR_MODEL}"), 0, None)
    time_once(train, root=root, env=env)
    time_once(MONITOR, root=root, env=env)


def measure(commands: list[Command], *, root: Path, env: dict[str, str], repeats: int) -> dict[str, list[float]]:
    for command in commands:  # warm the file cache; not timed
        time_once(command, root=root, env=env)
    seconds: dict[str, list[float]] = {c.name: [] for c in commands}
    for repeat in range(repeats):
        shift = repeat % len(commands)
        for command in commands[shift:] + commands[:shift]:
            seconds[command.name].append(time_once(command, root=root, env=env))
    return seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", nargs="+", choices=[c.name for c in COMMANDS], default=None, help="measure these commands only")
    parser.add_argument("--with-monitor", action="store_true", help="also a no-op `trustops monitor` (trains a model first)")
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 3
    commands = [FLOOR, *(c for c in COMMANDS if args.only is None or c.name in args.only)]
    report: dict[str, Any] = {"machine": machine(), "settings": {k: str(v) for k, v in vars(args).items()}}
    load_start = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="trustops-bench-cli-") as folder:
        root = make_project(Path(folder) / "project")
        env = isolated_env(root)
        if args.with_monitor:
            train_monitored_model(root, env)
            commands.append(MONITOR)
        seconds = measure(commands, root=root, env=env, repeats=args.repeats)

    floor = statistics.median(seconds[FLOOR.name])
    results = {}
    for command in commands:
        median = statistics.median(seconds[command.name])
        results[command.name] = {
            **asdict(command), "label": command.label, "median_s": median, "all_s": seconds[command.name],
            "ratio_to_import_torch": median / floor, "met": None if command.target_s is None else median <= command.target_s,
        }
        print(f"{command.label:45} {median:6.2f} s  ({median / floor:.2f}x import torch)", flush=True)
    report.update(
        repeats=args.repeats, import_torch_median_s=floor, commands=results,
        load_average={"start": list(load_start), "end": list(os.getloadavg())}, cpu_count=os.cpu_count(),
    )
    write_report("cli_latency", report, args.out)
    return report


if __name__ == "__main__":
    main()
