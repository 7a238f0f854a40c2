"""The dashboard's framework-free rules: sign-in, throttling, and the view models it shows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from continual.core.drift import DriftReport, FeatureDrift
from continual.core.types import (
    CheckRecord,
    Event,
    Feature,
    FeatureSchema,
    ModelRecord,
    RetrainResult,
)
from continual.services.monitor import CheckResult, ModelStatusView
from continual.services.quality import FeatureQuality, QualityReport
from continual.settings import Secret
from continual.ui import auth, chart, playground_text, view

KEY = Secret("api-key-0123456789")
NOW = datetime(2026, 9, 21, 21, 33, 20, tzinfo=UTC).timestamp()


def status(**changes: object) -> ModelStatusView:
    base: dict[str, object] = {
        "status": "ok",
        "model_version": "3",
        "model_type": "logistic_regression",
        "run_id": "abc",
        "champion_since": "2026-09-21T21:30:00.000+00:00",
        "accuracy": 0.9123,
        "threshold": 0.8,
        "samples": 412,
        "window": 500,
        "min_samples": 200,
        "last_check_at": "2026-09-21T21:33:08.000+00:00",
        "last_check_decision": "ok",
        "last_retrain_at": None,
        "next_check_at": "2026-09-21T21:33:38.000+00:00",
        "cooldown_seconds": 60.0,
        "cooldown_remaining_seconds": 0.0,
        "retrain_running": False,
        "drift": None,
    }
    base.update(changes)
    # only the fields this version of the view has: the dashboard reads a stable subset
    fields = ModelStatusView.__struct_fields__
    return ModelStatusView(**{k: v for k, v in base.items() if k in fields})  # type: ignore[arg-type]


# ---- sign-in ---------------------------------------------------------------------------------
def test_login_secret_is_the_password_else_the_api_key() -> None:
    """CONTINUAL_DASHBOARD_PASSWORD logs in; with none set, the API key does; no default."""
    assert auth.login_secret(Secret("pw"), KEY) == Secret("pw")
    assert auth.login_secret(None, KEY) == KEY


def test_session_expires_and_dies_with_a_changed_secret() -> None:
    """A session is valid until it expires, and only for the secret it was opened with."""
    cookie = auth.cookie_secret(KEY)
    key = auth.fingerprint(Secret("pw"), cookie)
    record = auth.new_session(NOW, 8.0, key)
    assert record == {"expires_at": NOW + 8 * 3600, "key": key}
    assert auth.session_valid(record, NOW + 8 * 3600 - 1, key)
    assert not auth.session_valid(record, NOW + 8 * 3600, key)
    assert not auth.session_valid(record, NOW, auth.fingerprint(Secret("other"), cookie))
    assert not auth.session_valid(None, NOW, key)
    assert not auth.session_valid({"expires_at": "soon", "key": key}, NOW, key)


def test_stored_values_do_not_reveal_the_secrets() -> None:
    """The cookie key and the session key are MACs: neither contains the password or key."""
    cookie = auth.cookie_secret(KEY)
    key = auth.fingerprint(Secret("pw"), cookie)
    assert KEY.value not in cookie
    assert "pw" not in key
    assert cookie == auth.cookie_secret(KEY)  # replicas sharing a key accept each other's cookie
    assert cookie != auth.cookie_secret(Secret("rotated"))


def test_wrong_passwords_wait_longer_each_time() -> None:
    """Each recent failure doubles the wait up to the cap; a good password resets it."""
    slept: list[float] = []
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    throttle = auth.LoginThrottle(
        base=0.5, cap=4.0, window=300.0, clock=lambda: clock[0], sleep=sleep
    )
    secret = Secret("right")

    async def run() -> list[str]:
        return [await throttle.attempt(p, secret) for p in ["a", "b", "c", "d", "e", "right", "f"]]

    assert asyncio.run(run()) == ["wrong"] * 5 + ["ok", "wrong"]
    assert slept == [0.5, 1.0, 2.0, 4.0, 4.0, 0.5]
    clock[0] = 301.0  # failures older than the window are forgotten
    assert throttle.delay() == 0.5


def test_parallel_guesses_beyond_the_limit_are_refused_unchecked() -> None:
    """Only max_waiting wrong attempts wait at once; the rest are busy, even the right one."""

    async def run() -> list[str]:
        gate = asyncio.Event()

        async def sleep(_: float) -> None:
            await gate.wait()

        throttle = auth.LoginThrottle(max_waiting=2, sleep=sleep)
        secret = Secret("right")
        waiting = [asyncio.create_task(throttle.attempt("x", secret)) for _ in range(2)]
        await asyncio.sleep(0)
        late = [await throttle.attempt("y", secret), await throttle.attempt("right", secret)]
        gate.set()
        return [*late, *(await asyncio.gather(*waiting))]

    assert asyncio.run(run()) == ["busy", "busy", "wrong", "wrong"]


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("/models", "/models"),
        ("/events?kind=promoted", "/events?kind=promoted"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/login", "/"),
        ("/login?redirect_to=/x", "/"),
    ],
)
def test_login_redirects_only_to_local_pages(given: str | None, target: str) -> None:
    """After login the browser goes to a prefix-free local page, never to another site."""
    assert auth.safe_target(given) == target


# ---- view models -----------------------------------------------------------------------------
def test_status_cards_show_the_live_numbers() -> None:
    """The overview's headline cards, formatted from the status view."""
    cards = view.status_cards(status(), NOW, scheduler_enabled=True)
    assert msgspec.structs.asdict(cards) == {
        "status": "ok",
        "status_text": "ok",
        "status_color": "positive",
        "version": "v3",
        "since": "since 3 min ago",
        "since_title": "2026-09-21 21:30:00 UTC",
        "model_type": "logistic regression",
        "accuracy": "91.2 %",
        "accuracy_value": 0.9123,
        "below_threshold": False,
        "threshold": "threshold 80.0 %",
        "samples": "412 / 500",
        "samples_hint": "judged from 200",
        "last_check": "12 s ago",
        "last_decision": "ok",
        "last_check_title": "2026-09-21 21:33:08 UTC",
        "next_check": "in 18 s",
        "last_retrain": "never",
        "last_retrain_title": "—",
        "retraining": False,
        "capacity": "",
        "status_note": "",
    }


