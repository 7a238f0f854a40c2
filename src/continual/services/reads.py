"""The read model: what the web layer and the dashboard show, behind the storage ports.

They get these answers, never a repository (or a Prometheus object): what they can
read is exactly what is listed here.
"""

from __future__ import annotations

from continual.core.ports import EventsPort, RowsPort, VersionsPort
from continual.core.types import CheckRecord, DataSummary, Event, ModelRecord, ServedPeriod


class ReadModel:
    """Stored facts for display (blocking calls: run them in a thread off the loop)."""

    def __init__(self, rows: RowsPort, versions: VersionsPort, events: EventsPort) -> None:
        self._rows = rows
        self._versions = versions
        self._events = events

    def summary(self) -> DataSummary:
        """Rows, label counts, first and last arrival."""
        return self._rows.summary()

    def versions(self) -> list[ModelRecord]:
        """Every recorded version, newest first."""
        return self._versions.versions()

    def served_periods(self, limit: int = 100) -> list[ServedPeriod]:
        """Which version served when, newest first."""
        return self._versions.served_periods(limit)

    def events(
        self, limit: int = 100, kind: str | None = None, before_id: int | None = None
    ) -> list[Event]:
        """Events, newest first, optionally of one kind and before an id (paging)."""
        return self._events.events(limit, kind, before_id)

    def checks(self, limit: int = 500) -> list[CheckRecord]:
        """Recent checks, oldest first (for charts)."""
        return self._events.checks(limit)
