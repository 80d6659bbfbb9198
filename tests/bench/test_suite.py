"""The benchmark suite's table: what it says about met and missed targets, and one real quick run."""

import json
import subprocess
import sys
from pathlib import Path

from bench.__main__ import markdown, table_rows

REPO_ROOT = Path(__file__).resolve().parents[2]


def _monitor(memories_mib: list[int], flat: bool) -> dict:
    sizes = [1_000, 10_000, 100_000]
    return {
        "results": [
            {"n": n, "batches": n // 100, "batch_size": 100, "median_s": 1.0 + n * 1e-4,
             "rows_per_second": n / (1.0 + n * 1e-4), "memory": {"increase_bytes": m << 20}}
            for n, m in zip(sizes, memories_mib)
        ],
        "marginal_seconds_per_sample": [1e-4, 1e-4],
        "linear": True,
        "memory_growth_ratio": memories_mib[-1] / memories_mib[0],
        "memory_flat": flat,
    }


def test_a_missed_target_says_by_how_much_and_why_and_a_met_one_does_not():
    orchestration = {"overhead_s": 12.5, "ratio_pipeline_over_plain": 3.0, "pipeline_median_s": 18.75, "plain_median_s": 6.25}
    rows = table_rows({"orchestration": orchestration, "monitor_scaling": _monitor([100, 101, 160], flat=False)})
    by_figure = {row["figure"]: row for row in rows}

    overhead = by_figure["overhead per pipeline run beyond the steps' own work"]
    assert (overhead["measured"], overhead["target"], overhead["met"]) == ("12.5 s", "≤ 10 s", False)
    assert overhead["why"].startswith("2.5 s over: ")
    memory = by_figure["peak memory, 100,000 ÷ 1,000 new samples"]
    assert memory["met"] is False and "+60 MiB" in memory["why"] and "NativeChunk.read" in memory["why"]
    rate = by_figure["one pass, default monitors, over 100,000 new rows (1000 batches of 100)"]
    assert rate["measured"].startswith("9,091 rows/s") and rate["met"] is False and rate["why"]  # 10⁵ rows in 11 s
    assert by_figure["marginal time per sample, last size step ÷ first"] == {
        "workload": "Monitor scaling", "figure": "marginal time per sample, last size step ÷ first",
        "measured": "1.00×", "target": "linear (≤ 1.5×)", "met": True, "why": "",
    }

    table = markdown(rows).splitlines()
    assert table[0] == "| workload | figure | measured | target | met? |"
    assert len(table) == 2 + len(rows)
    assert "| 12.5 s | ≤ 10 s | **no** — 2.5 s over: " in table[3]
    assert table[2].endswith("| — | — |")  # an informational figure: no target


def test_quick_run_of_one_workload_writes_the_json_and_the_table(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "smelu", "--out-dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["cpu_count"] >= 1 and summary["quick"] and summary["failed"] == []
    assert summary["workloads"]["smelu"]["ratio_smelu_over_relu"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "| SmeLU | SmeLU ÷ ReLU time" in table and table in done.stdout


def test_the_drift_report_rows_give_the_wide_tables_ratio_and_sizes():
    def variant(columns, max_columns, cpu, html):
        return {"columns": columns, "max_columns": max_columns, "median_cpu_s": cpu, "median_html_bytes": html}

    result = {"rows": 2000, "repeats": 3, "variants": {
        "narrow": variant(64, 64, 7.9, 7.9e6), "wide_most_drifted": variant(784, 64, 17.1, 5.7e6),
        "wide_every_column": variant(784, None, 118.8, 55e6)}, "cpu_ratio_every_over_most_drifted_wide": 118.8 / 17.1}
    narrow, wide = table_rows({"drift_report": result})
    assert narrow["measured"] == "7.9 s, 7.9 MB" and "64 columns" in narrow["figure"]
    assert wide["measured"] == "6.9× (118.8 s vs 17.1 s); HTML 55 MB vs 5.7 MB"
    assert "784 columns" in wide["figure"] and "64 most drifted" in wide["figure"] and wide["met"] is None


def test_the_wide_drift_check_row_says_the_ratio_and_whether_the_results_agree():
    result = {"columns": 784, "reference_rows": 5000, "batch_rows": 120, "page_level": 1 / 500, "n_draws": 499, "repeats": 5,
              "median_cpu_s": {"sorted_path_before": 21.9, "counted_by_value": 2.8}, "cpu_ratio_before_over_now": 21.9 / 2.8,
              "same_result": True}
    (row,) = table_rows({"drift_check_wide": result})
    assert row["measured"] == "0.13× (2.80 s vs 21.90 s); the same p-value, statistic and draws"
    assert "784 pixel columns, 5,000 reference rows" in row["figure"] and "1/500: 499 permutations" in row["figure"]
    (differing,) = table_rows({"drift_check_wide": {**result, "same_result": False}})
    assert differing["measured"].endswith("**different results**")
