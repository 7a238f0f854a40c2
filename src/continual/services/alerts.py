"""Events and alerts: every decision goes to the audit trail; changes also go to people.

Alerts are sent in the background, so a slow or broken receiver never blocks or breaks
the loop; each failed delivery is itself recorded as an ``alert_failed`` event. They go
out through the notifier port (``core.ports.NotifierPort``): this module decides who gets
what, the adapter how it is carried.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from continual.core.clock import Clock, iso
from continual.core.ports import EventsPort, NotifierPort
from continual.core.types import Delivery, Event
from continual.settings import Settings

log = structlog.get_logger("continual.alerts")

# event kind -> (title, Discord colour). Only these kinds alert; checks do not.
ALERT_KINDS: dict[str, tuple[str, int]] = {
    "degraded": ("Model degraded", 0xE67E22),
    "recovered": ("Model recovered", 0x2ECC71),
    "retrain_started": ("Retrain started", 0x3498DB),
    "promoted": ("New champion promoted", 0x2ECC71),
    "rejected": ("Challenger rejected", 0x95A5A6),
    "retrain_failed": ("Retrain failed", 0xE74C3C),
    "rollback": ("Champion changed by hand", 0x9B59B6),
    "at_capacity": ("Champion at capacity", 0xE67E22),
    "canary_ended": ("Canary ended: behind the champion", 0xE74C3C),
    "shadow_started": ("Challenger in shadow", 0x3498DB),
    "data_quality": ("Data quality changed", 0xE67E22),
}


class Alerts:
    """Records events and fans alerts out to the configured channels."""

    def __init__(
        self, events: EventsPort, notifier: NotifierPort, clock: Clock, settings: Settings
    ) -> None:
        self.events = events
        self.notifier = notifier
        self.clock = clock
        self.channels: list[tuple[str, str]] = [
            (name, secret.value)
            for name, secret in (
                ("discord", settings.discord_webhook_url),
                ("slack", settings.slack_webhook_url),
                ("webhook", settings.webhook_url),
            )
            if secret is not None
        ]
        self.kuma_push_url = (
            None if settings.kuma_push_url is None else settings.kuma_push_url.value
        )
        self.kuma_pushes: dict[bool, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliveries: dict[tuple[str, bool], int] = {}

    async def emit(self, kind: str, message: str, data: dict[str, Any] | None = None) -> Event:
        """Record an event; alert the channels if it is a change people care about."""
        event = await asyncio.to_thread(
            self.events.add_event, self.clock.now(), kind, message, data or {}
        )
        log.info("event", kind=kind, message=message)
        if kind in ALERT_KINDS and self.channels:
            self.send(event)
        return event

    def send(self, event: Event) -> None:
        """Deliver ``event`` to every channel in the background."""
        for channel, url in self.channels:
            task = asyncio.get_running_loop().create_task(self._deliver(channel, url, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, channel: str, url: str, event: Event) -> None:
        delivery = await self.notifier.deliver(channel, url, payload(channel, event))
        key = (channel, delivery.ok)
        self.deliveries[key] = self.deliveries.get(key, 0) + 1
        if not delivery.ok:
            log.warning(
                "alert_failed", channel=channel, target=delivery.target, error=delivery.error
            )
            await asyncio.to_thread(
                self.events.add_event,
                self.clock.now(),
                "alert_failed",
                f"{channel} alert for {event.kind} failed: {delivery.error}",
                _delivery_data(delivery, event),
            )

    async def heartbeat(self, decision: str, accuracy: float | None) -> None:
        """Ping the Uptime Kuma push monitor after a successful check (a dead man's switch)."""
        if self.kuma_push_url is None:
            return
        msg = f"{decision}" + ("" if accuracy is None else f" accuracy={accuracy:.3f}")
        ok = await self.notifier.push(self.kuma_push_url, {"status": "up", "msg": msg, "ping": ""})
        self.kuma_pushes[ok] = self.kuma_pushes.get(ok, 0) + 1
        if not ok:
            log.warning("kuma_push_failed")

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for deliveries under way; used at shutdown and in tests."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def close(self) -> None:
        """Finish deliveries and close the notifier's connections."""
        await self.drain()
        await self.notifier.close()


def _delivery_data(d: Delivery, event: Event) -> dict[str, Any]:
    return {
        "channel": d.channel,
        "target": d.target,
        "status": d.status,
        "attempts": d.attempts,
        "event_id": event.id,
        "event_kind": event.kind,
    }


def payload(channel: str, event: Event) -> dict[str, Any]:
    """The message body for one channel: Discord embed, Slack blocks or plain JSON."""
    title, colour = ALERT_KINDS.get(event.kind, (event.kind, 0x7F8C8D))
    fields = {
        k: v for k, v in event.data.items() if isinstance(v, str | int | float) and v is not None
    }
    if channel == "discord":
        return {
            "username": "continual",
            "embeds": [
                {
                    "title": title,
                    "description": event.message,
                    "color": colour,
                    "timestamp": iso(event.at),
                    "fields": [
                        {"name": k, "value": str(v)[:1000], "inline": True}
                        for k, v in list(fields.items())[:20]
                    ],
                    "footer": {"text": f"continual event {event.id}"},
                }
            ],
        }
    if channel == "slack":
        facts = ", ".join(f"{k}={v}" for k, v in list(fields.items())[:20])
        return {
            "text": f"{title}: {event.message}",
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*{title}*\n{event.message}"},
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": facts or "-"}]},
            ],
        }
    return {
        "source": "continual",
        "kind": event.kind,
        "title": title,
        "message": event.message,
        "at": iso(event.at),
        "event_id": event.id,
        "data": event.data,
    }
