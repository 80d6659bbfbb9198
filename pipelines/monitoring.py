"""resolve_registered_version -> collect -> check -> chart -> alert: one monitor pass, on one MLflow run.

The model is passed by reference (its registry URI in ``model_info``), never as a ZenML artifact.

The pass's run is a child of the model version's long-lived monitoring run, found (or created)
by the collect step; the chart step logs the control charts into that run.

``trustops monitor`` attaches each run to the ZenML model version the monitored MLflow version
was trained as, when it has one (see :mod:`trustops.zenml_model`).
"""

from zenml import pipeline

from steps.monitoring.chart_metrics import chart_metrics
from steps.monitoring.check_captures import check_captures
from steps.monitoring.collect_captures import collect_captures
from steps.monitoring.send_alerts import send_alerts
from steps.registry.load_registered_model import resolve_registered_version
from trustops.monitoring.checking import PassOptions


@pipeline(enable_cache=False)
def monitoring_pipeline(
    model_name: str,
    model_version: str,
    state: str,
    tracker: str,
    options: PassOptions,
    capture_uri: str | None = None,
    traffic: str = "production",
) -> None:
    def tracked(step):
        return step.with_options(experiment_tracker=tracker)

    model_info = tracked(resolve_registered_version)(model_name=model_name, model_version=model_version)
    collected, monitoring_run_id = tracked(collect_captures)(model_info=model_info, state=state, capture_uri=capture_uri,
                                                             traffic=traffic)
    checked = tracked(check_captures)(model_info=model_info, collected=collected, options=options)
    charted = tracked(chart_metrics)(checked=checked, model_info=model_info, state=state, monitoring_run_id=monitoring_run_id)
    tracked(send_alerts)(collected=collected, checked=checked, charted=charted, model_info=model_info, state=state)
