"""Step: read the data set, split it, and record its lineage on the MLflow run."""

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from zenml import step

from trustops.data.loading import load_configured
from trustops.failpoints import failpoint
from trustops.paths import project_root
from trustops.settings import TrainSettings
from trustops.tracking import config_params, log_batch, source_tags


@step(enable_cache=False)
def load_data(
    settings: dict[str, Any], resolved_config: str, run_tags: dict[str, str]
) -> tuple[Annotated[pd.DataFrame, "dataset"], Annotated[dict[str, Any], "dataset_info"]]:
    import mlflow

    root = project_root()
    data = settings["data"]
    path = Path(data["path"]) if Path(data["path"]).is_absolute() else root / data["path"]
    frame, info = load_configured(path, data)
    mlflow.log_text(resolved_config, "config/resolved.yaml")
    log_batch(
        params={**config_params(settings), "data.resolved_path": info.path, "trainer.effective_lr": TrainSettings.from_dict(settings).learning_rate},
        metrics={f"data_rows_{split}": size for split, size in info.split_sizes.items()},
        tags={
            **run_tags,
            "data_hash": info.data_hash,
            "data_path": info.path,
            "data_dvc_tracked": str(info.dvc_tracked).lower(),
            **source_tags(root),
        },
    )
    failpoint("train.load")  # the stage is done and recorded; nothing handed on yet
    return frame, info.to_dict()
