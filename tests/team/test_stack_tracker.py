"""The ZenML tracker's settings follow MLFLOW_TRACKING_URI; server credentials go into a ZenML secret, not the config."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trustops.stack import AUTH_SECRET, NO_AUTH_TOKEN, tracker_configuration


class FakeSecrets:
    """The two ZenML client calls the tracker set-up makes, recorded."""

    def __init__(self):
        self.secrets: dict[str, dict[str, str]] = {}

    def get_secret(self, name):
        if name not in self.secrets:
            raise KeyError(name)
        return SimpleNamespace(secret_values=dict(self.secrets[name]))

    def create_secret(self, name, values):
        self.secrets[name] = dict(values)

    def update_secret(self, name, add_or_update_values, remove_values):
        self.secrets[name].update(add_or_update_values)
        for key in remove_values:
            self.secrets[name].pop(key)


@pytest.fixture
def no_mlflow_credentials(monkeypatch):
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_local_store_clears_any_server_credentials(no_mlflow_credentials):
    config = tracker_configuration("sqlite:////p/.trustops/mlflow.db", FakeSecrets())
    assert config == {"tracking_uri": "sqlite:////p/.trustops/mlflow.db", "tracking_token": None,
                      "tracking_username": None, "tracking_password": None}  # fmt: skip


def test_a_server_without_authentication_gets_the_placeholder(no_mlflow_credentials):
    config = tracker_configuration("http://127.0.0.1:5000", FakeSecrets())
    assert config["tracking_token"] == NO_AUTH_TOKEN and config["tracking_uri"] == "http://127.0.0.1:5000"


def test_a_token_is_kept_in_a_zenml_secret(no_mlflow_credentials):
    secrets = FakeSecrets()
    no_mlflow_credentials.setenv("MLFLOW_TRACKING_TOKEN", "tok-123")
    config = tracker_configuration("https://mlflow.team", secrets)
    assert config["tracking_token"] == f"{{{{{AUTH_SECRET}.token}}}}"
    assert "tok-123" not in repr(config) and secrets.secrets[AUTH_SECRET] == {"token": "tok-123"}

    no_mlflow_credentials.delenv("MLFLOW_TRACKING_TOKEN")
    no_mlflow_credentials.setenv("MLFLOW_TRACKING_USERNAME", "ada")
    no_mlflow_credentials.setenv("MLFLOW_TRACKING_PASSWORD", "pw-456")
    config = tracker_configuration("https://mlflow.team", secrets)
    assert config["tracking_token"] is None and config["tracking_username"] == f"{{{{{AUTH_SECRET}.username}}}}"
    assert "pw-456" not in repr(config) and secrets.secrets[AUTH_SECRET] == {"username": "ada", "password": "pw-456"}
