"""Tables: bad input fails with one line naming the file, the column and the rows; legitimate data passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trustops.data.loading import load_dataset
from trustops.data.validation import ValidationRules, validate_frame
from trustops.errors import DataError


def good_table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"height": rng.normal(170, 10, n), "income": rng.lognormal(10, 1, n), "age": rng.integers(18, 90, n)})
    frame["label"] = rng.choice(["no", "yes"], n)
    return frame


def _string_in_numeric(f):
    f["income"] = f["income"].astype(object)
    f.loc[[4, 9], "income"] = "high"
    return f


def _nan(f):
    f.loc[[2, 30], "height"] = np.nan
    return f


def _inf(f):
    f.loc[7, "height"] = np.inf
    return f


def _unseen_label(f):
    f.loc[11, "label"] = "maybe"
    return f


def _constant(f):
    f["country"] = 3.0
    return f


def _row_id(f):
    f.insert(0, "row_id", np.arange(len(f)))
    return f


def _sorted_integer_id(f):
    f["customer"] = np.arange(1000, 1000 + len(f))
    return f


# (name, corrupt the table, load options, what the one-line message must contain)
BAD_TABLES = [
    ("string in a numeric column", _string_in_numeric, {}, ["'income'", "'high'", "rows 5, 10"]),
    ("missing value", _nan, {}, ["'height'", "missing", "rows 3, 31"]),
    ("infinite value", _inf, {}, ["'height'", "infinite", "row 8"]),
    ("label seen on one row", _unseen_label, {}, ["'maybe'", "'label'", "row 12", "data.classes"]),
    ("label outside the declared classes", _unseen_label, {"classes": ["no", "yes"]}, ["'maybe'", "row 12", "declared"]),
    ("constant column", _constant, {}, ["'country'", "one value", "data.drop_columns"]),
    ("ID column by name", _row_id, {}, ["'row_id'", "row IDs", "data.drop_columns=[row_id]"]),
    ("ID column by order", _sorted_integer_id, {}, ["'customer'", "row IDs"]),
    ("absent drop column", lambda f: f, {"drop_columns": ["nope"]}, ["data.drop_columns", "'nope'"]),
    ("absent label column", lambda f: f.drop(columns="label"), {}, ["'label'", "not in"]),
]


@pytest.mark.parametrize("corrupt,options,expected", [b[1:] for b in BAD_TABLES], ids=[b[0] for b in BAD_TABLES])
def test_each_bad_table_is_one_line_naming_file_column_and_rows(tmp_path, corrupt, options, expected):
    path = tmp_path / "customers.csv"
    corrupt(good_table()).to_csv(path, index=False)
    with pytest.raises(DataError) as error:
        load_dataset(path, **options)
    message = str(error.value)
    assert "\n" not in message
    assert "customers.csv" in message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    "content,expected",
    [("", "is empty"), ("height,age,label\n", "no data rows"), ("a,a,label\n1,2,x\n", "repeats column name(s) 'a'")],
    ids=["empty file", "header only", "duplicate column names"],
)
def test_files_without_usable_rows_or_names(tmp_path, content, expected):
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=None) as error:
        load_dataset(path)
    assert expected in str(error.value) and "broken.csv" in str(error.value)


def test_the_declared_id_column_can_be_dropped_and_a_sorted_float_feature_is_kept(tmp_path):
    frame = _row_id(good_table()).sort_values("height", ignore_index=True)  # sorted by a real measurement
    frame["row_id"] = np.arange(len(frame))
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    _, info = load_dataset(path, drop_columns=["row_id"])
    assert info.feature_columns == ["height", "income", "age"]


def test_a_feature_column_absent_at_predict_time_is_named(tmp_path):
    from trustops.serving.predict import read_inputs

    path = tmp_path / "batch.csv"
    good_table().drop(columns=["income"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"batch.csv lacks 1 of the model's 3 feature columns: income"):
        read_inputs(path, ["height", "income", "age"], (3,))


def test_a_z_scored_table_passes_the_great_expectations_gate(tmp_path):
    """Ranges are learned per column (99% of rows within half a span of the training span, every row
    within 4 spans): a value at -3.98 outside the training split's span is legitimate for z-scores,
    while one row off by 1000x is not."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(400, 5))
    frame = pd.DataFrame((values - values.mean(0)) / values.std(0), columns=[f"z{i}" for i in range(5)])
    frame["label"] = (frame["z0"] + frame["z1"] > 0).astype(int)
    path = tmp_path / "zscored.csv"
    frame.to_csv(path, index=False)
    table, info = load_dataset(path)
    held_out = table.index[table["split"] != "train"]
    table.loc[held_out[0], "z3"] = -3.98
    rules = ValidationRules(range_margin=0.5, per_column=True)  # what data=table validates with
    columns = dict(feature_columns=info.feature_columns, label_column="label", split_column="split")
    assert validate_frame(table, rules=rules, **columns).success
    table.loc[held_out[1], "z2"] = 1000 * table["z2"].abs().max()
    report = validate_frame(table, rules=rules, **columns)
    assert [f.column for f in report.failed] == ["z2"]


def test_preflight_checks_the_whole_table_and_the_dp_bounds_before_any_run(tmp_path):
    """`trustops train` calls this before the pipeline: a bad table or a DP run without public bounds
    stops here (exit 2 in the CLI), so nothing is tracked or registered."""
    from trustops.errors import ConfigError
    from trustops.runs.preflight import check_training_inputs
    from trustops.settings import DataSettings, DPSettings, ModelSettings, TrainSettings

    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    _string_in_numeric(good_table()).to_csv(bad, index=False)
    good_table().to_csv(good, index=False)
    tabular = ModelSettings(family="tabular")
    no_dp = DPSettings(enabled=False, target_epsilon=None)
    with pytest.raises(DataError, match=r"bad.csv: column 'income' holds non-numeric values \('high'\) on rows 5, 10"):
        check_training_inputs(TrainSettings(data=DataSettings(path=str(bad)), model=tabular, dp=no_dp))
    assert check_training_inputs(TrainSettings(data=DataSettings(path=str(good)), model=tabular, dp=no_dp)) == good
    with pytest.raises(ConfigError, match=r"3 column\(s\) have none \(height, income, age\)"):
        check_training_inputs(TrainSettings(data=DataSettings(path=str(good)), model=tabular))
    ranges = {"height": [100, 250], "income": [0, 1e7], "age": [0, 120]}
    check_training_inputs(TrainSettings(data=DataSettings(path=str(good), feature_ranges=ranges), model=tabular))
