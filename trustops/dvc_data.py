"""The DVC side: make sure the default data exists and is in the DVC remote.

``dvc.yaml`` has more data stages than the default one (``prepare_fashion_mnist`` reads Debian's
``dataset-fashion-mnist`` package).  The main job reproduces and pushes the default stage by
name, and only it, so a machine without that package still runs ``make run``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from trustops.errors import DataError

logger = logging.getLogger(__name__)

PREPARE_STAGE = "prepare"
#: Not part of the main job: needs Debian's dataset-fashion-mnist (``dvc repro prepare_fashion_mnist``).
FASHION_MNIST_STAGE = "prepare_fashion_mnist"


def reproduce_default_data(root: Path, *, push: bool = True) -> list[str]:
    """``dvc repro prepare`` (a no-op when the data matches dvc.lock), then ``dvc push prepare``.

    Returns the names of the stages that ran.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    # The stage command is `trustops prepare`: make sure it is this environment's trustops.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        # DVC resolves a stage name against the working directory's dvc.yaml and runs stages only
        # from inside the repository, so work from the root (`trustops run` may start in a sub-folder).
        with contextlib.chdir(root), Repo(str(root)) as repo:
            stages = repo.reproduce(PREPARE_STAGE)
            if push:
                # The stage's outputs only: another stage's data may be in dvc.lock but not on this machine.
                repo.push(targets=[PREPARE_STAGE])
    except DvcException as error:
        raise DataError(f"DVC could not prepare the default data in {root}: {error}. Check `dvc status` and `dvc remote list`.") from error
    return [stage.addressing for stage in stages]
