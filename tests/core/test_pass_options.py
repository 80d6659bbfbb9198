"""One value for what a monitor pass checks: ``trustops monitor`` and every ``trustops schedule`` path build it
from the same flags, check it before anything is read, and a crontab line asks for exactly it again."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustops.cli import _pass_options, build_parser, main
from trustops.errors import ConfigError
from trustops.monitoring.budget import DEFAULT_MONITORS, RESAMPLING_OPTION, PassOptions, page_levels, resamples_for_level
from trustops.schedule import crontab_line


def _options_of(argv: list[str]) -> PassOptions:
    return _pass_options(build_parser().parse_args(argv))


def test_no_flags_mean_the_defaults_on_both_commands():
    assert _options_of(["monitor"]) == PassOptions() == _options_of(["schedule", "--cron", "* * * * *"])
    assert PassOptions().command_flags() == []


@st.composite
def requests(draw) -> PassOptions:
    monitors = tuple(draw(st.lists(st.sampled_from(DEFAULT_MONITORS), min_size=1, unique=True)))
    budget = draw(st.sampled_from([1.0, 20.0, 500.0, 1234.5678, 1e6]))
    resampling = [name for name in page_levels(monitors, budget) if name in RESAMPLING_OPTION]
    needed = max((resamples_for_level(page_levels(monitors, budget)[name]) for name in resampling), default=1)
    permutations = draw(st.one_of(st.none(), st.integers(needed, needed + 5_000)))
    combine = draw(st.sampled_from([(), ("block2", "penultimate"), ("features.0", "block1", "penultimate")]))
    if "mmd_adversarial" not in monitors:
        combine = ()
    return PassOptions(monitors=monitors, false_page_budget=budget, drift_report=draw(st.sampled_from(["on_shift", "always", "never"])),
                       permutations=permutations, combine_layers=combine)


@given(requests())
def test_a_crontab_line_asks_the_monitor_for_the_same_options(options):
    line = crontab_line("*/5 * * * *", "digits:3", Path("/srv/project"), options)
    words = shlex.split(line.split(" && ", 1)[1].split(" >> ", 1)[0])
    assert words[1:4] == ["monitor", "--model", "digits:3"]
    assert _options_of(words[1:]) == options


BAD_REQUESTS = [
    (["--false-page-budget", "0"], "false-page budget must be a number of clean batches between false pages (> 0)"),
    (["--false-page-budget", "often"], "Got: 'often'"),
    (["--permutations", "10"], "10 permutations cannot reach the page limit 1/3,000"),
    (["--monitors", "nosuch"], "Unknown or unusable monitor(s) nosuch"),
    (["--monitors", "accuracy", "--combine-layers", "block2", "penultimate"], "which this pass does not run"),
    (["--combine-layers", "penultimate"], "at least two distinct layer names"),
]


@pytest.mark.parametrize("flags,message", BAD_REQUESTS, ids=[" ".join(f) for f, _ in BAD_REQUESTS])
def test_a_bad_request_is_refused_before_anything_is_read(flags, message):
    with pytest.raises(ConfigError) as refused:
        _options_of(["schedule", "--cron", "* * * * *", *flags])
    assert message in str(refused.value)


@pytest.mark.parametrize("flags,message", BAD_REQUESTS[:3], ids=[" ".join(f) for f, _ in BAD_REQUESTS[:3]])
def test_the_schedule_exits_2_on_a_bad_request_and_prints_no_crontab_line(flags, message, capsys):
    assert main(["schedule", "--cron", "*/5 * * * *", "--print-crontab", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err