def test_status_cards_say_when_the_champion_is_at_capacity() -> None:
    """At capacity the status card says since when, the best the pool reached, and the wait."""
    from continual.core.types import Capacity
    from continual.services.capacity import capacity_view

    cap = Capacity(
        version="3",
        level=0.74,
        samples=500,
        best=0.731,
        families=["logistic_regression", "hist_gradient_boosting"],
        declared_at=NOW - 600,
        row_id=100,
        drifted=[],
        backoff_seconds=3600,
        retry_at=NOW + 3000,
        trigger="threshold",
    )
    shown = capacity_view(cap)
    assert shown is not None
    assert shown.declared_at == "2026-09-21T21:23:20.000+00:00"
    cards = view.status_cards(status(status="degraded", accuracy=0.74, capacity=shown), NOW, True)
    assert cards.capacity == (
        f"at capacity since {view.utc(NOW - 600)}: best of 2 families 73.1 %; waiting for a change"
    )


def test_a_champion_short_of_min_samples_reads_collecting_neither_green_nor_red() -> None:
    """Until the champion has scored min_samples rows the card says "collecting" in a neutral
    colour, with the rows it has and needs, and its accuracy is not flagged."""
    cards = view.status_cards(status(status="collecting", accuracy=0.0, samples=1), NOW, True)
    assert (cards.status_text, cards.status_note) == (
        "collecting",
        "not judged yet: 1 of 200 rows scored",
    )
    assert cards.status_color not in (view.STATUS_COLOR["ok"], view.STATUS_COLOR["degraded"])
    assert cards.below_threshold is False
    ok = view.status_cards(status(), NOW, True)
    assert ok.status_color != cards.status_color


def test_a_retrain_waiting_for_the_tracking_store_says_so() -> None:
    """The first retrain after start-up shows that the tracking store is being prepared, on
    the status card while it runs, in the playground before it, and in its verdict after."""
    waiting = view.status_cards(
        status(status="collecting", retrain_running=True, retrain_preparing=True), NOW, True
    )
    assert waiting.status_note == "retraining: preparing the tracking store (first run)…"
    running = view.status_cards(status(retrain_running=True), NOW, True)
    assert running.status_note == "retraining now…"
    assert "preparing the tracking store" in playground_text.retrain_pending_text(
        tracking_ready=False
    )
    assert playground_text.retrain_pending_text(tracking_ready=True) == "Training a challenger…"
    slow = RetrainResult(
        "1",
        True,
        0.9,
        None,
        "run",
        "first model",
        "lr",
        800,
        200,
        18.0,
        tracking_prepared_seconds=13.4,
    )
    assert playground_text.retrain_text(slow) == (
        "Version 1 promoted: first model. The first 13 s went to preparing the tracking "
        "store (the first retrain after start-up)."
    )
    quick = RetrainResult("2", False, 0.8, 0.9, "run", "champion holds", "lr", 800, 200, 1.0)
    assert playground_text.retrain_text(quick) == "Version 2 rejected: champion holds."


