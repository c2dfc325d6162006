"""Lesson 12's glue: names, deploying a function's code, the tables and queues it uses, and the reset.

A "deployment" here is what ``aws lambda update-function-code`` does with a zip: the function's files are
copied into a folder of their own (``.lab/work/l12/functions/<name>/``), with the lesson's shared module
``ledger.py`` beside them (the way a layer adds code), and a new :class:`~cloudlab.serverless.Function`
runs from that copy, so editing the notebook's file afterwards changes nothing until the next deploy.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

from .. import cleanup, procs, serverless
from ..lab import ROOT, Lab
from ..lesson09.drills import queue_with_dlq  # noqa: F401  (the course's one queue-with-DLQ helper)

LESSON = "12"
ASSETS = ROOT / "lessons" / "12_serverless"
FUNCTIONS = ASSETS / "functions"
LAYERS = ("ledger.py",)  # shared code every deployed function gets (like a Lambda layer)
ORDERS_TABLE = "l12-orders"
_LIVE: dict[str, list] = {"functions": [], "mappings": [], "apis": []}


def work_dir(sub: str = "") -> Path:
    d = Lab.from_env().work_dir(LESSON) / sub if sub else Lab.from_env().work_dir(LESSON)
    d.mkdir(parents=True, exist_ok=True)
    return d


def fresh(prefix: str) -> str:
    """A name no earlier run used (checks make their own queues and tables each time)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _runtime_env() -> dict[str, str]:
    # matplotlib keeps its font cache in a folder of its own; without one it rebuilds it in every new environment
    return {"MPLCONFIGDIR": str(work_dir("mplconfig"))}


def deploy(
    name: str,
    source,
    handler: str,
    timeout: float = 10.0,
    memory_mb: int = 128,
    env: dict | None = None,
    reserved_concurrency: int = 10,
    **kw,
) -> serverless.Function:
    """Copy ``source`` (a file, e.g. the notebook's ``l12_orders_api.py``) and the lesson's layer into a fresh
    code folder and return the function that runs from it. ``handler``: ``module.function``.

    The timeout defaults to 10 s, not Lambda's 3 s: the emulator counts INIT (importing boto3 takes seconds on a
    busy machine) against the timeout, where Lambda gives INIT 10 s of its own."""
    if not name.startswith("l12-"):
        raise ValueError(f"lesson 12's functions are named l12-..., not {name!r}")
    src = Path(source)
    if not src.is_absolute() and not src.exists() and (FUNCTIONS / src).exists():
        src = FUNCTIONS / src
    if not src.exists():
        raise FileNotFoundError(f"{source}: no such file here (run the cell that writes it first)")
    for old in [f for f in _LIVE["functions"] if f.name == name]:
        old.stop()
        _LIVE["functions"].remove(old)
    procs.stop_all(f"{name}.")
    code = work_dir("functions") / name
    shutil.rmtree(code, ignore_errors=True)
    code.mkdir(parents=True)
    shutil.copy2(src, code / src.name)
    for layer in LAYERS:
        if not (code / layer).exists():
            shutil.copy2(FUNCTIONS / layer, code / layer)
    spec = serverless.FunctionSpec(
        name, code, handler, timeout=timeout, memory_mb=memory_mb, env={**_runtime_env(), **(env or {})}
    )
    fn = serverless.Function(spec, reserved_concurrency=reserved_concurrency, **kw)
    _LIVE["functions"].append(fn)
    return fn


def keep(kind: str, thing):
    """Remember an event source mapping or an HTTP API, so the reset stops it."""
    _LIVE[kind].append(thing)
    return thing


def create_table(ddb, name: str, hash_key: str = "pk", range_key: str | None = "sk") -> str:
    """A DynamoDB table (on-demand) with string keys; waits until it is active. Safe to call again."""
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    try:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    except ddb.exceptions.ResourceInUseException:
        pass
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    return name


def charges(ddb, table: str) -> dict[str, int]:
    """How many times each order was charged, read from the ledger table (one item per charge)."""
    out: dict[str, int] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            if item["sk"]["S"].startswith("charge#"):
                out[item["pk"]["S"]] = out.get(item["pk"]["S"], 0) + 1
    return out


def queue_messages(sqs, url: str) -> list[str]:
    """The bodies of the messages in a queue, read without consuming them (visibility timeout 0)."""
    bodies, seen = [], set()
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0)
        new = [m for m in got.get("Messages", []) if m["MessageId"] not in seen]
        if not new:
            break
        for m in new:
            seen.add(m["MessageId"])
            bodies.append(m["Body"])
    return bodies


def queue_depth(sqs, url: str) -> int:
    """Visible + in-flight messages (SQS's approximate counters)."""
    a = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(a.get("ApproximateNumberOfMessages", 0)) + int(a.get("ApproximateNumberOfMessagesNotVisible", 0))


def wait(condition, timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


@cleanup.extra(LESSON)
def _reset() -> dict[str, list[str]]:
    from .. import aws

    removed: dict[str, list[str]] = {"functions": [], "tables": []}
    for m in _LIVE["mappings"]:
        m.stop(timeout=2)
    for api in _LIVE["apis"]:
        api.stop()
    for fn in _LIVE["functions"]:
        fn.stop()
        removed["functions"].append(fn.name)
    for k in _LIVE:
        _LIVE[k].clear()
    shutil.rmtree(work_dir("functions"), ignore_errors=True)
    ddb = aws.client("dynamodb")
    for page in ddb.get_paginator("list_tables").paginate():
        for t in page.get("TableNames", []):
            if t.startswith("l12-"):
                ddb.delete_table(TableName=t)
                removed["tables"].append(t)
    from .. import containers

    if containers.answers():  # the function containers (the images stay: they are the build cache)
        try:
            ps = containers.docker("ps", "-a", "--filter", f"label={containers.LABEL}=12", "--format", "{{.Names}}")
            names = ps.stdout.split()
            if names:
                containers.docker("rm", "-f", *names)
                removed["containers"] = names
        except (containers.EngineDown, containers.EngineMissing):
            pass
    from .managed import reset_managed

    for k, v in reset_managed().items():
        removed.setdefault(k, []).extend(v)
    return removed
