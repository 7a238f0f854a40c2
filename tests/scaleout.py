"""The parts of a scale-out deployment, started on 127.0.0.1 by a test and stopped by PID.

- ``S3``: ``moto_server`` (moto[server]), an S3 API on loopback, in place of MinIO;
- ``MlflowServer``: ``mlflow server --serve-artifacts`` with its artifacts in that S3;
- ``Nginx``: the Debian package's ``/usr/sbin/nginx`` with ``deploy/nginx/continual.conf``
  (the file compose.yaml mounts), its upstreams pointed at loopback ports, in the
  foreground (``daemon off``) so it is the test's own child, with every path in a temp dir.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.server import free_port

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "nginx" / "continual.conf"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
S3_ENV["AWS_DEFAULT_REGION"] = "us-east-1"


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Wait until ``url`` answers 200; fail at once if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate our child by PID, kill it if it overstays."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


class S3:
    """moto's S3 server; ``bucket`` is created at start."""

    def __init__(self, root: Path, bucket: str = "mlflow") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.log = root / "moto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> S3:
        """Start, wait, create the bucket (a plain S3 PUT, as any client would)."""
        self.proc = subprocess.Popen(
            [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.url}/moto-api/", self.proc, self.log, 60)
        import boto3

        boto3.client("s3", endpoint_url=self.url, **_boto()).create_bucket(Bucket=self.bucket)
        return self

    def objects(self) -> list[str]:
        """Every object key in the bucket."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.url, **_boto())
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def gets(self, suffix: str) -> int:
        """How many GET requests for keys ending in ``suffix`` the server answered."""
        # werkzeug's request log; a download may be a ranged GET (206)
        pattern = re.compile(
            rf"GET /{self.bucket}/[^?\s]*{re.escape(suffix)}[?\s]\S*\s*HTTP/1\.1\S*\" 20[06]"
        )
        return len(pattern.findall(self.log.read_text(errors="replace")))


def _boto() -> dict[str, str]:
    return {
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
    }


class MlflowServer:
    """``mlflow server --serve-artifacts --artifacts-destination s3://...``: clients reach the
    artifacts through it (``mlflow-artifacts:/``), only the server talks to S3."""

    def __init__(self, root: Path, backend: str, s3: S3) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = backend
        self.s3 = s3
        self.log = root / "mlflow-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """What the server and its clients need to reach the S3 store."""
        return {**S3_ENV, "MLFLOW_S3_ENDPOINT_URL": self.s3.url, "NO_PROXY": "127.0.0.1,localhost"}

    def start(self) -> MlflowServer:
        """Start and wait for /health."""
        env = {
            **os.environ,
            **self.env(),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
        env.pop("PYTEST_CURRENT_TEST", None)
        self.proc = subprocess.Popen(
            [
                _bin("mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                self.backend,
                "--artifacts-destination",
                f"s3://{self.s3.bucket}/artifacts",
                "--serve-artifacts",
            ],
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.url}/health", self.proc, self.log, 300)
        return self


class Nginx:
    """nginx in front of ``ports``, with compose's site file; a child of the test."""

    def __init__(self, root: Path, ports: list[int]) -> None:
        if not Path("/usr/sbin/nginx").exists() and shutil.which("nginx") is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx; .ci/run does)")
        self.root = root / "nginx"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ports = ports
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> Path:
        """compose's site file on loopback, inside a main file whose paths are all ours."""
        site = SITE.read_text()
        servers = "".join(
            f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;\n" for p in self.ports
        )
        site, n = re.subn(r"    server replica:8000 [^\n]*;\n", servers, site)
        assert n == 2, "deploy/nginx/continual.conf: expected two `server replica:8000` lines"
        site = site.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        (self.root / "site.conf").write_text(site)
        r = self.root
        # as root, nginx's workers would run as nobody, who cannot enter pytest's 0700 dirs
        user = "user root root;" if os.geteuid() == 0 else ""
        main = f"""
{user}
daemon off;
worker_processes 1;
pid {r}/nginx.pid;
error_log {r}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$request_uri|$status|$upstream_addr|$upstream_status|$msec';
    access_log {r}/access.log upstream;
    client_body_temp_path {r}/body;
    proxy_temp_path {r}/proxy;
    fastcgi_temp_path {r}/fastcgi;
    uwsgi_temp_path {r}/uwsgi;
    scgi_temp_path {r}/scgi;
    include {r}/site.conf;
}}
"""
        (r / "nginx.conf").write_text(main)
        return r / "nginx.conf"

    def start(self) -> Nginx:
        """Check the configuration (``nginx -t``), then run it in the foreground."""
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.config()
        nginx = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"
        cmd = [nginx, "-p", str(self.root), "-c", str(conf)]
        subprocess.run([*cmd, "-t", "-q"], check=True, capture_output=True, timeout=30)
        log = self.root / "stderr.log"
        self.proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/health", self.proc, log, 30)
        return self

    def access(self) -> list[list[str]]:
        """The access log, a line a request: uri, status, upstreams tried, their statuses, when."""
        text = (self.root / "access.log").read_text(errors="replace")
        return [line.split("|") for line in text.splitlines() if line.count("|") == 4]
