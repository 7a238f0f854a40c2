"""The command line against no server, a wrong or missing key, a server that fails, hangs
or hangs up, and a live one: one line on stderr and an exit code for each failure, the
answer (as text, or the raw JSON) otherwise. Each command runs as its own process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from continual.client import AsyncClient, Client, NoAnswer
from tests.receiver import Silent
from tests.server import Server, free_port

# every command that talks to a running server, with arguments that make it quick
COMMANDS = ["status", "check", "retrain", "generate", "ingest", "demo"]
ARGS = {
    "generate": ["--n-samples", "300", "--seed", "3"],
    "demo": ["--rows", "50", "--check-every", "50"],
}
CSV = "feature1,feature2,target\n0.5,0.7,1\n-2.0,-1.0,0\n1.5,1.1,1\n"


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``continual ARGS`` with none of this shell's continual settings."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CONTINUAL_") and k not in ("API_KEY", "PYTEST_CURRENT_TEST")
    }
    return subprocess.run(
        [sys.executable, "-m", "continual", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def command(name: str, workdir: Path) -> list[str]:
    """The command line for ``name``; ``ingest`` gets a small CSV file."""
    if name == "ingest":
        csv = workdir / "rows.csv"
        csv.write_text(CSV)
        return ["ingest", str(csv)]
    return [name, *ARGS.get(name, [])]


class Fixed:
    """An HTTP server on 127.0.0.1 giving every request the same answer, or, with
    ``status=None``, hanging up without one."""

    def __init__(self, status: int | None, body: bytes = b"", content_type: str = "") -> None:
        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if status is None:
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self.answer()

            def do_POST(self) -> None:
                self.answer()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[Server]:
    """A real ``continual serve`` with a generated key, in ``<tmp>/data``."""
    data = tmp_path_factory.mktemp("cli") / "data"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    env = {"CONTINUAL_SCHEDULER": "false", "CONTINUAL_COOLDOWN_SECONDS": "0"}
    srv = Server(data, env).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("name", COMMANDS)
def test_no_server_is_one_line_and_exit_3(name: str, tmp_path: Path) -> None:
    """With nothing listening, each command says in one line where it looked and what to do."""
    port = free_port()
    out = cli(*command(name, tmp_path), cwd=tmp_path, env={"CONTINUAL_PORT": str(port)})
    assert out.returncode == 3, out
    assert out.stderr == (
        f'cannot reach continual at http://127.0.0.1:{port}: start it with "continual serve", '
        "or set CONTINUAL_URL (or --url)\n"
    )
    assert out.stdout == ""


@pytest.mark.parametrize("name", COMMANDS)
def test_wrong_key_is_one_line_and_exit_1(name: str, live: Server, tmp_path: Path) -> None:
    """A refused key is named by where it came from (never shown); status is public."""
    out = cli(*command(name, tmp_path), "--url", live.url, "--key", "wrong-key-123", cwd=tmp_path)
    if name == "status":  # GET /model-status needs no key, so a wrong one is not refused
        assert out.returncode == 0, out
        return
    assert out.returncode == 1, out
    assert out.stderr == (
        f"continual at {live.url} refused the API key from --key: pass the right one "
        "with --key or API_KEY\n"
    )
    assert "wrong-key-123" not in out.stderr + out.stdout


def test_key_from_api_key_or_missing_is_said(live: Server, tmp_path: Path) -> None:
    """A wrong API_KEY is named as such; with no key anywhere, the line says where to put one."""
    wrong = cli("check", cwd=tmp_path, env={"CONTINUAL_URL": live.url, "API_KEY": "nope-nope"})
    assert wrong.returncode == 1
    assert wrong.stderr == (
        f"continual at {live.url} refused the API key from API_KEY: pass the right one "
        "with --key or API_KEY\n"
    )
    none = cli("check", cwd=tmp_path, env={"CONTINUAL_URL": live.url})
    assert none.returncode == 1
    assert none.stderr == (
        f"continual at {live.url} wants an API key and none was found: pass --key or set "
        "API_KEY (a generated key is in the server's DATA_DIR/api_key)\n"
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_server_error_is_one_line_and_exit_1(name: str, tmp_path: Path) -> None:
    """A 500 is reported with the server's message and a pointer to its log."""
    failing = Fixed(500, b'{"error": "database is on fire", "detail": null}', "application/json")
    try:
        out = cli(*command(name, tmp_path), "--url", failing.url, "--key", "k", cwd=tmp_path)
    finally:
        failing.close()
    assert out.returncode == 1, out
    assert out.stderr == (
        f"continual at {failing.url} failed with a server error (500: database is on fire); "
        "its log says why\n"
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_timeout_is_one_line_and_exit_3(name: str, tmp_path: Path) -> None:
    """A server that accepts and never answers is given up on after --timeout seconds."""
    silent = Silent()
    started = time.monotonic()
    try:
        out = cli(*command(name, tmp_path), "--url", silent.url, "--timeout", "1", cwd=tmp_path)
    finally:
        silent.close()
    assert time.monotonic() - started < 30
    assert out.returncode == 3, out
    assert out.stderr == (
        f"continual at {silent.url} did not answer within 1 s: it may be busy (a retrain?); "
        "see its log, or wait longer with --timeout\n"
    )


def test_hang_up_and_other_servers_are_said_in_one_line(tmp_path: Path) -> None:
    """A dropped connection, and an answer that is not continual's JSON, each get a line."""
    dropping = Fixed(None)
    other = Fixed(404, b"<html><body>\n<h1>Not Found</h1>\n</body></html>\n", "text/html")
    try:
        dropped = cli("status", "--url", dropping.url, cwd=tmp_path)
        elsewhere = cli("status", "--url", other.url, cwd=tmp_path)
    finally:
        dropping.close()
        other.close()
    assert dropped.returncode == 3
    assert dropped.stderr == (
        f"continual at {dropping.url} closed the connection before answering: it may have "
        "stopped; see its log\n"
    )
    assert elsewhere.returncode == 1
    assert elsewhere.stderr == (
        f"continual at {other.url} answered 404: Not Found: the answer is not continual's "
        "JSON: is something else listening there?\n"
    )


@pytest.mark.parametrize(
    "url", ["localhost:8000", "http://", "http://127.0.0.1:99999", "https://u:secret@:1"]
)
def test_a_bad_url_is_a_usage_error(url: str, tmp_path: Path) -> None:
    """--url must be http(s)://host[:port]; otherwise exit 2 naming the option, not the value."""
    out = cli("status", "--url", url, cwd=tmp_path)
    assert out.returncode == 2
    assert "Invalid value for '--url'" in out.stderr
    assert "secret" not in out.stderr


def test_every_command_answers_a_live_server(live: Server, tmp_path: Path) -> None:
    """Against a live server each command exits 0 and --json prints the raw answer alone."""
    flags = ["--url", live.url, "--key", live.key(), "--json"]

    def run(name: str) -> Any:
        out = cli(*command(name, tmp_path), *flags, cwd=tmp_path)
        assert out.returncode == 0, out
        assert out.stderr == ""
        return json.loads(out.stdout)

    assert run("generate")["accepted"] == 300
    assert run("ingest") == {"accepted": 3}
    verdict = run("retrain")
    assert verdict["promoted"] is True
    assert run("check")["model_version"] == verdict["version"]
    assert run("status")["model_version"] == verdict["version"]
    phases = run("demo")
    assert [p["name"] for p in phases] == ["before drift", "after drift", "after recovery"]
    assert all(p["rows"] == 50 for p in phases)


def test_status_as_text_with_the_key_from_the_data_directory(live: Server) -> None:
    """Run beside the server's data directory, check finds its key; status reads as text."""
    where = live.data_dir.parent  # ./data is the server's data directory
    env = {"CONTINUAL_PORT": str(live.port)}
    checked = cli("check", cwd=where, env=env)
    assert checked.returncode == 0, checked
    assert checked.stdout.startswith("decision: ")
    status = cli("status", cwd=where, env=env)
    assert status.returncode == 0, status
    lines = status.stdout.splitlines()
    assert lines[0] in ("status: ok", "status: degraded", "status: collecting", "status: no_model")
    assert "threshold: 0.8" in lines
    assert not status.stdout.lstrip().startswith("{")


def test_the_clients_raise_no_answer_saying_which() -> None:
    """For scripts, Client and AsyncClient raise NoAnswer: unreachable, timeout or dropped."""
    port = free_port()
    silent, dropping = Silent(), Fixed(None)
    try:
        with Client(f"http://127.0.0.1:{port}") as c, pytest.raises(NoAnswer) as nothing:
            c.status()
        with Client(dropping.url) as c, pytest.raises(NoAnswer) as dropped:
            c.check()

        async def hung() -> None:
            async with AsyncClient(silent.url, timeout=0.5) as ac:
                await ac.status()

        with pytest.raises(NoAnswer) as slow:
            asyncio.run(hung())
    finally:
        silent.close()
        dropping.close()
    assert (nothing.value.kind, nothing.value.url) == ("unreachable", f"http://127.0.0.1:{port}")
    assert dropped.value.kind == "dropped"
    assert (slow.value.kind, slow.value.timeout) == ("timeout", 0.5)
