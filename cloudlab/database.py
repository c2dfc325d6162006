"""PostgreSQL (Debian's server) on 127.0.0.1, started and stopped by a lesson, reached with psycopg 3.

The one way the course runs a database. ``start("l08-postgres", "08")`` makes a cluster the first time
(``initdb``, about two seconds), then runs ``postgres`` as a lesson process (reset and `make stop` stop it)
on a free port, TCP on 127.0.0.1 only, no Unix socket, and a password (SCRAM) for every login, the
administrator's too: the server is on a machine other people may use, and lesson 07 rotates passwords
that must really be refused. As root, the server runs as the ``postgres`` user (PostgreSQL refuses
root) and its data lives under /tmp (a repository under /root is closed to that user).

The cluster is a cache, reused by the next start of the same name in the same lab, because it is checked
first: it is used only when the lab's record of it (``work/postgres/<name>.json``: the administrator's
password, written once initdb has succeeded) exists, and its ``PG_VERSION`` is the server's. Otherwise it
is made again, so an interrupted initdb, a newer PostgreSQL, or a lab whose work folder `make reset`
wiped (the record goes with it) never leaves a cluster that breaks the next run; a lock file left by a
killed server is cleared. :class:`DatabaseDown` and :class:`LoginRefused` say what is wrong.
Serves lessons 07 (roles and passwords it rotates) and 08 (migrations apart from deploys).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import net, procs
from .lab import Lab, LabError, process, runtime, tools

ADMIN = "postgres"
HOST = "127.0.0.1"
REFUSED = "password authentication failed"  # the server's words (lc_messages=C) for a wrong user or password


class DatabaseError(RuntimeError):
    """Something about the lesson's PostgreSQL went wrong; the message says what to do."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class DatabaseDown(DatabaseError):
    """The database does not answer (stopped, crashed, never started); the message says how to start it."""


class LoginRefused(DatabaseError):
    """The server answered and refused this user name and password."""


def login(user: str, password: str, host: str = HOST, port: int = 5432, dbname: str = "postgres", **kw):
    """A psycopg connection (autocommit unless ``autocommit=False``) as ``user``; :class:`LoginRefused` when
    the server refuses the password, :class:`DatabaseDown` when nobody answers."""
    import psycopg

    kw.setdefault("autocommit", True)
    kw.setdefault("connect_timeout", 5)
    try:
        return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname, **kw)
    except psycopg.OperationalError as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if REFUSED in why:
            raise LoginRefused(f"PostgreSQL on {host}:{port} refused the password of {user!r}") from None
        if "FATAL:" in why:  # it answered: no such database, starting up, shutting down ...
            raise DatabaseError(
                f"PostgreSQL on {host}:{port} refused the connection: {why.split('FATAL:')[-1].strip()}"
            ) from None
        raise DatabaseDown(f"PostgreSQL on {host}:{port} does not answer ({why}).") from None


def _q(name: str):
    from psycopg import sql

    return sql.Identifier(name)


