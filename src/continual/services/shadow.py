"""Shadow predictions, off the request path.

A request served by the champion while a challenger is in shadow leaves its validated
rows and their prediction ids in a bounded queue (one ``deque.append``); a background
job (``jobs``) drains it in batches: one ``predict_rows`` per batch for the shadow
version, one ``executemany`` into ``shadow_predictions``. Nothing a caller sees comes
from the shadow. When the queue is full, requests are not shadowed (counted in
``dropped``) rather than slowed down or held in memory without bound.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from continual.core.clock import Clock
from continual.core.frame import Frame
from continual.core.ports import ShadowsPort
from continual.core.types import FeatureValue
from continual.services.holder import ModelHolder

Batch = Sequence[Sequence[FeatureValue]] | Frame  # validated rows: values in schema order


class ShadowQueue:
    """Requests waiting for the shadow's prediction."""

    def __init__(
        self, shadows: ShadowsPort, holder: ModelHolder, clock: Clock, max_rows: int
    ) -> None:
        self.shadows = shadows
        self.holder = holder
        self.clock = clock
        self.max_rows = max_rows
        self._queue: deque[tuple[str, Batch, list[str]]] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self._rows

    def offer(self, version: str, rows: Batch, ids: list[str]) -> None:
        """Queue a served batch for the shadow ``version`` (the request path: O(1))."""
        if self._rows + len(ids) > self.max_rows:
            self.dropped += len(ids)
            return
        self._queue.append((version, rows, ids))
        self._rows += len(ids)

    def drain(self) -> int:
        """Predict every queued row with the shadow and store it; return how many rows."""
        with self._lock:
            taken: list[tuple[str, Batch, list[str]]] = []
            while self._queue:
                taken.append(self._queue.popleft())
            self._rows -= sum(len(ids) for _v, _r, ids in taken)
            trial = self.holder.trial
            if not taken or trial is None or trial.kind != "shadow":
                return 0
            bundle = trial.bundle
            version = bundle.version
            queued: list[Sequence[FeatureValue]] = []
            queued_ids: list[str] = []
            out: list[tuple[str, str, float, str]] = []
            now = self.clock.now()
            model = bundle.model
            texts = [str(c) for c in model.classes]
            for v, rows, ids in taken:
                if v != version:
                    continue  # queued for a shadow that has since been replaced
                if isinstance(rows, Frame):
                    best = model.predict_values(rows).argmax(axis=1).tolist()
                    out.extend((i, version, now, texts[b]) for i, b in zip(ids, best, strict=True))
                else:
                    queued.extend(rows)
                    queued_ids.extend(ids)
            if queued:
                best = model.predict_values(queued).argmax(axis=1).tolist()
                out.extend(
                    (i, version, now, texts[b]) for i, b in zip(queued_ids, best, strict=True)
                )
            self.shadows.insert_shadow(out)
            self.written += len(out)
            return len(out)
