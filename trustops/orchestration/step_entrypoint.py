"""ZenML's step entrypoint for one Airflow task, minus the slow exit and the needless imports.

Each Airflow task is a fresh interpreter that imports torch, Lightning, MLflow and ZenML. At
exit, Python's final garbage collection walks that whole heap: 4 s per task measured on 2
cores, about 40 s of a training run plus a monitor pass. Freezing the heap once the step has
run skips that walk; objects are still released by reference counting and ``atexit`` handlers
(MLflow's, ZenML's log upload) still run. The trustops CLI does the same on SIGTERM.
"""

from __future__ import annotations

import gc


def main() -> None:
    from zenml.entrypoints.entrypoint import main as run_step

    from trustops.stack import skip_autologging_cleanup_of_unimported_frameworks

    skip_autologging_cleanup_of_unimported_frameworks()  # as in the CLI: a monitor task never imports Lightning
    try:
        run_step()
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
