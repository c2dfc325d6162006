"""Lesson 09's glue: its names, the dependency, the fleet, the retry storm, the worker and the drills."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

from .. import aws, cleanup, deploy, net, procs
from ..lab import ROOT, Lab
from ..reliability import faults, fleet, netns
from ..reliability.dependency import Dependency

LESSON = "09"
BUCKET = "l09-orders"
QUEUE = "l09-order-events"
DEPENDENCY = "l09-dep"
EXPERIMENTS = ROOT / "lessons" / "09_reliability-and-chaos"


def work_dir() -> Path:
    return Lab.from_env().work_dir(LESSON)


def backing() -> dict:
    """The order service's backing services (bucket and queue), created if needed."""
    return deploy.backing(BUCKET, QUEUE)


def start_dependency(port: int | None = None) -> Dependency:
    """The fault-injecting dependency as a lesson process on 127.0.0.1 (healthy until told otherwise)."""
    port = port or net.free_port()
    procs.start(
        DEPENDENCY,
        ["-m", "cloudlab.reliability.dependency", "--port", port],
        ready_url=f"http://127.0.0.1:{port}/health",
        cwd=str(ROOT),
    )
    return Dependency(f"http://127.0.0.1:{port}")


def find_dependency() -> Dependency | None:
    """The running dependency (from its own 'started' line), or None."""
    proc = procs.running(DEPENDENCY)
    if proc is None:
        return None
    for line in proc.output().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") == "started":
            dep = Dependency(f"http://127.0.0.1:{rec['port']}", quiet=True)
            return dep if net.answers(dep.url + "/health", timeout=1) else None
    return None


def dependency() -> Dependency:
    """The running dependency, or a new one when it is gone (after ``reset_lesson("09")`` or a lab restart)."""
    dep = find_dependency()
    if dep is None:
        print("(the lesson's dependency was not running: started it again)")
        dep = start_dependency()
    return dep


def try_retry(retry_call, seconds: float = 10.0) -> None:
    """The retry task's own try: the learner's ``retry_call`` against the dependency answering 503, then 200.
    One line says what happened (a wrong answer is the check's business, never a traceback here)."""
    dep = dependency()
    dep.set_fault(script=[503, 200])
    t0, box = time.time(), {}

    def run():
        try:
            box["value"] = retry_call(lambda: dep.get(timeout=1))
        except BaseException as e:  # noqa: BLE001 - reported below in one line
            box["error"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(seconds)
    calls = len([t for t, _ in dep.arrivals() if t >= t0])
    if th.is_alive():
        print(f"retry_call was still running after {seconds:g} s ({calls} requests so far): the check below says more")
    elif isinstance(box.get("error"), NotImplementedError):
        raise box["error"]
    elif "error" in box:
        e = box["error"]
        print(
            f"retry_call raised {type(e).__name__} after {calls} request(s): {e}; the check below says what is missing"
        )
    else:
        print(f"retry_call returned {box['value']!r} after {calls} request(s) to the dependency (503, then 200)")
    dep.reset()


def start_fleet(spares: int = 0, quiet: bool = False) -> fleet.Fleet:
    """web-a, web-b, web-c in three zones (c in a network namespace of its own where the machine can),
    haproxy in front (retries 2, redispatch, health checks every 200 ms)."""
    fl = fleet.Fleet.three_azs(backing(), spares=spares)
    fl.start(quiet=quiet)
    fl.balancer(quiet=quiet)
    return fl


def under_load(url: str, seconds: float, rate: float, during=None, at: float = 1.0) -> list[dict]:
    """Send load to ``url`` for ``seconds``; call ``during()`` ``at`` s in (a fault); return the requests."""
    from ..observability import run_load

    out: list[dict] = []
    th = threading.Thread(
        target=lambda: out.extend(
            run_load(
                url, n=int(seconds * rate), rate=rate, max_seconds=seconds, concurrency=8, post_share=0.5, timeout=3
            )
        )
    )
    th.start()
    if during is not None:
        time.sleep(at)
        during()
    th.join(timeout=seconds + 15)
    return out


def fresh_queues(sqs) -> None:
    """Delete the DLQ task's two queues if an earlier run of the cell made them, so the cell can run again with
    other settings (CreateQueue refuses an existing name with different attributes: QueueNameExists)."""
    from .checks_ops import EX_DLQ, EX_QUEUE

    gone = []
    for name in (EX_QUEUE, EX_DLQ):
        try:
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
            gone.append(name)
        except sqs.exceptions.QueueDoesNotExist:
            pass
    if gone:
        print(
            f"deleted {' and '.join(gone)} from the last run of this cell (on AWS a deleted queue's name is free "
            "again only after 60 s; this emulator frees it at once)"
        )


def show_queues(sqs) -> None:
    """What the DLQ task's queues look like now (or that they are missing): one line each."""
    from .checks_ops import EX_DLQ, EX_QUEUE

    for name in (EX_QUEUE, EX_DLQ):
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            print(f"{name}: no such queue yet (the check below says what is missing)")
            continue
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        days = int(a.get("MessageRetentionPeriod", 345600)) / 86400
        print(f"{name}: keeps messages {days:g} days; RedrivePolicy: {a.get('RedrivePolicy', '(none)')}")


def failed(results: list[dict]) -> list[dict]:
    return [r for r in results if r["status"] >= 500]


# ---------------------------------------------------------------------------------------------- reset
@cleanup.extra(LESSON)
def _reset() -> dict:
    """Undo faults, delete the lesson's namespaces, DynamoDB tables and backups (processes are already stopped)."""
    removed: dict[str, list[str]] = {"faults undone": faults.heal_all(), "namespaces": []}
    for name in netns.listing():
        if netns.delete(name):
            removed["namespaces"].append(name)
    ddb = aws.client("dynamodb")
    removed["backups"] = []
    for b in ddb.list_backups().get("BackupSummaries", []):
        if b.get("TableName", "").startswith(cleanup.prefix(LESSON)):
            ddb.delete_backup(BackupArn=b["BackupArn"])
            removed["backups"].append(b["BackupName"])
    removed["tables"] = []
    for t in ddb.list_tables().get("TableNames", []):
        if t.startswith(cleanup.prefix(LESSON)):
            ddb.delete_table(TableName=t)
            removed["tables"].append(t)
    for f in ("fleet.json", "faults.json"):
        (work_dir() / f).unlink(missing_ok=True)
    (Path.cwd() / "l09-my-experiment.json").unlink(missing_ok=True)  # the exercise writes it again from its cell
    return removed


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"
