"""The CLI-latency benchmark's table rows: ratios to `import torch`, targets, and why a target is missed."""

from bench.__main__ import SUITE, markdown, table_rows
from bench.bench_cli_latency import COMMANDS, FLOOR


def _result(name: str, label: str, median: float, target: float | None, floor: float = 4.0) -> dict:
    return {"name": name, "label": label, "median_s": median, "target_s": target, "ratio_to_import_torch": median / floor,
            "met": None if target is None else median <= target}


def test_each_command_is_a_row_with_its_ratio_to_import_torch_and_a_missed_target_says_why():
    report = {
        "repeats": 7, "cpu_count": 2, "load_average": {"start": [0.5, 0.4, 0.3], "end": [0.6, 0.5, 0.4]},
        "commands": {
            "import_torch": _result("import_torch", "python -c import torch", 4.0, None),
            "help": _result("help", "trustops --help", 0.2, 1.0),
            "config": _result("config", "trustops config", 2.4, 2.0),
            "monitor_noop": _result("monitor_noop", "trustops monitor --model m", 12.0, 3.0),
        },
    }
    rows = {row["figure"].split("`")[1]: row for row in table_rows({"cli_latency": report})}
    assert rows["trustops --help"]["measured"] == "0.20 s (0.05× import torch)"
    assert (rows["trustops --help"]["target"], rows["trustops --help"]["met"], rows["trustops --help"]["why"]) == ("≤ 1 s", True, "")
    assert rows["trustops config"]["met"] is False and rows["trustops config"]["why"].startswith("0.40 s over: Python start-up")
    assert (rows["python -c import torch"]["target"], rows["python -c import torch"]["met"]) == ("—", None)  # the floor
    assert rows["trustops monitor --model m"]["why"].startswith("9.00 s over: resolving the model version needs MLflow")
    assert "median of 7, load 0.5 on 2 cores" in rows["trustops config"]["figure"]
    assert len(markdown(list(rows.values())).splitlines()) == 2 + 4


def test_the_suite_runs_it_and_it_measures_the_briefs_commands_with_their_targets():
    assert SUITE["cli_latency"][0] == "bench_cli_latency" and "--quick" in SUITE["cli_latency"][2]
    targets = {command.argv: (command.expected_exit, command.target_s) for command in [FLOOR, *COMMANDS]}
    assert targets[("-c", "import torch")] == (0, None)  # the floor every torch CLI pays: measured, no target
    assert targets[("--help",)] == (0, 1.0)
    assert targets[("config",)] == (0, 2.0)
    assert targets[("config", "dp.target_epsilon=-1")] == (2, 2.0)
    assert targets[("train", "nosuchkey=1")] == (2, 2.0)
