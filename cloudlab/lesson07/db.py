"""Lesson 07's database: the PostgreSQL whose passwords the lesson rotates, and a client that survives a rotation.

The server is the course's one PostgreSQL (:mod:`cloudlab.database`: a lesson process ``l07-postgres`` on
127.0.0.1, a password for every login); this module names what is the lesson's own: its database and roles,
and :class:`SecretBackedClient`, which reads its login from Secrets Manager.
"""

from __future__ import annotations

from .. import database

PROC = "l07-postgres"
DATABASE = "orders"
APP_ROLE = "l07_app"
CHECK_ROLE_PREFIX = "l07chk_"


def start(quiet: bool = False) -> database.Postgres:
    """The lesson's PostgreSQL with its database ``orders`` (started if it does not run). A server that starts
    anew forgets the roles earlier checks made (they are named ``l07chk_...``)."""
    found = database.find(PROC)
    fresh = found is None or not found.alive()
    pg = database.start(PROC, "07", dbname=DATABASE, quiet=quiet)
    if fresh:
        pg.drop_roles(CHECK_ROLE_PREFIX)
    return pg


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

    def _connect(self):
        c = self._creds or self._refresh()
        return database.login(c["username"], c["password"], c["host"], int(c["port"]), c.get("dbname", DATABASE))

    def query(self, sql: str) -> list[tuple]:
        try:
            conn = self._connect()
        except database.LoginRefused:  # rotated since it was cached: fetch AWSCURRENT again, once
            self._refresh()
            conn = self._connect()
        with conn:
            return conn.execute(sql).fetchall()
