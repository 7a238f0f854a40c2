"""The ``continual`` command: ``serve`` runs the service; the rest talk to a running one."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from continual.settings import SettingsError, load_settings


def _settings(**overrides: Any) -> Any:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


@click.group()
@click.version_option(package_name="continual")
def main() -> None:
    """continual: keeps a classification model accurate while its data changes."""


@main.command()
@click.option("--host", default=None, help="Bind address [env CONTINUAL_HOST, default 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port [env CONTINUAL_PORT, default 8000]")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory [env CONTINUAL_DATA_DIR, default ./data]",
)
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run the service (API, dashboard, scheduler) in this process."""
    import uvicorn

    from continual.app import create_app
    from continual.log import configure_logging

    settings = _settings(host=host, port=port, data_dir=data_dir)
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    if app.services.api_key_file is not None:
        click.echo(
            f"API key: generated and stored in {app.services.api_key_file} (owner-only)", err=True
        )
    click.echo(
        f"continual serving on http://{settings.host}:{settings.port} "
        f"(dashboard /dashboard, OpenAPI /schema)",
        err=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,  # NiceGUI and the in-process model holder want one worker per replica
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=8,
        lifespan="on",
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 whatever we configure; the
        # rate limiter reads it itself, from CONTINUAL_TRUSTED_PROXIES only
        proxy_headers=False,
    )


def _client() -> Any:
    from continual.client import Client

    settings = _settings()
    url = os.environ.get("CONTINUAL_URL", f"http://{settings.host}:{settings.port}")
    key = settings.api_key.value if settings.api_key else None
    if key is None and settings.api_key_file.is_file():
        key = settings.api_key_file.read_text().strip()
    return Client(url, key)


def _run(call: Any) -> None:
    from continual.client import ApiError

    try:
        result = call()
    except ApiError as exc:
        click.echo(f"error {exc.status}: {exc.message}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"cannot reach the service: {exc}", err=True)
        sys.exit(1)
    import json

    click.echo(json.dumps(result, indent=2, default=str))


@main.command()
@click.option("--n-samples", default=1000, show_default=True)
@click.option("--n-features", default=2, show_default=True)
@click.option("--concept", default=0, show_default=True)
@click.option("--seed", type=int, default=None)
def generate(n_samples: int, n_features: int, concept: int, seed: int | None) -> None:
    """Store synthetic labelled rows in the running service."""
    with _client() as c:
        _run(lambda: c.generate(n_samples, n_features, concept, seed))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chunk-rows", default=10_000, show_default=True)
def ingest(file: Path, chunk_rows: int) -> None:
    """Upload a labelled CSV file (header row, label column `target`)."""
    with open(file, encoding="utf-8-sig") as fh:
        total = max(0, sum(1 for _ in fh) - 1)
    with _client() as c, click.progressbar(length=total, label=f"ingesting {file.name}") as bar:
        _run(lambda: {"accepted": c.ingest_csv(file, chunk_rows, progress=bar.update)})


def _retrain_progress(stop: threading.Event) -> None:
    """Say on stderr what the running retrain does: a line that counts the seconds on a
    terminal, a line per phase otherwise. The first retrain after start-up may first wait
    10-20 s for MLflow to create its tables; /model-status says so (retrain_preparing)."""
    tty = sys.stderr.isatty()
    started, said = time.monotonic(), ""
    with _client() as poll:
        while not stop.wait(0.5):
            try:
                preparing = bool(poll.status().get("retrain_preparing"))
            except Exception:  # noqa: BLE001 - the progress line is best effort; the retrain decides
                preparing = False
            phase = "preparing the tracking store (first run)" if preparing else "training"
            if tty:
                elapsed = time.monotonic() - started
                click.echo(f"\rretraining: {phase}… {elapsed:.0f} s\033[K", err=True, nl=False)
            elif phase != said:
                click.echo(f"retraining: {phase}…", err=True)
            said = phase
    if tty:
        click.echo("\r\033[K", err=True, nl=False)


@main.command()
def retrain() -> None:
    """Train a challenger now and print the gate's verdict (progress on stderr)."""
    stop = threading.Event()
    progress = threading.Thread(target=_retrain_progress, args=(stop,), daemon=True)

    def call() -> Any:
        progress.start()
        try:
            return c.retrain()
        finally:  # the progress line is gone before the verdict is printed
            stop.set()
            progress.join(5)

    with _client() as c:
        _run(call)


@main.command()
def check() -> None:
    """Run the check now and print the decision."""
    with _client() as c:
        _run(c.check)


@main.command()
@click.option("--rows", default=1500, show_default=True, help="rows per phase")
@click.option("--check-every", default=250, show_default=True, help="run POST /check every N rows")
def demo(rows: int, check_every: int) -> None:
    """Drift and recovery against the running service, with accuracy per phase."""
    from continual.client import ApiError
    from continual.demo import report, run_demo

    with _client() as c, click.progressbar(length=3 * rows, label="streaming") as bar:
        try:
            phases = run_demo(c, rows_per_phase=rows, check_every=check_every, progress=bar.update)
        except (ApiError, OSError) as exc:
            click.echo(f"\ndemo failed: {exc}", err=True)
            sys.exit(1)
    click.echo(report(phases))


@main.command()
def status() -> None:
    """Print the model status."""
    with _client() as c:
        _run(c.status)


def _benchmarks_dir() -> Path | None:
    """``benchmarks/`` of a source checkout: the working directory's, else the one beside
    this package's ``src/`` (an editable install). ``None`` for an installed wheel."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / "benchmarks" / "quick.py").is_file():
            return root / "benchmarks"
    return None


@main.command()
@click.option("--no-write", is_flag=True, help="Print only; leave docs/benchmarks.md alone.")
def bench(no_write: bool) -> None:
    """Run the quick benchmark set (benchmarks/quick.py) against a fresh local server.

    The benchmarks live in the source checkout, not in the installed package: they need
    River and, optionally, wrk, which the service itself does not.
    """
    import subprocess

    where = _benchmarks_dir()
    if where is None:
        click.echo(
            "benchmarks/quick.py not found: run `continual bench` from a source checkout "
            "of continual (the benchmarks are not part of the installed package)",
            err=True,
        )
        sys.exit(2)
    args = [sys.executable, str(where / "quick.py"), *(["--no-write"] if no_write else [])]
    # our own interpreter and a script from our own checkout, no shell
    sys.exit(subprocess.call(args, cwd=where.parent))  # noqa: S603
