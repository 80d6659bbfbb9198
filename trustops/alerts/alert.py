"""What an alert says: the :class:`Alert` record and its JSON form.

An alert is a frozen value.  ``to_json`` / ``from_json`` round-trip it exactly (strict JSON:
a non-finite number is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``),
so the outbox can hold it across runs.  ``key`` names the ongoing *condition* an alert is
about; deduplication is keyed on it.

>>> from datetime import datetime, timezone
>>> alert = Alert(
...     monitor="control_charts", metric="accuracy", rule="3-sigma", value=0.71,
...     limits=Limits(lower=0.8), severity="critical", model_name="resnet18", model_version="3",
...     time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc), id="a1",
... )
>>> alert.key
'control_charts|accuracy|3-sigma|resnet18'
>>> Alert.from_json(alert.to_json()) == alert
True
>>> alert.summary()
'[CRITICAL] out of control: control_charts/accuracy = 0.71; rule 3-sigma; limits [0.8, -]; model resnet18 v3'
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

from trustops.alerts.errors import InvalidAlertError


class Severity(StrEnum):
    """How urgent an alert is; the names match Python's logging levels."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    """What happened."""

    OUT_OF_CONTROL = "out_of_control"
    RECOVERED = "recovered"
    ADVERSARIAL = "adversarial"
    DATA_QUALITY = "data_quality"
    MONITOR_FAILURE = "monitor_failure"


@dataclass(frozen=True)
class Limits:
    """The control limits a value was judged against; either side may be absent."""

    lower: float | None = None
    upper: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower", _optional_float("limits.lower", self.lower))
        object.__setattr__(self, "upper", _optional_float("limits.upper", self.upper))


def condition_key(monitor: str, metric: str, rule: str, model_name: str | None) -> str:
    """The stable name of an ongoing condition: ``monitor|metric|rule|model``.

    A ``|`` or ``\\`` inside a part is escaped with a backslash, so different parts never
    give the same key.  The model *version* is left out on purpose: a condition that is still
    out of control after a redeploy is the same condition, and one that cleared gets its
    ``recovered`` alert instead of lingering in the state file under the old version.
    """
    parts = (monitor, metric, rule, model_name or "")
    return "|".join(part.replace("\\", "\\\\").replace("|", "\\|") for part in parts)


