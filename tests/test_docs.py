"""The docs describe the code as it is: every setting is documented, the README's commands exist."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from continual.cli import main
from continual.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_configuration_doc() -> None:
    """docs/configuration.md names every environment variable the settings read."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in ENV_NAMES if f"`{name}`" not in doc]
    assert missing == []


def test_readme_quick_start_and_cli_commands_exist() -> None:
    """The README's two quick-start commands and every CLI command it names are real."""
    readme = (ROOT / "README.md").read_text()
    assert "uv run continual serve" in readme
    assert "uv run pytest" in readme
    commands = set(main.commands)  # type: ignore[attr-defined]
    for name in ("serve", "generate", "ingest", "retrain", "check", "status", "demo"):
        assert name in commands
        assert f"continual {name}" in readme
    assert CliRunner().invoke(main, ["serve", "--help"]).exit_code == 0


def test_every_option_of_the_client_commands_is_documented() -> None:
    """Each command that talks to a server takes --url/--key/--timeout/--json, all in the docs."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    commands = main.commands  # type: ignore[attr-defined]
    shared = {opt for param in commands["status"].params for opt in param.opts}
    assert {"--url", "--key", "--timeout", "--json"} <= shared
    for name in ("generate", "ingest", "retrain", "check", "demo"):
        assert shared <= {opt for param in commands[name].params for opt in param.opts}, name
    assert [opt for opt in sorted(shared) if f"`{opt}`" not in doc] == []
    assert "`CONTINUAL_URL`" in doc


def test_the_quick_start_serve_line_starts_the_service(tmp_path: Path) -> None:
    """The README's quick-start `serve` line, pasted into bash as written, serves /health
    (on a free port and a temporary data directory, set through the environment)."""
    import os
    import re
    import signal
    import subprocess
    import time

    import httpx

    from tests.server import free_port

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    (line,) = [ln for ln in block.group(1).splitlines() if "continual serve" in ln]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "API_KEY"}
    env |= {
        "CONTINUAL_PORT": str(port),
        "CONTINUAL_DATA_DIR": str(tmp_path / "data"),
        "CONTINUAL_DASHBOARD": "false",
    }
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {line.split('#')[0].strip()}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert status == {"status": "ok"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own session: uv and the server it runs
        out, _ = proc.communicate(timeout=60)
    assert (tmp_path / "data" / "api_key").exists()
    assert b"api_key" in out  # serve says where it stored the generated key
