"""The PostgreSQL toolkit (cloudlab.database): loopback only, a password for every login, roles and passwords,
clear errors, stopped like every lesson process, and a cluster cache that is reused only when it is sound.

The server tests run one throw-away lab (its own state folder) and remove its cluster afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from cloudlab import database, procs
from cloudlab.lab import Lab, tools

needs_pg = pytest.mark.skipif(not tools.available("postgresql"), reason="PostgreSQL is not installed")
NAME = "l98-postgres"


def test_nobody_answering_is_a_clear_message(free_port):
    with pytest.raises(database.DatabaseDown, match="does not answer"):
        database.login("postgres", "x", port=free_port)
    pg = database.Postgres("l98-nothing", free_port, database.Path("/nonexistent"))
    with pytest.raises(database.DatabaseDown, match="re-run the cell that calls start"):
        pg.connect()
    shown = database.LoginRefused("refused")._render_traceback_()
    assert shown == ["\x1b[31mLoginRefused\x1b[0m: refused"]
    assert issubclass(database.DatabaseDown, database.DatabaseError)
    assert "admin_password" not in repr(database.Postgres("n", 1, database.Path("/x"), "hidden-value"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab of its own (state folder under tmp), its server stopped and its cluster removed afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLOUDLAB_STATE_DIR", str(tmp_path_factory.mktemp("pglab") / "state"))
        yield Lab.from_env()
        procs.stop_all("l98-")
        data = database._datadir(NAME, as_postgres=bool(database._as_postgres()))
        shutil.rmtree(data, ignore_errors=True)
        if data.parent.name.startswith("cloudlab-") and data.parent.name.endswith("-pg"):  # as root: under /tmp
            shutil.rmtree(data.parent, ignore_errors=True)


def _listening(port: int) -> list[str]:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.strip().splitlines()]


@needs_pg
def test_loopback_passwords_roles_and_errors(lab, capsys):
    pg = database.start(NAME, "98")
    said = capsys.readouterr().out
    assert "$ initdb" in said and "scram-sha-256" in said and "$ postgres" in said and "new cluster" in said
    assert database.start(NAME, quiet=True).port == pg.port  # idempotent
    assert database.find(NAME).port == pg.port
    assert _listening(pg.port) and all(a.startswith("127.0.0.1:") for a in _listening(pg.port))
    record = lab.work / "postgres" / f"{NAME}.json"
    assert record.stat().st_mode & 0o077 == 0  # the administrator's password: owner only
    assert pg.admin_password not in said

    # every login needs a password, the administrator's too
    with pytest.raises(database.LoginRefused, match="refused the password of 'postgres'"):
        database.login("postgres", "not-the-password", port=pg.port)
    with pytest.raises(database.DatabaseError, match='database "nowhere" does not exist'):
        pg.connect("nowhere")

    # databases: made once, or fresh
    orders = database.start(NAME, dbname="l98_orders", quiet=True)
    assert orders.dbname == "l98_orders" and orders.port == pg.port
    with orders.connect() as conn:
        conn.execute("CREATE TABLE kept (n int)")
    assert database.start(NAME, dbname="l98_orders", quiet=True).dbname == "l98_orders"
    with orders.connect() as conn:  # ensure_database kept it
        assert conn.execute("SELECT to_regclass('kept') IS NOT NULL").fetchone()[0]
    pg.create_database("l98_fresh")
    assert pg.databases("l98_") == ["l98_fresh", "l98_orders"]
    pg.drop_database("l98_fresh")

    # roles and passwords, quoted safely
    role = 'l98chk_"odd name'
    orders.set_password(role, "first-password", create=True)
    assert orders.can_login(role, "first-password") and not orders.can_login(role, "guess")
    with orders.connect(user=role, password="first-password") as conn:  # may create tables in its database
        conn.execute("CREATE TABLE mine (n int)")
    orders.set_password(role, "it's-the-second")
    assert orders.can_login(role, "it's-the-second") and not orders.can_login(role, "first-password")
    assert not orders.can_login(role, None) and not orders.can_login(42, "x")
    with pytest.raises(database.DatabaseError, match="no role 'l98_nobody'"):
        orders.set_password("l98_nobody", "x")
    assert orders.drop_roles("l98chk_") == [role]
    assert not orders.can_login(role, "it's-the-second")

    # stopped like every lesson process (reset_lesson and `make stop` stop lNN-... processes)
    assert procs.stop_all("l98-") == [NAME]
    assert database.find(NAME) is None
    with pytest.raises(database.DatabaseDown, match="does not answer"):
        pg.connect()


@needs_pg
def test_the_cluster_is_a_cache_used_only_when_sound(lab, capsys):
    database.start(NAME, dbname="l98_orders", quiet=True)
    procs.stop(NAME)
    capsys.readouterr()

    # reused: no initdb, the data is still there
    pg = database.start(NAME)
    assert "initdb" not in capsys.readouterr().out and "l98_orders" in pg.databases()
    procs.stop(NAME)
    record = lab.work / "postgres" / f"{NAME}.json"

    # a lock file left by a server killed hard (its PID now another program's) is cleared
    (pg.datadir / "postmaster.pid").write_text(f"{os.getpid()}\n{pg.datadir}\n")
    pg = database.start(NAME)
    assert "initdb" not in capsys.readouterr().out and pg.can_login("postgres", pg.admin_password)
    procs.stop(NAME)

    # a cluster of another PostgreSQL version is made again
    (pg.datadir / "PG_VERSION").write_text("9\n")
    pg = database.start(NAME)
    assert "new cluster" in capsys.readouterr().out and "l98_orders" not in pg.databases()
    pg.ensure_database("l98_orders")
    procs.stop(NAME)

    # `make reset` wipes the work folder, and the record with it: the cluster is made again
    record.unlink()
    pg = database.start(NAME)
    assert "new cluster" in capsys.readouterr().out and "l98_orders" not in pg.databases()
    procs.stop(NAME)

    # a cluster that refuses the recorded password is not this record's: made again
    info = json.loads(record.read_text())
    record.write_text(json.dumps(dict(info, password="stale")))
    pg = database.start(NAME)
    assert "new cluster" in capsys.readouterr().out and pg.admin_password != "stale"
    assert pg.can_login("postgres", pg.admin_password)
    procs.stop(NAME)
