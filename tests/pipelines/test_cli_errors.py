"""Bad input fails before any run is created, with one clear message and a non-zero exit."""

from __future__ import annotations

import pytest

from trustops.cli import build_parser, main

BAD_INPUTS = [
    (["model.activation=tanhh"], "model.activation must be one of relu, smelu, gelu, swish, tanh. Got: 'tanhh'"),
    (["dp.target_epsilon=-1"], "dp.target_epsilon must be > 0. Got: -1"),
    (["dp.target_delta=1.0"], "dp.target_delta must satisfy 0 < delta < 1. Got: 1.0"),
    (["model.colour=red"], "Unknown config key 'model.colour'"),
    (["modle=cnn"], "modle"),
    (["dp.target_epsilon=1,3"], "add -m"),
    (["data.path=data/absent.parquet"], "Data file not found"),
    (["data.label_column=digit"], "Label column 'digit' is not in"),
]


@pytest.fixture
def isolated(project, monkeypatch):
    for key, value in project.env.items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_URI", "ZENML_CONFIG_PATH"):
        monkeypatch.delenv(key, raising=False)
    return project


@pytest.mark.parametrize("overrides,message", BAD_INPUTS, ids=[o[0] for o, _ in BAD_INPUTS])
def test_bad_input_is_one_clear_error_and_nothing_is_tracked(isolated, capsys, overrides, message):
    assert main(["train", *overrides, "tracking.experiment_name=preflight"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trustops: error: ")
    assert message in err
    assert "Traceback" not in err
    assert isolated.client().get_experiment_by_name("preflight") is None  # no run, not even an experiment


def test_missing_data_file_suggests_dvc_pull(isolated, capsys):
    main(["train", "data.path=data/absent.parquet"])
    assert "dvc pull" in capsys.readouterr().err


def test_config_prints_the_resolved_yaml(isolated, capsys):
    assert main(["config", "model=cnn", "model.activation=smelu", "dp=off"]) == 0
    out = capsys.readouterr().out
    assert "family: cnn" in out and "activation: smelu" in out and "enabled: false" in out


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["train"], ["detect"], ["trust"], ["trust", "robustness"], ["trust", "reproducibility"], ["monitor"], ["schedule"], ["prepare"], ["config"], ["ui"], ["drift-ui"], ["stack"], ["report"]],
)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: trustops" in capsys.readouterr().out


def test_a_report_on_an_unknown_model_is_one_clear_error_and_writes_nothing(isolated, capsys, tmp_path):
    assert main(["report", "--model", "no-such-model", "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    # (a fresh store's first MLflow log line, "Creating initial MLflow database tables", may come before it)
    assert err.splitlines()[-1].startswith("trustops: error: ") and "no-such-model" in err and "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_an_invalid_cron_expression_fails_at_start(isolated, capsys):
    assert main(["schedule", "--cron", "every tuesday"]) == 2
    assert "Invalid cron expression 'every tuesday'" in capsys.readouterr().err


def test_print_crontab_gives_a_line_that_runs_the_monitor(isolated, capsys):
    assert main(["schedule", "--cron", "*/5 * * * *", "--model", "digits:3", "--print-crontab"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("*/5 * * * * cd ") and "trustops monitor --model digits:3" in line


def test_the_in_process_schedule_runs_each_tick_and_survives_a_failed_run(capsys):
    from trustops.errors import DataError
    from trustops.schedule import run_schedule

    calls = []

    def job():
        calls.append(1)
        if len(calls) == 1:
            raise DataError("store unreachable")

    assert run_schedule("* * * * * */1", job, max_runs=2) == 0  # every second (croniter's sixth field)
    assert len(calls) == 2
    assert "run 1" in capsys.readouterr().err


@pytest.mark.parametrize("overrides,message", [
    (["detect.n_permutations=10"], "detect.n_permutations=10 cannot reach detect.alpha=0.05"),
    (["detect.alpha=0.01", "detect.n_permutations=98"], "use detect.n_permutations >= 99"),
    (["detect.combine_layers=[penultimate]"], "detect.combine_layers must be null or a list of at least two layer names"),
])
def test_a_detect_setting_that_cannot_work_fails_before_any_attack(isolated, capsys, overrides, message):
    # Cross-field rules are checked when the config is composed: no model is loaded, no experiment made.
    assert main(["detect", *overrides, "experiment_name=preflight-detect"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trustops: error: ") and message in err and "Traceback" not in err
    assert isolated.client().get_experiment_by_name("preflight-detect") is None
