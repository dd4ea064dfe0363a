"""A pool of OpenAI-compatible servers behind one scorer: spread, bounded, failing over.

Every request goes to the usable server with the fewest requests in flight
(ties: the one chosen longest ago), and no server holds more than
`max_in_flight` at once; a caller waits for a free slot. A server that gives
no answer (connection refused or reset, timeout, a reply that is not JSON,
HTTP 408/409/429/5xx) is rested for `backoff_s * 2**(n-1)` seconds with
jitter (n: its failures in a row, the rest capped at `max_backoff_s`) and the
request moves on to another server at once; while it rests the others take
its work. After the rest the server gets one request as a probe (a server with
failures in a row holds one request at a time) and rejoins on success.

A server that failed more than `retries` times in a row counts as down. A
request fails (`RequestFailed`, a `TransportError`, naming the last server's
error) only when every server is down: with one server that is the plain
retry rule (retries + 1 attempts with backoff); with many, no request fails
while any server answers. Once every
server is down the pool fails each request at once, so the job ends
(`ScoringAborted`) after `max_consecutive_failures` requests instead of
waiting out every rest; the outage a pool rides out is about
backoff_s * (2**retries - 1) seconds with no server answering. Other HTTP
errors (400, 401, 404: the request is at fault, not the server) fail the
request at once and leave the server in the pool.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Sequence

from sllmr_tf.errors import ConfigError
from sllmr_tf.scoring.base import TransportError

RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)
# What a server that stops answering raises: refused/reset connections, timeouts, cut replies.
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError,
                  json.JSONDecodeError)


class RequestFailed(TransportError):
    """The pool gave no answer: every server is down, or the request itself was refused."""


@dataclasses.dataclass
class _Server:
    url: str  # the OpenAI-compatible root, without a trailing slash
    in_flight: int = 0
    failures: int = 0  # in a row
    resting_until: float = 0.0
    last_chosen: int = -1
    answered: int = 0  # requests this server answered (for the summary and the tests)


def parse_base_urls(value: str) -> list[str]:
    """The servers of a comma-separated --openai_base_url, without trailing slashes.

    Raises:
        ConfigError: an empty entry or a URL that is not http(s).
    """
    urls = [part.strip().rstrip("/") for part in value.split(",")]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--openai_base_url: {url!r} is not an http(s) URL "
                              "(give one or more, comma-separated, e.g. http://10.0.0.1:8000/v1,http://10.0.0.2:8000/v1)")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"--openai_base_url names a server twice: {value}")
    return urls


class ServerPool:
    """Thread-safe: `post` may be called from many threads at once."""

    def __init__(self, base_urls: Sequence[str], max_in_flight: int, timeout_s: float, retries: int,
                 backoff_s: float, max_backoff_s: float):
        self.servers = [_Server(url) for url in base_urls]
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.failed_attempts = 0  # attempts that got no answer and were tried again
        self._last_error = ""
        self._choices = 0
        self._ready = threading.Condition()

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def post(self, path: str, data: bytes, headers: dict) -> dict:
        """POST `data` to `path` on a server of the pool; the decoded JSON reply.

        Raises:
            RequestFailed: every server is down, or a server refused the request (HTTP 4xx).
        """
        while True:
            server = self._acquire()
            try:
                request = urllib.request.Request(server.url + path, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    reply = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                error = RequestFailed(f"{server.url}{path}: HTTP {e.code}: {detail}")
                if e.code not in RETRY_STATUS:
                    self._release(server, answered=True)
                    raise error from None
            except NETWORK_ERRORS as e:
                error = RequestFailed(f"{server.url}{path}: {type(e).__name__}: {e}")
            else:
                self._release(server, answered=True)
                return reply
            self._release(server, answered=False, error=str(error))

    def _acquire(self) -> _Server:
        with self._ready:
            while True:
                if all(s.failures > self.retries for s in self.servers):
                    pool = f" (all {len(self.servers)} servers of the pool are down)" if len(self.servers) > 1 else ""
                    raise RequestFailed(self._last_error + pool)
                now = time.monotonic()
                free = [s for s in self.servers if s.resting_until <= now
                        and s.in_flight < (1 if s.failures else self.max_in_flight)]
                if free:
                    server = min(free, key=lambda s: (s.in_flight, s.last_chosen))
                    server.in_flight += 1
                    server.last_chosen = self._choices
                    self._choices += 1
                    return server
                resting = [s.resting_until - now for s in self.servers if s.resting_until > now]
                self._ready.wait(min(resting) if resting else None)

    def _release(self, server: _Server, answered: bool, error: str = "") -> None:
        """Frees the slot; a failure rests the server."""
        with self._ready:
            server.in_flight -= 1
            if answered:
                server.failures = 0
                server.answered += 1
            else:
                server.failures += 1
                rest = min(self.backoff_s * 2 ** (server.failures - 1), self.max_backoff_s)
                server.resting_until = time.monotonic() + rest * (0.5 + random.random())
                self._last_error = error
                self.failed_attempts += not all(s.failures > self.retries for s in self.servers)
            self._ready.notify_all()
