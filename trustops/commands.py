"""What each ``trustops`` subcommand does; the argument parsing lives in :mod:`trustops.cli`."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustops.paths import default_artifact_root, default_tracking_uri, project_root

if TYPE_CHECKING:
    from trustops.monitoring.budget import PassOptions

# Nothing heavy at module level: `trustops config` and a rejected override must not pay for
# torch, ZenML, MLflow or pandas.  Each command imports them once its input is validated.


def _train_task(cfg, *, sweep: bool):
    """The Hydra task: one config point -> one pipeline run."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from configs.training import settings_from_config

    settings = settings_from_config(cfg)  # a bad value fails here, before the pipeline's imports
    from trustops.runs.training import run_training

    point = " ".join(o for o in HydraConfig.get().overrides.task if not o.startswith("hydra"))
    return run_training(settings, OmegaConf.to_yaml(cfg, resolve=True), sweep_point=point if sweep else None)


def train(overrides: Sequence[str], *, multirun: bool = False, cfg: str | None = None, info: bool = False,
          dvc_reports: str | None = None, params_file: str | None = None) -> int:
    if params_file:
        from trustops.configuration import params_file_overrides

        overrides = [*params_file_overrides(params_file), *overrides]  # the command line wins
    if info:
        from trustops.configuration import describe_config

        print(describe_config(overrides), end="")
        return 0
    if cfg:
        return show_config(overrides, part=cfg)
    if dvc_reports and multirun:
        from trustops.errors import ConfigError

        raise ConfigError("--dvc-reports records one run: sweep with `dvc exp run --queue -S ...` instead of -m.")
    summaries = _train(overrides, multirun=multirun)
    if dvc_reports:
        from trustops.dvc_reports import write_reports

        written = write_reports(summaries[0], Path(dvc_reports))
        print(f"DVC metrics and plots: {', '.join(str(p) for p in written)}")
    return 0


def _train(overrides: Sequence[str], *, multirun: bool) -> list:
    from functools import partial

    from trustops.configuration import launch_config, validate_config
    from trustops.progress import step_banners
    from trustops.summary import print_training_summary

    if multirun:
        # Every point's values are checked before the first pipeline starts, so a bad value in
        # the last point fails in a second, not after the others have trained.
        validate_config(_validate_training_point, overrides, multirun=True)
    with step_banners():
        outcome = launch_config(partial(_train_task, sweep=multirun), overrides, multirun=multirun)
    if outcome.results:
        print_training_summary(outcome.results)
    if outcome.errors and len(outcome.errors) + len(outcome.results) > 1:
        print(f"{len(outcome.errors)} of {len(outcome.errors) + len(outcome.results)} sweep points failed; the first error follows.")
    outcome.raise_first_error()
    return outcome.results


def _validate_training_point(cfg) -> None:
    from configs.training import settings_from_config

    settings_from_config(cfg)


def main_job(overrides: Sequence[str]) -> int:
    from trustops.configuration import validate_config
    from trustops.dvc_data import reproduce_default_data

    validate_config(_validate_training_point, overrides)  # a bad override fails before DVC runs
    root = project_root()
    ran = reproduce_default_data(root)
    print(f"Data: {'prepared by DVC stage ' + ', '.join(ran) if ran else 'up to date with dvc.lock'} (pushed to the DVC remote).")
    summaries = _train(overrides, multirun=False)
    registration = summaries[0].registration
    if registration.get("version"):
        stream(registration["registered_model"], str(registration["version"]))
    from trustops.summary import ui_hint

    print(ui_hint())
    return 0