def test_version_rows_show_what_each_family_of_the_pool_scored() -> None:
    """The models page lists each candidate family's holdout accuracy beside the winner."""
    assert view.candidate_text(
        {"candidates": "logistic_regression:0.7312,hist_gradient_boosting:0.9120"}
    ) == ("logistic regression 73.1 % · hist gradient boosting 91.2 %")
    assert view.candidate_text({}) == "—"


def test_status_cards_flag_degraded_and_empty_states() -> None:
    """Below the threshold on enough rows is flagged; no model and no scheduler read plainly."""
    degraded = view.status_cards(status(status="degraded", accuracy=0.41), NOW, True)
    assert (degraded.status_text, degraded.status_color, degraded.below_threshold) == (
        "degraded",
        "negative",
        True,
    )
    few = view.status_cards(status(status="collecting", accuracy=0.41, samples=20), NOW, True)
    assert few.below_threshold is False
    empty = view.status_cards(
        status(
            status="no_model",
            model_version=None,
            model_type=None,
            champion_since=None,
            accuracy=None,
            samples=0,
            last_check_at=None,
            last_check_decision=None,
        ),
        NOW,
        scheduler_enabled=False,
    )
    assert (empty.status_text, empty.version, empty.since, empty.accuracy) == (
        "no model",
        "—",
        "no champion yet",
        "—",
    )
    assert (empty.last_check, empty.next_check) == ("never", "off")


def test_chart_plots_measured_checks_threshold_and_markers() -> None:
    """Checks with an accuracy become points; retrain, promotion and rollback events markers."""
    checks = [
        CheckRecord(NOW - 60, "insufficient_data", None, 0, None, None, "no model"),
        CheckRecord(NOW - 30, "ok", 0.95, 300, "1", 0.0, "fine"),
        CheckRecord(NOW, "retrain", 0.1, 300, "1", 1.0, "low"),
    ]
    markers = [
        Event(1, NOW - 3600, "promoted", "old news", {}),
        Event(2, NOW, "retrain_started", "retrain started: check", {}),
        Event(3, NOW + 5, "promoted", "version 2 promoted: <better>", {}),
    ]
    options = chart.chart_options(view.Overview(status(), checks, markers))
    accuracy, retrain, promotion, rollback = options["series"]
    assert [p["value"] for p in accuracy["data"]] == [
        [round((NOW - 30) * 1000), 0.95],
        [round(NOW * 1000), 0.1],
    ]
    assert accuracy["markLine"]["data"] == [{"yAxis": 0.8}]
    assert [p["value"] for p in retrain["data"]] == [[round(NOW * 1000), 0.0]]
    assert [p["value"] for p in promotion["data"]] == [[round((NOW + 5) * 1000), 1.0]]
    assert "&lt;better&gt;" in promotion["data"][0]["tip"]  # messages never become markup
    assert rollback["data"] == []
    assert options["useUTC"] is True


def test_version_rows_name_status_window_and_action() -> None:
    """Each version reads as champion, earlier champion or rejected, with what can be done."""
    common = {"run_id": "r" * 32, "model_type": "logistic_regression", "created_at": NOW}
    versions = [
        ModelRecord(
            version="2",
            status="rejected",
            promoted_at=None,
            retired_at=None,
            metrics={"challenger_accuracy": 0.5, "champion_accuracy": 0.9},
            params={"n_samples": "800", "window_first_row": "201", "window_last_row": "1000"},
            reason="worse",
            sha256="x",
            **common,  # type: ignore[arg-type]
        ),
        ModelRecord(
            version="1",
            status="retired",
            promoted_at=NOW,
            retired_at=NOW,
            metrics={"challenger_accuracy": 0.97},
            params={},
            reason="first",
            sha256="y",
            **common,  # type: ignore[arg-type]
        ),
    ]
    rows = view.version_rows(versions)
    assert [(r["version"], r["status_text"], r["action"], r["window"]) for r in rows] == [
        ("2", "rejected", "Promote", "rows 201 to 1000"),
        ("1", "earlier champion", "Roll back", "—"),
    ]
    assert (rows[0]["accuracy"], rows[0]["champion_accuracy"], rows[0]["train_rows"]) == (
        "50.0 %",
        "90.0 %",
        "800",
    )


