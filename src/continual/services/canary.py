"""Which version answers a request: the champion, or a canary for its share of traffic.

The one function both the fast lane (``web.front``) and the Litestar route reach,
through ``PredictService.score``. A canary answers a caller when the hash of the
caller's key (``X-Continual-Key``, else the request's first prediction id) falls in
its share, so one key is always answered by the same version while the canary runs.
"""

from __future__ import annotations

import zlib

from continual.services.holder import ModelBundle, ModelHolder


def bucket(key: str) -> float:
    """Where a key falls in [0, 100): stable across processes and restarts (CRC-32)."""
    return (zlib.crc32(key.encode()) % 10_000) / 100.0


def answering(holder: ModelHolder, key: str | None, first_id: str) -> ModelBundle | None:
    """The bundle that answers a request with this key (or, without one, this id)."""
    champion = holder.current
    trial = holder.trial
    if trial is None or trial.kind != "canary" or champion is None:
        return champion
    return trial.bundle if bucket(key or first_id) < trial.percent else champion
