"""Load generators for 127.0.0.1 only, bounded in time: wrk when it is installed, else a
small asyncio HTTP/1.1 keep-alive client (stdlib).

- ``wrk``: closed loop, ``connections`` keep-alive connections on one thread, cycling
  through the given request bodies (a generated Lua script); wrk's own latency
  percentiles. Debian: ``apt-get install wrk``.
- ``asyncio``: the same closed loop in Python. httpx costs ~2 ms of client CPU per
  request here, which on a 2-core box would make the client the bottleneck; writing the
  request bytes once and reading ``content-length`` bodies costs a few tens of us.
- ``open_loop``: a fixed request rate (asyncio), latency counted from each request's
  scheduled time, so a stalled server is not hidden by a client that waits for it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _harness import percentile

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LoadResult:
    """Throughput and latency percentiles (milliseconds) of one load run."""

    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _request_bytes(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if match is None:
        raise RuntimeError("the server answered without content-length")
    await reader.readexactly(int(match.group(1)))
    return status


def _requests(
    method: str, path: str, bodies: Sequence[bytes | None], headers: dict[str, str]
) -> list[bytes]:
    return [_request_bytes(method, path, b, headers) for b in bodies]


async def _closed(
    port: int, requests: Sequence[bytes], connections: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        i = k
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                status = await _exchange(reader, writer, requests[i % len(requests)])
                latencies.append(time.perf_counter() - t)
                errors += status >= 400
                i += connections
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        "asyncio",
        len(latencies),
        elapsed,
        len(latencies) / elapsed,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        errors,
    )


async def _open(port: int, requests: Sequence[bytes], rate: float, seconds: float) -> LoadResult:
    connections = 8
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)

    async def worker(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for n in range(k, total, connections):
                due = start + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                status = await _exchange(reader, writer, requests[n % len(requests)])
                latencies.append(time.perf_counter() - due)
                errors += status >= 400
        finally:
            writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    elapsed = time.perf_counter() - start
    return LoadResult(
        f"asyncio open loop {rate:.0f}/s",
        len(latencies),
        elapsed,
        len(latencies) / elapsed,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        errors,
    )


def open_loop(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    rate: float,
    seconds: float,
) -> LoadResult:
    """POST at a fixed rate for ``seconds``; latency from each request's scheduled time."""
    return asyncio.run(_open(port, _requests("POST", path, bodies, headers), rate, seconds))


def wrk_available() -> bool:
    """Whether ``wrk`` is on the PATH."""
    return shutil.which("wrk") is not None


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {label} latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _lua(method: str, path: str, bodies: Sequence[bytes | None], headers: dict[str, str]) -> str:
    def long_string(s: str) -> str:
        return "[==[" + s + "]==]"

    items = ",\n".join(long_string((b or b"").decode()) for b in bodies)
    # "[ [==[" with spaces: "[[" would open a long string of its own
    head = ", ".join(f"[ {long_string(k)} ] = {long_string(v)}" for k, v in headers.items())
    return f"""
local bodies = {{
{items}
}}
local headers = {{ {head} }}
local i = 0
request = function()
  i = i % #bodies + 1
  local body = bodies[i]
  if body == "" then body = nil end
  return wrk.format({long_string(method)}, {long_string(path)}, headers, body)
end
"""


def _wrk(
    port: int,
    method: str,
    path: str,
    bodies: Sequence[bytes | None],
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> LoadResult:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bodies.lua"
        script.write_text(_lua(method, path, bodies, headers))
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                str(script),
                f"http://{HOST}:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    requests = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if requests is None or rps is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return LoadResult(
        "wrk",
        int(requests.group(1)),
        float(requests.group(2)) * _UNITS[requests.group(3)] / 1000,
        float(rps.group(1)),
        _wrk_ms(out, "50%"),
        _wrk_ms(out, "99%"),
        int(bad.group(1)) if bad else 0,
    )


def closed_loop(
    port: int,
    method: str,
    path: str,
    bodies: Sequence[bytes | None],
    headers: dict[str, str],
    connections: int,
    seconds: float,
    tool: str = "auto",
) -> LoadResult:
    """Saturating load: ``connections`` keep-alive connections, each sending its next
    request as soon as the last one answered, for ``seconds``. ``tool``: ``wrk``,
    ``asyncio`` or ``auto`` (wrk when installed)."""
    if tool == "wrk" or (tool == "auto" and wrk_available()):
        return _wrk(port, method, path, bodies, headers, connections, seconds)
    requests = _requests(method, path, bodies, headers)
    return asyncio.run(_closed(port, requests, connections, seconds))
