"""API Gateway's Lambda proxy integration, built by the lab: the event a function gets, what becomes of its answer.

``sam local start-api`` does this job on a developer's machine, but not on the lab's engine (tried with SAM CLI
1.170, ``--skip-pull-image`` and the lesson's local image): it builds a layer that moves its emulator into the image as
the image's user (fails for a non-root image) and reaches the container through a published port (the lab's dockerd
has no bridge). So the lab builds the HTTP API event itself
(payload format 2.0, as HTTP APIs send it; 1.0, REST APIs' format, with ``version="1.0"``) and maps the
function's answer back to HTTP following API Gateway's documented rules:

* a ``statusCode`` with ``headers`` and a string ``body`` (``isBase64Encoded`` for binary) is used as it is;
* format 2.0 only: an answer WITHOUT ``statusCode`` that is valid JSON becomes a 200 with that JSON as the
  body and ``content-type: application/json`` (so ``return {"orders": [...]}`` works, with status 200);
* a function error (an exception, a timeout) becomes ``500 {"message": "Internal Server Error"}``;
* what cannot be read as a response (a ``statusCode`` that is not a number, a ``body`` that is not a string)
  is a malformed response: REST APIs answer 502, and the lab answers the same for both formats (the
  HTTP API's exact answer to a malformed response is not documented).

:class:`HttpApi` routes ``METHOD /path/{param}`` to functions; :meth:`HttpApi.serve` puts it on 127.0.0.1.
Serves lesson 12.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .. import net
from .pool import Function, Throttled

INTERNAL_ERROR = {"message": "Internal Server Error"}
NOT_FOUND = {"message": "Not Found"}
TOO_MANY = {"message": "Too Many Requests"}


def proxy_event(
    method: str,
    path: str,
    body=None,
    headers: dict | None = None,
    query: dict | None = None,
    path_parameters: dict | None = None,
    route_key: str | None = None,
    version: str = "2.0",
    base64_body: bool = False,
) -> dict:
    """The event API Gateway sends a Lambda proxy integration for one HTTP request.

    ``body``: a dict/list (sent as JSON), a string, bytes or None; ``base64_body``: send it base64-encoded
    with ``isBase64Encoded: true``, as API Gateway does for a binary media type."""
    hdrs = {k.lower(): str(v) for k, v in (headers or {}).items()}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        hdrs.setdefault("content-type", "application/json")
    if isinstance(body, bytes):
        body, base64_body = base64.b64encode(body).decode(), True
    elif body is not None and base64_body:
        body = base64.b64encode(str(body).encode()).decode()
    query = {k: str(v) for k, v in (query or {}).items()} or None
    now = time.time()
    rid = str(uuid.uuid4())
    if version == "1.0":
        return {
            "version": "1.0",
            "resource": route_key.split(" ", 1)[1] if route_key else path,
            "path": path,
            "httpMethod": method,
            "headers": hdrs,
            "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "httpMethod": method,
                "path": path,
                "requestId": rid,
                "requestTimeEpoch": int(now * 1000),
                "stage": "$default",
                "identity": {"sourceIp": net.LOOPBACK},
            },
            "body": body,
            "isBase64Encoded": bool(base64_body),
        }
    return {
        "version": "2.0",
        "routeKey": route_key or "$default",
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query or {}),
        "headers": hdrs,
        "queryStringParameters": query,
        "pathParameters": path_parameters or None,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": net.LOOPBACK},
            "requestId": rid,
            "routeKey": route_key or "$default",
            "stage": "$default",
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": bool(base64_body),
    }


@dataclass
class HttpResponse:
    """What the client of the API gets."""

    status: int
    headers: dict = field(default_factory=dict)
    body: str = ""
    problem: str = ""  # why API Gateway could not use the function's answer as it was (empty when it could)

    def json(self, default=None):
        try:
            return json.loads(self.body) if self.body else default
        except ValueError:
            return default


def _json_response(status: int, obj, problem: str = "") -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(obj), problem)


def to_http(result, version: str = "2.0", function_error: bool = False) -> HttpResponse:
    """API Gateway's reading of a function's answer (``result``: what the handler returned, decoded)."""
    if function_error:
        return _json_response(500, INTERNAL_ERROR, "the function failed (an exception or a timeout)")
    if version == "2.0" and not (isinstance(result, dict) and "statusCode" in result):
        if isinstance(result, str):
            return HttpResponse(200, {"content-type": "application/json"}, result)
        return HttpResponse(200, {"content-type": "application/json"}, json.dumps(result))
    if not isinstance(result, dict):
        return _json_response(502, INTERNAL_ERROR, "malformed proxy response: not a JSON object")
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return _json_response(502, INTERNAL_ERROR, f"malformed proxy response: statusCode {status!r}")
    body = result.get("body", "")
    if body is None:
        body = ""
    if not isinstance(body, str):
        return _json_response(
            502, INTERNAL_ERROR, f"malformed proxy response: body is a {type(body).__name__}, not a string"
        )
    headers = result.get("headers") or {}
    if not isinstance(headers, dict):
        return _json_response(502, INTERNAL_ERROR, "malformed proxy response: headers is not an object")
    if result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode(errors="replace")
        except ValueError:
            return _json_response(502, INTERNAL_ERROR, "malformed proxy response: body is not base64")
    return HttpResponse(status, {str(k).lower(): str(v) for k, v in headers.items()}, body)


def _pattern(path: str) -> re.Pattern:
    parts = []
    for seg in path.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)(\+?)\}", seg)
        parts.append(f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})" if m else re.escape(seg))
    return re.compile("^/" + "/".join(parts) + "$")


class HttpApi:
    """Routes (``"GET /customers/{customer}/orders"``) to functions, like an HTTP API with Lambda integrations."""

    def __init__(self, routes: dict[str, Function], version: str = "2.0"):
        self.version = version
        self.routes = []
        for key, fn in routes.items():
            method, path = key.split(" ", 1)
            self.routes.append((method.upper(), _pattern(path), key, fn))
        self.server: ThreadingHTTPServer | None = None
        self.log: list[tuple[str, str, int]] = []

    def match(self, method: str, path: str):
        for m, pat, key, fn in self.routes:
            found = pat.match(path)
            if found and m in (method.upper(), "ANY"):
                return key, fn, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        return None, None, {}

    def request(self, method: str, path: str, body=None, query: dict | None = None, headers=None) -> HttpResponse:
        """One request through the API: route, event, invoke, response (no socket involved)."""
        key, fn, params = self.match(method, path)
        if fn is None:
            resp = _json_response(404, NOT_FOUND, "no route matches")
        else:
            event = proxy_event(method, path, body, headers, query, params, key, self.version)
            try:
                inv = fn.invoke(event)
                resp = to_http(inv.payload, self.version, function_error=not inv.ok)
            except Throttled:
                resp = _json_response(429, TOO_MANY, "the function is at its concurrency limit")
        self.log.append((method.upper(), path, resp.status))
        return resp

    # ------------------------------------------------------------------ on a real socket
    def serve(self) -> str:
        """Listen on 127.0.0.1 (a free port) in a background thread; returns the base URL."""
        if self.server is not None:
            return self.url
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode(errors="replace") if length else None
                query = dict(urllib.parse.parse_qsl(url.query))
                resp = api.request(self.command, url.path, body, query, dict(self.headers))
                data = resp.body.encode()
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *args):  # no access log on the notebook's stderr
                pass

        self.server = ThreadingHTTPServer((net.LOOPBACK, net.free_port()), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="l12-http-api", daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://{net.LOOPBACK}:{self.server.server_address[1]}" if self.server else ""

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
