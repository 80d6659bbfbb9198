"""The ``trustops`` command line: one entry point for every job.

Start-up is paid once, and only by the commands that need it: this module and the parser
import no torch, ZenML, MLflow or pandas, and each command imports them only after its
arguments and overrides have been validated (tests/core/test_cli_startup.py checks it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from trustops.errors import Terminated, TrustopsError
from trustops.settings import DEFAULT_MODEL_NAME

if TYPE_CHECKING:
    from trustops.monitoring.budget import PassOptions

logger = logging.getLogger("trustops")

OVERRIDES_HELP = (
    "Hydra overrides, e.g. model.activation=smelu model.beta=1.0 dp.target_epsilon=3 dp=off model=cnn "
    "data=table data.path=my.csv data.label_column=y"
)


class _DropKnownNoise(logging.Filter):
    """Messages that are expected on every run and say nothing to a trustops user."""

    NOISE = (
        "Setting the global active stack",
        "GPU available:",
        "TPU available:",
        "litlogger",
        # trustops deletes the DAG itself (trustops schedule --zenml --delete), so this is not so.
        "Orchestrator does not support schedule deletion",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in self.NOISE)


class _UntilZenMLLogs(logging.StreamHandler):
    """Prints trustops's own log lines for commands that never load ZenML.

    Once ZenML is imported its console handler on the root logger prints them (as before
    trustops stopped importing ZenML up front); this handler then stays silent, so no line
    appears twice.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if "zenml.logger" in sys.modules:
            return
        self.stream = sys.stdout  # the current one: tests and callers may have replaced it
        super().emit(record)