def stream(model_name: str, version: str) -> None:
    """Serve the demonstration stream and monitor after every batch; print what signalled where."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from trustops.data.registered import load_split
    from trustops.monitoring.stream import demo_batches, demo_capture_uri, serve
    from trustops.registry import resolve_registered_model
    from trustops.runs.monitoring import run_monitor
    from trustops.summary import format_table
    from trustops.tracking import load_pytorch_model

    uri = default_tracking_uri()
    found = resolve_registered_model(model_name, version, MlflowClient(uri, uri))
    mlflow.set_tracking_uri(uri)
    model = load_pytorch_model(found.model_uri)
    x, y, clamp = load_split(found, "test")
    # The stream is an experiment: its own capture store and monitor state, never production traffic.
    capture_uri = demo_capture_uri(found.capture_uri)
    print(f"\nStreaming batches through {found.name} v{found.version} with capture on (store {capture_uri}), "
          "monitoring after each:")
    rows = []
    for index, batch in enumerate(demo_batches(model, x, y, clamp)):
        serve(model, capture_uri, batch, backend=found.tags.get("capture_backend", "native"))
        report, _ = run_monitor(found.name, str(found.version), traffic="demo-stream", capture_uri=capture_uri)
        raised = [f"{a['kind']}" for a in report.alerts if a["monitor"] == "incident"]
        rows.append([index, batch.name, ", ".join(raised) or "-"])
    print()
    print(format_table(["batch", "traffic", "incidents opened / recovered"], rows))


def _detect_task(cfg):
    from configs.adversarial import settings_from_config

    settings = settings_from_config(cfg)  # a bad value fails here, before the pipeline's imports
    from trustops.lifecycle import reconcile_abandoned_runs
    from trustops.runs.adversarial import run_adversarial

    reconcile_abandoned_runs(default_tracking_uri(), root=project_root())

    return run_adversarial(settings)


def detect(overrides: Sequence[str]) -> int:
    from configs.adversarial import AdversarialConf
    from trustops.configuration import launch_config
    from trustops.progress import step_banners
    from trustops.summary import print_detection_summary

    with step_banners():
        outcome = launch_config(_detect_task, overrides, config=AdversarialConf)
    outcome.raise_first_error()
    print_detection_summary(outcome.results)
    return 0


def trust_study(study: str, overrides: Sequence[str]) -> int:
    from trustops.progress import step_banners
    from trustops.runs.studies import run_reproducibility, run_robustness

    with step_banners():
        return {"robustness": run_robustness, "reproducibility": run_reproducibility}[study](list(overrides))


def monitor(model: str, options: PassOptions | None = None, *, repair: bool = False) -> int:
    from trustops.runs.monitoring import repair_monitor_state, run_monitor
    from trustops.summary import format_table, ui_hint

    name, _, version = model.partition(":")
    if repair:
        for line in repair_monitor_state(name, version or "latest") or ["No damaged monitor state; nothing to repair."]:
            print(line)
    report, run_id = run_monitor(name, version or "latest", options)
    if report.no_op:
        # A no-op pass may record no MLflow run at all (run_id None): it is a cheap poll.
        recorded = f" (MLflow run {run_id[:12]} records the no-op)" if run_id else ""
        print(f"No new captured batches for {name}; nothing to monitor{recorded}.")
        if report.pending_alerts:
            print(f"{report.pending_alerts} alert(s) not yet delivered stay in the outbox for the next run.")
        return 0
    print(f"Monitored {len(report.steps)} batch(es) (capture steps {report.steps[0]}..{report.steps[-1]}).")
    p_values = sorted({k for row in report.metrics for k in row if k.endswith(".p_value")})
    print(format_table(["step", *[f"{k.removesuffix('.p_value')} p" for k in p_values]],
                       [[row["step"], *[row.get(k) for k in p_values]] for row in report.metrics]))
    for alert in report.alerts:
        print(f"  {alert['kind']}: {alert.get('headline') or alert['message']}")
    print(f"{len(report.alerts)} alert(s) raised or recovered (delivered by the configured channels).")
    if report.unreadable:
        print(f"{len(report.unreadable)} unreadable capture chunk(s) skipped and reported.")
    if report.pending_alerts:
        print(f"{report.pending_alerts} alert(s) not yet delivered stay in the outbox for the next run.")
    print(ui_hint())
    return 0


def schedule(cron: str | None, model: str, options: PassOptions | None = None, *, print_crontab: bool,
             max_runs: int | None, on_stack: bool = False, delete: bool = False) -> int:
    """Every scheduled pass runs with ``options``, checked now (and its layers against the model), not at the first tick."""
    from trustops.errors import ConfigError
    from trustops.monitoring.budget import PassOptions
    from trustops.schedule import crontab_line, parse_cron, run_schedule

    options = options if options is not None else PassOptions()
    name, _, version = model.partition(":")
    if delete:
        if not on_stack or cron or print_crontab:
            raise ConfigError("--delete removes a ZenML schedule: use `trustops schedule --zenml --delete --model NAME[:VERSION]`"
                              " (no --cron, no --print-crontab).")
        from trustops.runs.monitor_schedule import delete_schedules

        for line in delete_schedules(name, version):
            print(line)
        return 0
    if not cron:
        raise ConfigError("--cron is required, e.g. --cron '*/5 * * * *' (UTC).")
    parse_cron(cron)
    if options.combine_layers:
        from trustops.runs.monitoring import resolve_monitored_model, resolve_pass_layers

        resolve_pass_layers(resolve_monitored_model(name, version or "latest", project_root()), options)
    if print_crontab:
        print(crontab_line(cron, model, project_root(), options))
        return 0
    if on_stack:
        from trustops.runs.monitor_schedule import schedule_on_stack

        schedule_name = schedule_on_stack(cron, name, version or "latest", options)
        print(f"Registered ZenML schedule {schedule_name!r} ({cron!r}) on the active stack's orchestrator.")
        return 0
    print(f"Monitoring {model} on schedule {cron!r} (UTC); Ctrl-C to stop.", flush=True)
    return run_schedule(cron, lambda: monitor(model, options), max_runs=max_runs)


def predict(args) -> int:
    from trustops.serving.predict import run_predict

    return run_predict(args)


def prepare(out: str | None, *, seed: int, dataset: str = "digits", source_dir: str | None = None) -> int:
    if dataset == "fashion_mnist":
        from trustops.data.fashion_mnist import DEFAULT_SOURCE_DIR, export_fashion_mnist

        path = export_fashion_mnist(Path(out or "data/fashion_mnist.npz"), source_dir=Path(source_dir or DEFAULT_SOURCE_DIR), seed=seed)
    else:
        if source_dir is not None:
            from trustops.errors import ConfigError

            raise ConfigError("--source-dir is for --dataset fashion_mnist; the digits ship inside scikit-learn.")
        from trustops.data.digits import export_digits

        path = export_digits(Path(out or "data/digits.parquet"), seed=seed)
    print(f"Wrote {path}")
    return 0


def show_config(overrides: Sequence[str], *, part: str = "job") -> int:
    """Print the composed config as Hydra's ``--cfg`` does: ``job`` (resolved, without hydra-zen's
    ``_target_``/``_convert_``), ``hydra`` (Hydra's own settings) or ``all``."""
    from omegaconf import OmegaConf

    from trustops.configuration import compose_config, config_yaml, validate_config

    def validated(cfg):
        _validate_training_point(cfg)  # so a bad value is reported here too
        return cfg

    cfg = validate_config(validated, overrides)[0]
    if part != "job":
        cfg = compose_config(overrides, return_hydra_config=True)
    if part in ("job", "all"):
        job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if part == "all" else cfg
        print(config_yaml(job), end="")
    if part in ("hydra", "all"):
        print(OmegaConf.to_yaml(OmegaConf.create({"hydra": cfg.hydra})), end="")
    return 0


def ui(host: str, port: int, *, workers: int = 1, jobs: bool = False, timeout: float = 60.0) -> int:
    from trustops.errors import ConfigError
    from trustops.server import JOB_EXECUTION_ENV, serve_ui, server_environment, ui_command
    from trustops.tracking import is_local_store

    uri = default_tracking_uri()
    if not is_local_store(uri):
        print(f"MLFLOW_TRACKING_URI points at a tracking server; open {uri} in a browser.")
        return 0
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1. Got: {workers}")
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535. Got: {port}")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}"
    env = server_environment({**os.environ, "MLFLOW_TRACKING_URI": uri}, jobs=True if jobs else None)
    runner = "on" if env[JOB_EXECUTION_ENV].lower() in ("true", "1") else "off"
    print(f"Starting MLflow's server for the project's store ({workers} worker{'s' if workers > 1 else ''}, "
          f"job runner {runner}) ...", flush=True)
    return serve_ui(ui_command(uri, default_artifact_root(), host=host, port=port, workers=workers), env, f"{url}/",
                    timeout=timeout, announce=lambda line: print(line, flush=True))


def drift_ui(port: int = 8000, *, timeout: float = 60.0) -> int:
    """``evidently ui`` on loopback over the project's Evidently workspace, whose dashboards draw drift per monitor pass."""
    from trustops.errors import ConfigError
    from trustops.monitoring.evidently_workspace import WORKSPACE_ENV, has_projects, workspace_path
    from trustops.server import evidently_ui_command, serve_ui

    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535. Got: {port}")
    workspace = workspace_path()
    if not has_projects(workspace):
        print(f"trustops: no Evidently workspace at {workspace} yet (or {WORKSPACE_ENV}): run `trustops monitor "
              "--model NAME --drift-report always` first (with the evidently_drift monitor).", file=sys.stderr)
        return 2
    url = f"http://127.0.0.1:{port}"
    print(f"Starting Evidently's UI on the workspace {workspace} ...", flush=True)
    return serve_ui(evidently_ui_command(workspace, host="127.0.0.1", port=port), os.environ, f"{url}/",
                    timeout=timeout, announce=lambda line: print(line, flush=True), service="Evidently")


def trust_report(model: str, out: str) -> int:
    from mlflow.tracking import MlflowClient

    from trustops.registry import resolve_registered_model
    from trustops.trust_report import REPORT_ARTIFACT_DIR, build_trust_report, write_trust_report

    uri = default_tracking_uri()
    client = MlflowClient(uri, uri)
    name, _, version = model.partition(":")
    found = resolve_registered_model(name, version or "latest", client)
    report = build_trust_report(client, found)
    folder = Path(out) / f"{found.name}-v{found.version}"
    markdown, html = write_trust_report(report, folder)
    for page in (markdown, html):
        client.log_artifact(found.run_id, str(page), REPORT_ARTIFACT_DIR)
    print(f"Trust report for {found.name} v{found.version}: {markdown} and {html} "
          f"(logged to its training run {found.run_id} under {REPORT_ARTIFACT_DIR}/)")
    return 0


def zenml_cli(arguments: Sequence[str]) -> int:
    """ZenML's CLI in this process's place, pointed at the project's store (which `zenml` alone does not find)."""
    from trustops.errors import ConfigError
    from trustops.stack import configure_zenml_environment

    configure_zenml_environment(project_root())
    zenml = Path(sys.executable).with_name("zenml")
    if not zenml.exists():
        raise ConfigError(f"ZenML's command is missing from this environment ({zenml}); reinstall with `make install`.")
    sys.stdout.flush()
    os.execv(zenml, [str(zenml), *arguments])  # never returns


def stack() -> int:
    from trustops.stack import ensure_stack

    tracker = ensure_stack(default_tracking_uri())
    from zenml.client import Client

    model = Client().active_stack_model
    print(f"Active ZenML stack: {model.name}")
    for component_type, components in model.components.items():
        print(f"  {component_type.value:20} {components[0].name} ({components[0].flavor_name})")
    print(f"Experiment tracker {tracker!r} logs to {default_tracking_uri()}")
    return 0


def stack_airflow(dag_folder: str, *, name: str) -> int:
    from trustops.orchestration.airflow import register_airflow_stack

    components = register_airflow_stack(dag_folder, name=name, tracking_uri=default_tracking_uri())
    print(f"Registered ZenML stack {name!r}: an Airflow orchestrator writing DAGs to {Path(dag_folder).resolve()}; each step "
          f"runs as a task with {sys.prefix}/bin/python.")
    for kind, component in components.items():
        print(f"  {kind:20} {component}")
    print(f"Use it: TRUSTOPS_ZENML_STACK={name} trustops train ...  (or monitor, schedule --zenml --cron ...)")
    return 0


def server(args) -> int:
    from trustops.server import plan_server

    plan = plan_server(backend_store_uri=args.backend_store_uri, artifacts_destination=args.artifacts_destination,
                       host=args.host, port=args.port, workers=args.workers)
    print(f"{plan.describe()} (Ctrl-C to stop)", flush=True)
    print(f"Point the pipelines at it:  export MLFLOW_TRACKING_URI={plan.url}", flush=True)
    # Become the server, so Ctrl-C and signals reach it directly (as `trustops ui` does).
    os.execve(sys.executable, plan.command(), plan.environment(os.environ))
    return 0  # not reached


def compare(args) -> int:
    from mlflow.tracking import MlflowClient

    from trustops.compare import compare_runs, select_runs, write_outputs

    from trustops.lifecycle import reconcile_abandoned_runs

    uri = default_tracking_uri()
    client = MlflowClient(uri, uri)
    reconcile_abandoned_runs(uri, root=project_root(), client=client)  # a killed run shows KILLED, not in progress
    runs = select_runs(client, args.run_ids, experiments=args.experiment, latest_per_config=args.latest_per_config,
                       max_runs=args.max_runs)
    if not runs:
        print("No runs to compare.")
        return 0
    comparison = compare_runs(client, runs)
    print(comparison.to_text(transpose=args.transpose))
    for path in write_outputs(comparison, markdown=args.markdown, csv_path=args.csv, transpose=args.transpose):
        print(f"Wrote {path}")
    return 0


def promote(name: str, version: str, *, alias: str) -> int:
    from trustops.errors import ConfigError
    from trustops.settings import SAFE_NAME

    if not version.isdigit() or int(version) < 1:
        raise ConfigError(f"VERSION must be a version number (1, 2, ...). Got: {version!r}")
    # MLflow reserves `latest` and `v<number>`; `@` would not parse back as NAME@ALIAS.
    if not SAFE_NAME.fullmatch(alias) or alias.lower() == "latest" or (alias[:1] in "vV" and alias[1:].isdigit()):
        raise ConfigError(f"--alias must be a name of letters, digits, '.', '_' or '-', not 'latest' or 'v<number>'. Got: {alias!r}")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from trustops.registry import resolve_registered_model

    uri = default_tracking_uri()
    client = MlflowClient(uri, uri)
    found = resolve_registered_model(name, version, client)  # refuses a version whose training run did not finish
    try:
        previous = client.get_model_version_by_alias(found.name, alias).version
    except MlflowException:
        previous = None
    client.set_registered_model_alias(found.name, alias, str(found.version))
    was = "" if previous is None else f" (was version {previous})"
    print(f"{found.name}@{alias} is now version {found.version}{was}.")
    return 0


def storage(args) -> int:
    from trustops.storage import StorageSettings, apply_storage_environment, check_stores, save_storage, storage_file

    root = project_root()
    if args.storage_action == "use":
        setting = StorageSettings(args.uri, args.endpoint_url, args.region)
        if setting.is_s3 and not args.no_check:
            check_stores([("the storage", setting.uri, setting.endpoint_url)])
        save_storage(setting, root)
        print(f"Storage: {setting.describe()} (saved in {storage_file(root).name}" + (", DVC remote 's3' is the default)" if (
            setting.is_s3 and (root / ".dvc").is_dir()) else ")"))
    setting = apply_storage_environment(root)  # not applied at start-up: `use` may be replacing a broken setting
    if args.storage_action == "check" and setting.is_s3:
        check_stores([("the storage", setting.uri, setting.endpoint_url)])
        print(f"Storage {setting.describe()} answers.")
    if args.storage_action in ("show", "use"):
        _print_storage(setting)
    elif not setting.is_s3:
        print("Storage is local (.trustops/): nothing to check.")
    return 0


def _print_storage(setting) -> None:
    from trustops.storage import monitoring_location

    monitor_state = f"{monitoring_location()}/<model>/v<version>"
    if not setting.is_s3:
        print(f"Storage: local. DVC remote: .trustops/dvc-remote; MLflow artifacts: {default_artifact_root()}; "
              f"captures: .trustops/captures/<run>; monitor state: {monitor_state}")
        return
    print(f"Storage: {setting.describe()}")
    print(f"  DVC remote 's3':   {setting.dvc_url}")
    print(f"  MLflow artifacts:  {setting.artifact_root} (new experiments; a tracking server proxies to it)")
    print(f"  captures:          {setting.capture_uri('<run name>')}")
    print(f"  monitor state:     {monitor_state} (watermark, charts, conditions, outbox)")
    print("  credentials:       boto3's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE); never stored")

