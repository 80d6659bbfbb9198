"""load_registered_model -> collect -> check -> chart -> alert: one monitor run, on one MLflow run."""

from zenml import pipeline

from steps.monitoring.chart_metrics import chart_metrics
from steps.monitoring.check_captures import check_captures
from steps.monitoring.collect_captures import collect_captures
from steps.monitoring.send_alerts import send_alerts
from steps.registry.load_registered_model import load_registered_model


@pipeline(enable_cache=False)
def monitoring_pipeline(
    model_name: str,
    model_version: str,
    monitors: list[str],
    state: str,
    tracker: str,
    false_page_budget: float = 500.0,
    drift_report: str = "on_shift",
    permutations: int | None = None,
    capture_uri: str | None = None,
) -> None:
    def tracked(step):
        return step.with_options(experiment_tracker=tracker)

    model, model_info = tracked(load_registered_model)(model_name=model_name, model_version=model_version)
    collected = tracked(collect_captures)(model_info=model_info, state=state, capture_uri=capture_uri)
    checked = tracked(check_captures)(model=model, model_info=model_info, collected=collected, monitors=monitors, state=state,
                                      false_page_budget=false_page_budget, drift_report=drift_report,
                                      permutations=permutations)
    charted = tracked(chart_metrics)(checked=checked, model_info=model_info, state=state)
    tracked(send_alerts)(collected=collected, checked=checked, charted=charted, model_info=model_info, state=state)
