"""The payments service: the order service's ledger in PostgreSQL, with its password injected at start.

Lesson 07. Twelve-factor config, and a secret that never lives in the code, the image or the logs:

  DB_HOST, DB_PORT, DB_NAME, DB_USER   where the database is (plain config)
  DB_PASSWORD_FILE                     a file holding the password (a mounted secret: Kubernetes
                                       Secret volume, Docker secret); preferred, re-read after rotation
  DB_PASSWORD                          or the password itself in the environment (simpler, but any
                                       process that can read this one's environment sees it)
  PORT, LOG_LEVEL                      as in app/service.py

Every log line goes through a redactor: the password can never appear in a log, even when an
error message or a connection string would carry it. When the database refuses the password
(it was rotated), the service reads the file again and retries once, so a rotation needs no restart.

Endpoints:  GET /health -> 200 {"status": "ok", "db": "ok"} or 503 when the database refuses us
            POST /payments {"order_id": str, "amount": number} -> 201    GET /payments -> {"count": n}

Run:  DB_HOST=127.0.0.1 DB_PORT=5432 DB_NAME=orders DB_USER=app DB_PASSWORD_FILE=/run/secrets/db python -m app.payments
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.service import LEVELS, ConfigError, JsonLog

REFUSED = "password authentication failed"  # PostgreSQL's words when it refuses a login (SQLSTATE 28P01)


@dataclass
class DbConfig:
    host: str
    port: int
    name: str
    user: str
    password_file: str = ""
    password: str = field(default="", repr=False)
    http_port: int = 8080
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DbConfig:
        missing = [k for k in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER") if not env.get(k)]
        if missing:
            raise ConfigError(f"missing required environment variable(s): {', '.join(missing)}")
        if not env.get("DB_PASSWORD_FILE") and not env.get("DB_PASSWORD"):
            raise ConfigError("set DB_PASSWORD_FILE (a mounted secret file) or DB_PASSWORD")
        try:
            port, http_port = int(env["DB_PORT"]), int(env.get("PORT", "8080"))
        except ValueError as e:
            raise ConfigError(f"bad number in the environment: {e}") from None
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
        return cls(
            env["DB_HOST"],
            port,
            env["DB_NAME"],
            env["DB_USER"],
            env.get("DB_PASSWORD_FILE", ""),
            env.get("DB_PASSWORD", ""),
            http_port,
            level,
        )

    @property
    def source(self) -> str:
        return "file" if self.password_file else "env"

    def read_password(self) -> str:
        if self.password_file:
            with open(self.password_file) as fh:
                return fh.read().strip()
        return self.password


class RedactingLog(JsonLog):
    """A JSON log that replaces every known secret value with ``***`` before the line is written."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.secrets: set[str] = set()

    def redact(self, value: str) -> str:
        for s in sorted(self.secrets, key=len, reverse=True):
            value = value.replace(s, "***")
        return value

    def __call__(self, event: str, level: str = "INFO", **fields) -> None:
        clean = {k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        super().__call__(event, level, **clean)


class Ledger:
    """The database side: a fresh connection per request, the password re-read once when it is refused."""

    def __init__(self, cfg: DbConfig, log: RedactingLog):
        self.cfg, self.log = cfg, log
        self.lock = threading.Lock()
        self.password = self._load()

    def _load(self) -> str:
        pw = self.cfg.read_password()
        if pw:
            self.log.secrets.add(pw)
        return pw

    def _connect(self):
        import psycopg

        return psycopg.connect(
            host=self.cfg.host,
            port=self.cfg.port,
            dbname=self.cfg.name,
            user=self.cfg.user,
            password=self.password,
            connect_timeout=5,
            autocommit=True,
        )

    def run(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        try:
            conn = self._connect()
        except psycopg.OperationalError as e:
            if REFUSED not in str(e) or not self.cfg.password_file:
                raise
            with self.lock:  # rotated: the mounted file holds the new password by now
                self.password = self._load()
            self.log("db_password_reloaded", level="WARNING", reason="the database refused the password")
            conn = self._connect()
        with conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def setup(self) -> None:
        self.run("CREATE TABLE IF NOT EXISTS payments (id serial PRIMARY KEY, order_id text, amount numeric)")


def make_handler(ledger: Ledger, log: RedactingLog):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            try:
                if self.path == "/health":
                    ledger.run("SELECT 1")
                    return self._send(200, {"status": "ok", "db": "ok", "password_source": ledger.cfg.source})
                if self.path == "/payments":
                    return self._send(200, {"count": ledger.run("SELECT count(*) FROM payments")[0][0]})
                self._send(404, {"error": "not found"})
            except Exception as e:
                log("db_error", level="ERROR", error=str(e), dsn=self._dsn())
                self._send(503, {"status": "failing", "db": "error"})

        def do_POST(self):
            if self.path != "/payments":
                return self._send(404, {"error": "not found"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                assert isinstance(body.get("order_id"), str) and isinstance(body.get("amount"), (int, float))
            except (ValueError, AssertionError, AttributeError):
                return self._send(400, {"error": 'send JSON like {"order_id": "o-1", "amount": 9.5}'})
            try:
                ledger.run(
                    "INSERT INTO payments (order_id, amount) VALUES (%s, %s)", (body["order_id"], body["amount"])
                )
            except Exception as e:
                log("db_error", level="ERROR", error=str(e), dsn=self._dsn())
                return self._send(503, {"error": "database unavailable"})
            log("payment_stored", order_id=body["order_id"])
            self._send(201, {"order_id": body["order_id"]})

        def _dsn(self) -> str:  # the classic leak: a connection string with the password in it (redacted by the log)
            c = ledger.cfg
            return f"postgresql://{c.user}:{ledger.password}@{c.host}:{c.port}/{c.name}"

        def log_message(self, fmt, *args):
            pass

    return Handler


def serve(cfg: DbConfig) -> int:
    log = RedactingLog(cfg.log_level, service="payments")
    try:
        ledger = Ledger(cfg, log)
    except OSError as e:
        log("config_error", level="ERROR", error=f"cannot read DB_PASSWORD_FILE: {e}")
        return 78
    try:
        ledger.setup()
        db_state = "ok"
    except Exception as e:
        db_state = "error"
        log("db_error", level="ERROR", error=str(e))
    server = ThreadingHTTPServer(("127.0.0.1", cfg.http_port), make_handler(ledger, log))

    def on_signal(signum, frame):
        log("shutdown_requested", signal=signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log("started", port=cfg.http_port, db_user=cfg.user, db_host=cfg.host, password_source=cfg.source, db=db_state)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    log("shutdown")
    return 0


def main() -> int:
    try:
        cfg = DbConfig.from_env(os.environ)
    except ConfigError as e:
        JsonLog()("config_error", level="ERROR", error=str(e))
        return 78  # EX_CONFIG
    return serve(cfg)


if __name__ == "__main__":
    sys.exit(main())
