"""`trustops compare` prints one row per run (quantities across), fitted to the terminal; --transpose
gives one column per run."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from trustops.compare import LABELS, MIN_WIDTH, SEPARATOR, Comparison, fit_widths, shorten
from trustops.summary import format_table

NAMES = [f"train-mlp-relu-dp-eps8-20261123-0743{i:02d}-f{i}" for i in range(10)]
IDS = [f"{i:02d}" + "a" * 30 for i in range(10)]


def ten_runs() -> Comparison:
    values = {label: [None] * 10 for label in LABELS}
    values["experiment"] = ["trustops"] * 10
    values["status"] = ["FINISHED"] * 10
    values["activation"] = ["relu", "smelu"] * 5
    values["accuracy"] = [0.8 + i / 100 for i in range(10)]
    values["dp_epsilon"] = [7.99] * 10
    return Comparison(IDS, NAMES, [values[label] for label in LABELS])


def test_one_row_per_run_and_one_column_per_quantity():
    comparison = ten_runs()
    header, body = comparison.table()
    assert header == ["run", "run id", *LABELS]
    assert [row[0] for row in body] == NAMES and [row[1] for row in body] == IDS
    accuracy = header.index("accuracy")
    assert [row[accuracy] for row in body] == [0.8 + i / 100 for i in range(10)]
    records = comparison.records()
    assert records[3]["run id"] == IDS[3] and records[3]["activation"] == "smelu" and records[3]["detection rate"] is None


def test_transpose_gives_one_column_per_run():
    header, body = ten_runs().table(transpose=True)
    assert header == ["", *NAMES]
    assert [row[0] for row in body] == ["run id", *LABELS]
    assert body[0][1:] == IDS
    assert dict((row[0], row[1:]) for row in body)["activation"] == ["relu", "smelu"] * 5


def test_the_terminal_table_fits_the_width_and_keeps_every_run():
    text = ten_runs().to_text(width=80)
    lines = text.splitlines()
    assert len(lines) == 2 + 10  # header, rule, one line per run
    assert max(map(len, lines)) <= 80
    header = lines[0].split()
    # Quantities no run recorded are left out of the terminal view; recorded ones stay.
    assert "accuracy" in header and "dp_epsilon" in header and "detection" not in lines[0]
    # The run name column was the widest: shortened around an ellipsis, its distinct tail kept.
    assert lines[2].startswith("train") and "…" in lines[2].split()[0] and lines[2].split()[0].endswith("-f0")
    assert len({line.split()[0] for line in lines[2:]}) == 10


def test_a_wide_terminal_shortens_nothing():
    lines = ten_runs().to_text(width=1000).splitlines()
    assert [line.split()[0] for line in lines[2:]] == NAMES
    assert "…" not in "".join(lines)


def test_transposed_terminal_table_has_a_column_per_run():
    lines = ten_runs().to_text(width=1000, transpose=True).splitlines()
    assert lines[0].split() == NAMES
    assert [line.split()[0] for line in lines[2:]][:2] == ["run", "experiment"]  # "run id", then the quantities


def test_csv_and_markdown_follow_the_layout():
    comparison = ten_runs()
    rows = list(csv.DictReader(io.StringIO(comparison.to_csv())))
    assert [row["run id"] for row in rows] == IDS  # full ids in the CSV
    assert rows[1]["activation"] == "smelu" and rows[1]["detection rate"] == ""
    transposed = list(csv.reader(io.StringIO(comparison.to_csv(transpose=True))))
    assert transposed[0] == ["field", *NAMES] and transposed[1] == ["run id", *IDS]
    markdown = comparison.to_markdown().splitlines()
    assert markdown[0].startswith("| run | run id | experiment |") and len(markdown) == 2 + 10
    assert comparison.to_markdown(transpose=True).startswith(f"|  | {NAMES[0]} |")


@given(st.lists(st.integers(1, 60), min_size=1, max_size=20), st.integers(10, 300))
def test_fitted_widths_fit_or_are_as_narrow_as_allowed(widths, limit):
    fitted = fit_widths(widths, limit)
    assert all(f <= w for f, w in zip(fitted, widths))
    assert all(f >= min(w, MIN_WIDTH) for f, w in zip(fitted, widths))
    total = sum(fitted) + len(SEPARATOR) * (len(fitted) - 1)
    assert total <= limit or all(f == min(w, MIN_WIDTH) for f, w in zip(fitted, widths)) or max(fitted) <= MIN_WIDTH


@given(st.text(min_size=0, max_size=80), st.integers(1, 80))
def test_shorten_keeps_head_and_tail_within_the_width(text, width):
    short = shorten(text, width)
    assert len(short) <= width
    if len(text) <= width:
        assert short == text
    elif width >= 3:
        head, _, tail = short.partition("…")
        assert text.startswith(head) and text.endswith(tail) and len(tail) >= 1


def test_the_cli_takes_transpose():
    from trustops.cli import build_parser

    assert build_parser().parse_args(["compare", "--transpose"]).transpose is True
    assert build_parser().parse_args(["compare"]).transpose is False


def test_a_table_for_people_is_header_rule_rows_as_plain_text_never_wrapped():
    long = "suspected_adversarial, " * 20
    lines = format_table(["batch", "traffic", "incidents"], [[0, "[bold]clean[/]", None], [12, ":warning:", long], [3, 0.5, "x"]]).splitlines()
    assert len(lines) == 2 + 3 and set(lines[1]) <= {"-", " "}
    assert lines[0].split() == ["batch", "traffic", "incidents"]
    assert lines[2].split() == ["0", "[bold]clean[/]", "-"]  # no markup, emoji or colour applied
    assert lines[3].split(None, 2) == ["12", ":warning:", long.strip()]  # one line, however long
    assert lines[4].split() == ["3", "0.5000", "x"]
    assert all(line == line.rstrip() for line in lines)
