"""Lesson 04's service: start the instrumented order service (``app.observed``), find it again, drive it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .. import aws, net, procs
from ..lab import ROOT, Lab

BUCKET = "l04-orders"
QUEUE = "l04-order-events"
SERVICE = "l04-service"
NAMESPACE = "l04/orders"
DIMENSIONS = {"Service": "orders"}
LOG_GROUP = "/l04-orders"  # reset_lesson("04") deletes log groups named /l04-... or l04-...
EXERCISE_GROUP = "/l04-exercise"
COARSE_BUCKETS = (0.01, 0.1, 1.0)  # what the exercise service starts with: too coarse on purpose
SLO_LATENCY_S = 0.25
SLO_TARGET = 0.995


@dataclass
class Service:
    name: str
    pid: int
    port: int
    metrics_port: int
    spans_file: str
    fault_rate: float
    buckets: tuple
    inventory_ms: float = 0.0
    inventory_hook: str | None = None
    slow_queue_ms: float = 0.0
    slow_queue_rate: float = 1.0
    fault_flag: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def log_file(self) -> Path:
        return procs.log_path(self.name)

    def lines(self) -> list[str]:
        """Everything the process wrote to stdout/stderr so far (its JSON log, and anything else)."""
        try:
            return self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return []


def work_dir() -> Path:
    return Lab.from_env().work_dir("04")


def setup_backing(s3=None, sqs=None) -> dict:
    """The service's backing services: the orders bucket and the events queue (idempotent)."""
    s3 = s3 or aws.client("s3")
    sqs = sqs or aws.client("sqs")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    return {"bucket": BUCKET, "queue_url": sqs.create_queue(QueueName=QUEUE)["QueueUrl"]}


def start_service(
    name: str = SERVICE,
    fault_rate: float = 0.0,
    seed: int = 4,
    slow_queue_ms: float = 0,
    slow_queue_rate: float = 1.0,
    buckets=None,
    backing: dict | None = None,
    port: int | None = None,
    metrics_port: int | None = None,
    inventory_ms: float = 0,
    inventory_hook: str | Path | None = None,
    fault_flag: str | Path | None = None,
) -> Service:
    """Start ``app.observed`` (on free ports unless given); wait until /health answers; return how to reach it.

    Starting it again (another FAULT_RATE, other buckets) restarts the process: a config change.
    """
    backing = backing or setup_backing()
    if port is None or metrics_port is None:
        port, metrics_port = net.free_port(), net.free_port()
        while metrics_port == port:
            metrics_port = net.free_port()
    spans = work_dir() / f"{name}-spans.jsonl"
    procs.stop(name)  # before the spans file goes: the old process may still be writing it
    spans.unlink(missing_ok=True)
    env = {
        "ORDERS_BUCKET": backing["bucket"],
        "ORDERS_QUEUE_URL": backing["queue_url"],
        "PORT": str(port),
        "METRICS_PORT": str(metrics_port),
        "SPANS_FILE": str(spans),
        "FAULT_RATE": str(fault_rate),
        "FAULT_SEED": str(seed),
        "SLOW_QUEUE_MS": str(slow_queue_ms),
        "SLOW_QUEUE_RATE": str(slow_queue_rate),
        "INVENTORY_MS": str(inventory_ms),
        "INVENTORY_HOOK": str(inventory_hook or ""),
        "FAULT_RATE_FILE": str(fault_flag or ""),
    }
    if buckets is not None:
        env["LATENCY_BUCKETS"] = ",".join(repr(float(b)) for b in buckets)
    procs.start(
        name, ["-m", "app.observed"], env=env, ready_url=f"http://127.0.0.1:{port}/health", cwd=str(ROOT), timeout=20
    )
    svc = find_service(name)
    if svc is None:
        raise RuntimeError(f"{name} answered but did not log its 'started' line; see {procs.log_path(name)}")
    net.wait_http(svc.metrics_url, timeout=5)
    return svc


def find_service(name: str = SERVICE) -> Service | None:
    """The running service called ``name``, found from its process and its own 'started' log line."""
    proc = procs.running(name)
    if proc is None:
        return None
    for line in reversed(proc.output().splitlines()):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") == "started" and rec.get("pid") == proc.pid:
            return Service(
                name,
                proc.pid,
                rec["port"],
                rec["metrics_port"],
                rec["spans_file"],
                rec.get("fault_rate", 0.0),
                tuple(rec.get("buckets", ())),
                rec.get("inventory_ms", 0.0),
                rec.get("inventory_hook"),
                rec.get("slow_queue_ms", 0.0),
                rec.get("slow_queue_rate", 1.0),
                rec.get("fault_flag"),
            )
    return None


def load_results(path) -> list[dict]:
    """Request results written as JSON lines (the load generator's ``--results`` file)."""
    out = []
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # the line being written right now
    return out


def send(svc: Service, request_id: str, path: str = "/health", body: dict | None = None) -> net.Response:
    """One request to the service with our own X-Request-Id (a POST when ``body`` is given)."""
    method = "POST" if body is not None else "GET"
    return net.request(method, svc.url + path, body, headers={"X-Request-Id": request_id}, timeout=5)


def wait_for_line(svc: Service, text: str, timeout: float = 1.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in svc.lines():
            if text in line:
                return line
        time.sleep(0.05)
    return None
