"""Concurrency and a database's connection limit: a burst of invokes against a function whose every execution
environment holds one PostgreSQL connection (the lab's server on 127.0.0.1, a role with CONNECTION LIMIT)."""

from __future__ import annotations

import secrets
import threading
from collections import Counter

from .. import database
from ..serverless import Function, Throttled
from ..tables import Table
from . import managed

ROLE = "l12_app"


def app_role(db: database.Postgres, limit: int) -> str:
    """A login role allowed ``limit`` connections at once (RDS sets the same per role, or max_connections
    for the whole server). Returns its connection string."""
    from psycopg import sql

    password = secrets.token_urlsafe(12)
    db.set_password(ROLE, password, create=True)
    with db.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(sql.Identifier(ROLE), sql.Literal(limit)))
    with db.connect(managed.PG_DB) as conn:
        conn.execute(sql.SQL("GRANT SELECT ON orders TO {}").format(sql.Identifier(ROLE)))
    return f"postgresql://{ROLE}:{password}@{db.host}:{db.port}/{managed.PG_DB}?application_name=l12-fn"


def connections(db: database.Postgres, role: str = ROLE) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone()[0]


def burst(fn: Function, n: int, event: dict | None = None) -> list[str]:
    """``n`` callers invoke at the same moment; each outcome: 'ok', 'throttled (429)' or the error type."""
    out: list[str] = [""] * n
    go = threading.Barrier(n)

    def call(i):
        go.wait()
        try:
            inv = fn.invoke(event or {"hold": 0.5})
            why = inv.error_message.split("FATAL:")[-1].strip()  # PostgreSQL's own words, without the address
            out[i] = "ok" if inv.ok else f"{inv.error_type}: {why[:70]}"
        except Throttled:
            out[i] = "throttled (429)"

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return out


def outcomes(results: list[str]) -> Table:
    return Table(("outcome", "callers"), sorted(Counter(results).items(), key=lambda kv: -kv[1]))
