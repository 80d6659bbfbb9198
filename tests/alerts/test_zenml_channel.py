"""The ZenML alerter channel, with a real ZenML alerter component.

In-process tests build the component directly (no store, no stack).  One test builds a real
stack in a private ZenML store, in a subprocess so the test session's ZenML state is untouched:
first without an alerter (the channel skips silently), then with one (the channel posts).
It takes about 10 s, mostly ZenML creating its SQLite store, so it is also marked ``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from trustops.alerts import AlertManager, DeliveryError, Digest, ZenMLAlerterChannel

from .conftest import make_alert

if TYPE_CHECKING:
    from .zenml_recording_alerter import RecordingAlerter

REPO_ROOT = Path(__file__).resolve().parents[2]


def _recording() -> ModuleType:
    """The recording alerter's module: it imports ZenML (seconds), so it loads when a test runs, not at collection."""
    from . import zenml_recording_alerter

    return zenml_recording_alerter


def read_posts(path: str) -> list[str]:
    return _recording().read_posts(path)


def _alerter(path: Path, *, refuse: bool = False) -> RecordingAlerter:
    from zenml.enums import StackComponentType

    recording = _recording()
    now = datetime.now(timezone.utc)
    return recording.RecordingAlerter(
        name="recorder",
        id=uuid4(),
        config=recording.RecordingAlerterConfig(path=str(path), refuse=refuse),
        flavor="trustops_recording",
        type=StackComponentType.ALERTER,
        user=None,
        created=now,
        updated=now,
    )


def test_posts_an_alert_as_a_digest_of_one(tmp_path: Path) -> None:
    posts = tmp_path / "posts.txt"
    alert = make_alert(headline="Accuracy fell to 0.71 on resnet18 v3 at capture step 41.")
    ZenMLAlerterChannel(alerter_provider=lambda: _alerter(posts)).deliver(alert)
    [post] = read_posts(str(posts))
    assert post == Digest.of([alert]).text()
    assert post.splitlines()[0] == "[CRITICAL] Accuracy fell to 0.71 on resnet18 v3 at capture step 41."


def test_one_post_per_model_per_flush(tmp_path: Path) -> None:
    posts = tmp_path / "posts.txt"
    manager = AlertManager(tmp_path, [ZenMLAlerterChannel(alerter_provider=lambda: _alerter(posts))])
    made = [make_alert("loss", severity="warning"), make_alert("accuracy"), make_alert("ece", model_name="other")]
    for alert in made:
        manager.raise_or_clear(alert.key, True, lambda alert=alert: alert)
    assert manager.flush().messages == {"zenml": 2}

    resnet, other = read_posts(str(posts))
    assert resnet == Digest.of(made[:2]).text() and other == Digest.of(made[2:]).text()
    assert resnet.splitlines()[:2] == [
        f"[CRITICAL] {made[1].title} (and 1 more condition)",
        f"  - [WARNING] {made[0].title}",
    ]


def test_no_alerter_is_skipped_silently(tmp_path: Path) -> None:
    manager = AlertManager(tmp_path, [ZenMLAlerterChannel(alerter_provider=lambda: None)])
    manager.send(make_alert())
    summary = manager.flush()
    assert summary.ok and len(summary.sent) == 1


def test_a_refused_post_stays_pending(tmp_path: Path) -> None:
    posts = tmp_path / "posts.txt"
    manager = AlertManager(tmp_path, [ZenMLAlerterChannel(alerter_provider=lambda: _alerter(posts, refuse=True))])
    manager.send(make_alert())
    summary = manager.flush()
    assert summary.failed_channels["zenml"] == "DeliveryError: ZenML alerter 'recorder' reported that the post did not go through."
    assert len(summary.pending) == 1
    assert AlertManager(tmp_path, [ZenMLAlerterChannel(alerter_provider=lambda: _alerter(posts))]).flush().ok
    assert len(read_posts(str(posts))) == 2  # one refused, one accepted


def test_a_broken_stack_is_a_delivery_error(tmp_path: Path) -> None:
    def no_store() -> None:
        raise RuntimeError("could not reach the ZenML server")

    with pytest.raises(DeliveryError, match="Could not read the active ZenML stack's alerter: RuntimeError: could not reach"):
        ZenMLAlerterChannel(alerter_provider=no_store).deliver(make_alert())


def test_zenml_is_not_imported_until_an_alert_is_delivered(tmp_path: Path) -> None:
    code = "import sys, trustops.alerts as a; a.AlertManager.from_config(sys.argv[1], ['zenml']); print('zenml' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert result.stdout.strip() == "False"


STACK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from trustops.alerts import Digest, ZenMLAlerterChannel
    from tests.alerts.conftest import make_alert

    posts_path, flavor_source = sys.argv[1], sys.argv[2]
    channel = ZenMLAlerterChannel()  # the default: Client().active_stack.alerter
    quiet = make_alert("before")
    channel.deliver(quiet)  # the default stack has no alerter

    client = Client()
    client.create_flavor(source=flavor_source, component_type=StackComponentType.ALERTER)
    client.create_stack_component(
        name="recorder", flavor="trustops_recording", component_type=StackComponentType.ALERTER,
        configuration={"path": posts_path},
    )
    components = {kind: models[0].id for kind, models in client.active_stack_model.components.items()}
    components[StackComponentType.ALERTER] = "recorder"
    client.create_stack(name="with_alerter", components=components)
    client.activate_stack("with_alerter")

    loud = make_alert("after")
    channel.deliver(loud)
    print(json.dumps({"alerter": Client().active_stack.alerter.name, "text": Digest.of([loud]).text()}))
    """
)


@pytest.mark.integration
@pytest.mark.slow  # ~10 s, nearly all of it ZenML creating a fresh store
def test_the_active_stack_alerter_of_a_real_zenml_store(tmp_path: Path) -> None:
    script = tmp_path / "stack_check.py"
    script.write_text(STACK_SCRIPT)
    posts = tmp_path / "posts.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        ZENML_CONFIG_PATH=str(tmp_path / "zenml-config"),
        ZENML_ANALYTICS_OPT_IN="false",
        ZENML_LOGGING_VERBOSITY="ERROR",
        ZENML_ENABLE_RICH_TRACEBACK="false",
    )
    result = subprocess.run(
        [sys.executable, str(script), str(posts), _recording().FLAVOR_SOURCE],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["alerter"] == "recorder"
    assert read_posts(str(posts)) == [report["text"]]  # only the alert sent once the stack had an alerter
