"""Bad overrides fail with a clear ConfigError before any model is trained or any run is logged."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configs.trust import parse_reproducibility_variant
from trustops.errors import ConfigError, DataError
from trustops.trust.robustness import AttackSettings, RobustnessVariant, check_epsilon
from trustops.runs.studies import MissingDataError, run_reproducibility, run_robustness

BAD = [
    (run_robustness, ["epsilon=-1"], ConfigError, r"epsilon \(the attack radius\) must be a finite number >= 0\. Got: -1"),
    # One bad point in a sweep stops the whole sweep before any model is trained.
    (run_robustness, ["variant=standard", "epsilon=2,-1"], ConfigError, r"Got: -1"),
    (run_robustness, ["epsilon=[0,1]"], ConfigError, r"comma-separated, not a list"),
    (run_robustness, ["variant=robust"], ConfigError, r"Unknown robustness variant 'robust'\. Defined variants: standard, dp, smelu"),
    (run_robustness, ["variant=smelu", "variants.smelu.activation=softsign"], ConfigError, r"activation must be one of relu, smelu, gelu, swish, tanh\. Got: 'softsign'"),
    (run_robustness, ["attack.norm=l1"], ConfigError, r"attack\.norm must be one of inf, l2\. Got: 'l1'"),
    (run_robustness, ["attack.steps=0"], ConfigError, r"attack\.steps must be an integer >= 1"),
    (run_robustness, ["trainer.max_epochs=0"], ConfigError, r"trainer\.max_epochs must be >= 1"),
    (run_robustness, ["epsilonn=1"], ConfigError, r"Unknown config key 'epsilonn' \(did you mean 'epsilon'\?\)\. Valid keys: variant, epsilon, variants, attack"),
    (run_robustness, ["data.path=data/absent.parquet"], MissingDataError, r"Data file not found: .*absent\.parquet\. Run `trustops prepare`.*`dvc pull .*absent\.parquet`"),
    (run_reproducibility, ["n_pairs=1"], ConfigError, r"n_pairs must be an integer >= 2.*Got: 1"),
    (run_reproducibility, ["variant=softsign"], ConfigError, r"Unknown reproducibility variant 'softsign'\. Allowed: relu, gelu, swish, tanh, smelu-<beta>"),
    (run_reproducibility, ["variant=smelu-wide"], ConfigError, r"the SmeLU width must be a number"),
    (run_reproducibility, ["variant=smelu-0"], ConfigError, r"SmeLU width in 'smelu-0' must be > 0"),
    (run_reproducibility, ["variant=relu,softsign"], ConfigError, r"Unknown reproducibility variant 'softsign'"),
    (run_reproducibility, ["variant=relu-2"], ConfigError, r"Unknown reproducibility variant 'relu-2'"),
    (run_reproducibility, ["dp.enabled=true", "dp.target_epsilon=-3"], ConfigError, r"dp\.target_epsilon must be > 0\. Got: -3"),
    (run_reproducibility, ["data.path=data/absent.parquet"], MissingDataError, r"Data file not found: .*`trustops prepare`"),
]


@pytest.mark.parametrize(("run", "overrides", "error", "message"), BAD, ids=[" ".join(case[1]) for case in BAD])
def test_bad_input_fails_clearly_and_logs_nothing(project, run, overrides, error, message):
    with pytest.raises(error, match=message):
        run(overrides)
    for experiment in ("trustops-robustness", "trustops-reproducibility"):
        for job in ("robustness", "robustness_summary", "reproducibility", "reproducibility_summary"):
            assert project.runs(experiment, job) == []


def test_missing_data_is_both_a_config_and_a_data_error():
    assert issubclass(MissingDataError, ConfigError) and issubclass(MissingDataError, DataError)


@pytest.mark.parametrize("epsilon", [-0.5, math.inf, math.nan, "1", True, None])
def test_check_epsilon_rejects(epsilon):
    with pytest.raises(ConfigError, match="epsilon"):
        check_epsilon(epsilon)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RobustnessVariant("softsign"), "activation must be one of"),
        (lambda: RobustnessVariant("smelu", beta=0), "beta"),
        (lambda: AttackSettings(clamp=[16.0, 0.0]), "low < high"),
        (lambda: AttackSettings(step_size=-1.0), "step_size must be > 0"),
        (lambda: AttackSettings(max_samples=0), "max_samples must be >= 1"),
    ],
)
def test_settings_reject(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


@given(beta=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False))
def test_smelu_variant_name_round_trips(beta):
    assert parse_reproducibility_variant(f"smelu-{beta!r}") == ("smelu", beta)


def test_default_step_size_is_madry_fraction():
    assert AttackSettings(steps=10).step_size_for(4.0) == pytest.approx(1.0)
    assert AttackSettings(step_size=0.3).step_size_for(4.0) == 0.3
