"""The playground's data stream: synthetic labelled rows, a batch every second, until stopped.

It lets a person watch the loop work: stream concept 0 and a champion is trained, switch
the concept and live accuracy falls, the check retrains, and accuracy recovers. One
stream per app (all browser tabs see and steer the same one); it calls the same
``IngestService.generate`` as ``POST /generate`` and stops with the dashboard.
"""

from __future__ import annotations

import asyncio
import secrets

import structlog

from continual.core.errors import ContinualError
from continual.services.ingest import IngestService

log = structlog.get_logger("continual.ui")

MAX_RATE = 1000


class DataStream:
    """Generates ``rate`` rows of ``concept`` per ``interval`` seconds while running."""

    def __init__(self, ingest: IngestService, interval: float = 1.0) -> None:
        self.ingest = ingest
        self.interval = interval
        self.concept = 0
        self.rate = 50
        self.n_features = 2
        self.generated = 0
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the stream is generating."""
        return self._task is not None and not self._task.done()

    def start(self, concept: int, rate: int, n_features: int) -> None:
        """Start (or re-steer) the stream on the running event loop."""
        self.steer(concept, rate)
        self.n_features = n_features
        self.error = None
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def steer(self, concept: int, rate: int) -> None:
        """Change the concept or the rate; a running stream follows from its next batch."""
        self.concept = concept
        self.rate = max(1, min(MAX_RATE, rate))

    async def stop(self) -> None:
        """Stop generating and wait for the batch in flight."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            seed = secrets.randbelow(2**31)  # the same as POST /generate without a seed
            try:
                result = await asyncio.to_thread(
                    self.ingest.generate, self.rate, self.n_features, self.concept, seed
                )
            except ContinualError as exc:
                self.error = exc.message
                log.warning("stream_stopped", error=exc.message)
                return
            except Exception as exc:  # noqa: BLE001 - a background job: record, log, stop
                self.error = f"stopped: {type(exc).__name__}"
                log.error("stream_failed", error=type(exc).__name__)
                return
            self.generated += result.accepted
            next_at = max(next_at + self.interval, loop.time())
            await asyncio.sleep(next_at - loop.time())
