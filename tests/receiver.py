"""A local HTTP receiver on 127.0.0.1 standing in for Discord, Slack or a webhook."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records JSON posts; ``mode`` makes it answer ok, 500, 429 or hang."""

    def __init__(self, mode: str = "ok", hang_seconds: float = 30.0) -> None:
        self.mode = mode
        self.hang_seconds = hang_seconds
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.paths.append(self.path)
                outer.received.append(json.loads(body or b"{}"))
                if outer.mode == "hang":
                    time.sleep(outer.hang_seconds)
                    return
                status = {"ok": 204, "500": 500, "429": 429}[outer.mode]
                self.send_response(status)
                if status == 429:
                    self.send_header("retry-after", "0.2")
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # push monitors (Uptime Kuma) are pinged with GET
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-token-123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> list[str]:
        """Event kinds seen, whatever the channel's payload shape."""
        out = []
        for body in self.received:
            if "kind" in body:
                out.append(body["kind"])
            elif "embeds" in body:
                out.append(body["embeds"][0]["title"])
            else:
                out.append(body.get("text", ""))
        return out

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        """Wait until ``n`` posts arrived."""
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """A TCP socket that accepts connections and never answers (a hung dependency)."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.conns: list[Any] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        """Close every socket."""
        self._stop = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()
