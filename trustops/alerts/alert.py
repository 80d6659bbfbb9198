"""What an alert says: the :class:`Alert` record and its JSON form.

An alert is a frozen value.  ``to_json`` / ``from_json`` round-trip it exactly (strict JSON:
a non-finite number is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``),
so the outbox can hold it across runs; a line written before a field existed still loads,
the field taking its default.  ``key`` names the ongoing *condition* an alert is about;
deduplication is keyed on it.

What a person reads first is :attr:`Alert.title`: the ``headline`` the monitoring loop wrote
(what changed, on which model and version, how far outside normal, since when), or, for an
alert made without one, a plain sentence built from the fields.  Rule names, limits and
p-values never go in it; they are in ``details`` and :meth:`Alert.detail_items`.

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
>>> alert.title
'Out of control on resnet18 v3: control_charts accuracy = 0.71, below its lower limit 0.8.'
>>> shift = Alert(
...     monitor="mmd_adversarial", metric="p_value", rule="p<=alpha", value=2e-06, kind="distribution_shift",
...     model_name="trustops-digits", model_version="3", step=41, first_step=41,
...     headline="Distribution shift on trustops-digits v3: input drift p = 2e-06, 150x below its 1/3000 limit, "
...     "since capture step 41 (served 2026-12-01 03:04 UTC).",
...     details={"alpha": 1 / 3000, "chart": "individuals"},
... )
>>> shift.summary()
'[WARNING] Distribution shift on trustops-digits v3: input drift p = 2e-06, 150x below its 1/3000 limit, since capture step 41 (served 2026-12-01 03:04 UTC).'
>>> Alert.from_json(shift.to_json()) == shift
True
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Self, TypeVar, Union
from urllib.parse import urlsplit, urlunsplit

from trustops.alerts.errors import InvalidAlertError

logger = logging.getLogger(__name__)

#: The MLflow UI that links to runs in a local tracking store (``sqlite:``, ``file:``, a path) point at.
UI_URL_ENV = "TRUSTOPS_MLFLOW_UI_URL"
#: What ``trustops ui`` serves by default.
DEFAULT_UI_URL = "http://127.0.0.1:5000"

DetailValue = Union[str, float, int, bool, None]


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
    DISTRIBUTION_SHIFT = "distribution_shift"
    SUSPECTED_ADVERSARIAL = "suspected_adversarial"

    @property
    def label(self) -> str:
        """What happened, in plain words, e.g. ``"Distribution shift"``."""
        return _KIND_LABELS[self]


_KIND_LABELS = {
    AlertKind.OUT_OF_CONTROL: "Out of control",
    AlertKind.RECOVERED: "Recovered",
    AlertKind.ADVERSARIAL: "Suspected adversarial input",
    AlertKind.DATA_QUALITY: "Data quality problem",
    AlertKind.MONITOR_FAILURE: "Monitor failure",
    AlertKind.DISTRIBUTION_SHIFT: "Distribution shift",
    AlertKind.SUSPECTED_ADVERSARIAL: "Suspected adversarial input",
}

#: Most severe first; used to order a digest.
SEVERITY_RANK = {Severity.CRITICAL: 2, Severity.WARNING: 1, Severity.INFO: 0}


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


def mlflow_run_url(
    tracking_uri: str | None, experiment_id: str | None, run_id: str | None, ui_url: str | None = None
) -> str | None:
    """The MLflow UI address of a run, or ``None`` when there is no UI to point at.

    - An ``http(s)`` tracking URI is the UI itself: the link goes there.
    - A local store (``sqlite:``, ``file:`` or a plain path) has no UI of its own: the link goes
      to ``ui_url``, else ``$TRUSTOPS_MLFLOW_UI_URL``, else ``http://127.0.0.1:5000`` (what
      ``trustops ui`` serves).
    - Any other store (``databricks``, ``postgresql://``...) links only when ``ui_url`` or
      ``$TRUSTOPS_MLFLOW_UI_URL`` says where its UI is.

    User name, password, query and fragment are dropped from whichever base URL is used, so
    that credentials in it never reach an alert.  A UI URL that is not ``http(s)`` with a host
    gives ``None`` and a warning (an alert without a link beats a monitoring pass that fails).
    """
    if not (tracking_uri and experiment_id and run_id):
        return None
    base = _public_http_base(tracking_uri)
    if base is None:
        configured = ui_url or os.environ.get(UI_URL_ENV, "").strip() or None
        if configured is None and not _is_local_store(tracking_uri):
            return None
        base = _public_http_base(configured or DEFAULT_UI_URL)
        if base is None:
            source = "`ui_url`" if ui_url else f"${UI_URL_ENV}"
            logger.warning("The MLflow UI URL from %s is not an http(s) URL with a host; alerts carry no run link.", source)
            return None
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def _public_http_base(url: str) -> str | None:
    """``url`` without credentials, query, fragment or trailing slash; ``None`` unless http(s) with a host."""
    try:
        parts = urlsplit(url.strip())
        hostname, port = parts.hostname, parts.port
    except ValueError:  # a bad port or bracket: not a URL to link to
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return None
    host = f"[{hostname}]" if ":" in hostname else hostname  # an IPv6 literal needs its brackets back
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _is_local_store(tracking_uri: str) -> bool:
    """A tracking store MLflow reads from this machine: ``sqlite:``, ``file:`` or a path."""
    if _WINDOWS_DRIVE.match(tracking_uri):
        return True
    if tracking_uri.split(":", 1)[0].strip().lower() in ("databricks", "databricks-uc", "uc"):
        return False  # MLflow's names for remote stores, written without "://"
    try:
        scheme = urlsplit(tracking_uri).scheme.lower()
    except ValueError:
        return False
    return scheme in ("", "file") or scheme.startswith("sqlite")


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

    Every field but ``monitor``, ``metric``, ``rule`` and ``value`` is optional, so an outbox
    line written before a field existed still loads.

    Attributes
    ----------
    monitor, metric
        Which monitor raised it and which of its metrics.
    rule
        The rule that fired, e.g. ``"3-sigma"``, ``"western_electric_2"``, ``"mmd_p_value<alpha"``.
        Part of the condition key; shown only among the details, never in a title.
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
        Optional free text for humans; shown among the details.
    time
        When the alert was made, timezone-aware; stored in UTC.
    id
        Unique per alert (a recovery is a new alert with a new id); receivers can dedupe on it.
    headline
        One plain sentence a person can act on: what changed, on which model and version, how
        far outside normal, since when (e.g. ``"Distribution shift on trustops-digits v3: input
        drift p = 2e-06, 150x below its 1/3000 limit, since capture step 41 (served 2026-12-01
        03:04 UTC)."``).  No rule names or chart jargon: those go in ``details``.  Empty: a
        plain sentence is built from the fields (:attr:`title`).
    step
        The capture step of the batch the alert is about.
    first_step
        The capture step since which the condition holds.
    captured_at
        When that batch was served (captured), timezone-aware, stored in UTC; not when the
        alert was sent.
    details
        Machine details kept out of the headline (rule names, limits, p-values, chart names):
        text keys, values ``str``, ``float``, ``int``, ``bool`` or ``None``.  Stored read-only;
        a non-finite float is kept as the text ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.
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
    headline: str = ""
    step: int | None = None
    first_step: int | None = None
    captured_at: datetime | None = None
    details: Mapping[str, DetailValue] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("monitor", "metric", "rule", "id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidAlertError(f"Alert `{name}` must be a non-empty string. Got: {value!r}")
        for name in ("model_name", "mlflow_run_id", "mlflow_run_url"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidAlertError(f"Alert `{name}` must be a string or None. Got: {value!r}")
        for name in ("message", "headline"):
            if not isinstance(getattr(self, name), str):
                raise InvalidAlertError(f"Alert `{name}` must be a string. Got: {getattr(self, name)!r}")
        if self.model_version is not None:  # registries number versions; keep them as text
            object.__setattr__(self, "model_version", str(self.model_version))
        object.__setattr__(self, "value", _optional_float("value", self.value))
        object.__setattr__(self, "limits", _as_limits(self.limits))
        object.__setattr__(self, "severity", _as_enum(Severity, "severity", self.severity))
        object.__setattr__(self, "kind", _as_enum(AlertKind, "kind", self.kind))
        object.__setattr__(self, "time", _as_utc("time", self.time))
        object.__setattr__(self, "captured_at", None if self.captured_at is None else _as_utc("captured_at", self.captured_at))
        object.__setattr__(self, "step", _optional_int("step", self.step))
        object.__setattr__(self, "first_step", _optional_int("first_step", self.first_step))
        object.__setattr__(self, "details", _as_details(self.details))

    @property
    def key(self) -> str:
        """The ongoing condition this alert is about; see :func:`condition_key`."""
        return condition_key(self.monitor, self.metric, self.rule, self.model_name)

    @property
    def model(self) -> str:
        """``"<model> v<version>"``, ``"<model>"`` or ``"an unnamed model"``."""
        if self.model_name is None:
            return "an unnamed model"
        return self.model_name + (f" v{self.model_version}" if self.model_version else "")

    @property
    def title(self) -> str:
        """The one line a person reads first: :attr:`headline`, or a plain sentence built from the fields.

        Either way it has no line breaks and no rule name; see :meth:`detail_items` for those.
        """
        if self.headline.strip():
            return _one_line(self.headline)
        text = f"{self.kind.label} on {self.model}: {self.monitor} {self.metric}"
        if self.value is not None:
            text += f" = {_format_number(self.value)}"
            lower, upper = self.limits.lower, self.limits.upper
            if lower is not None and self.value < lower:
                text += f", below its lower limit {_format_number(lower)}"
            elif upper is not None and self.value > upper:
                text += f", above its upper limit {_format_number(upper)}"
        if self.first_step is not None and self.first_step != self.step:
            text += f", since capture step {self.first_step}"
        if self.step is not None:
            text += f", at capture step {self.step}"
        if self.captured_at is not None:
            text += f" (served {self.captured_at:%Y-%m-%d %H:%M} UTC)"
        return _one_line(text + ".")

    def summary(self) -> str:
        """One readable line (no line breaks, whatever the fields hold).

        ``[SEVERITY] <headline>`` when :attr:`headline` is set; otherwise the field-by-field
        line alerts have always had (rule and limits included).
        """
        if self.headline.strip():
            return f"[{self.severity.upper()}] {_one_line(self.headline)}"
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
        return _one_line("; ".join(parts))

    def detail_items(self) -> dict[str, str]:
        """The machine details of this alert as ordered, display-ready ``name → text`` pairs.

        Always ``condition``, ``rule``, ``severity``, ``kind``, ``value``; then what is set
        of ``limits``, ``step``, ``first_step``, ``captured_at``, ``raised_at``, ``note``
        (:attr:`message`), ``mlflow_run``, then :attr:`details` in their own order, then
        ``alert_id``.  Every text is one line.
        """
        items = {
            "condition": self.key,
            "rule": self.rule,
            "severity": self.severity.value,
            "kind": self.kind.value,
            "value": _format_number(self.value),
        }
        if self.limits.lower is not None or self.limits.upper is not None:
            items["limits"] = f"[{_format_number(self.limits.lower)}, {_format_number(self.limits.upper)}]"
        if self.step is not None:
            items["step"] = str(self.step)
        if self.first_step is not None:
            items["first_step"] = str(self.first_step)
        if self.captured_at is not None:
            items["captured_at"] = utc_isoformat(self.captured_at)
        items["raised_at"] = utc_isoformat(self.time)
        if self.message:
            items["note"] = self.message
        if self.mlflow_run_id:
            items["mlflow_run"] = self.mlflow_run_id
        for name, value in self.details.items():
            items.setdefault(name, _format_detail(value))
        items["alert_id"] = self.id
        return {name: _one_line(text) for name, text in items.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only; the inverse of :meth:`from_dict`."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["value"] = _encode_float(self.value)
        data["limits"] = {"lower": _encode_float(self.limits.lower), "upper": _encode_float(self.limits.upper)}
        data["severity"] = self.severity.value
        data["kind"] = self.kind.value
        data["time"] = utc_isoformat(self.time)
        data["captured_at"] = None if self.captured_at is None else utc_isoformat(self.captured_at)
        data["details"] = dict(self.details)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild an alert from :meth:`to_dict`'s output; unknown keys are ignored, absent optional ones defaulted."""
        known = {f.name for f in fields(cls)}
        missing = {"monitor", "metric", "rule", "value"} - data.keys()
        if missing:
            raise InvalidAlertError(f"Alert data lacks {sorted(missing)}. Got keys: {sorted(data)}")
        kwargs = {name: value for name, value in data.items() if name in known}
        for name in ("time", "captured_at"):
            if isinstance(kwargs.get(name), str):
                try:
                    kwargs[name] = datetime.fromisoformat(kwargs[name])
                except ValueError:
                    raise InvalidAlertError(f"Alert `{name}` must be ISO-8601. Got: {kwargs[name]!r}") from None
        if kwargs.get("details") is None:
            kwargs.pop("details", None)
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


def _format_detail(value: DetailValue) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return _format_number(value)
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _as_utc(name: str, value: Any) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidAlertError(f"Alert `{name}` must be a timezone-aware datetime. Got: {value!r}")
    return value.astimezone(timezone.utc)


def _optional_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)  # numpy integers arrive here from capture manifests
    raise InvalidAlertError(f"Alert `{name}` must be an integer or None. Got: {value!r}")


