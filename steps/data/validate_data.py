"""Step: the Great Expectations gate; a failing suite stops the pipeline before training."""

import json
from typing import Annotated, Any

import pandas as pd
from zenml import step

from trustops.data.loading import DatasetInfo
from trustops.data.validation import ValidationRules, validate_frame
from trustops.errors import DataValidationError
from trustops.failpoints import failpoint
from trustops.settings import DataSettings
from trustops.tracking import log_batch


@step(enable_cache=False)
def validate_data(
    dataset: pd.DataFrame, dataset_info: DatasetInfo, data_settings: DataSettings
) -> Annotated[dict[str, Any], "validation_report"]:
    import mlflow

    report = validate_frame(
        dataset,
        feature_columns=dataset_info.feature_columns,
        label_column=dataset_info.label_column,
        split_column=dataset_info.split_column,
        rules=ValidationRules(
            value_range=tuple(data_settings.value_range) if data_settings.value_range else None,
            classes=data_settings.classes,
            min_rows=data_settings.min_rows,
            max_class_kl=data_settings.max_class_kl,
            range_margin=data_settings.range_margin,
            # Categorical columns hold codes into their vocabulary (-1: a value training never saw).
            feature_ranges={**(data_settings.feature_ranges or {}),
                            **{c: [-1, max(0, len(v) - 1)] for c, v in dataset_info.categories.items()}},
            per_column=dataset_info.image_shape is None,
        ),
    )
    mlflow.log_text(json.dumps(report.to_dict(), indent=2, default=str), "validation/result.json")
    log_batch(
        metrics={"validation_expectations": report.evaluated, "validation_failed_expectations": len(report.failed)},
        tags={"validation": "passed" if report.success else "failed"},
    )
    if not report.success:
        raise DataValidationError(f"Data validation failed for {dataset_info.path}: {report.summary()}")
    failpoint("train.validate")  # the stage is done and recorded; nothing handed on yet
    return report.to_dict()