@dataclass
class Postgres:
    """A running server: where it listens, and its administrator's password (never shown)."""

    name: str
    port: int
    datadir: Path
    admin_password: str = field(default="", repr=False)
    dbname: str = "postgres"  # the default database of connect(), can_login() and the role methods
    host: str = HOST

    def connect(
        self, dbname: str | None = None, autocommit: bool = True, user: str = ADMIN, password: str | None = None
    ):
        """A psycopg connection (as the administrator unless ``user`` and ``password`` are given)."""
        pw = self.admin_password if password is None else password
        try:
            return login(user, pw, self.host, self.port, dbname or self.dbname, autocommit=autocommit)
        except DatabaseDown as e:
            raise DatabaseDown(
                f"{e} Start it again: re-run the cell that calls start() (the data is kept in {self.datadir})."
            ) from None

    def can_login(self, user, password, dbname: str | None = None) -> bool:
        """Does PostgreSQL accept this user name and password right now? (a real login, then closed)"""
        if not isinstance(user, str) or not isinstance(password, str):
            return False
        try:
            with self.connect(dbname, user=user, password=password) as conn:
                conn.execute("SELECT 1")
            return True
        except LoginRefused:
            return False

    # ------------------------------------------------------------------ databases
    def create_database(self, name: str) -> str:
        """A fresh, empty database (an old one of the same name is dropped first)."""
        with self.connect("postgres") as conn:
            conn.execute(_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)", name))
            conn.execute(_sql("CREATE DATABASE {}", name))
        return name

    def ensure_database(self, name: str) -> str:
        """The database ``name``, created if it does not exist (kept if it does)."""
        with self.connect("postgres") as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(_sql("CREATE DATABASE {}", name))
        return name

    def drop_database(self, name: str) -> None:
        with self.connect("postgres") as conn:
            conn.execute(_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)", name))

    def databases(self, prefix: str = "") -> list[str]:
        with self.connect("postgres") as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
        return sorted(r[0] for r in rows if r[0].startswith(prefix))

    # ------------------------------------------------------------------ roles
    def set_password(self, role: str, password: str, create: bool = False) -> None:
        """``ALTER ROLE role PASSWORD ...`` (what a rotation's setSecret step runs). With ``create``, a missing
        role is made (``CREATE ROLE ... LOGIN PASSWORD ...``) and may create tables in the default database."""
        from psycopg import sql

        with self.connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(_q(role), sql.Literal(password)))
            elif create:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(_q(role), sql.Literal(password)))
                conn.execute(_sql("GRANT ALL ON SCHEMA public TO {}", role))
            else:
                raise DatabaseError(f"there is no role {role!r} in the database")

    def drop_roles(self, prefix: str) -> list[str]:
        """Drop the roles whose names start with ``prefix``, and what they own in the default database."""
        with self.connect() as conn:
            names = [
                r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,))
            ]
            for n in names:
                conn.execute(_sql("DROP OWNED BY {}", n))
                conn.execute(_sql("DROP ROLE {}", n))
        return names

    # ------------------------------------------------------------------ the process
    def alive(self) -> bool:
        return net.port_in_use(self.port)

    def stop(self) -> None:
        procs.stop(self.name)


def _sql(template: str, name: str):
    from psycopg import sql

    return sql.SQL(template).format(_q(name))


# ---------------------------------------------------------------------- where things are
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


def _record(name: str) -> Path:
    """The lab's record of the cluster (in the work folder: `make reset` wipes it, a lesson's reset does not)."""
    return Lab.from_env().work / "postgres" / f"{name}.json"


def _datadir(name: str, as_postgres: bool) -> Path:
    """Beside the record; as root, in /tmp instead: the `postgres` user must reach the folder, and a
    repository under /root is closed to it (a short folder per lab, like the lab's dockerd's)."""
    if not as_postgres:
        return _record(name).parent / f"{name}-data"
    try:  # the lab's private folder, open to `postgres` (0755); `make stop` and `make reset` remove it
        base = runtime.private_dir(Lab.from_env(), "pg", mode=0o755)
    except LabError as e:
        raise DatabaseDown(str(e)) from None
    return base / f"{name}-data"


def _read_record(name: str) -> dict:
    try:
        info = json.loads(_record(name).read_text())
        return info if isinstance(info, dict) and info.get("password") else {}
    except (OSError, ValueError):
        return {}


