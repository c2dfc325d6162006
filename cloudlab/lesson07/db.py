"""Lesson 07's database: a real PostgreSQL on 127.0.0.1 whose passwords the lesson rotates.

Debian's PostgreSQL server (``tools`` row ``postgresql``), a cluster made once with ``initdb`` and
kept as a cache (about 40 MB; re-made when missing), started through :mod:`cloudlab.procs` as
``l07-postgres`` (so ``reset_lesson("07")`` and ``make stop`` stop it), TCP on loopback only, no
Unix socket, password authentication (SCRAM) for every connection. As root, the server runs as
the ``postgres`` user (``runuser``; PostgreSQL refuses to run as root) and its data lives in the
temporary directory, where that user can reach it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from .. import net, procs
from ..lab import Lab, tools

PROC = "l07-postgres"
ADMIN = "l07_admin"
DATABASE = "orders"
APP_ROLE = "l07_app"
CHECK_ROLE_PREFIX = "l07chk_"


class DatabaseError(RuntimeError):
    """The lesson's PostgreSQL could not be started or reached; the message says why and what to do."""

    def _render_traceback_(self):
        return [f"\x1b[31mDatabaseError\x1b[0m: {self}"]


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def cluster_dir() -> Path:
    """Where the cluster lives: the lab's scratch space, or (as root) a folder the postgres user can reach."""
    lab = Lab.from_env()
    if _as_root():
        tag = hashlib.sha256(str(lab.state).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"cloudlab-{tag}-l07-pg"
    return lab.work_dir("07") / "pg"


def _secret_file() -> Path:
    return Lab.from_env().run_dir / "l07-postgres.json"


def _run_as(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if _as_root() else cmd


def _bin(name: str) -> str:
    return str(Path(tools.require("postgresql", "07")).parent / name)


def _initdb(root: Path) -> str:
    """Make the cluster (once); returns the administrator's password."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, mode=0o700)
    password = secrets.token_urlsafe(18)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if _as_root():
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    cmd = [
        _bin("initdb"),
        "-D",
        str(root / "data"),
        "-U",
        ADMIN,
        f"--pwfile={pwfile}",
        "--auth-local=reject",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--no-instructions",
    ]
    out = subprocess.run(_run_as(cmd), capture_output=True, text=True, timeout=120)
    pwfile.unlink(missing_ok=True)
    if out.returncode != 0:
        raise DatabaseError(f"initdb failed (exit {out.returncode}):\n{(out.stderr or out.stdout)[-800:]}")
    (root / "admin-password").write_text(password)
    os.chmod(root / "admin-password", 0o600)
    return password


@dataclass
class Database:
    """The running server: where it listens and how the lesson's administrator logs in."""

    port: int
    admin_password: str = field(repr=False)
    host: str = "127.0.0.1"
    database: str = DATABASE

    def connect(self, user: str, password: str, database: str | None = None, timeout: float = 5.0):
        """A pg8000 connection (raises ``pg8000.exceptions.DatabaseError`` if the password is refused)."""
        import pg8000.native

        return pg8000.native.Connection(
            user, host=self.host, port=self.port, password=password, database=database or self.database, timeout=timeout
        )

    def admin(self):
        return self.connect(ADMIN, self.admin_password)

    def can_login(self, user: str, password: str) -> bool:
        """Does PostgreSQL accept this user name and password right now? (a real login, then closed)"""
        import pg8000.exceptions

        if not isinstance(user, str) or not isinstance(password, str):
            return False
        try:
            with closing(self.connect(user, password)) as c:
                c.run("SELECT 1")
            return True
        except (pg8000.exceptions.InterfaceError, pg8000.exceptions.DatabaseError, OSError):
            return False

    def set_password(self, role: str, password: str, create: bool = False) -> None:
        """``ALTER ROLE role PASSWORD ...`` (what a rotation's setSecret step runs), creating the role if asked."""
        import pg8000.native

        ident, lit = pg8000.native.identifier(role), pg8000.native.literal(password)
        with closing(self.admin()) as c:
            exists = c.run("SELECT 1 FROM pg_roles WHERE rolname = :r", r=role)
            if not exists and create:
                c.run(f"CREATE ROLE {ident} LOGIN PASSWORD {lit}")
                c.run(f"GRANT ALL ON SCHEMA public TO {ident}")
            elif exists:
                c.run(f"ALTER ROLE {ident} PASSWORD {lit}")
            else:
                raise DatabaseError(f"there is no role {role!r} in the database")

    def drop_roles(self, prefix: str) -> list[str]:
        with closing(self.admin()) as c:
            names = [r[0] for r in c.run("SELECT rolname FROM pg_roles WHERE rolname LIKE :p", p=prefix + "%")]
            for n in names:
                c.run(f"DROP OWNED BY {n}")
                c.run(f"DROP ROLE {n}")
        return names

    @property
    def dsn_shown(self) -> str:
        return f"postgresql://<user>:<password>@{self.host}:{self.port}/{self.database}"


def _port_from_state() -> int | None:
    try:
        return int(_secret_file().read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def running() -> Database | None:
    """The lesson's server if it runs (started by this lab), else None."""
    port = _port_from_state()
    root = cluster_dir()
    if port is None or procs.running(PROC) is None or not _accepts(port):
        return None
    try:
        return Database(port, (root / "admin-password").read_text().strip())
    except OSError:
        return None


def start(quiet: bool = False) -> Database:
    """Start the lesson's PostgreSQL (making the cluster the first time), or return the running one."""
    db = running()
    if db is not None:
        return db
    t0 = time.monotonic()
    root = cluster_dir()
    pwpath = root / "admin-password"
    made = False
    if not (root / "data" / "PG_VERSION").exists() or not pwpath.exists():
        _initdb(root)
        made = True
    password = pwpath.read_text().strip()
    port = net.free_port()
    cmd = [
        _bin("postgres"),
        "-D",
        str(root / "data"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        "",
        "-c",
        "fsync=off",
        "-c",
        "log_min_messages=warning",
        "-c",
        "log_connections=off",
    ]
    proc = procs.start(PROC, _run_as(cmd), python=False)
    deadline = time.monotonic() + 30
    db = Database(port, password)
    while time.monotonic() < deadline:
        if not proc.alive():
            out = proc.output()[-1200:]
            if "lock file" in out or "already running" in out:  # a server killed hard left its PID file
                (root / "data" / "postmaster.pid").unlink(missing_ok=True)
            raise DatabaseError(
                f"PostgreSQL exited at start. Its log:\n{out}\nRun the cell again; if it repeats, "
                f"delete {root} (a cache) and retry."
            )
        if _accepts(port):
            try:
                with closing(db.connect(ADMIN, password, database="postgres")) as c:
                    if not c.run("SELECT 1 FROM pg_database WHERE datname = :d", d=DATABASE):
                        c.run(f"CREATE DATABASE {DATABASE}")
                break
            except Exception:  # still starting up ("the database system is starting up")
                pass
        time.sleep(0.1)
    else:
        procs.stop(PROC)
        raise DatabaseError(
            f"PostgreSQL did not accept connections on 127.0.0.1:{port} within 30 s:\n{proc.output()[-800:]}"
        )
    _secret_file().parent.mkdir(parents=True, exist_ok=True)
    _secret_file().write_text(f"{port}\n")
    db.drop_roles(CHECK_ROLE_PREFIX)
    if not quiet:
        print(
            f"PostgreSQL on 127.0.0.1:{port} ({'new cluster, ' if made else ''}"
            f"ready in {time.monotonic() - t0:.1f} s; started as `postgres -D ... -h 127.0.0.1 -k ''`)"
        )
    return db


class SecretBackedClient:
    """How an application should hold a rotated password: cache the secret, and when the database refuses it,
    fetch AWSCURRENT again and retry once (what AWS's secret-caching libraries do). Serves the rotation demo."""

    def __init__(self, secret_id: str):
        self.secret_id = secret_id
        self.fetches = 0
        self._creds = None

    def _refresh(self) -> dict:
        from .store import fetch

        self._creds = fetch(self.secret_id)
        self.fetches += 1
        return self._creds

    def query(self, sql: str):
        import pg8000.exceptions
        import pg8000.native

        for attempt in (1, 2):
            c = self._creds or self._refresh()
            try:
                conn = pg8000.native.Connection(
                    c["username"],
                    host=c["host"],
                    port=int(c["port"]),
                    password=c["password"],
                    database=c.get("dbname", DATABASE),
                    timeout=5,
                )
            except pg8000.exceptions.DatabaseError:
                if attempt == 1:
                    self._refresh()
                    continue
                raise
            with closing(conn):
                return conn.run(sql)
