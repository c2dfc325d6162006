"""Lesson 08's migrations: two versions of the order code on one real PostgreSQL database, and a
runner that applies a release plan step by step and proves, after every step, that every version
running at that moment still works (during a rollout, old and new run side by side)."""

from __future__ import annotations

import psycopg

from ..tables import Table, show

SEED = """
CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int NOT NULL, note text);
INSERT INTO orders (item, qty, note) VALUES ('book', 1, 'gift wrap'), ('pen', 3, NULL), ('lamp', 1, 'fragile');
"""


def _v1(conn) -> str:
    """Version 1 writes and reads the note."""
    oid = conn.execute(
        "INSERT INTO orders (item, qty, note) VALUES (%s, %s, %s) RETURNING id", ("mug", 2, "v1 was here")
    ).fetchone()[0]
    row = conn.execute("SELECT item, qty, note FROM orders WHERE id = %s", (oid,)).fetchone()
    assert row == ("mug", 2, "v1 was here"), f"read back {row}"
    return f"wrote and read order {oid}"


def _v2(conn) -> str:
    """Version 2 no longer uses the note; it writes and reads a currency, on old rows too."""
    oid = conn.execute(
        "INSERT INTO orders (item, qty, currency) VALUES (%s, %s, %s) RETURNING id", ("mug", 2, "USD")
    ).fetchone()[0]
    row = conn.execute("SELECT item, qty, currency FROM orders WHERE id = %s", (oid,)).fetchone()
    assert row == ("mug", 2, "USD"), f"read back {row}"
    missing = conn.execute("SELECT count(*) FROM orders WHERE currency IS NULL").fetchone()[0]
    assert missing == 0, f"{missing} order(s) have no currency"
    return f"wrote and read order {oid}; every order has a currency"


VERSIONS = {"v1": _v1, "v2": _v2}

# Deploy and migrate in one go: the new code ships with a migration that changes the table under
# the old code, which is still serving while the rollout runs.
COUPLED_PLAN = [
    (
        "migrate",
        "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR'; ALTER TABLE orders DROP COLUMN note",
    ),
    ("deploy", "v2"),
]


EXTRA_ITEMS = ("kettle", "chair", "desk", "cable", "plate", "spoon")


def seed(pg, name: str, extra: int = 0) -> str:
    """A fresh database ``name`` with version 1's table and three orders, and ``extra`` more orders (random
    items, quantities and notes: rows a plan written against the three it was shown has never seen)."""
    import random

    pg.create_database(name)
    with pg.connect(name) as conn:
        conn.execute(SEED)
        rng = random.Random()
        for _ in range(extra):
            note = rng.choice([None, "leave at the door", "gift"])
            conn.execute(
                "INSERT INTO orders (item, qty, note) VALUES (%s, %s, %s)",
                (rng.choice(EXTRA_ITEMS), rng.randint(1, 9), note),
            )
    return name


def orders_count(pg, name: str) -> int:
    """The orders seeded (the versions' own test orders, item 'mug', left out)."""
    with pg.connect(name) as conn:
        return conn.execute("SELECT count(*) FROM orders WHERE item <> 'mug'").fetchone()[0]


def columns(pg, name: str) -> list[str]:
    with pg.connect(name) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position"
        ).fetchall()
    return [r[0] for r in rows]


def _try(pg, name: str, version: str) -> tuple[bool, str]:
    conn = pg.connect(name, autocommit=False)
    try:
        with conn.transaction():
            out = VERSIONS[version](conn)
        return True, out
    except (psycopg.Error, AssertionError) as e:
        return False, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    finally:
        conn.close()


def run_plan(pg, name: str, plan, quiet: bool = False) -> list[dict]:
    """Apply ``plan`` (a list of ("migrate", sql) and ("deploy", version)) to the seeded database
    ``name``; after each step run every version that is live (both during a rollout). Returns one
    row per (step, moment, version): {"step", "what", "version", "ok", "detail"}; stops at a failed
    migration."""
    live = ["v1"]
    rows = []

    def probe(step, what, versions):
        for v in versions:
            ok, detail = _try(pg, name, v)
            rows.append({"step": step, "what": what, "version": v, "ok": ok, "detail": detail})

    probe(0, "before the release", live)
    for i, item in enumerate(plan, 1):
        kind, arg = (item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) == 2 else (None, None)
        if kind == "migrate":
            try:
                with pg.connect(name) as conn:
                    conn.execute(arg)
            except psycopg.Error as e:
                rows.append({"step": i, "what": f"migrate: {arg}", "version": "-", "ok": False, "detail": str(e)})
                break
            probe(i, f"after migrate: {arg}", live)
        elif kind == "deploy" and arg in VERSIONS:
            probe(i, f"during the rollout of {arg}", sorted(set(live) | {arg}))
            live = [arg]
            probe(i, f"after the rollout of {arg}", live)
        else:
            rows.append({"step": i, "what": repr(item)[:80], "version": "-", "ok": False, "detail": "not a step"})
            break
    if not quiet:
        show_plan(rows)
    return rows


def show_plan(rows: list[dict]) -> None:
    """The simulated rollout, step by step: a table in a notebook, text elsewhere."""
    show(
        Table(
            ("step", "what", "version", "result", "detail"),
            [(r["step"], r["what"][:70], r["version"], "ok" if r["ok"] else "BROKEN", r["detail"][:60]) for r in rows],
        )
    )
