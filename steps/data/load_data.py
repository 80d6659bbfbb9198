"""Step: read the data set, split it, and record its lineage on the MLflow run."""

from pathlib import Path
from typing import Annotated

import pandas as pd
from zenml import step

import steps.materializers  # noqa: F401 - registers the JSON materializer of the records these steps return
from trustops.data.loading import DatasetInfo, load_configured
from trustops.failpoints import failpoint
from trustops.paths import project_root
from trustops.settings import TrainSettings
from trustops.tracking import config_params, dataset_source, log_batch, log_dataset_inputs, source_tags

SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}  # MLflow's usual input contexts


@step(enable_cache=False)
def load_data(
    settings: TrainSettings, resolved_config: str, run_tags: dict[str, str]
) -> tuple[Annotated[pd.DataFrame, "dataset"], Annotated[DatasetInfo, "dataset_info"]]:
    import mlflow

    root = project_root()
    path = Path(settings.data.path) if Path(settings.data.path).is_absolute() else root / settings.data.path
    frame, info = load_configured(path, settings.data)
    mlflow.log_text(resolved_config, "config/resolved.yaml")
    log_batch(
        params={**config_params(settings.to_dict()), "data.resolved_path": info.path, "trainer.effective_lr": settings.learning_rate},
        metrics={f"data_rows_{split}": size for split, size in info.split_sizes.items()},
        tags={
            **run_tags,
            "data_hash": info.data_hash,
            "data_path": info.path,
            "data_dvc_tracked": str(info.dvc_tracked).lower(),
            **source_tags(root),
        },
    )
    # Each split as an input of the training run, so the UI shows what the model was trained,
    # validated and tested on (rows, schema, digest) and runs on the same data line up.
    splits = [(split, rows) for split, rows in frame.groupby(info.split_column, sort=False)]
    source = dataset_source(info.path)
    log_dataset_inputs(  # parallel trainings on the same data may race to insert these datasets
        datasets=[mlflow.data.from_pandas(rows.drop(columns=[info.split_column]), source=source, name=f"{path.stem} {split}",
                                          targets=info.label_column) for split, rows in splits],
        contexts=[SPLIT_CONTEXTS.get(split, split) for split, _ in splits],
        tags_list=[{"data_hash": info.data_hash} for _ in splits],
    )
    failpoint("train.load")  # the stage is done and recorded; nothing handed on yet
    return frame, info