class FrozenDetails(dict):
    """A read-only ``dict`` (JSON-serialisable and picklable, unlike ``MappingProxyType``)."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Alert details are read-only; build a new Alert (dataclasses.replace) instead.")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))


def _as_details(value: Any) -> Mapping[str, DetailValue]:
    if not isinstance(value, Mapping):
        raise InvalidAlertError(f"Alert `details` must be a mapping of text to str, float, int, bool or None. Got: {value!r}")
    clean: dict[str, DetailValue] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidAlertError(f"Alert `details` keys must be non-empty strings. Got: {name!r}")
        clean[name] = _detail_value(name, item)
    return FrozenDetails(clean)


def _detail_value(name: str, value: Any, *, unwrapped: bool = False) -> DetailValue:
    if value is None or isinstance(value, (str, bool)):
        return value
    if not unwrapped and not isinstance(value, numbers.Number) and callable(getattr(value, "item", None)):
        try:  # a numpy or torch 0-d value, e.g. a numpy.bool_ alarm flag
            return _detail_value(name, value.item(), unwrapped=True)
        except (TypeError, ValueError):
            pass
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        # Kept as its text so the JSON round trip is exact (strict JSON has no NaN).
        return number if math.isfinite(number) else _encode_float(number)
    raise InvalidAlertError(f"Alert `details[{name!r}]` must be a str, float, int, bool or None. Got: {value!r}")
