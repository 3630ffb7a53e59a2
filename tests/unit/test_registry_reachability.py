"""An unreachable MLflow server fails fast with its URL named, not after minutes of retries."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from continuous_training.registry import RegistryError, check_reachable


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection_names_the_url() -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(RegistryError, match=f"MLflow tracking server at {uri} is unreachable"):
        check_reachable(uri, timeout=2)


class _Unhealthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_unhealthy_server_names_the_url() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Unhealthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(RegistryError, match=uri):
            check_reachable(uri, timeout=2)
    finally:
        server.shutdown()


def test_non_http_tracking_uris_are_not_probed(tmp_path) -> None:
    check_reachable(f"file://{tmp_path}")
    check_reachable(f"sqlite:///{tmp_path}/mlflow.db")
