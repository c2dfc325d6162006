"""Lesson 12's operational checks: a cold start without needless imports (12.5, measured in the Runtime Interface
Emulator with Python's own import profiler), Lambda's bill from measured invocations (12.6), and a restore
drill on the RDS API (12.7)."""

from __future__ import annotations

import math
import random
import re
import statistics
import uuid

from .. import aws
from ..checks import check
from ..cost import targets
from . import managed, setup
from .checks_api import learner_file

REPORT_FILE = "l12_report.py"
HEAVY = ("numpy", "matplotlib", "PIL", "pandas", "scipy")
_IMPORT = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def imports(lines) -> dict[str, float]:
    """Top-level modules imported in ``lines`` (``python -X importtime`` output) -> cumulative milliseconds."""
    out: dict[str, float] = {}
    for ln in lines:
        m = _IMPORT.search(ln)
        if m:
            top = m.group(4).split(".")[0]
            out[top] = max(out.get(top, 0.0), int(m.group(2)) / 1000)
    return out


def heavy_in(lines) -> dict[str, float]:
    return {k: v for k, v in imports(lines).items() if k in HEAVY}


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _shown(x, fmt: str) -> str:
    return format(x, fmt) if _number(x) else f"{x!r:.40}"


def _ms(found: dict[str, float]) -> str:
    return ", ".join(f"{k} ({v:.0f} ms)" for k, v in sorted(found.items(), key=lambda kv: -kv[1]))


# ======================================================================= 12.5 a cold start without needless imports
@check(
    "12.5",
    "A cold start of the report function imports only what a mean needs; the chart still works",
    hints=[
        "Look at what runs in INIT: every import at the top of the module. Which of them does a mean need?",
        "Move `import numpy`/`import matplotlib...` into the branch that draws the chart (Python caches a module after "
        "its first import, so the second chart pays nothing); compute the mean without numpy (statistics.fmean).",
        "Careful: importing inside the handler for EVERY request moves the cost from INIT to the first mean request "
        "(same wait for the caller). Import only in the chart branch, and call matplotlib.use('Agg') there.",
    ],
)
def check_cold_start(r, ns):
    src = learner_file(r, REPORT_FILE)
    env = {"PYTHONPROFILEIMPORTTIME": "1"}  # Python's import profiler (python -X importtime) on stderr
    fn = setup.deploy("l12-chk-report", src, "l12_report.handler", timeout=30, memory_mb=512, env=env)
    values = [round(random.uniform(1, 90), 2) for _ in range(7)]
    try:
        first = fn.invoke({"values": values})
        text = f"{first.error_type}: {first.error_message}"
        if "NotImplementedError" in text:
            r.fail("the module still raises NotImplementedError: replace the TODO with your code")
        r.require(
            first.ok,
            "a mean request answers",
            f"the first mean request failed: {text[:240]}",
        )
        r.require(first.cold, "the first request was a cold start (INIT ran)", "the first request was not a cold start")
        mean = (first.payload or {}).get("mean") if isinstance(first.payload, dict) else None
        r.expect(
            isinstance(mean, (int, float)) and math.isclose(mean, statistics.fmean(values), rel_tol=1e-9),
            f"the mean of values the notebook never used is right ({statistics.fmean(values):.4f})",
            f"the mean of {values} should be {statistics.fmean(values):.4f}; the function answered "
            f"{first.payload!r:.80}",
        )
        loaded = heavy_in(first.logs)
        r.expect(
            not loaded,
            f"its cold start imported nothing heavy (INIT {first.init_ms:.0f} ms, the caller waited "
            f"{first.client_ms:.0f} ms)",
            f"the cold start of a mean request imported {_ms(loaded)}: a request that only needs a mean waits for "
            "them (in INIT, or in the handler)",
        )
        second = fn.invoke({"values": values[:3]})
        r.expect(
            second.ok and not second.cold and not heavy_in(second.logs),
            "a second mean request reuses the warm environment and imports nothing",
            f"the second mean request: {second.summary()}, imports {_ms(heavy_in(second.logs)) or 'none'}",
        )
        chart = fn.invoke({"values": values, "chart": True})
        png = (chart.payload or {}).get("png_bytes") if isinstance(chart.payload, dict) else None
        r.expect(
            chart.ok and isinstance(png, int) and png > 100,
            f"the chart still works (a {png} byte PNG"
            + (f"; this first chart paid the import: {_ms(heavy_in(chart.logs))})" if heavy_in(chart.logs) else ")"),
            f"a chart request should answer {{'png_bytes': <size>}} as before; it answered "
            f"{chart.error_type or ''} {str(chart.payload)[:120]}",
        )
    finally:
        fn.stop()