def _write_record(name: str, info: dict) -> None:
    path = _record(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    os.replace(path.with_suffix(".tmp"), path)


def find(name: str) -> Postgres | None:
    """The running server started as ``name``, or None."""
    proc = procs.running(name)
    info = _read_record(name)
    if proc is None or not proc.alive() or not info.get("port"):
        return None
    return Postgres(name, info["port"], Path(info.get("datadir", "")), info["password"])


# ---------------------------------------------------------------------- the cluster
def _major(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True)
    return out.stdout.split()[2].split(".")[0] if out.returncode == 0 and len(out.stdout.split()) > 2 else "?"


def _reusable(datadir: Path, info: dict, major: str) -> bool:
    """The cluster is complete (the record is written after initdb) and of this server's version."""
    try:
        return info.get("datadir") == str(datadir) and (datadir / "PG_VERSION").read_text().strip() == major
    except OSError:
        return False


def _clear_lock(datadir: Path) -> None:
    """A server killed hard leaves postmaster.pid; one still running on this folder (its PID file lost) is
    this lab's own orphan: stop it. A PID that now belongs to another program only needs the file gone."""
    lock = datadir / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        mine = str(datadir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        mine = False
    if mine and process.pid_alive(pid):
        process.stop_pid(pid)
    lock.unlink(missing_ok=True)


def _initdb(bindir: Path, datadir: Path, prefix: list[str], quiet: bool) -> str:
    """A new cluster in ``datadir`` (whatever was there is removed); returns the administrator's password."""
    shutil.rmtree(datadir, ignore_errors=True)
    datadir.mkdir(parents=True, mode=0o700)
    password = secrets.token_urlsafe(18)
    tmp = Path(tempfile.mkdtemp(prefix=f".{datadir.name}-init-", dir=datadir.parent))  # 0700: the password file
    pwfile = tmp / "pw"
    pwfile.write_text(password + "\n")
    if prefix:
        for p in (datadir, tmp, pwfile):
            shutil.chown(p, "postgres", "postgres")
    cmd = [str(bindir / "initdb"), "-D", str(datadir), "-U", ADMIN, f"--pwfile={pwfile}", "-A", "scram-sha-256"]
    cmd += ["--auth-local=reject", "--no-sync", "-E", "UTF8", "--no-instructions"]
    if not quiet:
        print("$ " + " ".join(["initdb", *cmd[1:5], "--pwfile=<a file holding a new password>", *cmd[6:]]))
    try:
        out = subprocess.run(prefix + cmd, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if out.returncode != 0:
        raise DatabaseDown(f"initdb failed (exit {out.returncode}):\n{(out.stdout + out.stderr)[-1200:]}")
    return password


def _launch(name: str, bindir: Path, datadir: Path, prefix: list[str], password: str, timeout: float, quiet: bool):
    port = net.free_port()
    args = [str(bindir / "postgres"), "-D", str(datadir), "-h", HOST, "-p", str(port), "-k", ""]
    args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]  # a lab, not a bank
    args += ["-c", "lc_messages=C", "-c", "log_min_messages=warning"]  # English errors (REFUSED), a short log
    if not quiet:
        print("$ " + " ".join(["postgres", *args[1:7], "-k ''", *args[9:]]))
    proc = procs.start(name, prefix + args, python=False, cwd=str(datadir))
    db = Postgres(name, port, datadir, password)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise DatabaseDown(f"PostgreSQL exited at start. Its log:\n{proc.output()[-1200:]}")
        if net.port_in_use(port):
            try:
                db.connect().close()
                return db
            except LoginRefused:
                procs.stop(name)
                raise
            except DatabaseError:  # "the database system is starting up"
                pass
        time.sleep(0.05)
    procs.stop(name)
    raise DatabaseDown(f"PostgreSQL did not answer on {HOST}:{port} within {timeout:.0f} s:\n{proc.output()[-800:]}")


def start(
    name: str, lesson: str = "", dbname: str | None = None, timeout: float = 30.0, quiet: bool = False
) -> Postgres:
    """Start (or find) PostgreSQL as process ``name`` on a free port on 127.0.0.1; idempotent.

    ``dbname``: a database that must exist (made if missing), the default of the returned server's methods.
    """
    db = find(name)
    if db is None or not db.alive():
        t0 = time.monotonic()
        procs.stop(name)
        bindir = Path(tools.require("postgresql", lesson)).resolve().parent  # initdb, postgres (not a link's folder)
        prefix = _as_postgres()
        datadir = _datadir(name, as_postgres=bool(prefix))
        info, made = _read_record(name), False
        _clear_lock(datadir)
        if not _reusable(datadir, info, _major(bindir)):
            info, made = {"datadir": str(datadir), "password": _initdb(bindir, datadir, prefix, quiet)}, True
            _write_record(name, info)
        try:
            db = _launch(name, bindir, datadir, prefix, info["password"], timeout, quiet)
        except LoginRefused:  # the cluster does not take the recorded password: not ours after all, make it again
            info = {"datadir": str(datadir), "password": _initdb(bindir, datadir, prefix, quiet)}
            _write_record(name, info)
            db, made = _launch(name, bindir, datadir, prefix, info["password"], timeout, quiet), True
        _write_record(name, dict(info, port=db.port))
        if not quiet:
            new = "new cluster, " if made else ""
            print(f"PostgreSQL on {HOST}:{db.port} ({new}ready in {time.monotonic() - t0:.1f} s)")
    if dbname:
        db.ensure_database(dbname)
        db = replace(db, dbname=dbname)
    return db


def fresh_name(prefix: str) -> str:
    """A database name no earlier run used (checks use one each time)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
