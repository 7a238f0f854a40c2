"""The model holder: the only process-wide mutable state.

A swap builds and warms the new bundle first, then replaces one reference under a
writer lock. Readers take ``holder.current`` once per request, so a request in flight
keeps the bundle it started with.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from continual.adapters.models import CompiledModel
from continual.core.types import FeatureSchema


@dataclass(frozen=True, slots=True)
class ModelBundle:
    """An immutable, ready-to-serve champion."""

    version: str
    run_id: str
    model_type: str
    model: CompiledModel
    schema: FeatureSchema
    sha256: str
    promoted_at: float | None
    since_row_id: int


class ModelHolder:
    """Holds the current champion bundle; swapped atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: ModelBundle | None = None
        self.swaps = 0

    @property
    def current(self) -> ModelBundle | None:
        """The bundle to serve this request with (take it once)."""
        return self._current

    def swap(self, bundle: ModelBundle | None) -> ModelBundle | None:
        """Replace the champion; return the previous one."""
        if bundle is not None:
            # warm: the first call pays numpy's lazy set-up, not a user request
            row = {f.name: (0.0 if f.kind == "numeric" else "") for f in bundle.schema.features}
            bundle.model.predict_rows([row])
        with self._lock:
            previous, self._current = self._current, bundle
            self.swaps += 1
        return previous
