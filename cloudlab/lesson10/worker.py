"""The fulfilment worker: ships each new order that S3 announces on the fulfilment queue.

The order service stores an order at ``orders/<id>.json``; the bucket's event notification (Terraform's
``aws_s3_bucket_notification.orders``) puts an S3 event on the queue; this worker reads it, "ships" the order
(a carrier call) and records the shipment at ``shipments/<id>.json``, then deletes the message. At least once:
an order that already has a shipment is not shipped again (the record is checked first).

Signals, like the order service's: one JSON log line per event on stdout, and Prometheus metrics on
``--metrics-port`` (127.0.0.1): ``fulfilment_shipped_total{on_time}`` (shipped within the SLO's 5 minutes,
counted in lab time: 5 s), ``fulfilment_lag_seconds`` (order stored -> shipped), ``fulfilment_events_total{kind}``.

    python -m cloudlab.lesson10.worker --queue-url URL --bucket l10-orders --metrics-port 9400

Serves lesson 10.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from datetime import UTC, datetime

ON_TIME_S = 5.0  # the fulfilment SLO: shipped within 5 minutes, in lab time (60x)
CARRIER_MS = 40


_LOG = threading.Lock()
POLLERS = 2  # receive loops; each hands its batch (up to 10 messages) to the shared pool


def log(event: str, level: str = "INFO", **fields) -> None:
    rec = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "event": event,
        "service": "fulfilment",
        **fields,
    }
    line = json.dumps(rec, default=str)
    with _LOG:  # one whole line at a time: the pool's threads log side by side
        print(line, flush=True)


def order_keys(body: str) -> list[tuple[str, str, float | None]]:
    """(key, event name, event time) of each S3 record in a message; [] for S3's test event or anything else."""
    try:
        msg = json.loads(body)
    except ValueError:
        return []
    out = []
    for rec in msg.get("Records", []) if isinstance(msg, dict) else []:
        try:
            key = rec["s3"]["object"]["key"]
        except (KeyError, TypeError):
            continue
        try:
            when = datetime.fromisoformat(str(rec["eventTime"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            when = None
        out.append((key, str(rec.get("eventName", "")), when))
    return out


class Worker:
    def __init__(self, s3, sqs, queue_url: str, bucket: str, metrics: dict):
        from concurrent.futures import ThreadPoolExecutor

        self.s3, self.sqs, self.queue_url, self.bucket, self.m = s3, sqs, queue_url, bucket, metrics
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(10 * POLLERS)

    def shipped_already(self, order_id: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=f"shipments/{order_id}.json")
            return True
        except self.s3.exceptions.ClientError:
            return False

    def stored_at(self, key: str) -> float:
        """When the order was first stored: its oldest version (a backfill that copies it again makes a new one)."""
        got = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key, MaxKeys=20)
        times = [v["LastModified"].timestamp() for v in got.get("Versions", []) if v["Key"] == key]
        if not times:
            times = [self.s3.head_object(Bucket=self.bucket, Key=key)["LastModified"].timestamp()]
        return min(times)

    def handle(self, key: str, event: str, when: float | None = None) -> None:
        if not (key.startswith("orders/") and key.endswith(".json") and event.startswith("ObjectCreated")):
            self.m["events"].labels("ignored").inc()
            log("event_ignored", key=key, s3_event=event)
            return
        order_id = key[len("orders/") : -len(".json")]
        if self.shipped_already(order_id):
            self.m["events"].labels("duplicate").inc()
            log("already_shipped", order_id=order_id)
            return
        time.sleep(CARRIER_MS / 1000)  # the carrier's API
        # a new order's event time is when it was stored; a copy (a backfill) is younger than the order itself
        stored = when if when is not None and event.startswith("ObjectCreated:Put") else self.stored_at(key)
        now = time.time()
        lag = max(0.0, now - stored)
        record = {"order_id": order_id, "shipped_at": now, "stored_at": stored, "lag_s": round(lag, 3)}
        self.s3.put_object(Bucket=self.bucket, Key=f"shipments/{order_id}.json", Body=json.dumps(record).encode())
        on_time = lag <= ON_TIME_S
        self.m["shipped"].labels("true" if on_time else "false").inc()
        self.m["lag"].observe(lag)
        self.m["events"].labels("shipped").inc()
        log("shipped", order_id=order_id, lag_s=round(lag, 3), on_time=on_time)

    def one(self, m: dict) -> dict | None:
        """Handle one message; its delete entry when done (None: it comes back after its visibility timeout)."""
        try:
            for key, event, when in order_keys(m["Body"]):
                self.handle(key, event, when)
        except Exception as e:  # a bad message must not stop the worker
            log("handle_failed", level="ERROR", error=repr(e)[:300])
            return None
        return {"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]}

    def poll(self) -> int:
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        msgs = got.get("Messages", [])
        done = [d for d in self.pool.map(self.one, msgs) if d]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
        return len(msgs)

    def loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll()
            except Exception as e:  # the queue or the bucket is unreachable: say so, wait, try again
                log("poll_failed", level="ERROR", error=repr(e)[:300])
                self.stop.wait(1.0)

    def run(self) -> None:
        threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(POLLERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def make_metrics():
    from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

    disable_created_metrics()
    registry = CollectorRegistry()
    m = {
        "shipped": Counter(
            "fulfilment_shipped", "Orders shipped, by on_time (within 5 lab minutes).", ["on_time"], registry=registry
        ),
        "lag": Histogram(
            "fulfilment_lag_seconds",
            "From the order stored to it shipped, in seconds.",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=registry,
        ),
        "events": Counter("fulfilment_events", "S3 events handled, by what happened.", ["kind"], registry=registry),
    }
    for label in ("true", "false"):
        m["shipped"].labels(label)
    for kind in ("shipped", "duplicate", "ignored"):
        m["events"].labels(kind)
    return registry, m


def main(argv=None) -> int:
    import boto3
    from prometheus_client import start_http_server

    ap = argparse.ArgumentParser(description="The fulfilment worker of lesson 10.")
    ap.add_argument("--queue-url", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    args = ap.parse_args(argv)
    registry, m = make_metrics()
    server, _ = start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
    worker = Worker(boto3.client("s3"), boto3.client("sqs"), args.queue_url, args.bucket, m)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    log("started", queue_url=args.queue_url, bucket=args.bucket, metrics_port=args.metrics_port)
    worker.run()
    server.shutdown()
    log("shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
