"""`HttpClient` keeps a query written into the path, over real HTTP: httpx drops such a query whenever
params are passed (and every call passes them), which once cost the agent's reports their `?work=1`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from thresher.client.http import ApiError, HttpClient


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps(parse_qs(urlsplit(self.path).query)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_query_in_the_path_reaches_the_server_beside_the_params(echo: str) -> None:
    client = HttpClient(echo)
    try:
        assert client.get("/jobs/1/tasks?frame=7") == {"frame": ["7"]}
        assert client.get("/jobs/1/tasks?frame=7&limit=5", limit=50, state=None) == {"frame": ["7"], "limit": ["50"]}
        assert client.get("/jobs", limit=3) == {"limit": ["3"]}
    finally:
        client.close()


class _NotThresher(BaseHTTPRequestHandler):
    """Another web server at the address: an HTML 404 for every path."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"<html><body>404 Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_first_answer_that_is_no_thresher_404_names_the_address() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotThresher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/farm"
    client = HttpClient(url)
    try:
        with pytest.raises(ApiError) as first:
            client.get("/whoami")
        assert first.value.status == 404
        assert first.value.detail == f"no Thresher API at {url}: give the server's base address, as http://host:8642"
        with pytest.raises(ApiError) as later:  # once the server answered, a 404 is about what was asked
            client.get("/jobs/7")
        assert later.value.detail == "Not Found"
    finally:
        client.close()
        server.shutdown()
        server.server_close()
