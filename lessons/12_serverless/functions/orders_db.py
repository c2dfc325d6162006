"""A function that reads the orders database: one connection per execution environment, opened in INIT.

The connection is made once, outside the handler, and reused by every invoke this environment serves, the way
Lambda's documentation advises for database clients. So N environments hold N connections, and the database's
connection limit is a limit on the function's concurrency.
"""

import os

import psycopg

conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, connect_timeout=5)


def handler(event, context):
    hold = float(event.get("hold", 0.3))
    count, pid = conn.execute("SELECT count(*), pg_backend_pid() FROM orders, pg_sleep(%s)", (hold,)).fetchone()
    return {"orders": count, "backend_pid": pid}
