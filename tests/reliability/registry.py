"""Scenarios around MLflow: the server hanging or stopped, and models it should not serve.

Both run against one real MLflow tracking server (``MlflowServer``) on 127.0.0.1, each
under its own registered model name.
"""

from __future__ import annotations

import pickle
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.receiver import Receiver
from tests.reliability.harness import MlflowServer, Proxy, RelServer, wait_until
from tests.reliability.outages import Predictor


def _rest(mlflow: MlflowServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{mlflow.url}/api/2.0/mlflow/{path}", timeout=10, **kwargs)


def alias(mlflow: MlflowServer, model: str) -> str | None:
    """Where the registry's ``champion`` alias of ``model`` points, or None."""
    r = _rest(mlflow, "GET", "registered-models/alias", params={"name": model, "alias": "champion"})
    return str(r.json()["model_version"]["version"]) if r.status_code == 200 else None


def warmed_up(mlflow: MlflowServer, experiment: str, timeout: float = 180) -> bool:
    """Wait until the server's worker has created its experiment (its warm-up is done).

    A retrain sent while the warm-up still runs waits behind it in the one worker, and
    a warm-up slower than its time limit kills that worker with the retrain in it (see
    docs/reliability.md, "Problems found")."""
    return wait_until(
        lambda: (
            _rest(
                mlflow, "GET", "experiments/get-by-name", params={"experiment_name": experiment}
            ).status_code
            == 200
        ),
        timeout,
        0.2,
    )


@dataclass
class MlflowFigures:
    """What the MLflow outage did."""

    predictions: int = 0
    predictions_failed: int = 0
    retrain_seconds: dict[str, float] = field(default_factory=dict)
    retrain_status: dict[str, int] = field(default_factory=dict)
    failure_events: int = 0
    failure_alerts: int = 0
    recovered_version: str | None = None
    alias_after_recovery: str | None = None
    problems: list[str] = field(default_factory=list)


def run_outage(workdir: Path, mlflow: MlflowServer, timeout: float = 2.0) -> MlflowFigures:
    """MLflow behind a proxy that forwards, hangs, then refuses, then forwards again.

    "Nothing lost": every prediction during the outage succeeds; each retrain in the
    outage fails within its bound with a ``retrain_failed`` event and an alert, the
    champion unchanged; once MLflow is back a retrain is promoted and the alias follows.
    """
    figures = MlflowFigures()
    proxy = Proxy(("127.0.0.1", mlflow.port))
    hook = Receiver()
    server = RelServer(
        workdir / "mlflow-outage" / "data",
        {
            "MLFLOW_TRACKING_URI": proxy.url,
            "CONTINUAL_MLFLOW_TIMEOUT_SECONDS": str(timeout),
            "CONTINUAL_MLFLOW_MAX_RETRIES": "0",
            "CONTINUAL_WEBHOOK_URL": hook.url,
            "CONTINUAL_TRAIN_WINDOW": "600",
            "CONTINUAL_MODEL_NAME": "outage",
            "CONTINUAL_EXPERIMENT": "outage",
        },
    )
    try:
        server.start()
        warmed_up(mlflow, "outage")
        with server.client() as http:
            http.post("/generate", json={"n_samples": 600, "concept": 0, "seed": 1})
            first = http.post("/retrain")
            assert first.status_code == 200, first.text
            http.post("/generate", json={"n_samples": 600, "concept": 1, "seed": 2})
            with Predictor(server, pause=0.005) as predictor:
                for mode in ("hang", "refuse"):
                    proxy.set(mode)
                    started = time.monotonic()
                    r = http.post("/retrain")
                    figures.retrain_seconds[mode] = round(time.monotonic() - started, 2)
                    figures.retrain_status[mode] = r.status_code
                    if r.status_code != 503 or "MLflow" not in r.json()["error"]:
                        figures.problems.append(f"{mode}: {r.status_code} {r.text[:200]}")
                proxy.set("forward")
                back = http.post("/retrain")
                figures.retrain_status["back"] = back.status_code
                if back.status_code == 200 and back.json()["promoted"]:
                    figures.recovered_version = back.json()["version"]
                else:
                    figures.problems.append(f"after recovery: {back.text[:300]}")
            figures.predictions = predictor.total
            figures.predictions_failed = predictor.total - predictor.ok
            failed = http.get("/events", params={"kind": "retrain_failed"}).json()
            figures.failure_events = len(failed)
            champion = http.get("/models").json()["champion"]
        hook.wait_for(8, timeout=20)
        figures.failure_alerts = hook.kinds().count("retrain_failed")
        wait_until(lambda: alias(mlflow, "outage") == champion, 30, 0.2)
        figures.alias_after_recovery = alias(mlflow, "outage")
    finally:
        server.stop()
        proxy.close()
        hook.close()
    return figures


class _Evil:
    """Unpickling this runs a shell command (it must never be unpickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (subprocess.getoutput, (f"touch {self.marker}",))


@dataclass
class TrustFigures:
    """What a foreign version and a tampered artifact led to."""

    foreign_version: str | None = None
    served_while_foreign_alias: str | None = None
    promote_foreign: int | None = None
    alias_after_restart: str | None = None
    ready_after_tamper: int | None = None
    ready_reason: str | None = None
    predict_after_tamper: int | None = None
    refused_events: list[str] = field(default_factory=list)
    command_ran: bool = False
    problems: list[str] = field(default_factory=list)


def run_trust(workdir: Path, mlflow: MlflowServer) -> TrustFigures:
    """A version registered by someone else, then our own artifact replaced in the store.

    "Nothing lost": the service serves only what its database recorded and verified: a
    foreign version is neither served nor promotable, the alias is moved back; a
    tampered artifact is refused at load with a ``model_refused`` event and never run.
    """
    figures = TrustFigures()
    marker = workdir / "pwned"
    server = RelServer(
        workdir / "trust" / "data",
        {
            "MLFLOW_TRACKING_URI": mlflow.url,
            "CONTINUAL_MODEL_NAME": "trust",
            "CONTINUAL_EXPERIMENT": "trust",
        },
    )
    try:
        server.start()
        warmed_up(mlflow, "trust")
        with server.client() as http:
            http.post("/generate", json={"n_samples": 600, "seed": 1})
            first = http.post("/retrain").json()
            assert first["version"] == "1", first
            run_id = first["run_id"]
            # someone registers their own model under our name and moves the alias to it
            r = _rest(
                mlflow,
                "POST",
                "model-versions/create",
                json={"name": "trust", "source": "s3://someone-else/model"},
            )
            foreign = str(r.json()["model_version"]["version"])
            _rest(
                mlflow,
                "POST",
                "registered-models/alias",
                json={"name": "trust", "alias": "champion", "version": foreign},
            )
            figures.foreign_version = foreign
            p = http.post("/predict", json={"features": {"feature1": 1, "feature2": 1}})
            figures.served_while_foreign_alias = p.json()["model_version"]
            figures.promote_foreign = http.post(f"/models/{foreign}/promote").status_code
        server.stop()
        server.start()
        wait_until(lambda: alias(mlflow, "trust") == "1", 60, 0.2)
        figures.alias_after_restart = alias(mlflow, "trust")
        server.stop()
        # then our champion's artifact is replaced in the store and the local copy removed
        (artifact,) = list(mlflow.dir.glob(f"artifacts/*/{run_id}/artifacts/continual/model.pkl"))
        artifact.write_bytes(pickle.dumps(_Evil(marker)))
        (server.data_dir / "models" / "1.pkl").unlink()
        server.start()
        with server.client() as http:
            ready = http.get("/ready")
            figures.ready_after_tamper = ready.status_code
            figures.ready_reason = ready.json().get("reason")
            figures.predict_after_tamper = http.post(
                "/predict", json={"features": {"feature1": 1, "feature2": 1}}
            ).status_code
            events = http.get("/events", params={"kind": "model_refused"}).json()
            figures.refused_events = [e["message"] for e in events]
    except Exception as exc:
        figures.problems.append(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        server.stop()
    figures.command_ran = marker.exists()
    return figures


def run_both(workdir: Path, template: Path) -> tuple[MlflowFigures, TrustFigures]:
    """The outage, then the trust scenario, on one MLflow server started for them."""
    mlflow = MlflowServer(workdir / "mlflow", template).start()
    try:
        return run_outage(workdir, mlflow), run_trust(workdir, mlflow)
    finally:
        mlflow.stop()
