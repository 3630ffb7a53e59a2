"""A real MLflow server that is stopped for real at a chosen request, then started again.

Clients talk to a relay on a port of its own. When the request chosen by `stop_at` arrives,
the relay stops the server (SIGTERM to its process group) and stops listening, so every later
call is refused as a stopped server refuses it. `after_forwarding=True` lets the server do the
work first and loses only its answer: the nastiest case for anything that is not idempotent.
`start()` brings the same server back (same database, same artifacts) behind the same URL.
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.servers import free_port, start_mlflow_server, stop_process_group

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class StopAt:
    """The request at which the server goes down."""

    method: str
    path: str  # a regular expression searched in the request path
    body: str = ""  # ... and in its body
    after_forwarding: bool = False

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (
            method == self.method
            and re.search(self.path, path) is not None
            and self.body.encode() in body
        )


class MlflowOutage:
    def __init__(self, directory: Path):
        self.directory = directory
        self.upstream_port = free_port()
        self.port = free_port()
        self.stop_at: StopAt | None = None
        self.stopped_by: str | None = None  # the request that stopped the server
        self.seen: list[str] = []
        self._server: Any = None
        self._relay: _Relay | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = start_mlflow_server(self.directory, self.upstream_port)
        self._relay = _Relay(("127.0.0.1", self.port), _Handler)
        self._relay.outage = self
        threading.Thread(target=self._relay.serve_forever, daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            if self._relay is not None:
                self._relay.shutdown()
                self._relay.server_close()
                self._relay = None
            if self._server is not None:
                stop_process_group(self._server)
                self._server = None

    def arm(self, stop_at: StopAt) -> None:
        self.stop_at, self.stopped_by = stop_at, None

    def _fire(self, request: str) -> None:
        self.stop_at, self.stopped_by = None, request
        self.stop()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            upstream.request(method, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()


class _Relay(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    outage: MlflowOutage


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        outage = self.server.outage  # type: ignore[attr-defined]
        body = self._body()
        request = f"{self.command} {self.path}"
        outage.seen.append(request)
        stop_at = outage.stop_at
        firing = stop_at is not None and stop_at.matches(self.command, self.path, body)
        if firing and not stop_at.after_forwarding:
            self.close_connection = True
            outage._fire(request)  # no answer: the server is gone before it saw the request
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        status, response_headers, payload = outage.forward(self.command, self.path, headers, body)
        if firing:
            self.close_connection = True
            outage._fire(request)  # the server did the work; its answer is lost
            return
        self.send_response(status)
        for key, value in response_headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay
