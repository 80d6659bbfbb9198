"""A real ZenML alerter flavor for the tests: it appends each post to a file.

It stands in for the Slack or Discord alerter, which would need a workspace and a token.
ZenML loads it by its source path, ``tests.alerts.zenml_recording_alerter.RecordingAlerterFlavor``.
"""

from __future__ import annotations

from typing import Any

from zenml.alerter.base_alerter import BaseAlerter, BaseAlerterConfig, BaseAlerterFlavor

FLAVOR_SOURCE = f"{__name__}.RecordingAlerterFlavor"
SEPARATOR = "\n--- post ---\n"


class RecordingAlerterConfig(BaseAlerterConfig):
    path: str
    refuse: bool = False  # answer False, as a chat alerter does when the service refused the post


class RecordingAlerter(BaseAlerter):
    @property
    def config(self) -> RecordingAlerterConfig:
        return self._config  # type: ignore[return-value]

    def post(self, message: str, params: Any = None) -> bool:
        with open(self.config.path, "a", encoding="utf-8") as file:
            file.write(message + SEPARATOR)
        return not self.config.refuse


class RecordingAlerterFlavor(BaseAlerterFlavor):
    @property
    def name(self) -> str:
        return "trustops_recording"

    @property
    def config_class(self) -> type[RecordingAlerterConfig]:
        return RecordingAlerterConfig

    @property
    def implementation_class(self) -> type[RecordingAlerter]:
        return RecordingAlerter


def read_posts(path: str) -> list[str]:
    with open(path, encoding="utf-8") as file:
        return file.read().split(SEPARATOR)[:-1]