# ======================================================================= 12.6 Lambda's bill, from measured invocations
@check(
    "12.6",
    "Lambda's monthly bill and its break-even with an always-on service, from invocations measured in the RIE",
    hints=[
        "Per request Lambda bills one request plus GB-seconds: (memory_mb / 1024) x (billed_ms / 1000). Average "
        "billed_ms over the sample (the cold invocation too: INIT is billed since August 2025).",
        "Prices: PRICES.price('lambda.requests', 'us-east-1', 'per_million') / 1e6 per request, and "
        "PRICES.price('lambda.duration', 'us-east-1', 'x86_64') per GB-second. No free tier.",
        "break_even_requests(invocations, always_on_usd) = always_on_usd / (the cost of ONE request: its request "
        "charge + its GB-seconds x price).",
    ],
)
def check_lambda_bill(r, ns):
    monthly = r.need(ns, "lambda_monthly_usd", callable)
    even = r.need(ns, "break_even_requests", callable)
    memory = random.choice([1769, 2048, 1536])
    fn = setup.deploy("l12-chk-bill", setup.FUNCTIONS / "hello.py", "hello.handler", timeout=10, memory_mb=memory)
    try:
        sample = [fn.invoke({"sleep": s}) for s in (0, 0.03, 0, 0.05, 0.01)]
    finally:
        fn.stop()
    r.require(all(i.ok and i.billed_ms for i in sample), "5 invocations measured", "the sample invocations failed")
    billed = statistics.fmean(i.billed_ms for i in sample)
    for requests in (3_700_000, 250_000_000):
        want = targets.lambda_monthly(requests, billed, memory)
        got = r.call(monthly, sample, requests)
        ok = _number(got) and math.isclose(got, want, rel_tol=0.005)
        r.expect(
            ok,
            f"{requests:,} requests/month at {memory} MB, {billed:.1f} ms billed on average: {want:,.2f} USD",
            f"for {requests:,} requests/month at {memory} MB and {billed:.1f} ms billed on average the bill is "
            f"{want:,.2f} USD; lambda_monthly_usd gave {_shown(got, ',.2f')}",
        )
    always_on = round(random.uniform(60, 400), 2)
    want = targets.break_even_requests(billed, memory, always_on)
    got = r.call(even, sample, always_on)
    r.expect(
        _number(got) and math.isclose(got, want, rel_tol=0.005),
        f"against {always_on} USD/month always on, Lambda costs more above {want:,.0f} requests/month",
        f"against an always-on service of {always_on} USD/month the break-even is {want:,.0f} requests/month; "
        f"break_even_requests gave {_shown(got, ',.0f')}",
    )


