"""Hydra's CLI conventions on `trustops train`: `--cfg job` prints the resolved job config without
hydra-zen's `_target_`/`_convert_`, `--info` lists the groups and their options, and a mistyped group
option or key is one line that names the alternatives ("did you mean").

All cases run in one fresh interpreter (cheap: no torch, ZenML, MLflow or pandas may load)."""

from __future__ import annotations

import pytest
import yaml

from tests.core.test_cli_startup import probe

CASES = {
    "cfg_job": ["train", "--cfg", "job", "model=cnn", "dp=off"],
    "config": ["config", "model=cnn", "dp=off"],
    "cfg_hydra": ["train", "--cfg", "hydra"],
    "info": ["train", "--info", "model=cnn"],
    "typo_option": ["train", "model=cnnn"],
    "typo_group": ["train", "modle=cnn"],
    "typo_key": ["train", "model.activaton=smelu"],
    "far_option": ["train", "dp=zzz"],
    "bad_value": ["train", "--cfg", "job", "dp.target_epsilon=-1"],
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("hydra-cli")
    body = "from trustops.cli import main\n"
    for name, argv in CASES.items():
        body += f"""
with contextlib.redirect_stdout(io.StringIO()) as o, contextlib.redirect_stderr(io.StringIO()) as e:
    rc = main({argv!r})
result[{name!r}] = {{"rc": rc, "out": o.getvalue(), "err": e.getvalue()}}
"""
    return probe(tmp_path, body)


def test_cfg_job_prints_the_resolved_config_without_instantiation_keys(outputs):
    result = outputs["cfg_job"]
    assert result["rc"] == 0 and result["err"] == ""
    cfg = yaml.safe_load(result["out"])
    assert list(cfg) == ["data", "model", "trainer", "dp", "tracking", "capture"]
    assert cfg["model"]["family"] == "cnn" and cfg["dp"]["enabled"] is False
    assert cfg["data"]["image_shape"] == [1, 8, 8]
    assert "_target_" not in result["out"] and "_convert_" not in result["out"]
    assert outputs["config"]["out"] == result["out"]  # `trustops config` is the same view
    assert outputs["heavy"] == []


def test_cfg_hydra_prints_hydras_own_settings(outputs):
    result = outputs["cfg_hydra"]
    assert result["rc"] == 0
    hydra = yaml.safe_load(result["out"])["hydra"]
    assert hydra["runtime"]["choices"]["model"] == "mlp"


def test_info_lists_every_group_its_options_and_the_chosen_one(outputs):
    result = outputs["info"]
    assert result["rc"] == 0
    rows = {line.split()[0]: line.split(None, 1)[1] for line in result["out"].splitlines()[1:-1]}
    assert list(rows) == ["data", "model", "trainer", "dp", "tracking", "capture"]
    assert rows["model"] == "mlp, cnn (chosen), tabular, fashion_cnn"
    assert rows["dp"] == "on (chosen), off"


@pytest.mark.parametrize("case,message", [
    ("typo_option", "Unknown model option 'cnnn' (did you mean 'model=cnn'?). Options for model: mlp, cnn, tabular"),
    ("typo_group", "Unknown config key 'modle': 'modle' is neither a config group nor a key (did you mean 'model'?)"),
    ("typo_key", "Unknown config key 'model.activaton': 'model' has no field 'activaton' (did you mean 'model.activation'?)"),
    ("far_option", "Unknown dp option 'zzz'. Options for dp: on, off"),
    ("bad_value", "dp.target_epsilon must be > 0. Got: -1"),
])  # fmt: skip
def test_a_mistyped_choice_is_one_line_naming_the_alternatives(outputs, case, message):
    result = outputs[case]
    assert result["rc"] == 2
    assert result["err"].startswith("trustops: error: ") and message in result["err"]
    assert result["err"].count("\n") == 1 and result["out"] == ""
