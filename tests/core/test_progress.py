"""Progress: bars and step lines on a terminal (or when forced), nothing otherwise; results unchanged."""

from __future__ import annotations

import logging

import pytest
import torch

from trustops import progress as progress_module
from trustops.progress import STEP_LAUNCHER_LOGGER, progress, progress_bar, step_banners


@pytest.fixture
def shown(monkeypatch):
    """Bars forced on (stderr is not a terminal under pytest) and drawn at once."""
    monkeypatch.setenv("TRUSTOPS_PROGRESS", "1")
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)
    monkeypatch.setattr(progress_module, "MIN_INTERVAL_S", 0.0)


def test_progress_yields_every_item_in_order_and_is_silent_off_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("TRUSTOPS_PROGRESS", raising=False)
    assert list(progress(iter("abc"), desc="letters")) == ["a", "b", "c"]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_forced_bar_shows_its_label_and_count(capsys, shown):
    assert sum(progress(range(4), desc="counting", unit="batch")) == 6
    err = capsys.readouterr().err
    assert "counting" in err and "4/4" in err


def test_trustops_progress_0_turns_bars_off(capsys, monkeypatch):
    monkeypatch.setenv("TRUSTOPS_PROGRESS", "0")
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)
    with progress_bar(desc="hidden", total=2) as bar:
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_step_banners_let_through_only_the_step_lines_and_restore_the_logger(shown):
    launcher = logging.getLogger(STEP_LAUNCHER_LOGGER)
    launcher.setLevel(logging.WARNING)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    launcher.addHandler(keep)
    try:
        with step_banners():
            launcher.info("Step `train_model` has started.")
            launcher.info("Caching disabled explicitly for `train_model`.")
            launcher.info("Step `train_model` has finished in `1.234s`.")
        launcher.info("Step `evaluate_model` has started.")  # after the block: ZenML's INFO is off again
    finally:
        launcher.removeHandler(keep)
    assert seen == ["Step `train_model` has started.", "Step `train_model` has finished in `1.234s`."]
    assert launcher.level == logging.WARNING and not launcher.filters


def test_pgd_shows_a_bar_over_its_steps_and_gives_the_same_result_with_or_without_it(capsys, monkeypatch):
    from trustops.attacks import pgd_attack

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x, y = torch.rand(16, 4), torch.randint(0, 3, (16,))
    options = dict(epsilon=0.1, step_size=0.03, steps=5, clamp=(0.0, 1.0))
    monkeypatch.setenv("TRUSTOPS_PROGRESS", "0")
    quiet = pgd_attack(model, x, y, **options)
    assert capsys.readouterr().err == ""

    monkeypatch.setenv("TRUSTOPS_PROGRESS", "1")
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)
    monkeypatch.setattr(progress_module, "MIN_INTERVAL_S", 0.0)
    shown_result = pgd_attack(model, x, y, **options)
    err = capsys.readouterr().err
    assert "PGD L∞ ε=0.1 on 16 inputs" in err and "5/5" in err
    assert torch.equal(quiet, shown_result)


@pytest.mark.trains_model
def test_training_shows_each_epoch_with_loss_accuracy_and_epsilon(capsys, shown):
    from trustops.data.digits import digits_frame, pixel_columns
    from trustops.data.loading import DatasetInfo
    from trustops.settings import CaptureSettings, DataSettings, DPSettings, ModelSettings, TrainerSettings, TrainSettings
    from trustops.training.trainer import train_classifier

    info = DatasetInfo(
        path="digits", data_hash="-", dvc_tracked=False, feature_columns=pixel_columns(64), label_column="label",
        split_column="split", image_shape=[1, 8, 8], classes=list(range(10)), split_sizes={},
    )
    settings = TrainSettings(
        data=DataSettings(image_shape=[1, 8, 8]), model=ModelSettings(hidden=[16]), trainer=TrainerSettings(max_epochs=2),
        dp=DPSettings(target_epsilon=4.0), capture=CaptureSettings(enabled=False),
    )
    result = train_classifier(digits_frame(), info, settings)
    err = capsys.readouterr().err
    assert "train mlp/relu DP" in err and "2/2" in err
    assert "loss=" in err and "val_acc=" in err and "ε=" in err
    assert f"ε={result.history[-1]['dp_epsilon']:.3f}" in err  # the bar shows what the history recorded