def test_event_and_check_rows_carry_the_numbers() -> None:
    """The decision log shows the numbers behind each decision."""
    rows = view.event_rows(
        [
            Event(
                7,
                NOW,
                "rejected",
                "challenger rejected",
                {
                    "challenger_accuracy": 0.71234,
                    "train_rows": 800,
                    "trigger": "api: manual retrain",
                },
            )
        ]
    )
    assert rows == [
        {
            "id": 7,
            "at": "2026-09-21 21:33:20 UTC",
            "kind": "rejected",
            "message": "challenger rejected",
            "numbers": "challenger accuracy 0.7123 · train rows 800",
        }
    ]
    checks = view.check_rows(
        [
            CheckRecord(NOW - 5, "ok", 0.9, 300, "1", 0.0, "a"),
            CheckRecord(NOW, "retrain", 0.2, 300, "1", 0.5, "b"),
        ]
    )
    assert [(r["kind"], r["message"]) for r in checks] == [
        ("check: retrain", "b"),
        ("check: ok", "a"),
    ]
    assert checks[0]["numbers"] == "version 1 · accuracy 0.2 · samples 300 · drifted share 0.5"


def test_drift_rows_and_summary() -> None:
    """Per-feature drift rows with verdicts, and the line above them."""
    report = DriftReport(
        features=[
            FeatureDrift("feature1", "numeric", 0.41, 0.32, 1e-9, "ks", True),
            FeatureDrift("feature2", "numeric", 0.01, 0.03, 0.7, "ks", False),
        ],
        drifted_share=0.5,
        recent_rows=500,
        reference_rows=800,
    )
    assert view.drift_rows(report)[0] == {
        "feature": "feature1",
        "kind": "numeric",
        "test": "ks",
        "statistic": "0.320",
        "p_value": "1e-09",
        "psi": "0.410",
        "verdict": "drifted",
        "out_of_range": "—",
        "unseen": "—",
    }
    assert [r["verdict"] for r in view.drift_rows(report)] == ["drifted", "stable"]
    quality = QualityReport(
        rows=200,
        features=[FeatureQuality("feature1", 10, 0, 0.05), FeatureQuality("feature2", 0, 0, 0.0)],
        flagged=["feature1"],
        margin=0.1,
        alert_share=0.01,
    )
    counted = view.drift_rows(report, quality)
    assert [(r["out_of_range"], r["unseen"]) for r in counted] == [
        ("10 (5.0 %)", "0 (0.0 %)"),
        ("0 (0.0 %)", "0 (0.0 %)"),
    ]
    assert view.drift_summary(report) == (
        "1 of 2 features drifted (500 recent rows against 800 training rows)"
    )
    assert view.drift_rows(None) == []


def test_the_chart_shows_the_estimate_beside_realized_accuracy() -> None:
    """A check with an estimate adds a dotted series whose tooltip names its rows."""
    checks = [
        CheckRecord(1000.0, "insufficient_data", None, 0, "1", None, "", 0.74, 200),
        CheckRecord(1060.0, "ok", 0.9, 120, "1", None, "", 0.88, 200),
    ]
    series = chart.chart_series(checks, [], 0.8)
    estimate = next(s for s in series if s["name"] == chart.ESTIMATE_SERIES)
    assert [p["value"][1] for p in estimate["data"]] == [0.74, 0.88]
    assert "on 200 recent predictions" in estimate["data"][0]["tip"]
    assert "realized: none yet" in estimate["data"][0]["tip"]
    assert "realized: 90.0 % on 120 rows" in estimate["data"][1]["tip"]
    assert chart.ESTIMATE_SERIES not in [s["name"] for s in chart.chart_series(checks[:0], [], 0.8)]


def test_generation_width_follows_a_synthetic_schema_only() -> None:
    """Generated rows must fit the stored schema: feature1..N numeric, integer label."""
    synthetic = FeatureSchema(
        (Feature("feature1", "numeric"), Feature("feature2", "numeric")), "target", "int"
    )
    custom = FeatureSchema((Feature("age", "numeric"),), "target", "int")
    assert playground_text.synthetic_width(None) == 2
    assert playground_text.synthetic_width(synthetic) == 2
    assert playground_text.synthetic_width(custom) is None


