"""The ``continual`` command: ``serve`` runs the service; the rest talk to a running one."""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import msgspec

from continual.remote import Remote, render
from continual.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from continual.client import Client


def _settings(**overrides: Any) -> Settings:
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


def _remote(patient: bool = False) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options of every command that talks to a running service, handed to it as one
    ``remote``. A ``patient`` command may wait for a retrain, so by default it waits as
    long as the server lets one run (``CONTINUAL_RETRAIN_TIMEOUT_SECONDS``) and a minute."""

    def wrap(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def run(
            url: str | None, key: str | None, timeout: float | None, as_json: bool, **kw: Any
        ) -> None:
            settings = _settings()
            if timeout is None:
                timeout = settings.retrain_timeout_seconds + 60 if patient else 120.0
            command(remote=Remote(settings, url, key, timeout, as_json), **kw)

        options = [
            click.option(
                "--url",
                envvar="CONTINUAL_URL",
                callback=_check_url,
                help="The service [env CONTINUAL_URL, default http://CONTINUAL_HOST:CONTINUAL_PORT]",
            ),
            click.option("--key", help="API key [env API_KEY, else the server's DATA_DIR/api_key]"),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0, min_open=True),
                help="Seconds to wait for an answer [120; check, retrain and demo: "
                "CONTINUAL_RETRAIN_TIMEOUT_SECONDS + 60]",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the raw JSON answer."),
        ]
        for option in reversed(options):
            run = option(run)
        return run

    return wrap


def _check_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # the value is not repeated: it may carry a user:password
        raise click.BadParameter(
            "expected http://host:port or https://host[:port] (from --url or CONTINUAL_URL)"
        )
    return value


def _progress(length: int, label: str) -> ProgressBar[int]:
    """A progress bar on a terminal; nothing for a script, whose stderr is then only the
    one line of a failure."""
    return click.progressbar(
        length=length, label=label, file=sys.stderr, hidden=not sys.stderr.isatty()
    )


@main.command()
@click.option("--n-samples", default=1000, show_default=True)
@click.option("--n-features", default=2, show_default=True)
@click.option("--concept", default=0, show_default=True)
@click.option("--seed", type=int, default=None)
@_remote()
def generate(
    remote: Remote, n_samples: int, n_features: int, concept: int, seed: int | None
) -> None:
    """Store synthetic labelled rows in the running service."""
    remote.show(lambda c: c.generate(n_samples, n_features, concept, seed))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chunk-rows", default=10_000, show_default=True)
@_remote()
def ingest(remote: Remote, file: Path, chunk_rows: int) -> None:
    """Upload a labelled CSV file (header row, label column `target`)."""
    with open(file, encoding="utf-8-sig") as fh:
        total = max(0, sum(1 for _ in fh) - 1)
    with _progress(total, f"ingesting {file.name}") as bar:
        accepted = remote.run(lambda c: c.ingest_csv(file, chunk_rows, progress=bar.update))
    click.echo(render({"accepted": accepted}, remote.as_json))


def _retrain_progress(remote: Remote, stop: threading.Event) -> None:
    """On a terminal, say on stderr what the running retrain does, in one line that
    counts the seconds (off a terminal stderr keeps only a failure's line). The first
    retrain after start-up may first wait 10-20 s for MLflow to create its tables;
    /model-status says so (retrain_preparing)."""
    from continual.client import Client

    if not sys.stderr.isatty():
        return
    started = time.monotonic()
    with Client(remote.target.url, remote.target.key, timeout=5) as poll:
        while not stop.wait(0.5):
            try:
                preparing = bool(poll.status().get("retrain_preparing"))
            except Exception:  # noqa: BLE001 - the progress line is best effort; the retrain decides
                preparing = False
            phase = "preparing the tracking store (first run)" if preparing else "training"
            elapsed = time.monotonic() - started
            click.echo(f"\rretraining: {phase}… {elapsed:.0f} s\033[K", err=True, nl=False)
    click.echo("\r\033[K", err=True, nl=False)


@main.command()
@_remote(patient=True)
def retrain(remote: Remote) -> None:
    """Train a challenger now and print the gate's verdict (progress on stderr)."""
    stop = threading.Event()
    progress = threading.Thread(target=_retrain_progress, args=(remote, stop), daemon=True)

    def call(c: Client) -> Any:
        progress.start()
        try:
            return c.retrain()
        finally:  # the progress line is gone before the verdict is printed
            stop.set()
            progress.join(5)

    remote.show(call)


@main.command()
@_remote(patient=True)
def check(remote: Remote) -> None:
    """Run the check now and print the decision."""
    remote.show(lambda c: c.check())


@main.command()
@click.option("--rows", default=1500, show_default=True, help="rows per phase")
@click.option("--check-every", default=250, show_default=True, help="run POST /check every N rows")
@_remote(patient=True)
def demo(remote: Remote, rows: int, check_every: int) -> None:
    """Drift and recovery against the running service, with accuracy per phase."""
    from continual.demo import report, run_demo

    with _progress(3 * rows, "streaming") as bar:
        phases = remote.run(
            lambda c: run_demo(c, rows_per_phase=rows, check_every=check_every, progress=bar.update)
        )
    click.echo(
        render([{**msgspec.to_builtins(p), "accuracy": p.accuracy} for p in phases], True)
        if remote.as_json
        else report(phases)
    )


@main.command()
@_remote()
def status(remote: Remote) -> None:
    """Print the model status."""
    remote.show(lambda c: c.status())


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


@main.group()
def db() -> None:
    """The database schema: see where it is, bring it to this release's."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate DATABASE_URL to this release's schema (serve does it at start-up too)."""
    from continual.bootstrap import upgrade_database

    before, after, head = upgrade_database(_settings())
    if before == after:
        click.echo(f"database at {after} (head {head}): nothing to do")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after} (head {head})")


@db.command("current")
def db_current() -> None:
    """Print the schema revision of DATABASE_URL and this release's newest."""
    from continual.bootstrap import database_revision

    current, head = database_revision(_settings())
    state = "up to date" if current == head else "needs `continual db upgrade`"
    click.echo(f"database at {current or 'empty'} (head {head}): {state}")
