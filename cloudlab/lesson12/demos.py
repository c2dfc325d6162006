"""Lesson 12's demonstrations, each one call in the notebook: cold and warm invokes measured, an import profile,
the emulator's own log lines, a page-by-page Query, an ECS task definition, the idempotency records."""

from __future__ import annotations

import json
import threading
import time

from .. import stats
from ..serverless import Function
from ..tables import Table
from . import checks_ops, setup


def cold_and_warm(functions: dict[str, tuple], warm: int = 5, event: dict | None = None) -> Table:
    """For each ``name: (file, handler)``: a new function, one cold invoke and ``warm`` warm ones, measured."""
    rows = []
    for name, (file, handler) in functions.items():
        fn = setup.deploy(name, file, handler, timeout=30, memory_mb=512)
        try:
            first = fn.invoke(event or {})
            rest = [fn.invoke(event or {}) for _ in range(warm)]
        finally:
            fn.stop()
        p50 = stats.percentile([i.client_ms for i in rest], 50)
        rows.append(
            (name, f"{first.init_ms:.0f}", f"{first.client_ms:.0f}", f"{p50:.1f}", f"{first.max_rss_mb or 0:.0f}")
        )
    return Table(
        ("function", "INIT ms", "first invoke: caller waited ms", f"warm invokes: median of {warm} ms", "memory MB"),
        rows,
        title="Cold vs warm, measured in the Runtime Interface Emulator",
    )


def import_profile(file, handler: str, top: int = 6) -> Table:
    """The slowest imports of a cold start (Python's ``-X importtime`` inside the function's INIT)."""
    fn = setup.deploy("l12-importtime", file, handler, timeout=30, memory_mb=512, env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        inv = fn.invoke({})
    finally:
        fn.stop()
    found = sorted(checks_ops.imports(inv.logs).items(), key=lambda kv: -kv[1])[:top]
    return Table(
        ("top-level module", "cumulative import ms"),
        [(m, f"{ms:.0f}") for m, ms in found],
        title=f"INIT {inv.init_ms:.0f} ms; where it went (python -X importtime)",
    )


def rie_lines(fn: Function, last: int = 14) -> str:
    """The emulator's own lines about the environment's life (INIT, INVOKE, START/END/REPORT), the latest ones."""
    keep = ("INIT ", "INVOKE ", "START ", "END ", "REPORT ", "Reset", "SIGKILL")
    lines = []
    for env in fn.environments:
        lines += [ln.strip() for ln in env.log_text().splitlines() if any(k in ln for k in keep)]
    return "\n".join(ln.replace("[INFO] (rapid) ", "") for ln in lines[-last:])


def seed_customer(ddb, table: str, customer: str, orders: int) -> None:
    """A customer's profile and ``orders`` orders in the single table."""
    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": f"CUSTOMER#{customer}"}, "sk": {"S": "PROFILE"}, "name": {"S": customer.title()},
              "email": {"S": f"{customer}@example.com"}},
    )  # fmt: skip
    for i in range(orders):
        oid = f"o-{1000 + i}"
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": f"CUSTOMER#{customer}"}, "sk": {"S": f"ORDER#{oid}"}, "order_id": {"S": oid},
                  "total": {"N": str(10 + i)}},
        )  # fmt: skip


def pages(ddb, table: str, customer: str, limit: int) -> list[tuple[list[str], dict | None]]:
    """Query the customer's orders ``limit`` at a time, following LastEvaluatedKey: [(sort keys, key or None)]."""
    out, start = [], None
    while True:
        args = dict(
            TableName=table,
            KeyConditionExpression="pk = :p AND begins_with(sk, :o)",
            ExpressionAttributeValues={":p": {"S": f"CUSTOMER#{customer}"}, ":o": {"S": "ORDER#"}},
            Limit=limit,
        )
        if start:
            args["ExclusiveStartKey"] = start
        page = ddb.query(**args)
        start = page.get("LastEvaluatedKey")
        out.append(([i["sk"]["S"] for i in page["Items"]], start))
        if not start:
            return out


def idempotency_records(ddb, table: str) -> Table:
    """Powertools' idempotency records, with their expiries as seconds from now (what the epoch numbers mean)."""
    now = time.time()
    rows = []
    for item in ddb.scan(TableName=table).get("Items", []):
        plain = {k: next(iter(v.values())) for k, v in item.items()}
        data = plain.get("data")
        expiry = f"in {float(plain['expiration']) - now:.0f} s" if plain.get("expiration") else ""
        running = plain.get("in_progress_expiration")
        rows.append(
            (
                plain["id"].split("#")[-1][:12] + "...",
                plain.get("status"),
                expiry,
                f"in {float(running) / 1000 - now:.1f} s" if running and plain.get("status") == "INPROGRESS" else "",
                (json.loads(data).get("quote_id") if data else ""),
            )
        )
    return Table(("key (a hash)", "status", "record expires", "in-progress expires", "stored answer"), rows)


def in_background(fn: Function, event: dict) -> tuple[threading.Thread, dict]:
    """Invoke in a thread (the caller waits there); returns (the thread, a box that gets the invocation)."""
    box: dict = {}
    th = threading.Thread(target=lambda: box.setdefault("inv", fn.invoke(event)), daemon=True)
    th.start()
    return th, box


def fargate_task(ecs, family: str = "l12-orders", cpu: int = 512, memory: int = 1024) -> dict:
    """The task definition the Fargate option is priced for (moto records it; ECS would run it)."""
    return ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu=str(cpu),
        memory=str(memory),
        containerDefinitions=[
            {
                "name": "orders",
                "image": "registry.example/orders:sha-1234",
                "portMappings": [{"containerPort": 8000}],
                "essential": True,
                "readonlyRootFilesystem": True,
                "user": "10001",
            }
        ],
    )["taskDefinition"]


def structured_lines(fn: Function, last: int = 3) -> Table:
    """The function's own JSON log lines (Powertools' Logger and its EMF metrics), the last ``last`` of each kind."""
    logs, emf = [], []
    for env in fn.environments:
        for ln in env.log_text().splitlines():
            try:
                obj = json.loads(ln)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            if "_aws" in obj:
                names = [m["Name"] for d in obj["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
                emf.append(
                    (
                        "EMF metric",
                        ", ".join(f"{n}={obj.get(n)}" for n in names),
                        obj["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                    )
                )
            elif "level" in obj:
                logs.append((f"log {obj['level']}", obj.get("message"), f"cold_start={obj.get('cold_start')}"))
    return Table(("line", "what", "with"), logs[-last:] + emf[-last:], title="the function's structured output")
