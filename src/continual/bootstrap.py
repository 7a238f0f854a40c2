"""The composition root: settings in, wired services out. Nothing else builds services."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from continual.adapters.db import open_database
from continual.adapters.metrics import LoopSnapshot, Metrics
from continual.adapters.notify import HttpNotifier
from continual.adapters.tracking import MlflowRegistry, TrackingConfig
from continual.core.clock import Clock, SystemClock
from continual.core.errors import ContinualError
from continual.core.ports import NotifierPort, RegistryPort, StoragePort
from continual.services.alerts import Alerts
from continual.services.estimate import Estimator
from continual.services.holder import ModelHolder
from continual.services.ingest import IngestService
from continual.services.lease import LeaseKeeper
from continual.services.monitor import Monitor
from continual.services.predict import PredictionLog, PredictService
from continual.services.promote import Registry
from continual.services.quality import QualityCounter
from continual.services.reads import ReadModel
from continual.services.retrain import RetrainService
from continual.services.shadow import ShadowQueue
from continual.services.trials import TrialService
from continual.services.worker import Worker
from continual.settings import Secret, Settings

log = structlog.get_logger("continual")
WARM_UP_DELAY_SECONDS = 5.0  # then the worker imports the estimators and MLflow


@dataclass
class Services:
    """Every use case and the read model, wired to one database, one holder and one
    worker. The web layer and the dashboard see these; the repositories and the
    Prometheus registry stay private to the composition root."""

    settings: Settings
    api_key: Secret
    api_key_file: Path | None
    clock: Clock
    _database: StoragePort
    reads: ReadModel
    holder: ModelHolder
    log: PredictionLog
    predictor: PredictService
    ingest: IngestService
    alerts: Alerts
    worker: Worker
    fetcher: Worker  # model downloads (the training worker's own when it is shared)
    registry: Registry
    retrainer: RetrainService
    monitor: Monitor
    leases: LeaseKeeper
    trials: TrialService
    shadow: ShadowQueue
    quality: QualityCounter
    estimator: Estimator
    _metrics: Metrics
    ready_reason: str = "starting"
    owns_worker: bool = True
    _warm: asyncio.Task[None] | None = None

    def ping(self) -> None:
        """Raise a ``core.errors`` storage error unless the database answers (blocking)."""
        self._database.ping()

    def render_metrics(self) -> bytes:
        """The Prometheus text exposition (blocking: one O(window) query)."""
        return self._metrics.render()

    def observe_prediction(self, kind: str, seconds: float) -> None:
        """Record one prediction call's latency (``single`` or ``batch``)."""
        self._metrics.observe_prediction(kind, seconds)

    def request_started(self) -> None:
        """A request began (the request middleware reports it)."""
        self._metrics.request_started()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """A request finished (the request middleware reports it)."""
        self._metrics.observe_request(method, route, status, seconds)

    async def start(self) -> None:
        """Fix a configured schema and load the champion the database names."""
        if self.settings.features is not None:
            self.ingest.fix_schema(self.settings.features)
        try:
            bundle = await self.registry.load_champion()
        except ContinualError as exc:
            log.error("champion_load_failed", error=exc.message)
            await self.alerts.emit(
                "model_load_failed", f"could not load the champion: {exc.message}", {}
            )
            bundle = None
        self.ready_reason = "" if bundle is not None else "no model is loaded"
        if bundle is not None:
            self.registry.reconcile_alias_soon()
            try:
                await self.trials.restore()
            except ContinualError as exc:
                log.error("trial_load_failed", error=exc.message)
        self._warm = asyncio.get_running_loop().create_task(self._warm_up())

    async def _warm_up(self) -> None:
        # The first seconds belong to start-up and the first requests; a server stopped
        # or killed at once (a crash loop, a test) never pays ~5 s of CPU for a worker.
        # A retrain asked for before then prepares the store itself and says so.
        # The download worker comes first: a champion promoted elsewhere must not wait on
        # the training worker's minute of imports and store preparation. On a shared
        # database (replicas) it starts at once, in its own process: another replica may
        # promote any second, and a download that first waited out the delay and the
        # worker's MLflow import served it 7 s late. Then the training pool into the
        # worker's copy: the first retrain reads only the rows that arrived since.
        steps: list[Callable[[], Awaitable[object]]] = [
            self.registry.prepare_fetcher,
            self.retrainer.prepare,
            self.retrainer.warm_pool,
        ]
        if not self.settings.database_url.startswith("sqlite"):
            await self._prepare(steps.pop(0))
        await asyncio.sleep(WARM_UP_DELAY_SECONDS)
        for prepare in steps:
            await self._prepare(prepare)

    @staticmethod
    async def _prepare(step: Callable[[], Awaitable[object]]) -> None:
        try:
            await step()
        except ContinualError as exc:
            log.warning("warm_up_failed", error=exc.message)

    async def stop(self) -> None:
        """Flush predictions, finish alerts, stop the worker (unless it is shared)."""
        if self._warm is not None:
            self._warm.cancel()
        try:
            # hand the check over to another replica now, not when the lease expires
            await asyncio.to_thread(self.leases.release_all)
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the lease expires by itself
            log.warning("lease_release_failed", error=type(exc).__name__)
        try:
            self.log.flush()
        except Exception as exc:  # noqa: BLE001 - shutdown must go on; the loss is logged
            log.error("prediction_flush_failed", error=type(exc).__name__, pending=len(self.log))
        await self.alerts.close()
        if self.owns_worker:
            self.worker.close()
            self.fetcher.close()
        self._database.close()


