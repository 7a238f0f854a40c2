"""Fixtures of the reliability suite, its figures summary and the end-of-run secret check.

Every test here runs real processes on 127.0.0.1 (``python -m continual serve``, SQLite
files, an MLflow store or server, local webhook receivers). ``CONTINUAL_RELIABILITY_SCALE``
multiplies the number of trials (the benchmark runs the same scenarios bigger).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import harness


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory for this test's data dirs and logs."""
    return tmp_path


def _background_jobs() -> list[tuple[str, str, Callable[[Path, Path], Any]]]:
    from tests.reliability import crashes, disk, fuzz, outages, registry

    # the longest first (it keeps one of the two lanes to itself), then the rest in the
    # order the foreground tests (alphabetical files) will ask for them
    jobs: list[tuple[str, str, Callable[[Path, Path], Any]]] = [
        ("crashes", "test_crashes.py", crashes.run),
        ("locks", "test_dependencies.py", outages.run_db_locks),
        ("webhooks", "test_dependencies.py", lambda w, t: outages.run_webhooks(w, t, 1.0)),
        ("disk fsize", "test_disk_full.py", lambda w, t: disk.run(w, t, "fsize")),
    ]
    if disk.can_mount():
        jobs.append(("disk tmpfs", "test_disk_full.py", lambda w, t: disk.run(w, t, "tmpfs")))
    jobs.append(("registry", "test_registry.py", registry.run_both))
    jobs.append(("schemathesis", "test_schemathesis.py", fuzz.run))
    return jobs


def start_background(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> None:
    """Start the scenarios that mostly wait, for the selected tests (see ``Background``).

    Called by the root conftest at the very start of the run, so that they overlap with
    the whole suite, not only with this folder's tests."""
    selected = {Path(str(item.fspath)).name for item in request.session.items}
    jobs = [job for job in _background_jobs() if job[1] in selected]
    if not jobs or os.environ.get("CONTINUAL_RELIABILITY_BACKGROUND") == "0":
        return
    template: Path = request.getfixturevalue("mlflow_template")
    for name, _, fn in jobs:
        harness.BACKGROUND.submit(name, fn, factory.mktemp(name.replace(" ", "-")), template)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    """After the whole run: no API key or webhook URL appears in any server's log."""
    yield
    leaks = []
    for path in sorted(harness.LOGS):
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        leaks.extend(
            f"{path.name}: {secret[:8]}..." for secret in harness.SECRETS if secret in text
        )
    harness.record("secrets in logs", {"logs": len(harness.LOGS), "leaks": len(leaks)})
    assert not leaks, leaks


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the scenarios recorded (and keep them as JSON if asked)."""
    if not harness.FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, figures in harness.FIGURES.items():
        shown = {k: v for k, v in figures.items() if k != "problems"}
        terminalreporter.write_line(f"{name}: {json.dumps(shown, default=str)}")
    out = os.environ.get("CONTINUAL_RELIABILITY_FIGURES")
    if out:
        Path(out).write_text(json.dumps(harness.FIGURES, indent=2, default=str))
