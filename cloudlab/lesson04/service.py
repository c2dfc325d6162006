"""Lesson 04's service: start the instrumented order service, find it again, drive it, the alarm drill."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import aws, net, pager, procs
from .. import observability as obs
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


@dataclass
class Service:
    name: str
    pid: int
    port: int
    metrics_port: int
    spans_file: str
    fault_rate: float
    buckets: tuple

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
) -> Service:
    """Start ``app.observed`` on two free ports; wait until /health answers; return how to reach it."""
    backing = backing or setup_backing()
    port, mport = net.free_port(), net.free_port()
    while mport == port:
        mport = net.free_port()
    spans = work_dir() / f"{name}-spans.jsonl"
    spans.unlink(missing_ok=True)
    env = {
        "ORDERS_BUCKET": backing["bucket"],
        "ORDERS_QUEUE_URL": backing["queue_url"],
        "PORT": str(port),
        "METRICS_PORT": str(mport),
        "SPANS_FILE": str(spans),
        "FAULT_RATE": str(fault_rate),
        "FAULT_SEED": str(seed),
        "SLOW_QUEUE_MS": str(slow_queue_ms),
        "SLOW_QUEUE_RATE": str(slow_queue_rate),
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
            )
    return None


def save_results(results: list[dict], name: str) -> Path:
    path = work_dir() / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))
    return path


def load_results(name: str) -> list[dict]:
    path = work_dir() / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def send(svc: Service, request_id: str, path: str = "/health") -> int:
    """One GET to the service with our own X-Request-Id; the status code."""
    return net.request("GET", svc.url + path, headers={"X-Request-Id": request_id}, timeout=3).status


def wait_for_line(svc: Service, text: str, timeout: float = 1.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in svc.lines():
            if text in line:
                return line
        time.sleep(0.05)
    return None


def put_alarm(
    cw, name: str, topic_arn: str, threshold: float, period: int = 10, dimensions: dict | None = None
) -> None:
    """The page-worthy alarm: the error ratio of the last ``period`` seconds above ``threshold``."""
    cw.put_metric_alarm(
        AlarmName=name,
        AlarmDescription="orders: error ratio burns the availability SLO's budget fast. "
        "Runbook: lessons/04_observability/runbook.md",
        Namespace=NAMESPACE,
        MetricName="ErrorRatio",
        Dimensions=[{"Name": k, "Value": v} for k, v in (dimensions or DIMENSIONS).items()],
        Statistic="Average",
        Period=period,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic_arn],
        OKActions=[topic_arn],
    )


def alarm_drill(
    svc: Service,
    cw,
    sqs,
    alarm: str,
    pager_url: str,
    max_seconds: float = 40,
    rate: float = 30,
    dimensions: dict | None = None,
) -> dict:
    """Real traffic and real metrics, one second at a time, until the pager gets ``alarm`` (bounded)."""
    state = {"before": obs.scrape(svc.metrics_url), "requests": 0, "errors": 0, "datapoints": 0}

    def one_second():
        res = obs.run_load(
            svc.url,
            n=int(rate),
            rate=rate,
            max_seconds=1.0,
            concurrency=4,
            post_share=1.0,
            seed=random.randrange(10**6),
        )
        after = obs.scrape(svc.metrics_url)
        data = obs.cloudwatch_datums(state["before"], after, dimensions or DIMENSIONS)
        for d in data:
            d["Timestamp"] = datetime.now(UTC)
            d["StorageResolution"] = 1
        cw.put_metric_data(Namespace=NAMESPACE, MetricData=data)
        state.update(
            before=after,
            requests=state["requests"] + len(res),
            errors=state["errors"] + sum(r["status"] >= 500 for r in res),
            datapoints=state["datapoints"] + len(data),
        )

    page, waited = pager.wait_for_page(sqs, pager_url, alarm, "ALARM", timeout=max_seconds, while_waiting=one_second)
    return {
        "page": page,
        "seconds": round(waited, 1),
        "requests": state["requests"],
        "errors": state["errors"],
        "datapoints": state["datapoints"],
    }


def exercise_setup() -> Service:
    """For the exercise notebook: a healthy run and a faulty run (results on disk), service left faulty."""
    backing = setup_backing()
    svc = start_service(fault_rate=0.0, buckets=COARSE_BUCKETS, backing=backing)
    save_results(obs.run_load(svc.url, n=150, max_seconds=8, seed=1), "healthy")
    svc = start_service(fault_rate=0.1, buckets=COARSE_BUCKETS, backing=backing)
    save_results(obs.run_load(svc.url, n=300, max_seconds=8, seed=2, post_share=1.0), "faulty")
    return svc
