"""load_data -> validate -> train -> evaluate -> register, every step on one MLflow run.

``trustops train`` attaches each run to a new version of the ZenML model named like the registered
model (``with_options(model=...)``, see :mod:`trustops.zenml_model`): the model is configuration,
so it is not fixed here.
"""

from zenml import pipeline

from steps import evaluate_model, load_data, register_model, train_model, validate_data
from trustops.settings import TrainSettings


@pipeline(enable_cache=False)
def training_pipeline(settings: TrainSettings, resolved_config: str, run_tags: dict[str, str], tracker: str) -> None:
    def tracked(step):
        return step.with_options(experiment_tracker=tracker)

    dataset, dataset_info = tracked(load_data)(settings=settings, resolved_config=resolved_config, run_tags=run_tags)
    tracked(validate_data)(dataset=dataset, dataset_info=dataset_info, data_settings=settings.data)
    model, training_summary = tracked(train_model)(
        dataset=dataset, dataset_info=dataset_info, settings=settings, after="validate_data"
    )
    evaluation = tracked(evaluate_model)(model=model, dataset=dataset, dataset_info=dataset_info)
    tracked(register_model)(
        model=model,
        dataset=dataset,
        dataset_info=dataset_info,
        training_summary=training_summary,
        evaluation=evaluation,
        settings=settings,
    )
