"""Managed vs self-run database: the RDS API on moto (what it records), PostgreSQL on 127.0.0.1 (the data path).

moto 5.2.5 answers the RDS API the way RDS does for the RECORD of an instance: Multi-AZ flag, backup
retention, windows, parameter groups, snapshots (a manual one, and an automated one when an instance is
created), restores to a new instance, events. No database runs behind it: every endpoint is a made-up host
name, a failover reboot changes nothing, a snapshot holds no data. So the lesson does the data path for real
with the lab's PostgreSQL (``pg_dump`` and ``pg_restore``): the part that stays the owner's job on RDS too.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

from .. import aws, database
from ..lab import tools
from ..tables import Table

ENGINE, VERSION, FAMILY = "postgres", "16.4", "postgres16"
INSTANCE, PARAMS = "l12-orders-db", "l12-orders-pg16"
PG_NAME, PG_DB = "l12-postgres", "l12_orders"

# What the emulator records, and what only the real service does (moto 5.2.5, checked on this machine).
EMULATOR_VS_REAL = [
    ("create an instance", "status 'available' at once, a made-up endpoint", "minutes of 'creating'; a real server"),
    ("Multi-AZ", "the flag (MultiAZ: true), no standby", "a synchronous standby in a second zone"),
    ("failover (reboot --force-failover)", "accepted; nothing moves", "the standby takes over in 1-2 minutes"),
    (
        "automated backups",
        "the retention days and one 'automated' snapshot",
        "daily snapshots + logs: restore to any second",
    ),
    ("manual snapshot", "a record with status 'available'", "a copy of the storage, kept until you delete it"),
    (
        "restore to a new instance",
        "a new record; default parameter group and security group",
        "a new server with the data",
    ),
    ("maintenance window", "the string you set", "minor-version patches applied in it"),
    ("pending maintenance actions", "not implemented (HTTP 500)", "the list of patches waiting for the window"),
    ("parameter group", "its name and the values you set", "settings the engine really uses (some after a reboot)"),
]


def rds():
    return aws.client("rds")


def create_instance(client, ident: str = INSTANCE, params: str = PARAMS, **kw) -> dict:
    """A PostgreSQL instance record as a team would ask for it: Multi-AZ, 7 days of backups, windows, its own
    parameter group (connection limit). Returns describe_db_instances' answer for it."""
    try:
        client.create_db_parameter_group(
            DBParameterGroupName=params, DBParameterGroupFamily=FAMILY, Description="orders: connection limit"
        )
    except client.exceptions.DBParameterGroupAlreadyExistsFault:
        pass
    client.modify_db_parameter_group(
        DBParameterGroupName=params,
        Parameters=[{"ParameterName": "max_connections", "ParameterValue": "200", "ApplyMethod": "pending-reboot"}],
    )
    settings = dict(
        DBInstanceIdentifier=ident,
        Engine=ENGINE,
        EngineVersion=VERSION,
        DBInstanceClass="db.t4g.small",
        AllocatedStorage=20,
        MasterUsername="orders_admin",
        MasterUserPassword=secrets.token_urlsafe(16),  # a throwaway: moto never runs a database
        MultiAZ=True,
        BackupRetentionPeriod=7,
        PreferredBackupWindow="03:00-03:30",
        PreferredMaintenanceWindow="sun:04:00-sun:04:30",
        DBParameterGroupName=params,
        VpcSecurityGroupIds=["sg-0c0ffee0d0e1f2a3b"],  # the application's security group (made up: moto accepts it)
        StorageEncrypted=True,
        AutoMinorVersionUpgrade=True,
    )
    settings.update(kw)
    try:
        client.create_db_instance(**settings)
    except client.exceptions.DBInstanceAlreadyExistsFault:
        pass
    return client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def instance_table(inst: dict) -> Table:
    """The settings of an instance record that matter for operations, as a table."""
    rows = [
        ("status", inst.get("DBInstanceStatus")),
        ("engine", f"{inst.get('Engine')} {inst.get('EngineVersion')}"),
        ("class", inst.get("DBInstanceClass")),
        ("Multi-AZ", inst.get("MultiAZ")),
        ("backup retention (days)", inst.get("BackupRetentionPeriod")),
        ("backup window", inst.get("PreferredBackupWindow")),
        ("maintenance window", inst.get("PreferredMaintenanceWindow")),
        ("parameter group", ", ".join(g["DBParameterGroupName"] for g in inst.get("DBParameterGroups", []))),
        ("security groups", ", ".join(g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups", []))),
        ("endpoint", f"{inst.get('Endpoint', {}).get('Address')}:{inst.get('Endpoint', {}).get('Port')}"),
        ("latest restorable time", str(inst.get("LatestRestorableTime", ""))[:19]),
    ]
    return Table(("setting", "value"), rows, title=inst.get("DBInstanceIdentifier"))


def emulator_vs_real() -> Table:
    return Table(("RDS feature", "what moto records", "what real RDS does"), EMULATOR_VS_REAL)


def snapshots_table(client, ident: str) -> Table:
    snaps = client.describe_db_snapshots(DBInstanceIdentifier=ident)["DBSnapshots"]
    rows = [
        (s["DBSnapshotIdentifier"], s["SnapshotType"], s["Status"], str(s["SnapshotCreateTime"])[:19]) for s in snaps
    ]
    return Table(("snapshot", "type", "status", "created"), rows, title=f"snapshots of {ident}")


# ------------------------------------------------------------------ the data path, for real
def _pg_tool(name: str) -> str:
    return str(Path(tools.require("postgresql", "12")).resolve().parent / name)


def start_postgres(quiet: bool = True) -> database.Postgres:
    return database.start(PG_NAME, "12", dbname=PG_DB, quiet=quiet)


def seed_orders(db: database.Postgres, n: int = 500) -> int:
    with db.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS orders")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL)")
        conn.execute(
            "INSERT INTO orders SELECT g, 'c-' || (g %% 37), round((g * 7.31)::numeric %% 500, 2) "
            "FROM generate_series(1, %s) g",
            (n,),
        )
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]


