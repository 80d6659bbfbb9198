"""Start-up is paid only when needed: the parser, `trustops config` and rejected overrides load no heavy library.

Each probe runs in a fresh interpreter (this test process has long since imported torch) and
reports its exit code, its stderr and which heavy modules ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "zenml", "mlflow", "pandas", "numpy", "sklearn", "lightning", "opacus", "dvc")


def probe(tmp_path: Path, body: str) -> dict:
    """Run ``body`` (which sets ``result``) in a fresh interpreter inside a throw-away project."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    code = textwrap.dedent(
        """
        import contextlib, io, json, sys
        result = {}
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        {body}
        result["stderr"] = err.getvalue()
        result["stdout"] = out.getvalue()
        result["heavy"] = [m for m in HEAVY if m in sys.modules]
        print("PROBE " + json.dumps(result))
        """
    ).replace("{body}", textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")).replace("HEAVY", repr(HEAVY))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ZENML_", "TRUSTOPS_"))}
    env.update(TRUSTOPS_PROJECT_ROOT=str(tmp_path), PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE "))


def run_main(tmp_path: Path, *argv: str) -> dict:
    return probe(tmp_path, f"from trustops.cli import main\nresult['rc'] = main({list(argv)!r})")


def test_importing_the_cli_and_building_the_parser_loads_no_heavy_library(tmp_path):
    result = probe(tmp_path, """
        from trustops.cli import build_parser
        parser = build_parser()
        result["command"] = parser.parse_args(["config", "dp=off"]).command
        import trustops.commands, trustops.summary, trustops.progress, trustops.configuration, configs.training
    """)
    assert result["command"] == "config"
    assert result["heavy"] == []


def test_config_prints_the_resolved_config_without_torch_zenml_mlflow_or_pandas(tmp_path):
    result = run_main(tmp_path, "config", "model=cnn", "dp=off")
    assert result["rc"] == 0
    assert "family: cnn" in result["stdout"] and "enabled: false" in result["stdout"]
    assert result["heavy"] == []


@pytest.mark.parametrize(
    "argv,message",
    [
        (["config", "dp.target_epsilon=-1"], "dp.target_epsilon must be > 0. Got: -1"),
        (["config", "model.activation=tanhh"], "model.activation must be one of relu, smelu, gelu, swish, tanh. Got: 'tanhh'"),
        (["config", "data=table"], "data.path has no value"),
        (["train", "nosuchkey=1"], "Unknown config key 'nosuchkey'"),
        (["train", "model.colour=red"], "Unknown config key 'model.colour'"),
        (["train", "dp.target_epsilon=-1"], "dp.target_epsilon must be > 0. Got: -1"),
        (["train", "dp.target_epsilon=1,3"], "add -m"),
        (["train", "-m", "dp.target_epsilon=1,-1"], "dp.target_epsilon must be > 0. Got: -1"),  # the 2nd point, before the 1st runs
        (["run", "nosuchkey=1"], "Unknown config key 'nosuchkey'"),  # before DVC prepares anything
        (["detect", "attack.epsilon=-1"], "attack.epsilon must be > 0. Got: -1.0"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_bad_override_is_one_line_exit_2_before_any_heavy_import(tmp_path, argv, message):
    result = run_main(tmp_path, *argv)
    assert result["rc"] == 2
    assert result["stderr"].startswith("trustops: error: ") and message in result["stderr"]
    assert result["stderr"].count("\n") == 1, result["stderr"]  # one line
    assert result["heavy"] == []


def test_help_lists_every_command_and_predict_help_still_has_its_options(tmp_path):
    result = probe(tmp_path, """
        from trustops.cli import build_parser
        for argv in (["--help"], ["predict", "--help"]):
            try:
                build_parser().parse_args(argv)
            except SystemExit as exit:
                result.setdefault("codes", []).append(exit.code)
        result["heavy_after_help"] = [m for m in ("torch", "zenml", "mlflow") if m in sys.modules]
        args = build_parser().parse_args(["predict", "--model", "digits:3", "--input", "x.csv"])
        result["predict"] = [args.model, args.input, args.batch_size, args.output]
    """)
    assert result["codes"] == [0, 0]
    for command in ("run", "train", "detect", "trust", "predict", "monitor", "schedule", "config", "prepare", "compare", "storage"):
        assert f"    {command}" in result["stdout"]
    assert "--capture-uri" in result["stdout"] and "--batch-size" in result["stdout"]
    assert result["heavy_after_help"] == []  # predict's options load pandas, but not these
    assert result["predict"] == ["digits:3", "x.csv", 256, None]


def test_the_light_copies_of_the_allowed_values_match_the_modules_that_implement_them():
    import configs.training
    import trustops.settings
    from trustops.data import digits, loading
    from trustops.models import activations, networks

    assert trustops.settings.FORMATS == loading.FORMATS
    assert trustops.settings.ACTIVATIONS == activations.ACTIVATIONS
    assert trustops.settings.MODEL_FAMILIES == networks.MODEL_FAMILIES
    assert configs.training.DIGITS_IMAGE_SHAPE == digits.DIGITS_IMAGE_SHAPE
    assert configs.training.DIGITS_VALUE_RANGE == digits.DIGITS_VALUE_RANGE