# ======================================================================= 12.7 a restore drill on the RDS API
@check(
    "12.7",
    "The restore drill snapshots the database now and restores it as a twin: same class, parameter group, network",
    hints=[
        "rds.create_db_snapshot(DBSnapshotIdentifier=..., DBInstanceIdentifier=source_id), wait with the waiter "
        "'db_snapshot_available', then rds.restore_db_instance_from_db_snapshot(...). Return the snapshot's id.",
        "A restore does NOT copy everything: without DBParameterGroupName it gets the engine's default parameter "
        "group, "
        "without VpcSecurityGroupIds the default security group. Read them from describe_db_instances(source_id).",
        "Pass DBInstanceClass, MultiAZ, DBParameterGroupName (DBParameterGroups[0]) and VpcSecurityGroupIds (every "
        "VpcSecurityGroupId) of the source; take a NEW snapshot: the newest old one is yesterday's data.",
    ],
)
def check_restore_drill(r, ns):
    drill = r.need(ns, "restore_drill", callable)
    client = aws.client("rds")
    tag = uuid.uuid4().hex[:6]
    source, target = f"l12-chk-src-{tag}", f"l12-chk-twin-{tag}"
    params = f"l12-chk-pg-{tag}"
    groups = sorted(f"sg-0{uuid.uuid4().hex[:16]}" for _ in range(2))
    klass = random.choice(["db.r6g.large", "db.m6g.xlarge"])
    inst = managed.create_instance(
        client, source, params, DBInstanceClass=klass, VpcSecurityGroupIds=groups, BackupRetentionPeriod=14
    )
    old = f"l12-chk-old-{tag}"
    client.create_db_snapshot(DBSnapshotIdentifier=old, DBInstanceIdentifier=source)
    before = {
        s["DBSnapshotIdentifier"] for s in client.describe_db_snapshots(DBInstanceIdentifier=source)["DBSnapshots"]
    }
    snap_id = r.call(drill, client, source, target)
    r.require(
        isinstance(snap_id, str) and snap_id,
        "restore_drill returned a snapshot id",
        f"restore_drill should return the id of the snapshot it took, not {snap_id!r:.60}",
    )
    snaps = client.describe_db_snapshots(DBInstanceIdentifier=source)["DBSnapshots"]
    snap = next((s for s in snaps if s["DBSnapshotIdentifier"] == snap_id), None)
    fresh = snap is not None and snap_id not in before
    r.expect(
        snap is not None and snap["SnapshotType"] == "manual" and snap["Status"] == "available" and fresh,
        f"a new manual snapshot of {source} ({snap_id}), taken during the drill",
        f"{snap_id!r} is not a manual snapshot of {source} taken during the drill"
        + (" (it is an older one: restoring it loses everything written since)" if snap_id == old else "")
        + (
            " (an automated snapshot: last night's data)"
            if snap is not None and snap["SnapshotType"] != "manual"
            else ""
        ),
    )
    found = client.describe_db_instances()["DBInstances"]
    twin = next((i for i in found if i["DBInstanceIdentifier"] == target), None)
    r.require(twin is not None, f"{target} exists", f"no instance {target}: restore the snapshot to it")
    same = {
        "instance class": (twin.get("DBInstanceClass"), inst.get("DBInstanceClass")),
        "parameter group": (
            [g["DBParameterGroupName"] for g in twin.get("DBParameterGroups", [])],
            [g["DBParameterGroupName"] for g in inst.get("DBParameterGroups", [])],
        ),
        "security groups": (
            sorted(g["VpcSecurityGroupId"] for g in twin.get("VpcSecurityGroups", [])),
            sorted(g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups", [])),
        ),
        "Multi-AZ": (twin.get("MultiAZ"), inst.get("MultiAZ")),
        "engine": ((twin.get("Engine"), twin.get("EngineVersion")), (inst.get("Engine"), inst.get("EngineVersion"))),
    }
    diff = {k: v for k, v in same.items() if v[0] != v[1]}
    r.expect(
        not diff,
        f"{target} is a twin of {source}: {klass}, parameter group {params}, its 2 security groups, Multi-AZ",
        f"{target} differs from {source}: "
        + "; ".join(f"{k} {a!r} instead of {b!r}" for k, (a, b) in diff.items())
        + " (a restore takes defaults unless told otherwise)",
    )
    still = [i for i in found if i["DBInstanceIdentifier"] == source]
    r.expect(
        still and still[0].get("DBInstanceStatus") == "available",
        f"{source} is untouched (a drill never touches the real database)",
        f"{source} is gone or not available: a drill restores beside the source, never over it",
    )