def ensure_api_key(settings: Settings) -> tuple[Secret, Path | None]:
    """The configured key, or one generated once and kept owner-only in the data dir."""
    if settings.api_key is not None:
        return settings.api_key, None
    path = settings.api_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return Secret(key), path
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    return Secret(key), path


def bootstrap(
    settings: Settings,
    clock: Clock | None = None,
    worker: Worker | None = None,
    database: StoragePort | None = None,
    notifier: NotifierPort | None = None,
    registry: RegistryPort | None = None,
) -> Services:
    """Wire every service for ``settings``; a given ``worker`` is shared, not owned.

    A test hands in-memory fakes of the ports here. ``database``: by default
    ``adapters.db.Database`` on ``DATABASE_URL``, migrated to the newest schema first;
    ``notifier``: ``adapters.notify.HttpNotifier``; ``registry``: the model registry,
    ``adapters.tracking.MlflowRegistry`` on ``MLFLOW_TRACKING_URI``. The registry is used
    in the worker processes: one that is not picklable (or whose state must be seen by
    the test) needs a ``worker`` that runs its calls in this process."""
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    api_key, key_file = ensure_api_key(settings)
    db = database or open_database(settings.database_url)
    holder = ModelHolder()
    plog = PredictionLog(db.predictions, db.categories, settings.prediction_buffer_max)
    alerts = Alerts(
        db.events, notifier or HttpNotifier(settings.alert_timeout_seconds), clock, settings
    )
    owns_worker = worker is None
    worker = worker or Worker()
    fetcher = Worker() if owns_worker else worker
    model_registry = registry or MlflowRegistry(
        TrackingConfig(
            tracking_uri=settings.mlflow_tracking_uri,
            data_dir=str(settings.data_dir),
            timeout=settings.mlflow_timeout_seconds,
            retries=settings.mlflow_max_retries,
            experiment=settings.experiment_name,
            model_name=settings.registered_model_name,
        )
    )
    registry_service = Registry(
        db.versions, db.meta, model_registry, holder, worker, alerts, clock, settings, fetcher
    )
    leases = LeaseKeeper(db.leases, db.meta, settings.replica_id, settings.lease_ttl_seconds, clock)
    retrainer = RetrainService(
        db.meta, db.versions, leases, registry_service, worker, alerts, clock, settings
    )
    monitor = Monitor(
        db.rows, db.versions, db.events, db.meta, holder, retrainer, alerts, clock, settings
    )
    reference = monitor.measurer.reference
    quality = QualityCounter(
        holder, reference, settings.quality_margin, settings.quality_alert_share
    )
    plog.quality = quality
    shadow = ShadowQueue(db.shadows, holder, clock, settings.shadow_queue_max)
    trials = TrialService(
        db.meta,
        db.versions,
        db.rows,
        db.shadows,
        shadow,
        holder,
        registry_service,
        alerts,
        clock,
        settings,
    )
    retrainer.on_rejected = trials.consider
    estimator = Estimator(db.predictions, holder, reference, settings.eval_window, plog.flush)
    monitor.estimate = estimator.estimate
    monitor.quality = quality
    monitor.trials = trials
    ingest = IngestService(
        db.meta,
        db.categories,
        db.rows,
        db.predictions,
        holder,
        plog,
        clock,
        settings.label_column,
        settings.max_batch_rows,
    )
    ingest.quality = quality
    ingest.shadow = shadow
    ingest.shadows = db.shadows
    services = Services(
        settings=settings,
        api_key=api_key,
        api_key_file=key_file,
        clock=clock,
        _database=db,
        reads=ReadModel(db.rows, db.versions, db.events),
        holder=holder,
        log=plog,
        predictor=PredictService(holder, plog, clock, settings.max_batch_rows, shadow),
        ingest=ingest,
        alerts=alerts,
        worker=worker,
        fetcher=fetcher,
        registry=registry_service,
        retrainer=retrainer,
        leases=leases,
        monitor=monitor,
        trials=trials,
        shadow=shadow,
        quality=quality,
        estimator=estimator,
        _metrics=Metrics(lambda: snapshot(services)),
        owns_worker=owns_worker,
    )
    return services


