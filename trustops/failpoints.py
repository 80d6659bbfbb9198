"""Named points in a job where the fault-injection suite (``tests/faults/``) stops a real process.

``TRUSTOPS_FAILPOINT=<name>`` makes the process that reaches :func:`failpoint` with that name
write ``<name>`` to the file ``TRUSTOPS_FAILPOINT_READY`` (when set) and wait there, so the test
can kill it with a real signal at exactly that stage boundary.  Unset (always, outside the
suite) a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAILPOINT_ENV = "TRUSTOPS_FAILPOINT"
READY_FILE_ENV = "TRUSTOPS_FAILPOINT_READY"
WAIT_SECONDS = 600.0  # the test kills the process long before this; a forgotten one still ends


def failpoint(name: str) -> None:
    """Stop here (until killed) when the fault-injection suite asked for ``name``."""
    if os.environ.get(FAILPOINT_ENV) != name:
        return
    ready = os.environ.get(READY_FILE_ENV)
    if ready:
        partial = Path(f"{ready}.partial")
        partial.write_text(f"{name} {os.getpid()}\n")
        partial.replace(ready)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)  # short sleeps: a Python signal handler runs between them
