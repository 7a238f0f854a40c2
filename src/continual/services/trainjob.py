"""What the server asks of the training worker, and what it gets back: plain Structs that
cross the process boundary (see ``worker``). The registry crosses beside the job, as an
argument of ``training.train_challenger``."""

from __future__ import annotations

from typing import Any

import msgspec

from continual.core.types import Candidate, ModelType, TrainStrategy


class ChampionRef(msgspec.Struct, frozen=True):
    """Enough to load the champion in the child for the gate."""

    version: str
    sha256: str


class TrainJob(msgspec.Struct, frozen=True, kw_only=True):
    """One retrain, as the parent asks for it."""

    database_url: str  # the registry goes beside the job (``train_challenger``)
    models_dir: str
    model_types: tuple[ModelType, ...]
    seed: int
    strategy: TrainStrategy
    train_window: int
    replay_fraction: float
    holdout_fraction: float
    max_holdout: int
    min_improvement: float
    threshold: float
    champion: ChampionRef | None
    trigger: str
    fresh_from: int | None = None  # first row of the current concept, as the check located it
    history_rows: int = 0  # how far back the window search may look (0: train_window)
    history_from: int | None = None  # the last located change: no row before it beyond the window
    search_seconds: float = 60.0


class TrainOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the child produced: a registered version and the gate's verdict."""

    version: str
    run_id: str
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_accuracy: float | None
    sha256: str
    reference: dict[str, Any]
    params: dict[str, str]
    metrics: dict[str, float]
    train_rows: int
    holdout_rows: int
    fit_seconds: float
    total_seconds: float
    model_type: str
    candidates: list[Candidate]
