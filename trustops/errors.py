"""The trustops exception hierarchy.

Each class also subclasses the matching built-in, so callers can catch either
(``except ValueError`` keeps working for a bad config value).  Every message names
the problem and what to do about it; the CLI prints it as one line and exits non-zero.
"""


class TrustopsError(Exception):
    """Base class of every error trustops raises on purpose."""


class ConfigError(TrustopsError, ValueError):
    """A configuration value is invalid or a key does not exist."""


class DataError(TrustopsError, ValueError):
    """A data file is missing, unreadable or has the wrong layout."""


class DataValidationError(DataError):
    """The data failed its Great Expectations suite."""


class ServiceError(TrustopsError, RuntimeError):
    """A service trustops depends on (tracking server, store) did not answer as expected."""


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (cron, systemd or Kubernetes stopping it).

    A ``KeyboardInterrupt`` so that it unwinds the job exactly as Ctrl-C does: through every
    ``finally`` (locks released, MLflow run ended as KILLED) and past ``except Exception``.
    """

    exit_code = 143  # 128 + SIGTERM, what shells and supervisors expect