def fingerprint(db: database.Postgres, dbname: str | None = None) -> tuple[int, str]:
    """(rows, md5 of every row in order): two databases with the same fingerprint hold the same orders."""
    with db.connect(dbname) as conn:
        return conn.execute(
            "SELECT count(*), md5(coalesce(string_agg(id || ':' || customer || ':' || total, ',' ORDER BY id), '')) "
            "FROM orders"
        ).fetchone()


def pg_env(db: database.Postgres) -> dict[str, str]:
    return {**os.environ, "PGPASSWORD": db.admin_password, "PGHOST": db.host, "PGPORT": str(db.port)}


def dump(db: database.Postgres, dest: Path) -> tuple[str, float]:
    """``pg_dump --format=custom`` of the orders database; returns (the command as typed, seconds)."""
    cmd = [_pg_tool("pg_dump"), "-U", database.ADMIN, "--format=custom", "--file", str(dest), PG_DB]
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=pg_env(db), capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise database.DatabaseError(f"pg_dump failed: {out.stderr.strip()[-500:]}")
    shown = f"PGPASSWORD=... pg_dump -h {db.host} -p {db.port} -U postgres --format=custom --file {dest.name} {PG_DB}"
    return shown, time.monotonic() - t0


def restore(db: database.Postgres, src: Path, target_db: str) -> tuple[str, float]:
    """``pg_restore`` into a NEW database (never over the damaged one); returns (the command as typed, seconds)."""
    db.create_database(target_db)
    cmd = [_pg_tool("pg_restore"), "-U", database.ADMIN, "--no-owner", "--dbname", target_db, str(src)]
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=pg_env(db), capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise database.DatabaseError(f"pg_restore failed: {out.stderr.strip()[-500:]}")
    shown = f"pg_restore -h {db.host} -p {db.port} -U postgres --no-owner --dbname {target_db} {src.name}"
    return shown, time.monotonic() - t0


# ------------------------------------------------------------------ reset
def reset_managed() -> dict[str, list[str]]:
    """Delete lesson 12's RDS records (instances, manual snapshots, parameter groups) and its databases."""
    removed: dict[str, list[str]] = {"rds records": []}
    try:
        client = rds()
        for inst in client.describe_db_instances()["DBInstances"]:
            if inst["DBInstanceIdentifier"].startswith("l12-"):
                client.delete_db_instance(DBInstanceIdentifier=inst["DBInstanceIdentifier"], SkipFinalSnapshot=True)
                removed["rds records"].append(inst["DBInstanceIdentifier"])
        for snap in client.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]:
            if snap["DBSnapshotIdentifier"].startswith("l12-"):
                client.delete_db_snapshot(DBSnapshotIdentifier=snap["DBSnapshotIdentifier"])
                removed["rds records"].append(snap["DBSnapshotIdentifier"])
        for group in client.describe_db_parameter_groups()["DBParameterGroups"]:
            if group["DBParameterGroupName"].startswith("l12-"):
                client.delete_db_parameter_group(DBParameterGroupName=group["DBParameterGroupName"])
    except Exception as e:  # noqa: BLE001 - an emulator without RDS (an old lab): say so, reset the rest
        removed["rds records"].append(f"(not reset: {type(e).__name__})")
    try:
        ecs = aws.client("ecs")
        for arn in ecs.list_task_definitions(familyPrefix="l12-").get("taskDefinitionArns", []):
            ecs.deregister_task_definition(taskDefinition=arn)
            removed.setdefault("task definitions", []).append(arn.rsplit("/", 1)[-1])
    except Exception as e:  # noqa: BLE001
        removed.setdefault("task definitions", []).append(f"(not reset: {type(e).__name__})")
    db = database.find(PG_NAME)
    if db is not None and db.alive():
        try:
            removed["databases"] = [d for d in db.databases("l12_") if d != PG_DB]
            for d in removed["databases"]:
                db.drop_database(d)
            db.drop_roles("l12_")
        except database.DatabaseError:
            pass
    return removed