def test_generating_is_offered_only_for_the_generators_schema() -> None:
    """With the user's own schema the playground says why it offers no synthetic data,
    naming the schema's columns; with none yet, or feature1..N, it offers it."""
    own = FeatureSchema(
        (Feature("age", "numeric"), Feature("city", "categorical")), "target", "int"
    )
    note = playground_text.generate_note(own)
    assert note.startswith("Generating data is not offered here")
    assert "age (numeric), city (categorical); label target" in note
    assert "POST /data" in note
    synthetic = FeatureSchema((Feature("feature1", "numeric"),), "target", "int")
    assert playground_text.generate_note(synthetic) == ""
    assert playground_text.generate_note(None) == ""


def test_action_texts() -> None:
    """A check's decision, a retrain's verdict and a generated batch read as sentences."""
    verdict = RetrainResult("2", True, 0.97, 0.1, "run", "challenger wins", "lr", 800, 200, 1.0)
    check = CheckResult(
        decision="retrain",
        reason="live accuracy 0.100 < threshold 0.800 on 300 rows",
        accuracy=0.1,
        threshold=0.8,
        samples=300,
        min_samples=200,
        window=500,
        model_version="1",
        detector_fired=False,
        drift=None,
        retrain=verdict,
    )
    assert playground_text.check_text(check) == (
        "Check: retrain (live accuracy 0.100 < threshold 0.800 on 300 rows). "
        "Version 2 promoted: challenger wins."
    )
    assert playground_text.ingest_text(1000, 1, "1", 120) == (
        "Stored 1000 rows of concept 1. Champion v1 got 12.0 % of them right."
    )
    assert playground_text.ingest_text(1000, 0, None, None) == "Stored 1000 rows of concept 0."


# NiceGUI behaves differently under pytest: the subprocesses run as a server would
_ENV = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

_DASHBOARD_OFF = """
import sys
from continual.app import create_app
from continual.settings import load_settings
env = {"CONTINUAL_DATA_DIR": sys.argv[1], "API_KEY": "k" * 20, "CONTINUAL_DASHBOARD": "false"}
app = create_app(load_settings(env, env_file=None))
assert app.app.app is app.api, app.app  # the API behind its request layer, no dispatcher
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("nicegui", "continual") and "ui" in m)
print(loaded)
assert "nicegui" not in sys.modules and "continual.ui.mount" not in sys.modules, loaded
"""


def test_with_the_dashboard_off_nicegui_is_never_imported(tmp_path: Path) -> None:
    """CONTINUAL_DASHBOARD=false serves the API alone and never loads NiceGUI."""
    done = subprocess.run(
        [sys.executable, "-c", _DASHBOARD_OFF, str(tmp_path)],
        check=False,
        env=_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


_TWO_APPS = """
import socket, sys, threading, time
from pathlib import Path
import httpx, uvicorn
from continual.app import create_app
from continual.services.worker import Worker
from continual.settings import load_settings

root, worker = Path(sys.argv[1]), Worker()
apps = []
for i in (1, 2):  # both built first: NiceGUI is set up once, the second app reuses the shell
    env = {"CONTINUAL_DATA_DIR": str(root / f"d{i}"), "API_KEY": f"key-{i}-0123456789",
           "CONTINUAL_SCHEDULER": "false"}
    apps.append(create_app(load_settings(env, env_file=None), worker=worker))
assert apps[0].app.app is apps[1].app.app  # one FastAPI shell per process
for i, app in enumerate(apps, 1):  # served one after the other: NiceGUI restarts cleanly
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(url + "/dashboard/login").status_code == 200
    assert httpx.get(url + "/dashboard/models").headers["location"].startswith("/dashboard/login")
    assert httpx.get(url + "/health").status_code == 200
    assert (root / f"d{i}" / "dashboard").is_dir()  # storage pinned under this app's data dir
    server.should_exit = True
    thread.join(30)
    assert not thread.is_alive(), "did not stop"
worker.close()
print("ok")
"""


def test_two_apps_in_one_process_share_nicegui_and_restart_it(tmp_path: Path) -> None:
    """Apps built in one process share NiceGUI's one shell; served in turn, each starts and
    stops the dashboard cleanly with its storage under its own data directory."""
    done = subprocess.run(
        [sys.executable, "-c", _TWO_APPS, str(tmp_path)],
        check=False,
        env=_ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")
    assert "Traceback" not in done.stderr, done.stderr
