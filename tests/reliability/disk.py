"""Scenario: the disk fills up while rows (and a model) are written.

Two ways to run out of space: ``fsize`` caps the size of any file the service writes
(``RLIMIT_FSIZE``; no privileges needed), ``tmpfs`` puts the data directory on a small
tmpfs filled with a ballast file (needs root to mount). "Nothing lost" means:

- a write that does not fit is refused with a clear 507 (never a 500, never a hang);
- the service keeps serving: health, predictions, reads;
- nothing corrupt: ``integrity_check`` passes, every acknowledged batch is stored once,
  no batch is half-written, the champion's local copy still verifies;
- once there is room again, a refused batch retried with its key is stored, and a
  retrain succeeds.

On one filesystem a full disk stops the database too, so a retrain is refused before it
can record a ``retrain_failed`` event; the refusal (507) and the log line say why.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.harness import RelServer, descendants, rows_of, sha256_file, stored_batches

ROWS = 200


@dataclass
class DiskFigures:
    """What running out of space did."""

    mode: str = ""
    batches_acknowledged: int = 0
    refusals: dict[int, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    served_while_full: dict[str, int] = field(default_factory=dict)
    retrain_while_full: int | None = None
    retrain_failed_event: str | None = None
    integrity: str = ""
    rows_lost: int = 0
    half_written: int = 0
    refused_stored_on_retry: int = 0
    refused_lost_on_retry: int = 0
    champion_verifies: bool = False
    writes_after_recovery: int = 0
    retrain_after_recovery: int = 0
    problems: list[str] = field(default_factory=list)


def can_mount() -> bool:
    """Whether this process may mount a tmpfs (root)."""
    return os.geteuid() == 0


def run(workdir: Path, template: Path, mode: str) -> DiskFigures:
    """Fill the disk (``fsize`` or ``tmpfs``), write, recover; see the module docstring."""
    figures = DiskFigures(mode=mode)
    data = workdir / f"disk-{mode}" / "data"
    data.mkdir(parents=True, exist_ok=True)
    mounted = False
    if mode == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(data)], check=True)
        mounted = True
    server = RelServer(
        data,
        {"CONTINUAL_TRAIN_WINDOW": "600"},
        template=template,
        fsize=3_000_000 if mode == "fsize" else None,
    )
    ballast = data / "ballast"
    try:
        server.start()
        with server.client() as http:
            http.post("/generate", json={"n_samples": 600, "concept": 0, "seed": 1})
            first = http.post("/retrain")
            assert first.status_code == 200, first.text
            champion = first.json()["version"]
            http.post("/generate", json={"n_samples": 600, "concept": 1, "seed": 2})
            acked: set[int] = set()
            for batch in range(1, 4):  # some rows stored while there is room
                r = http.post(
                    "/data",
                    json={"rows": rows_of(batch, ROWS)},
                    headers={"idempotency-key": f"disk-{batch}"},
                )
                assert r.status_code == 200, r.text
                acked.add(batch)
            if mode == "tmpfs":
                st = os.statvfs(data)
                with ballast.open("wb") as fh:
                    fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 64 * 1024))
            refused: list[int] = []
            for batch in range(4, 400):  # bounded: 3 MB is ~30 batches
                r = http.post(
                    "/data",
                    json={"rows": rows_of(batch, ROWS)},
                    headers={"idempotency-key": f"disk-{batch}"},
                )
                if r.status_code == 200:
                    acked.add(batch)
                    continue
                refused.append(batch)
                figures.refusals[r.status_code] = figures.refusals.get(r.status_code, 0) + 1
                figures.messages.append(r.json()["error"])
                if len(refused) >= 3:
                    break
            figures.batches_acknowledged = len(acked)
            for name, method, path, body in (
                ("health", "GET", "/health", None),
                ("predict", "POST", "/predict", {"features": {"feature1": 1.0, "feature2": 2.0}}),
                ("data summary", "GET", "/data", None),
                ("model status", "GET", "/model-status", None),
            ):
                figures.served_while_full[name] = http.request(method, path, json=body).status_code
            if mode == "tmpfs":
                r = http.post("/retrain")
                figures.retrain_while_full = r.status_code
                events = http.get("/events", params={"kind": "retrain_failed"}).json()
                figures.retrain_failed_event = events[0]["message"][:200] if events else None
            # room again
            if mode == "tmpfs":
                ballast.unlink()
            else:
                for pid in [server.pid, *descendants(server.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        resource.prlimit(
                            pid,
                            resource.RLIMIT_FSIZE,
                            (resource.RLIM_INFINITY, resource.RLIM_INFINITY),
                        )
            with contextlib.closing(server.db()) as conn:
                before = stored_batches(conn)
            for batch in refused:
                r = http.post(
                    "/data",
                    json={"rows": rows_of(batch, ROWS)},
                    headers={"idempotency-key": f"disk-{batch}"},
                )
                if r.status_code == 200 and not r.json()["duplicate"]:
                    figures.refused_stored_on_retry += 1
                    acked.add(batch)
                elif r.status_code == 200 and batch not in before:
                    figures.refused_lost_on_retry += 1  # "duplicate", yet never stored
                elif r.status_code == 200:
                    acked.add(batch)
            r = http.post("/data", json={"rows": rows_of(999, ROWS)})
            figures.writes_after_recovery = r.status_code
            r = http.post("/retrain")
            figures.retrain_after_recovery = r.status_code
        figures.integrity = server.integrity()
        with contextlib.closing(server.db()) as conn:
            stored = stored_batches(conn)
            (sha,) = conn.execute(
                "SELECT sha256 FROM model_versions WHERE version = ?", (champion,)
            ).fetchone()
        figures.rows_lost = sum(ROWS for b in acked if b not in stored)
        figures.half_written = sum(1 for p in stored.values() if sorted(p) != list(range(ROWS)))
        figures.champion_verifies = sha256_file(data / "models" / f"{champion}.pkl") == sha
    except Exception as exc:
        figures.problems.append(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        server.stop()
        if mounted:
            subprocess.run(["umount", str(data)], check=False)
    return figures
