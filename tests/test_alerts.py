"""Alerts through the notifier port: who gets what, what a failed delivery leaves, the
push monitor's heartbeat. In-memory fakes of storage and notifier, handed in through the
composition root (no receiver, no database; milliseconds). The HTTP notifier itself, with
real receivers on 127.0.0.1, is exercised in ``test_loop``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from continual.bootstrap import Services, bootstrap
from continual.core.types import Event
from continual.settings import load_settings
from tests.fakes import FakeNotifier, FakeStorage, FixedClock

DISCORD = "https://discord.example/api/webhooks/1/discord-token"
SLACK = "https://hooks.slack.example/services/T/B/slack-token"
HOOK = "http://hook.example:8080/in/hook-token"
KUMA = "http://kuma.example:3001/api/push/kuma-token"
CHANNELS = {
    "DISCORD_WEBHOOK_URL": DISCORD,
    "SLACK_WEBHOOK_URL": SLACK,
    "CONTINUAL_WEBHOOK_URL": HOOK,
}


def wire(tmp_path: Path, notifier: FakeNotifier, **env: str) -> Services:
    """Services on fake storage whose alerts go to ``notifier``."""
    settings = load_settings(
        {"CONTINUAL_DATA_DIR": str(tmp_path), "API_KEY": "k" * 32, **env}, env_file=None
    )
    return bootstrap(settings, FixedClock(), database=FakeStorage(), notifier=notifier)


def emit_all(svc: Services, *events: tuple[str, str, dict[str, Any]]) -> list[Event]:
    """Emit the events, wait for their deliveries, close the alerts (as shutdown does)."""

    async def go() -> list[Event]:
        out = [await svc.alerts.emit(*e) for e in events]
        await svc.alerts.close()
        return out

    return asyncio.run(go())


def test_each_channel_gets_its_own_shape_and_only_changes_alert(tmp_path: Path) -> None:
    """A promotion reaches Discord as an embed, Slack as blocks and the webhook as plain
    JSON, each at its own URL; a check is recorded but alerts no one."""
    notifier = FakeNotifier()
    svc = wire(tmp_path, notifier, **CHANNELS)
    data = {"version": "2", "challenger_accuracy": 0.91, "candidates": {"sgd": 0.8}}
    check, promoted = emit_all(
        svc,
        ("check", "check: ok", {"decision": "ok"}),
        ("promoted", "version 2 promoted: beats 0.84", data),
    )
    assert [e.kind for e in svc.reads.events()] == ["promoted", "check"]
    at = "2023-11-14T22:13:20.000+00:00"
    assert sorted(notifier.sent, key=lambda s: s[0]) == [
        (
            "discord",
            DISCORD,
            {
                "username": "continual",
                "embeds": [
                    {
                        "title": "New champion promoted",
                        "description": "version 2 promoted: beats 0.84",
                        "color": 0x2ECC71,
                        "timestamp": at,
                        "fields": [
                            {"name": "version", "value": "2", "inline": True},
                            {"name": "challenger_accuracy", "value": "0.91", "inline": True},
                        ],
                        "footer": {"text": f"continual event {promoted.id}"},
                    }
                ],
            },
        ),
        (
            "slack",
            SLACK,
            {
                "text": "New champion promoted: version 2 promoted: beats 0.84",
                "blocks": [
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": "*New champion promoted*\nversion 2 promoted: beats 0.84",
                        },
                    },
                    {
                        "type": "context",
                        "elements": [
                            {"type": "mrkdwn", "text": "version=2, challenger_accuracy=0.91"}
                        ],
                    },
                ],
            },
        ),
        (
            "webhook",
            HOOK,
            {
                "source": "continual",
                "kind": "promoted",
                "title": "New champion promoted",
                "message": "version 2 promoted: beats 0.84",
                "at": at,
                "event_id": promoted.id,
                "data": data,
            },
        ),
    ]
    assert check.id != promoted.id
    assert svc.alerts.deliveries == {("discord", True): 1, ("slack", True): 1, ("webhook", True): 1}
    assert notifier.closed == 1


def test_no_channel_configured_sends_nothing(tmp_path: Path) -> None:
    """Without a webhook URL an alerting event is recorded and nothing is delivered."""
    notifier = FakeNotifier()
    svc = wire(tmp_path, notifier)
    emit_all(svc, ("degraded", "accuracy 0.70 below 0.80", {"accuracy": 0.7}))
    assert [e.kind for e in svc.reads.events()] == ["degraded"]
    assert (notifier.sent, svc.alerts.deliveries) == ([], {})


def test_a_failed_delivery_is_an_alert_failed_event_without_the_secret(tmp_path: Path) -> None:
    """A channel that kept failing leaves an ``alert_failed`` event naming the channel, its
    host (never the token), the status and the attempts; the other channels still get it."""
    notifier = FakeNotifier(failing={"slack"})
    svc = wire(tmp_path, notifier, **CHANNELS)
    (rejected,) = emit_all(svc, ("rejected", "challenger version 3 rejected", {"version": "3"}))
    failed = svc.reads.events(kind="alert_failed")
    assert [(e.message, e.data) for e in failed] == [
        (
            "slack alert for rejected failed: HTTP 500",
            {
                "channel": "slack",
                "target": "https://hooks.slack.example/…",
                "status": 500,
                "attempts": 3,
                "event_id": rejected.id,
                "event_kind": "rejected",
            },
        )
    ]
    assert "slack-token" not in str([(e.message, e.data) for e in svc.reads.events()])
    assert sorted(c for c, _u, _p in notifier.sent) == ["discord", "slack", "webhook"]
    assert svc.alerts.deliveries == {
        ("discord", True): 1,
        ("slack", False): 1,
        ("webhook", True): 1,
    }


def test_the_kuma_heartbeat_pushes_after_a_check_and_counts_failures(tmp_path: Path) -> None:
    """Each heartbeat is one push to the Kuma URL with the decision and accuracy; an
    unanswered push is counted, not raised; without a push URL nothing is sent."""
    notifier = FakeNotifier()
    svc = wire(tmp_path, notifier, CONTINUAL_KUMA_PUSH_URL=KUMA)
    asyncio.run(svc.alerts.heartbeat("ok", 0.9123))
    asyncio.run(svc.alerts.heartbeat("insufficient_data", None))
    notifier.push_ok = False
    asyncio.run(svc.alerts.heartbeat("retrain", 0.5))
    assert notifier.pushes == [
        (KUMA, {"status": "up", "msg": "ok accuracy=0.912", "ping": ""}),
        (KUMA, {"status": "up", "msg": "insufficient_data", "ping": ""}),
        (KUMA, {"status": "up", "msg": "retrain accuracy=0.500", "ping": ""}),
    ]
    assert svc.alerts.kuma_pushes == {True: 2, False: 1}
    quiet = FakeNotifier()
    asyncio.run(wire(tmp_path / "quiet", quiet).alerts.heartbeat("ok", 0.9))
    assert quiet.pushes == []
