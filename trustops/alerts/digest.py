"""One message per model per delivery: the :class:`Digest` every channel receives.

Alerts go one by one into the outbox (deduplication and at-least-once delivery work per
alert), but a person wants one page per model, not one per rule that fired.  On each
delivery :class:`~trustops.alerts.AlertManager` groups a channel's pending alerts by model
(:func:`digests`) and hands each group to the channel as one :class:`Digest`: its alerts most
severe first, its first line the most severe alert's title plus ``(and N more conditions)``.

>>> from trustops.alerts import Alert
>>> alerts = [
...     Alert(monitor="drift", metric="p_value", rule="p<=alpha", value=0.001, model_name="digits",
...           model_version="3", headline="Distribution shift on digits v3: input drift p = 0.001."),
...     Alert(monitor="mmd", metric="p_value", rule="p<=alpha", value=1e-9, severity="critical", model_name="digits",
...           model_version="3", headline="Suspected adversarial input on digits v3: p = 1e-09."),
... ]
>>> [digest] = digests(alerts)
>>> digest.first_line
'Suspected adversarial input on digits v3: p = 1e-09. (and 1 more condition)'
>>> print(digest.text(details=False))
[CRITICAL] Suspected adversarial input on digits v3: p = 1e-09. (and 1 more condition)
  - [WARNING] Distribution shift on digits v3: input drift p = 0.001.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trustops.alerts.alert import SEVERITY_RANK, Alert, Severity


@dataclass(frozen=True)
class Digest:
    """The alerts about one model that one delivery hands to one channel, most severe first.

    Build it with :meth:`of` (which orders the alerts) or :func:`digests` (which also groups
    them by model).  Alerts of equal severity keep the order they were made in.
    """

    alerts: tuple[Alert, ...]

    def __post_init__(self) -> None:
        if not self.alerts:
            raise ValueError("A digest needs at least one alert.")

    @classmethod
    def of(cls, alerts: Iterable[Alert]) -> Digest:
        """A digest of ``alerts``, sorted most severe first (stable within a severity)."""
        return cls(tuple(sorted(alerts, key=lambda alert: -SEVERITY_RANK[alert.severity])))

    @property
    def lead(self) -> Alert:
        """The most severe alert: its title opens the digest."""
        return self.alerts[0]

    @property
    def rest(self) -> tuple[Alert, ...]:
        return self.alerts[1:]

    @property
    def severity(self) -> Severity:
        return self.lead.severity

    @property
    def model_name(self) -> str | None:
        return self.lead.model_name

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(alert.id for alert in self.alerts)

    @property
    def link(self) -> str | None:
        """Where to look: the most severe alert's MLflow run URL, else the first any alert has."""
        return next((alert.mlflow_run_url for alert in self.alerts if alert.mlflow_run_url), None)

    @property
    def more(self) -> str:
        """``"(and N more conditions)"``; empty for a digest of one alert."""
        count = len(self.rest)
        if count == 0:
            return ""
        return f"(and {count} more condition{'s' if count > 1 else ''})"

    @property
    def first_line(self) -> str:
        """The most severe alert's title plus ``(and N more conditions)``, without a severity tag."""
        return f"{self.lead.title} {self.more}".rstrip()

    def text(self, *, details: bool = True) -> str:
        """The digest as plain text: one line per alert, then the link, then (optionally) the details.

        The first line is ``[SEVERITY] <first_line>``; each further condition is an indented
        ``- [SEVERITY] <title>`` line; then ``MLflow run: <url>`` when there is a link; then,
        with ``details``, a ``Details:`` section with one line of ``name=value`` pairs per alert.
        """
        lines = [f"[{self.severity.upper()}] {self.first_line}"]
        lines += [f"  - [{alert.severity.upper()}] {alert.title}" for alert in self.rest]
        if self.link:
            lines.append(f"  MLflow run: {self.link}")
        if details:
            lines.append("  Details:")
            lines += [f"    {detail_line(alert)}" for alert in self.alerts]
        return "\n".join(lines)


def detail_line(alert: Alert) -> str:
    """``name=value`` pairs of :meth:`Alert.detail_items`, separated by ``"; "``."""
    return "; ".join(f"{name}={value}" for name, value in alert.detail_items().items())


def digests(alerts: Iterable[Alert]) -> list[Digest]:
    """One :class:`Digest` per model (``model_name``; alerts without one form their own digest).

    Digests come in the order their model's first alert appears in ``alerts``, so a channel
    that receives them in turn still hears about the oldest alert first.
    """
    groups: dict[str | None, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.model_name, []).append(alert)
    return [Digest.of(group) for group in groups.values()]