def mlflow_run_url(tracking_uri: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    """The MLflow UI address of a run, or ``None`` unless the tracking URI is http(s).

    User name, password, query and fragment are dropped from ``tracking_uri`` so that
    credentials in it never reach an alert.
    """
    if not (tracking_uri and experiment_id and run_id):
        return None
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname:  # an IPv6 literal needs its brackets back
        netloc = f"[{parts.hostname}]" + ("" if parts.port is None else f":{parts.port}")
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def utc_isoformat(moment: datetime) -> str:
    """``moment`` in UTC as ISO-8601 with microseconds and a ``Z``, e.g. ``2025-01-02T03:04:05.000000Z``."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert about one monitored metric.

    Attributes
    ----------
    monitor, metric
        Which monitor raised it and which of its metrics.
    rule
        The rule that fired, e.g. ``"3-sigma"``, ``"western_electric_2"``, ``"mmd_p_value<alpha"``.
    value
        The metric's value when the alert was made (``None`` when there is none, e.g. a failure).
    limits
        The control limits it was judged against.
    kind, severity
        What happened and how urgent it is; plain strings are accepted and converted.
    model_name, model_version
        The model being monitored.
    mlflow_run_id, mlflow_run_url
        The MLflow run holding the evidence; see :func:`mlflow_run_url`.
    message
        Optional free text for humans.
    time
        When it happened, timezone-aware; stored in UTC.
    id
        Unique per alert (a recovery is a new alert with a new id); receivers can dedupe on it.
    """

    monitor: str
    metric: str
    rule: str
    value: float | None
    limits: Limits = field(default_factory=Limits)
    severity: Severity = Severity.WARNING
    kind: AlertKind = AlertKind.OUT_OF_CONTROL
    model_name: str | None = None
    model_version: str | None = None
    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None
    message: str = ""
    time: datetime = field(default_factory=_utcnow)
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        for name in ("monitor", "metric", "rule", "id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidAlertError(f"Alert `{name}` must be a non-empty string. Got: {value!r}")
        for name in ("model_name", "mlflow_run_id", "mlflow_run_url"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidAlertError(f"Alert `{name}` must be a string or None. Got: {value!r}")
        if not isinstance(self.message, str):
            raise InvalidAlertError(f"Alert `message` must be a string. Got: {self.message!r}")
        if self.model_version is not None:  # registries number versions; keep them as text
            object.__setattr__(self, "model_version", str(self.model_version))
        object.__setattr__(self, "value", _optional_float("value", self.value))
        object.__setattr__(self, "limits", _as_limits(self.limits))
        object.__setattr__(self, "severity", _as_enum(Severity, "severity", self.severity))
        object.__setattr__(self, "kind", _as_enum(AlertKind, "kind", self.kind))
        if not isinstance(self.time, datetime) or self.time.utcoffset() is None:
            raise InvalidAlertError(f"Alert `time` must be a timezone-aware datetime. Got: {self.time!r}")
        object.__setattr__(self, "time", self.time.astimezone(timezone.utc))

    @property
    def key(self) -> str:
        """The ongoing condition this alert is about; see :func:`condition_key`."""
        return condition_key(self.monitor, self.metric, self.rule, self.model_name)

    def summary(self) -> str:
        """One readable line (no line breaks, whatever the fields hold)."""
        parts = [
            f"[{self.severity.upper()}] {self.kind.replace('_', ' ')}: "
            f"{self.monitor}/{self.metric} = {_format_number(self.value)}",
            f"rule {self.rule}",
        ]
        if self.limits.lower is not None or self.limits.upper is not None:
            parts.append(f"limits [{_format_number(self.limits.lower)}, {_format_number(self.limits.upper)}]")
        if self.model_name is not None:
            parts.append(f"model {self.model_name}" + (f" v{self.model_version}" if self.model_version else ""))
        if self.mlflow_run_id is not None:
            link = f" {self.mlflow_run_url}" if self.mlflow_run_url else ""
            parts.append(f"MLflow run {self.mlflow_run_id}{link}")
        if self.message:
            parts.append(self.message)
        return " ".join("; ".join(parts).split())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only; the inverse of :meth:`from_dict`."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["value"] = _encode_float(self.value)
        data["limits"] = {"lower": _encode_float(self.limits.lower), "upper": _encode_float(self.limits.upper)}
        data["severity"] = self.severity.value
        data["kind"] = self.kind.value
        data["time"] = utc_isoformat(self.time)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild an alert from :meth:`to_dict`'s output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        missing = {"monitor", "metric", "rule", "value"} - data.keys()
        if missing:
            raise InvalidAlertError(f"Alert data lacks {sorted(missing)}. Got keys: {sorted(data)}")
        kwargs = {name: value for name, value in data.items() if name in known}
        if isinstance(kwargs.get("time"), str):
            try:
                kwargs["time"] = datetime.fromisoformat(kwargs["time"])
            except ValueError:
                raise InvalidAlertError(f"Alert `time` must be ISO-8601. Got: {kwargs['time']!r}") from None
        return cls(**kwargs)

    def to_json(self) -> str:
        """Strict, single-line JSON (non-ASCII escaped, so any text survives any file encoding)."""
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidAlertError(f"Alert JSON does not parse: {error}") from None
        if not isinstance(data, dict):
            raise InvalidAlertError(f"Alert JSON must be an object. Got: {type(data).__name__}")
        return cls.from_dict(data)


_E = TypeVar("_E", bound=StrEnum)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _optional_float(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, (bool, str)):
        raise InvalidAlertError(f"Alert `{name}` must be a number or None. Got: {value!r}")
    try:
        return float(value)  # numpy and torch scalars arrive here from monitors
    except (TypeError, ValueError):
        raise InvalidAlertError(f"Alert `{name}` must be a number or None. Got: {value!r}") from None


def _as_limits(value: Any) -> Limits:
    if isinstance(value, Limits):
        return value
    if isinstance(value, Mapping) and set(value) <= {"lower", "upper"}:
        return Limits(**value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return Limits(*value)
    raise InvalidAlertError(f"Alert `limits` must be Limits, {{'lower': .., 'upper': ..}} or a pair. Got: {value!r}")


def _as_enum(enum: type[_E], name: str, value: Any) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidAlertError(f"Alert `{name}` must be one of {allowed}. Got: {value!r}") from None


def _format_number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
