"""The DVC side: make sure the default data exists and is in the DVC remote."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from trustops.errors import DataError

logger = logging.getLogger(__name__)

PREPARE_STAGE = "prepare"


def reproduce_default_data(root: Path, *, push: bool = True) -> list[str]:
    """``dvc repro prepare`` (a no-op when the data matches dvc.lock), then ``dvc push``.

    Returns the names of the stages that ran.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    # The stage command is `trustops prepare`: make sure it is this environment's trustops.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        with Repo(str(root)) as repo:
            stages = repo.reproduce(PREPARE_STAGE)
            if push:
                repo.push()
    except DvcException as error:
        raise DataError(f"DVC could not prepare the default data in {root}: {error}. Check `dvc status` and `dvc remote list`.") from error
    return [stage.addressing for stage in stages]
