"""The Fashion-MNIST DP benchmark's table rows: sizes in every label, the overhead target judged, an
activation trustops lacks shown as not run."""

from bench.__main__ import SUITE, markdown, table_rows
from bench.bench_fashion_dp import CONFIGS, overrides


def _report(trustops_dp: float, configuration: str = "reduced") -> dict:
    seconds = {"trustops_dp": trustops_dp, "bare_dp": 2.0, "trustops_no_dp": 0.9, "bare_no_dp": 0.6, "bare_ghost": 3.0,
               "bare_dp_deterministic": 3.4}
    return {
        "configuration": configuration, "delta": 1e-5, "seed": 0, "threads": 2,
        "target": {"trustops_over_bare_dp_max": 1.1},
        "not_run": {"tanh": "not a trustops activation (model.activation is one of relu, smelu, gelu, swish)"},
        "accuracy": [
            {"activation": "relu", "dp": False, "target_epsilon": None, "dp_epsilon": None, "test_accuracy": 0.8512,
             "n_train": 10_000, "n_test": 10_000, "epochs": 8, "batch_size": 512},
            {"activation": "relu", "dp": True, "target_epsilon": 3.0, "dp_epsilon": 2.987, "test_accuracy": 0.7123,
             "n_train": 10_000, "n_test": 10_000, "epochs": 8, "batch_size": 512},
        ],
        "timing": {"n_train": 10_000, "batch_size": 512, "epoch_seconds": seconds,
                   "trustops_over_bare_dp": trustops_dp / 2.0, "dp_over_no_dp_trustops": trustops_dp / 0.9,
                   "dp_over_no_dp_bare": 2.0 / 0.6, "ghost_over_hooks_bare": 1.5, "deterministic_over_plain_bare_dp": 1.7},
    }  # fmt: skip


def test_rows_label_the_reduced_size_and_judge_the_overhead_target():
    rows = {row["figure"]: row for row in table_rows({"fashion_dp": _report(2.1)})}
    dp = rows["test accuracy, fashion_cnn relu, DP ε = 3 (δ = 1e-05, spent 2.99) "
              "(reduced CPU run, 10,000 training images, 8 epochs, batch 512, seed 0)"]  # fmt: skip
    assert dp["measured"] == "0.712 on 10,000 test images" and dp["met"] is None
    assert rows["test accuracy, fashion_cnn tanh"]["measured"].startswith("not run: not a trustops activation")
    overhead = next(row for figure, row in rows.items() if figure.startswith("epoch time, trustops DP training ÷ a bare Opacus loop"))
    assert "reduced CPU run, 10,000 images, Poisson batch 512, 2 threads" in overhead["figure"]
    assert (overhead["measured"], overhead["target"], overhead["met"], overhead["why"]) == ("1.05× (2.10 s vs 2.00 s)", "≤ 1.1×", True, "")
    ratio = next(row for figure, row in rows.items() if figure.startswith("epoch time, DP ÷ no DP"))
    assert ratio["measured"] == "2.33× vs 3.33×"
    deterministic = next(row for figure, row in rows.items() if "use_deterministic_algorithms" in figure)
    assert deterministic["measured"] == "1.70× (3.40 s vs 2.00 s)"

    missed = next(row for row in table_rows({"fashion_dp": _report(3.0)}) if row["target"] == "≤ 1.1×")
    assert missed["met"] is False and missed["why"].startswith("1.50×: trustops trains under deterministic algorithms (without PyTorch's memory fill)")
    assert "**no** — 1.50×" in markdown([missed])


def test_the_suite_runs_the_reduced_size_by_default_and_the_smoke_size_with_quick():
    assert SUITE["fashion_dp"] == ("bench_fashion_dp", [], ["--quick"])
    assert SUITE["fashion_pd"] == ("bench_fashion_pd", [], ["--quick"])
    assert CONFIGS["reduced"]["max_train_rows"] == 10_000 and CONFIGS["paper"]["max_train_rows"] is None
    assert (CONFIGS["paper"]["batch_size"], CONFIGS["paper"]["epochs"], CONFIGS["paper"]["epsilons"]) == (2048, 40, [1.0, 3.0, 8.0])


def test_dp_runs_use_tramer_and_bonehs_hyperparameters_and_non_dp_runs_trustops_default_rate():
    dp = overrides("f.npz", activation="relu", dp=True, epsilon=3.0, epochs=8, batch_size=512, max_train_rows=10_000, seed=0)
    assert {"dp.target_epsilon=3.0", "dp.target_delta=1e-05", "dp.max_grad_norm=0.1", "trainer.lr=4.0",
            "trainer.momentum=0.9", "data.max_train_rows=10000", "capture=off"} <= set(dp)  # fmt: skip
    no_dp = overrides("f.npz", activation="relu", dp=False, epsilon=None, epochs=8, batch_size=512, max_train_rows=None, seed=0)
    assert "dp=off" in no_dp and "trainer.lr=null" in no_dp and not any(o.startswith("data.max_train_rows") for o in no_dp)


def test_pd_rows_give_mean_and_spread_over_pairs_with_the_size():
    summary = [{"variant": "relu", "pairs": 5, "relative_pd_mean": 0.1234, "relative_pd_std": 0.0211, "tv_pd_mean": 0.0456,
                "tv_pd_std": 0.0078, "accuracy_mean": 0.7712}]  # fmt: skip
    (row,) = table_rows({"fashion_pd": {"configuration": "reduced", "summary": summary, "n_train": 3_000, "epochs": 2, "batch_size": 64}})
    assert row["figure"] == ("prediction difference of retrained pairs, fashion_cnn relu, no DP "
                             "(reduced CPU run, 5 pairs, 3,000 training images, 2 epochs, batch 64)")  # fmt: skip
    assert row["measured"] == "relative 0.123 ± 0.021, total variation 0.046 ± 0.008 (accuracy 0.771)"
