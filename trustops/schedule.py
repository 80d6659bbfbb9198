"""Run the monitor on a cron schedule: in-process, or as a crontab line for the system's cron.

In-process runs never overlap: a run that would start while the previous one still holds the
monitor lock is skipped (and says so). ZenML's local orchestrator ignores schedules; on a stack
whose orchestrator runs them (Kubernetes, Airflow), schedule the monitor there instead (README).
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from trustops.errors import ConfigError, TrustopsError

if TYPE_CHECKING:
    from trustops.monitoring.budget import PassOptions

logger = logging.getLogger(__name__)


def parse_cron(expression: str):
    from croniter import croniter

    if not croniter.is_valid(expression):
        raise ConfigError(
            f"Invalid cron expression {expression!r}: use five fields 'minute hour day month weekday' "
            "(optionally a sixth for seconds), e.g. '*/5 * * * *' for every five minutes."
        )
    return croniter(expression, datetime.now(timezone.utc))


def crontab_line(expression: str, model: str, root: Path, options: PassOptions | None = None) -> str:
    """A crontab line that runs ``trustops monitor`` on ``model`` with ``options`` at every tick, logging to the project."""
    parse_cron(expression)
    trustops = Path(sys.executable).parent / "trustops"
    log = root / ".trustops" / "monitoring" / "cron.log"
    flags = "".join(f" {shlex.quote(flag)}" for flag in options.command_flags()) if options is not None else ""
    command = (f"cd {shlex.quote(str(root))} && {shlex.quote(str(trustops))} monitor --model {shlex.quote(model)}{flags} "
               f">> {shlex.quote(str(log))} 2>&1")
    return f"{expression} {command}"


def run_schedule(expression: str, job: Callable[[], object], *, max_runs: int | None = None) -> int:
    """Call ``job`` at every tick of ``expression``; errors are reported and the schedule goes on."""
    ticks = parse_cron(expression)
    runs = 0
    while max_runs is None or runs < max_runs:
        next_time = ticks.get_next(datetime)
        time.sleep(max(0.0, (next_time - datetime.now(timezone.utc)).total_seconds()))
        runs += 1
        try:
            job()
        except TrustopsError as error:  # one failed tick must not end the schedule
            print(f"trustops schedule: run {runs} at {next_time:%Y-%m-%d %H:%M:%S} failed: {error}", file=sys.stderr, flush=True)
    return 0
