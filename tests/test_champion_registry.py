"""The champion's way through the registry port: a missing local copy fetched, verified
and cached; tampered bytes refused; the champion alias reconciled, and caught up after
an outage. A fake registry, fake storage and an in-process worker, handed in through the
composition root (no MLflow, no worker process; milliseconds). The MLflow registry itself
is exercised end to end in ``test_crash_points``, ``test_pool`` and ``test_restart``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from continual.adapters.models import build_pipeline, dumps, frame, sha256, synthetic, write_atomic
from continual.bootstrap import Services, bootstrap
from continual.core.errors import Unavailable
from continual.core.types import Feature, FeatureSchema, ModelRecord
from continual.settings import load_settings
from tests.fakes import FakeNotifier, FakeRegistry, FakeStorage, InlineWorker

SCHEMA = FeatureSchema(
    (Feature("feature1", "numeric"), Feature("feature2", "numeric")), "target", "int"
)
HOOK = "http://hook.example/in/token"


@pytest.fixture(scope="module")
def blobs() -> tuple[bytes, bytes]:
    """Two fitted logistic regressions, serialised (concept 0 and concept 1)."""
    out = []
    for concept in (0, 1):
        rows, labels = synthetic(200, 2, concept, seed=concept)
        pipeline = build_pipeline("logistic_regression", SCHEMA, 0)
        pipeline.fit(frame(rows, SCHEMA), labels)
        out.append(dumps(pipeline))
    return out[0], out[1]


def record(version: str, blob: bytes, status: str = "challenger") -> ModelRecord:
    """The database's record of a registered version."""
    return ModelRecord(
        version=version,
        run_id=f"run-{version}",
        model_type="logistic_regression",
        status=status,  # type: ignore[arg-type]
        created_at=time.time(),
        promoted_at=time.time() if status == "champion" else None,
        retired_at=None,
        metrics={},
        params={},
        reason="test",
        sha256=sha256(blob),
    )


def wire(
    data_dir: Path, storage: FakeStorage, registry: FakeRegistry
) -> tuple[Services, FakeNotifier]:
    """Services on the fakes, their worker calls run in this process."""
    settings = load_settings(
        {"CONTINUAL_DATA_DIR": str(data_dir), "API_KEY": "k" * 32, "CONTINUAL_WEBHOOK_URL": HOOK},
        env_file=None,
    )
    notifier = FakeNotifier()
    svc = bootstrap(
        settings, worker=InlineWorker(), database=storage, notifier=notifier, registry=registry
    )
    return svc, notifier


def test_a_champion_without_a_local_copy_comes_from_the_registry_once(
    tmp_path: Path, blobs: tuple[bytes, bytes]
) -> None:
    """A champion with no local copy is downloaded through the port, verified, kept on disk
    and served, and the alias is pointed at it; the next start reads the copy and asks the
    registry nothing but the alias."""
    storage, registry = FakeStorage(), FakeRegistry()
    storage.meta.fix_schema(SCHEMA)
    version = registry.register(blobs[0])
    storage.versions.add_version(record(version, blobs[0], "champion"), {})
    svc, _ = wire(tmp_path, storage, registry)

    async def start(s: Services) -> str | None:
        bundle = await s.registry.load_champion()
        await s.registry.reconcile_alias()
        return None if bundle is None else bundle.version

    assert asyncio.run(start(svc)) == "1"
    assert svc.holder.current is not None
    assert svc.holder.current.version == "1"
    assert (svc.settings.models_dir / "1.pkl").read_bytes() == blobs[0]
    assert registry.calls == [("download", "1", "model"), ("champion",), ("point_champion", "1")]
    assert (registry.alias, svc.registry.alias_in_sync) == ("1", True)

    registry.calls.clear()
    again, _ = wire(tmp_path, storage, registry)
    assert asyncio.run(start(again)) == "1"
    assert registry.calls == [("champion",)]  # the alias already names it


def test_bytes_that_do_not_match_the_recorded_digest_are_never_served(
    tmp_path: Path, blobs: tuple[bytes, bytes]
) -> None:
    """A registry answering other bytes than the version's recorded digest: the load fails
    with 503, a ``model_refused`` event says so, nothing is served or cached."""
    storage, registry = FakeStorage(), FakeRegistry()
    storage.meta.fix_schema(SCHEMA)
    registry.register(blobs[1])  # version 1 in the registry is not the model recorded
    storage.versions.add_version(record("1", blobs[0], "champion"), {})
    svc, _ = wire(tmp_path, storage, registry)
    with pytest.raises(Unavailable, match="version 1 failed verification"):
        asyncio.run(svc.registry.load_champion())
    assert svc.holder.current is None
    assert not (svc.settings.models_dir / "1.pkl").exists()
    assert [(e.kind, e.data) for e in svc.reads.events()] == [("model_refused", {"version": "1"})]


def test_a_registry_outage_leaves_the_alias_behind_until_the_next_reconcile(
    tmp_path: Path, blobs: tuple[bytes, bytes]
) -> None:
    """A rollback while the registry is down still swaps the champion and alerts; the
    alias move fails as an ``alias_sync_failed`` event, and the next reconcile (the check
    job's) moves it once the registry answers."""
    storage, registry = FakeStorage(), FakeRegistry()
    storage.meta.fix_schema(SCHEMA)
    for blob in blobs:
        version = registry.register(blob)
        storage.versions.add_version(record(version, blob), {})
    svc, notifier = wire(tmp_path, storage, registry)
    for version, blob in zip(("1", "2"), blobs, strict=True):
        write_atomic(svc.settings.models_dir / f"{version}.pkl", blob)

    async def promote(version: str) -> None:
        await svc.registry.promote(version, "by hand")
        await svc.registry.wait_alias()
        await svc.alerts.drain()

    asyncio.run(promote("1"))
    assert (registry.alias, svc.registry.alias_in_sync) == ("1", True)
    registry.down = True
    asyncio.run(promote("2"))
    assert svc.holder.current is not None
    assert svc.holder.current.version == "2"
    assert [(p.version, p.ended_at is None) for p in svc.reads.served_periods()] == [
        ("2", True),
        ("1", False),
    ]
    assert (registry.alias, svc.registry.alias_in_sync) == ("1", False)
    failed = svc.reads.events(kind="alias_sync_failed")
    assert [e.message for e in failed] == [
        "could not point MLflow alias champion at version 2: MLflow did not answer"
    ]
    assert [p["kind"] for _c, _u, p in notifier.sent] == ["rollback", "rollback"]
    assert registry.calls.count(("download", "2", "model")) == 0  # the local copy served

    registry.down = False
    asyncio.run(svc.registry.reconcile_alias())
    assert (registry.alias, svc.registry.alias_in_sync) == ("2", True)