def snapshot(svc: Services) -> LoopSnapshot:
    """The loop's numbers for a Prometheus scrape (blocking: one O(window) query)."""
    m = svc.monitor.measure()
    est = svc.estimator.estimate()
    bundle = svc.holder.current
    drift = svc.monitor.last_drift
    trial = svc.holder.trial
    quality_rows, quality = svc.quality.totals()
    return LoopSnapshot(
        estimated_accuracy=None if est is None else est.accuracy,
        estimated_samples=None if est is None else est.samples,
        quality_rows=quality_rows,
        quality=quality,
        trial=None if trial is None else {"kind": trial.kind, "version": trial.bundle.version},
        shadow_written=svc.shadow.written,
        shadow_dropped=svc.shadow.dropped,
        predictions=dict(svc.predictor.served),
        accuracy=m.accuracy,
        samples=m.samples,
        min_samples=svc.settings.min_samples,
        threshold=svc.settings.performance_threshold,
        drift_share=None if drift is None else drift.drifted_share,
        pending=len(svc.log),
        loaded=0 if bundle is None else 1,
        retraining=1 if svc.retrainer.running else 0,
        decisions=dict(svc.monitor.decisions),
        outcomes=dict(svc.retrainer.outcomes),
        durations=list(svc.retrainer.durations),
        swaps=svc.holder.swaps,
        promotions=svc.registry.promotions,
        deliveries=dict(svc.alerts.deliveries),
        champion=None
        if bundle is None
        else {"version": bundle.version, "run_id": bundle.run_id, "model_type": bundle.model_type},
    )


def upgrade_database(settings: Settings) -> tuple[str | None, str | None, str]:
    """Migrate ``DATABASE_URL`` to the newest schema; (revision before, after, head)."""
    from continual.adapters.db import migrate

    engine = migrate.make_engine(settings.database_url)
    try:
        before, after = migrate.upgrade(engine)
    finally:
        engine.dispose()
    return before, after, migrate.head()


def database_revision(settings: Settings) -> tuple[str | None, str]:
    """(the revision ``DATABASE_URL`` is at, the newest this release knows)."""
    from continual.adapters.db import migrate

    engine = migrate.make_engine(settings.database_url)
    try:
        return migrate.current(engine), migrate.head()
    finally:
        engine.dispose()
