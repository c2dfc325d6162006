"""PostgreSQL (Debian's server) on 127.0.0.1, started and stopped by a lesson, reached with psycopg.

``start("l08-postgres")`` creates a cluster the first time (initdb, about a second) under the lab's
state (as root: under /tmp, where the ``postgres`` user can reach it), then runs ``postgres`` as a
lesson process (reset and `make stop` stop it) on a free port, TCP on 127.0.0.1 only, no Unix
socket. As root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
:class:`DatabaseDown` says what to do when it does not answer. Serves lesson 08 (migrations apart
from deploys); usable by any lesson that needs a real database.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import net, procs
from .lab import Lab, tools


class DatabaseDown(RuntimeError):
    """The database does not answer (stopped, crashed, never started); the message says how to start it."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mDatabaseDown\x1b[0m: {self}"]


@dataclass
class Postgres:
    name: str
    port: int
    datadir: Path

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} connect_timeout=3"

    def connect(self, dbname: str = "postgres", autocommit: bool = True):
        """A psycopg connection; :class:`DatabaseDown` with the fix when nobody answers."""
        import psycopg

        try:
            return psycopg.connect(self.dsn(dbname), autocommit=autocommit)
        except psycopg.OperationalError as e:
            raise DatabaseDown(
                f"PostgreSQL on 127.0.0.1:{self.port} does not answer ({str(e).strip().splitlines()[0]}). "
                f"Start it again: re-run the cell that calls start() (the data is kept in {self.datadir})."
            ) from None

    def create_database(self, name: str) -> str:
        """A fresh, empty database (an old one of the same name is dropped first)."""
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def databases(self, prefix: str = "") -> list[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
        return sorted(r[0] for r in rows if r[0].startswith(prefix))

    def alive(self) -> bool:
        return net.port_in_use(self.port)

    def stop(self) -> None:
        procs.stop(self.name)


def _as_postgres() -> list[str]:
    """As root, run as the `postgres` user (the server refuses root); otherwise as ourselves."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DatabaseDown(
            "PostgreSQL refuses to run as root and there is no `postgres` user: install the server package "
            "(`apt-get install postgresql`), which creates it"
        ) from None
    return ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"]


def _state(name: str) -> Path:
    return Lab.from_env().work_dir(name[1:3]) / f"{name}.json"


def _datadir(name: str, as_postgres: bool) -> Path:
    """Under the lab's state; as root, in /tmp instead: the `postgres` user must reach the folder, and a
    repository under /root is closed to it (a short folder per lab, like the lab's dockerd's)."""
    lab = Lab.from_env()
    if not as_postgres:
        return lab.work_dir(name[1:3]) / f"{name}-data"
    base = Path(f"/tmp/cloudlab-pg-{hashlib.sha256(str(lab.state).encode()).hexdigest()[:10]}")
    base.mkdir(mode=0o755, exist_ok=True)
    return base / f"{name}-data"


def find(name: str) -> Postgres | None:
    """The running server started as ``name``, or None."""
    proc = procs.running(name)
    try:
        info = json.loads(_state(name).read_text())
    except (OSError, ValueError):
        return None
    if proc is None or not proc.alive():
        return None
    return Postgres(name, info["port"], Path(info["datadir"]))


def start(name: str, lesson: str = "", timeout: float = 20.0, quiet: bool = False) -> Postgres:
    """Start (or find) PostgreSQL as process ``name`` on a free port on 127.0.0.1; idempotent."""
    found = find(name)
    if found is not None and found.alive():
        return found
    bindir = Path(tools.require("postgresql", lesson)).parent  # the server's bin folder (initdb, postgres)
    postgres = str(bindir / "postgres")
    prefix = _as_postgres()
    datadir = _datadir(name, as_postgres=bool(prefix))
    if not (datadir / "PG_VERSION").exists():
        shutil.rmtree(datadir, ignore_errors=True)
        datadir.mkdir(parents=True)
        if prefix:
            shutil.chown(datadir, "postgres", "postgres")
        cmd = [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]
        if not quiet:
            print("$ " + " ".join(["initdb", *cmd[1:]]))
        out = subprocess.run(prefix + cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise DatabaseDown(f"initdb failed:\n{(out.stdout + out.stderr)[-1200:]}")
    port = net.free_port()
    args = [postgres, "-D", str(datadir), "-h", "127.0.0.1", "-p", str(port), "-k", ""]
    args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]  # a lab, not a bank
    if not quiet:
        print("$ " + " ".join(["postgres", *args[1:7], "-k ''", *args[9:]]))
    proc = procs.start(name, prefix + args, python=False, cwd=str(datadir))
    db = Postgres(name, port, datadir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise DatabaseDown(f"PostgreSQL exited at start:\n{proc.output()[-1200:]}")
        if net.port_in_use(port):
            try:
                db.connect().close()
                _state(name).write_text(json.dumps({"port": port, "datadir": str(datadir)}))
                return db
            except DatabaseDown:
                pass
        time.sleep(0.05)
    procs.stop(name)
    raise DatabaseDown(f"PostgreSQL did not answer on 127.0.0.1:{port} within {timeout:.0f} s:\n{proc.output()[-800:]}")


def fresh_name(prefix: str) -> str:
    """A database name no earlier run used (checks use one each time)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