def _quiet_libraries() -> None:
    """Logger levels and filters for the libraries; sets names only, imports none of them."""
    import warnings

    root = logging.getLogger()
    if not any(isinstance(handler, _UntilZenMLLogs) for handler in root.handlers):
        root.addHandler(_UntilZenMLLogs())
    for noisy in ("lightning", "pytorch_lightning", "lightning_fabric", "great_expectations",
                  "zenml", "mlflow", "alembic", "hydra", "opacus", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("trustops").setLevel(logging.INFO)
    noise_filter = _DropKnownNoise()
    for name in ("zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker", "zenml.client",
                 "zenml.zen_stores.base_zen_store"):
        logging.getLogger(name).addFilter(noise_filter)
    # Known, harmless warnings: Lightning's own deprecation, Opacus's hook notice on inputs
    # that need no gradient, and the RDP accountant's note that a larger order could tighten
    # (lower) the reported epsilon; the reported value is a valid upper bound either way.
    for message in (".*isinstance\\(treespec, LeafSpec\\).*", ".*Full backward hook is firing.*",
                    ".*Optimal order is the largest alpha.*", ".*does not have many workers.*"):
        warnings.filterwarnings("ignore", message=message)


class _Parser(argparse.ArgumentParser):
    """An argument parser that can take its arguments from a heavy module only when it is used.

    ``deferred_arguments(parser)`` runs the first time this parser parses or prints its help,
    so ``trustops --help`` and every other command never import that module.
    """

    def __init__(self, *args: Any, deferred_arguments: Callable[[argparse.ArgumentParser], Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred_arguments = deferred_arguments

    def _add_deferred_arguments(self) -> None:
        if self._deferred_arguments is not None:
            add_arguments, self._deferred_arguments = self._deferred_arguments, None
            add_arguments(self)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        self._add_deferred_arguments()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_deferred_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_deferred_arguments()
        return super().format_help()


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    from trustops.serving.predict import add_predict_arguments  # loads pandas: only for `trustops predict`

    add_predict_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trustops",
        description="A trustworthy-ML pipeline: DVC data, ZenML steps, DP training, MLflow tracking.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser("run", help="The main job: prepare the data with DVC, train, evaluate, register, summarise.")
    run.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)

    train = commands.add_parser("train", help="Run the training pipeline once, or once per sweep point with -m.")
    train.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    train.add_argument("-m", "--multirun", action="store_true", help="sweep: dp.target_epsilon=1,3,8 runs three pipelines")
    train.add_argument("-c", "--cfg", choices=("job", "hydra", "all"), default=None,
                       help="print the composed config instead of training (job: resolved, as the pipeline gets it)")
    train.add_argument("--info", action="store_true", help="list the config groups, their options and the chosen ones")
    train.add_argument("--dvc-reports", metavar="DIR", default=None,
                       help="also write DIR/metrics.json and DIR/plots/ for DVC (the dvc.yaml 'train' stage)")
    train.add_argument("--params-file", metavar="YAML", default=None,
                       help="take overrides from a DVC params file, e.g. params.yaml (command-line overrides win)")

    detect = commands.add_parser(
        "detect", help="Attack a registered model with PGD and test for the shift in its penultimate activations (MMD)."
    )
    detect.add_argument("overrides", nargs="*", help="e.g. model_version=3 attack.epsilon=1.0 detect.n_tests=50")

    commands.add_parser("predict", help="Score a file with a registered model, capturing PREDICT steps.",
                        deferred_arguments=_predict_arguments)

    monitor = commands.add_parser("monitor", help="Monitor the batches a registered model captured since the last run.")
    monitor.add_argument("--model", default=DEFAULT_MODEL_NAME, help="NAME or NAME:VERSION (default: %(default)s, latest)")
    _add_pass_arguments(monitor)
    monitor.add_argument("--repair", action="store_true",
                         help="first move damaged state files aside (NAME.damaged-TIME) and start them afresh")

    schedule = commands.add_parser("schedule", help="Run the monitor on a cron schedule (in-process), or print the crontab line.")
    schedule.add_argument("--cron", default=None, help="cron expression, e.g. '*/5 * * * *' (UTC); required unless --delete")
    schedule.add_argument("--model", default=DEFAULT_MODEL_NAME, help="NAME or NAME:VERSION (default: %(default)s)")
    schedule.add_argument("--print-crontab", action="store_true", help="print the crontab line instead of running")
    schedule.add_argument("--max-runs", type=int, default=None, help="stop after this many runs (default: never)")
    _add_pass_arguments(schedule)  # every scheduled pass runs with them
    schedule.add_argument("--zenml", action="store_true",
                          help="register a ZenML Schedule on the active stack's orchestrator (Kubernetes, Airflow) instead")
    schedule.add_argument("--delete", action="store_true",
                          help="with --zenml: delete the model's ZenML monitor schedule(s) and, on Airflow, their DAG files")

    trust = commands.add_parser("trust", help="Trust studies: robustness curves and reproducibility (prediction difference).")
    studies = trust.add_subparsers(dest="study", required=True, metavar="STUDY")
    studies.add_parser("robustness", help="Accuracy under PGD against ε for standard, DP and SmeLU models.").add_argument(
        "overrides", nargs="*", help="e.g. epsilon=0,1,2 variant=standard,smelu trainer.max_epochs=5 attack.steps=20"
    )
    studies.add_parser("reproducibility", help="Prediction difference between models trained on different data orders.").add_argument(
        "overrides", nargs="*", help="e.g. variant=relu,smelu-1 n_pairs=5 trainer.max_epochs=5 dp.enabled=true"
    )

    prepare = commands.add_parser(
        "prepare", help="Export a built-in data set with its seeded split (the DVC 'prepare' and 'prepare_fashion_mnist' stages)."
    )
    prepare.add_argument("--dataset", choices=("digits", "fashion_mnist"), default="digits",
                         help="digits: scikit-learn's embedded 8x8 digits; fashion_mnist: Fashion-MNIST from Debian's "
                              "dataset-fashion-mnist package (default: %(default)s)")
    prepare.add_argument("--out", default=None,
                         help="output file (default: data/digits.parquet, or data/fashion_mnist.npz for fashion_mnist)")
    prepare.add_argument("--seed", type=int, default=0, help="split seed (default: %(default)s)")
    prepare.add_argument("--source-dir", default=None,
                         help="fashion_mnist only: the folder with the four IDX files (default: /usr/share/datasets/fashion-mnist)")

    config = commands.add_parser("config", help="Print the resolved configuration for the given overrides (as `train --cfg job`).")
    config.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    config.add_argument("-c", "--cfg", choices=("job", "hydra", "all"), default="job", help="which part (default: %(default)s)")
    config.add_argument("--info", action="store_true", help="list the config groups, their options and the chosen ones")

    ui = commands.add_parser("ui", help="Start the MLflow UI on the project's tracking store.")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    ui.add_argument("--port", type=int, default=5000, help="port (default: %(default)s)")
    ui.add_argument("--workers", type=int, default=1, help="server worker processes (default: %(default)s)")
    ui.add_argument("--jobs", action="store_true", help="also run MLflow's background job runner (GenAI evaluation jobs; off by default)")
    ui.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the UI to answer (default: %(default)s)")

    drift_ui = commands.add_parser("drift-ui", help="Start Evidently's UI on the project's Evidently workspace: drift per monitor pass.")
    drift_ui.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: %(default)s)")
    drift_ui.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the UI to answer (default: %(default)s)")

    report = commands.add_parser(
        "report", help="Write a model version's trust report (Markdown + HTML) and log it to its MLflow training run.")
    report.add_argument("--model", default=DEFAULT_MODEL_NAME, metavar="NAME[:VERSION|@ALIAS]", help="default: %(default)s, latest ready version")
    report.add_argument("--out", default="trust_reports", help="folder for <name>-v<version>/ (default: %(default)s)")

    zenml = commands.add_parser(
        "zenml", add_help=False, help="Run ZenML's own CLI on the project's ZenML store (e.g. `trustops zenml pipeline runs list`).")
    zenml.add_argument("zenml_args", nargs=argparse.REMAINDER, metavar="ARGS", help="the arguments of `zenml`")

    stack = commands.add_parser("stack", help="Register (idempotently) and show the trustops ZenML stack.")
    stack_kinds = stack.add_subparsers(dest="stack_kind", required=False, metavar="KIND", parser_class=_Parser)
    airflow = stack_kinds.add_parser(
        "airflow", help="Register (or update) a stack that runs the pipelines and schedules on Apache Airflow.")
    airflow.add_argument("--dag-folder", required=True, metavar="PATH", help="Airflow's DAG folder ([core] dags_folder)")
    airflow.add_argument("--name", default="trustops_airflow", help="stack and orchestrator name (default: %(default)s)")

    server = commands.add_parser("server", help="Start an MLflow tracking server (SQLite in .trustops by default, artifacts proxied).")
    server.add_argument("--backend-store-uri", default=None, help="any SQLAlchemy URL (default: sqlite:///.trustops/mlflow.db)")
    server.add_argument("--artifacts-destination", default=None,
                        help="where proxied artifacts go, e.g. s3://bucket/prefix (default: the storage setting, else .trustops/mlartifacts)")
    server.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    server.add_argument("--port", type=int, default=5000, help="port (default: %(default)s)")
    server.add_argument("--workers", type=int, default=2, help="server worker processes (default: %(default)s)")

    compare = commands.add_parser("compare", help="Runs compared: one row per run, trust metrics and tags across (terminal, Markdown, CSV).")
    compare.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="MLflow run ids (default: the newest runs)")
    compare.add_argument("--experiment", action="append", default=[], metavar="NAME", help="only runs of this experiment (repeatable)")
    compare.add_argument("--latest-per-config", action="store_true", help="only the newest run of each configuration")
    compare.add_argument("--max-runs", type=int, default=10, help="at most this many runs (default: %(default)s)")
    compare.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    compare.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    compare.add_argument("--transpose", action="store_true", help="one column per run, one row per quantity")

    promote = commands.add_parser("promote", help="Point an alias (e.g. champion) at a ready model version; NAME@ALIAS then serves it.")
    promote.add_argument("name", help="registered model name")
    promote.add_argument("version", help="version number; only a version whose training run finished")
    promote.add_argument("--alias", required=True, help="the alias to set, e.g. champion")

    storage = commands.add_parser("storage", help="Show, set or check the one storage setting (DVC remote, MLflow artifacts, captures).")
    storage_actions = storage.add_subparsers(dest="storage_action", required=True, metavar="ACTION")
    use = storage_actions.add_parser("use", help="Point all three stores at s3://bucket/prefix, or back at 'local'.")
    use.add_argument("uri", help="s3://bucket/prefix or local")
    use.add_argument("--endpoint-url", default=None, help="endpoint of an S3-compatible server, e.g. http://127.0.0.1:8333")
    use.add_argument("--region", default=None, help="S3 region (default: boto3's)")
    use.add_argument("--no-check", action="store_true", help="do not check that the bucket answers")
    storage_actions.add_parser("show", help="Print the storage setting and where each store lives.")
    storage_actions.add_parser("check", help="Check that the storage answers with the current credentials.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from trustops.stack import configure_zenml_environment

    _quiet_libraries()
    _terminate_like_interrupt()
    try:
        # Environment variables only; ZenML is imported later, by the commands that need it.  Inside the
        # `try`, so a malformed storage setting is one line; `trustops storage` reads that setting itself,
        # so `storage use` can still replace a broken one.
        configure_zenml_environment(apply_storage=args.command != "storage")
        return _dispatch(args)
    except TrustopsError as error:
        print(f"trustops: error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    except Terminated:
        print("trustops: terminated (SIGTERM); the current run was ended as KILLED", file=sys.stderr)
        import gc

        gc.freeze()  # the exit's final collection of a trained job's heap took 5-10 s; a supervisor waits less
        return Terminated.exit_code
    except KeyboardInterrupt:
        print("trustops: interrupted", file=sys.stderr)
        return 130


def _terminate_like_interrupt() -> None:
    """SIGTERM unwinds the job like Ctrl-C (Python's default for SIGTERM is to die on the spot).

    Dying on the spot leaves the MLflow run RUNNING and the monitor lock held; raising
    :class:`Terminated` runs every ``finally`` on the way out instead.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be installed from the main thread (e.g. an in-process caller)

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def _add_pass_arguments(parser: argparse.ArgumentParser) -> None:
    """What a monitor pass checks, and how: the same flags for ``trustops monitor`` and ``trustops schedule``."""
    parser.add_argument("--monitors", nargs="+", default=None, help="monitor plugins to run (default: all the loop knows)")
    parser.add_argument("--false-page-budget", default="500", metavar="BATCHES",
                        help="expected clean batches between false pages, all monitors together (default: %(default)s)")
    parser.add_argument("--permutations", type=int, default=None,
                        help="resamples per test (default: the fewest that reach each monitor's page limit)")
    parser.add_argument("--drift-report", choices=("on_shift", "always", "never"), default="on_shift",
                        help="Evidently's drift report over the pass's rows, as HTML and as a snapshot in the Evidently "
                             "workspace (`always` draws every pass in `trustops drift-ui`; default: %(default)s)")
    parser.add_argument("--combine-layers", nargs="+", default=None, metavar="LAYER",
                        help="test these layers together in mmd_adversarial, one Fisher combination (e.g. block2 penultimate; "
                             "each captured: train with capture.layers=[block2]). Default: the penultimate layer alone")


def _pass_options(args: argparse.Namespace) -> PassOptions:
    """The pass options the flags ask for, every rule checked (a :class:`ConfigError` before anything is read)."""
    from trustops.monitoring.budget import PassOptions

    return PassOptions.requested(args.monitors, false_page_budget=args.false_page_budget, drift_report=args.drift_report,
                                 permutations=args.permutations, combine_layers=args.combine_layers)


def _dispatch(args: argparse.Namespace) -> int:
    from trustops import commands

    handlers = {
        "run": lambda: commands.main_job(args.overrides),
        "train": lambda: commands.train(args.overrides, multirun=args.multirun, cfg=args.cfg, info=args.info,
                                        dvc_reports=args.dvc_reports, params_file=args.params_file),
        "detect": lambda: commands.detect(args.overrides),
        "trust": lambda: commands.trust_study(args.study, args.overrides),
        "monitor": lambda: commands.monitor(args.model, _pass_options(args), repair=args.repair),
        "predict": lambda: commands.predict(args),
        "schedule": lambda: commands.schedule(args.cron, args.model, _pass_options(args), print_crontab=args.print_crontab,
                                              max_runs=args.max_runs, on_stack=args.zenml, delete=args.delete),
        "prepare": lambda: commands.prepare(args.out, seed=args.seed, dataset=args.dataset, source_dir=args.source_dir),
        "config": lambda: commands.train(args.overrides, cfg=args.cfg, info=args.info),
        "ui": lambda: commands.ui(args.host, args.port, workers=args.workers, jobs=args.jobs, timeout=args.timeout),
        "drift-ui": lambda: commands.drift_ui(args.port, timeout=args.timeout),
        "stack": lambda: commands.stack_airflow(args.dag_folder, name=args.name) if args.stack_kind == "airflow" else commands.stack(),
        "server": lambda: commands.server(args),
        "zenml": lambda: commands.zenml_cli(args.zenml_args),
        "report": lambda: commands.trust_report(args.model, args.out),
        "compare": lambda: commands.compare(args),
        "promote": lambda: commands.promote(args.name, args.version, alias=args.alias),
        "storage": lambda: commands.storage(args),
    }
    return handlers[args.command]()


if __name__ == "__main__":
    sys.exit(main())
