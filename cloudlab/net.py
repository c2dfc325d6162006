"""HTTP and port helpers, standard library only: the one place the package talks plain HTTP.

Used by the lab manager (health checks), :mod:`cloudlab.procs` (is a process answering?),
the lessons' demos and checks (calls to the sample service) and the load generator.
Serves every lesson.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"


@dataclass
class Response:
    """What an HTTP server answered: an error status is an answer too (no exception)."""

    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)

    def json(self, default=None):
        """The body as JSON, or ``default`` when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else default
        except ValueError:
            return default


def request(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 5.0) -> Response:
    """One HTTP request. ``body``: a dict/list (sent as JSON), bytes, or None.

    An HTTP error status (404, 500 ...) is returned as a :class:`Response`; no answer at all
    (connection refused, timeout) raises ``OSError``.
    """
    hdrs = dict(headers or {})
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = body if isinstance(body, bytes) else str(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read() or b"", dict(e.headers or {}))
    except urllib.error.URLError as e:  # no answer: the reason is an OSError (refused, timed out ...)
        raise e.reason if isinstance(e.reason, OSError) else OSError(str(e.reason)) from None


def get_json(url: str, timeout: float = 2.0):
    """GET ``url`` and decode JSON (None for an empty or non-JSON body). Raises ``OSError`` when nobody answers."""
    return request("GET", url, timeout=timeout).json()


def answers(url: str, timeout: float = 2.0) -> bool:
    """Does anything answer HTTP at ``url`` (any status counts)?"""
    try:
        request("GET", url, timeout=timeout)
        return True
    except (OSError, ValueError):  # ValueError: not a URL at all
        return False


def wait_http(url: str, timeout: float = 10.0, alive=None) -> bool:
    """Poll ``url`` until it answers (True) or ``timeout`` passes (False).

    ``alive()``, if given, is asked between polls: when the process behind the URL has exited,
    waiting longer is pointless and the answer is False at once.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(url, timeout=1.0):
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.05)
    return False


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it), on 127.0.0.1."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Does something accept connections on ``host:port``?"""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0
