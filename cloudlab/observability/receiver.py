"""A webhook receiver that stands in for the on-call tool: Alertmanager POSTs its notifications here.

Run as a background process (``python -m cloudlab.observability.receiver --port N --file F``, started
through :mod:`cloudlab.procs`). Every POST is appended to ``F`` as one JSON line::

    {"received_at": 1764230000.1, "path": "/pager", "payload": {<Alertmanager's webhook JSON>}}

so a notebook or a check can read what was *delivered* (not what Alertmanager meant to send).
``GET /`` lists the latest notifications (open it in a browser), ``GET /health`` answers 200.
It listens on 127.0.0.1 only. Standard library only. Serves lesson 04 (and later lessons that alert).
"""

from __future__ import annotations

import argparse
import html
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_handler(path: Path):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(raw or b"null")
            except ValueError:
                return self._answer(400, b'{"error": "send JSON"}')
            line = json.dumps({"received_at": time.time(), "path": self.path, "payload": payload})
            with lock, open(path, "a") as fh:
                fh.write(line + "\n")
            self._answer(200, b'{"status": "received"}')

        def do_GET(self):
            if self.path == "/health":
                return self._answer(200, b'{"status": "ok"}')
            rows = []
            for n in reversed(read(path)[-50:]):
                for a in (n.get("payload") or {}).get("alerts", []):
                    labels = ", ".join(f"{k}={v}" for k, v in sorted(a.get("labels", {}).items()))
                    when = time.strftime("%H:%M:%S", time.localtime(n["received_at"]))
                    rows.append(
                        f"<tr><td>{when}</td><td>{html.escape(n['path'])}</td>"
                        f"<td>{html.escape(a.get('status', ''))}</td><td>{html.escape(labels)}</td></tr>"
                    )
            body = (
                "<html><head><title>lab pager</title></head><body><h3>Notifications received (latest first)</h3>"
                "<table border=1 cellpadding=4><tr><th>time</th><th>receiver path</th><th>status</th>"
                f"<th>labels</th></tr>{''.join(rows)}</table></body></html>"
            )
            self._answer(200, body.encode(), "text/html; charset=utf-8")

        def log_message(self, fmt, *args):  # quiet: the JSON lines are the record
            pass

    return Handler


def read(path, since: float | None = None) -> list[dict]:
    """The notifications received so far (oldest first), optionally only those after ``since`` (epoch s)."""
    out = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            n = json.loads(line)
        except ValueError:
            continue  # a half-written last line
        if isinstance(n, dict) and (since is None or n.get("received_at", 0) >= since):
            out.append(n)
    return out


def delivered(notifications: list[dict], **labels) -> list[tuple[str, str, dict]]:
    """Every alert in ``notifications`` whose labels include ``labels``: (receiver path, status, labels)."""
    out = []
    for n in notifications:
        for a in (n.get("payload") or {}).get("alerts", []) if isinstance(n.get("payload"), dict) else []:
            got = a.get("labels", {})
            if all(got.get(k) == v for k, v in labels.items()):
                out.append((n.get("path", ""), a.get("status", ""), got))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="A webhook receiver for Alertmanager (the lab's pager).")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--file", required=True, help="JSON lines, one per notification received")
    args = ap.parse_args(argv)
    path = Path(args.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(path))
    print(json.dumps({"event": "started", "port": args.port, "file": str(path)}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
