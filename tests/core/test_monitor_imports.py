"""A monitor pass never imports Lightning: it only loads a model and checks batches.

Each check runs in a fresh interpreter (what is imported is per process), on the real modules a
``trustops monitor`` process and an Airflow task import: the monitoring pipeline, the model
loader, and ZenML's MLflow experiment tracker clean-up after a step.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LIGHTNING = ("lightning", "pytorch_lightning")


def run_python(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_the_monitor_pipeline_the_model_loader_and_the_trackers_clean_up_import_no_lightning():
    found = run_python(
        "import json, sys\n"
        "import pipelines.monitoring\n"
        "from trustops.stack import skip_autologging_cleanup_of_unimported_frameworks\n"
        "from trustops.tracking import mlflow_pytorch\n"
        "from zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker import MLFlowExperimentTracker\n"
        "mlflow_pytorch()\n"
        "skip_autologging_cleanup_of_unimported_frameworks()\n"
        "MLFlowExperimentTracker.disable_autologging(None)  # what ZenML calls after every step\n"
        f"imported = [name for name in {LIGHTNING!r} if name in sys.modules]\n"
        "import pytorch_lightning  # still importable by whoever needs it\n"
        "print(json.dumps({'imported': imported, 'load_model': callable(mlflow_pytorch().load_model)}))\n"
    )
    assert found == {"imported": [], "load_model": True}


def test_the_trackers_clean_up_still_turns_off_autologging_that_was_turned_on():
    found = run_python(
        "import json\n"
        "import mlflow.sklearn\n"
        "from mlflow.utils.autologging_utils import autologging_is_disabled\n"
        "from trustops.stack import skip_autologging_cleanup_of_unimported_frameworks\n"
        "from zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker import MLFlowExperimentTracker\n"
        "mlflow.sklearn.autolog()\n"
        "before = autologging_is_disabled('sklearn')\n"
        "skip_autologging_cleanup_of_unimported_frameworks()\n"
        "skip_autologging_cleanup_of_unimported_frameworks()  # idempotent: one wrapper, not two\n"
        "MLFlowExperimentTracker.disable_autologging(None)\n"
        "print(json.dumps({'before': before, 'after': autologging_is_disabled('sklearn')}))\n"
    )
    assert found == {"before": False, "after": True}


def test_the_steps_package_still_re_exports_the_training_steps():
    found = run_python(
        "import json, sys, steps\n"
        "before = 'lightning' in sys.modules\n"
        "from steps import train_model, load_data\n"
        "print(json.dumps({'before': before, 'after': 'lightning' in sys.modules, 'names': sorted(steps.__all__),"
        " 'train_model': train_model.name}))\n"
    )
    assert found == {"before": False, "after": True, "train_model": "train_model",
                     "names": ["evaluate_model", "load_data", "register_model", "train_model", "validate_data"]}
