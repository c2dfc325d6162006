"""Lesson 01 (the cloud mindset and the 12-factor app): helpers and checks."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from datetime import datetime
from pathlib import Path

from . import aws, net, procs
from .checks import check
from .lab import ROOT, Lab

BUCKET = "l01-orders"
QUEUE = "l01-orders"
LESSON = "01"


def backing_services() -> tuple[str, str]:
    """Create (or find) the lesson's bucket and queue; safe to run any number of times."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    try:
        s3.head_bucket(Bucket=BUCKET)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=BUCKET)
    url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    return BUCKET, url


def work_dir() -> Path:
    return Lab.from_env().work_dir(LESSON)


def service_env(bucket: str, queue_url: str, port: int, **extra) -> dict[str, str]:
    env = {"ORDERS_BUCKET": bucket, "ORDERS_QUEUE_URL": queue_url, "PORT": str(port)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_service(name: str, bucket: str, queue_url: str, port: int | None = None, **extra) -> tuple[procs.Proc, str]:
    """Start app/service.py as its own process (a new 'instance'); returns (process, base URL)."""
    port = port or net.free_port()
    p = procs.start(
        f"l01-{name}",
        ["-m", "app.service"],
        env=service_env(bucket, queue_url, port, **extra),
        ready_url=f"http://127.0.0.1:{port}/health",
        cwd=str(ROOT),
    )
    return p, f"http://127.0.0.1:{port}"


def start_legacy(delay: float = 3.0) -> tuple[procs.Proc, float]:
    """Start the legacy service in a scratch directory; returns (process, seconds until it answered)."""
    wd = work_dir() / "legacy"
    wd.mkdir(exist_ok=True)
    t0 = time.monotonic()
    p = procs.start(
        "l01-legacy",
        [ROOT / "app" / "legacy_service.py", str(delay)],
        ready_url="http://127.0.0.1:8081/health",
        timeout=delay + 10,
        cwd=str(wd),
    )
    return p, time.monotonic() - t0


def timed_stop(name: str, grace: float = 3.0) -> tuple[int | None, float, bool]:
    """SIGTERM, wait ``grace`` s, then SIGKILL: (exit code, seconds, needed SIGKILL)."""
    t0 = time.monotonic()
    code = procs.stop(name, grace=grace)
    took = time.monotonic() - t0
    return code, took, took >= grace


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


WORKER_FILE = "l01_worker.py"


def worker_path() -> Path:
    """Where the exercise's %%writefile cell puts the worker: next to the notebook (the kernel's cwd)."""
    return Path.cwd() / WORKER_FILE


# --------------------------------------------------------------------- checks
@check(
    "01.1",
    "Config comes from the environment",
    hints=[
        "Read every setting from the mapping you are given (`environ`), never from constants or os.environ.",
        "`environ.get('PORT', '8080')` gives a default; `int(...)` converts it. Required ones: if they are "
        "missing, `raise ValueError('ORDERS_BUCKET is not set')`.",
        "return {'bucket': environ['ORDERS_BUCKET'], 'queue_url': ..., 'port': int(environ.get('PORT', '8080')), "
        "'log_level': environ.get('LOG_LEVEL', 'INFO')} after checking the two required names.",
    ],
)
def check_config(r, ns):
    load_config = r.need(ns, "load_config", callable)
    marker = uuid.uuid4().hex[:8]
    env = {
        "ORDERS_BUCKET": f"b-{marker}",
        "ORDERS_QUEUE_URL": f"http://q/{marker}",
        "PORT": "9123",
        "LOG_LEVEL": "DEBUG",
    }
    cfg = r.call(load_config, dict(env))
    r.require(
        isinstance(cfg, dict),
        "load_config returns a dict",
        f"load_config should return a dict, but returned {type(cfg).__name__}: {cfg!r:.80}",
    )
    r.expect(
        cfg.get("bucket") == env["ORDERS_BUCKET"],
        "bucket comes from ORDERS_BUCKET",
        f"cfg['bucket'] should be the value of ORDERS_BUCKET ({env['ORDERS_BUCKET']!r}), got {cfg.get('bucket')!r}",
    )
    r.expect(
        cfg.get("queue_url") == env["ORDERS_QUEUE_URL"],
        "queue_url comes from ORDERS_QUEUE_URL",
        f"cfg['queue_url'] should be {env['ORDERS_QUEUE_URL']!r}, got {cfg.get('queue_url')!r}",
    )
    r.expect(
        cfg.get("port") == 9123 and isinstance(cfg.get("port"), int),
        "port comes from PORT, as an int",
        f"cfg['port'] should be the int 9123 when PORT='9123', got {cfg.get('port')!r}",
    )
    r.expect(
        cfg.get("log_level") == "DEBUG",
        "log_level comes from LOG_LEVEL",
        f"cfg['log_level'] should be 'DEBUG' when LOG_LEVEL='DEBUG', got {cfg.get('log_level')!r}",
    )
    minimal = {"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q"}
    d = r.call(load_config, dict(minimal))
    if isinstance(d, dict):
        r.expect(
            d.get("port") == 8080,
            "PORT defaults to 8080",
            f"without PORT, port should default to 8080, got {d.get('port')!r}",
        )
        r.expect(
            d.get("log_level") == "INFO",
            "LOG_LEVEL defaults to INFO",
            f"without LOG_LEVEL, log_level should default to 'INFO', got {d.get('log_level')!r}",
        )
    for missing in ("ORDERS_BUCKET", "ORDERS_QUEUE_URL"):
        env2 = {k: v for k, v in minimal.items() if k != missing}
        try:
            load_config(env2)
            r.expect(
                False,
                "",
                f"with {missing} missing, load_config should raise ValueError (fail fast at start-up), but it returned",
            )
        except ValueError as e:
            r.expect(
                missing in str(e),
                f"a missing {missing} raises ValueError naming it",
                f"the ValueError for a missing {missing} should name it, but says {str(e)!r}",
            )
        except Exception as e:
            r.expect(False, "", f"with {missing} missing, raise ValueError, not {type(e).__name__}: {e}")


@check(
    "01.2",
    "Logs are an event stream of JSON lines on stdout",
    hints=[
        "Build a dict: ts, level, event, then the extra fields; `json.dumps` it; `print` it. No files.",
        "`datetime.now(timezone.utc).isoformat()` is a good `ts`; "
        "`{'ts': ..., 'level': level, 'event': event, **fields}`.",
        "print(json.dumps({'ts': datetime.now(timezone.utc).isoformat(), 'level': level, 'event': event, "
        "**fields}), flush=True)",
    ],
)
def check_logs(r, ns):
    log_event = r.need(ns, "log_event", callable)
    rid = uuid.uuid4().hex
    before = {p for p in Path.cwd().glob("*.log")}
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        r.call(log_event, "order_stored", order_id="o-1", request_id=rid)
        r.call(log_event, "payment_failed", level="ERROR", request_id=rid, amount=12.5)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    r.require(
        len(lines) == 2,
        "one line on stdout per event",
        f"two calls should write exactly two lines to stdout, found {len(lines)}"
        + (" (it wrote to stderr instead)" if err.getvalue() else ""),
    )
    recs = []
    for ln in lines:
        try:
            recs.append(json.loads(ln))
        except ValueError:
            r.fail(f"each line must be one JSON object; this is not JSON: {ln[:100]!r}")
    a, b = recs
    r.require(
        isinstance(a, dict) and isinstance(b, dict),
        "each line is a JSON object",
        "each line must be a JSON object ({...})",
    )
    r.expect(
        a.get("event") == "order_stored" and b.get("event") == "payment_failed",
        "the event name is in 'event'",
        f"the 'event' field should hold the event name, got {a.get('event')!r}",
    )
    r.expect(
        a.get("level") == "INFO" and b.get("level") == "ERROR",
        "level defaults to INFO and can be set",
        f"'level' should be 'INFO' by default and 'ERROR' when asked, got {a.get('level')!r} and {b.get('level')!r}",
    )
    r.expect(
        a.get("request_id") == rid and a.get("order_id") == "o-1" and b.get("amount") == 12.5,
        "extra fields are kept as fields (searchable), not formatted into a message",
        "keyword fields (order_id, request_id, amount) must appear as top-level JSON fields with their values",
    )
    try:
        datetime.fromisoformat(str(a.get("ts")).replace("Z", "+00:00"))
        ok = True
    except ValueError:
        ok = False
    r.expect(ok, "'ts' is an ISO 8601 timestamp", f"'ts' should be an ISO 8601 timestamp, got {a.get('ts')!r}")
    after = {p for p in Path.cwd().glob("*.log")}
    r.expect(
        after == before,
        "nothing is written to log files",
        f"new log files appeared: {sorted(map(str, after - before))}",
    )


@check(
    "01.3",
    "Orders live in backing services (S3 + SQS), not on the local disk",
    hints=[
        "save_order: `s3.put_object(Bucket=bucket, Key=f\"orders/{order['id']}.json\", Body=json.dumps(order))`, "
        "return the key.",
        "publish_order: `sqs.send_message(QueueUrl=queue_url, "
        "MessageBody=json.dumps({'type': 'order_created', 'order_id': order['id']}))`.",
    ],
)
def check_backing(r, ns):
    save_order = r.need(ns, "save_order", callable)
    publish_order = r.need(ns, "publish_order", callable)
    bucket, qurl = backing_services()
    s3, sqs = aws.client("s3"), aws.client("sqs")
    order = {"id": "chk" + uuid.uuid4().hex[:9], "item": "check-book", "qty": 2}
    key = r.call(save_order, s3, bucket, dict(order))
    r.expect(
        key == f"orders/{order['id']}.json",
        "save_order returns the key orders/<id>.json",
        f"save_order should return 'orders/{order['id']}.json', returned {key!r}",
    )
    try:
        body = json.loads(s3.get_object(Bucket=bucket, Key=f"orders/{order['id']}.json")["Body"].read())
        r.expect(
            body == order,
            "the order really is in the bucket, as JSON",
            f"the object in S3 should be the order as JSON; it holds {body!r:.120}",
        )
    except s3.exceptions.NoSuchKey:
        r.expect(
            False, "", f"no object orders/{order['id']}.json in bucket {bucket}: save_order did not store it there"
        )
    except ValueError:
        r.expect(False, "", "the object in S3 is not JSON: store json.dumps(order)")
    r.call(publish_order, sqs, qurl, dict(order))
    found = None
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and found is None:
        msgs = sqs.receive_message(QueueUrl=qurl, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0).get(
            "Messages", []
        )
        for m in msgs:
            try:
                payload = json.loads(m["Body"])
            except ValueError:
                continue
            if isinstance(payload, dict) and payload.get("order_id") == order["id"]:
                found = payload
                sqs.delete_message(QueueUrl=qurl, ReceiptHandle=m["ReceiptHandle"])
        if not msgs:
            time.sleep(0.05)
    r.expect(
        found is not None,
        "the queue really received an event for this order",
        f"no message with order_id={order['id']!r} arrived in the queue (send JSON with an 'order_id' field)",
    )
    if found is not None:
        r.expect(
            found.get("type") == "order_created",
            "the event says type=order_created",
            f"the event's 'type' should be 'order_created', got {found.get('type')!r}",
        )
    leftovers = list(Path.cwd().glob(f"*{order['id']}*"))
    r.expect(not leftovers, "nothing was written to the local disk", f"files on local disk: {leftovers}")


@check(
    "01.4",
    "The worker is disposable: it starts fast and exits cleanly on SIGTERM",
    hints=[
        "Read ORDERS_BUCKET and ORDERS_QUEUE_URL from os.environ; poll with `receive_message(WaitTimeSeconds=1)` "
        "in a `while not stopping` loop; for each message put `processed/<order_id>.json` and delete the message.",
        "`signal.signal(signal.SIGTERM, handler)` where handler sets `stopping = True` "
        "(a global or a threading.Event); "
        "the loop ends after the current message.",
        "After the loop: print(json.dumps({'event': 'shutdown'}), flush=True) and `sys.exit(0)`. Print a "
        "{'event': 'ready'} line before the loop, so the platform knows you are up.",
    ],
)
def check_worker(r, ns):
    path = worker_path()
    r.require(
        path.exists(),
        f"the worker file exists ({path.name})",
        f"{path.name} does not exist next to this notebook yet: run the %%writefile cell above",
    )
    bucket, qurl = backing_services()
    s3, sqs = aws.client("s3"), aws.client("sqs")
    ids = ["w" + uuid.uuid4().hex[:10] for _ in range(2)]
    for oid in ids:
        sqs.send_message(QueueUrl=qurl, MessageBody=json.dumps({"type": "order_created", "order_id": oid}))
    env = {"ORDERS_BUCKET": bucket, "ORDERS_QUEUE_URL": qurl}
    t0 = time.monotonic()
    p = procs.start("l01-worker-check", [path], env=env, cwd=str(work_dir()))
    done: set[str] = set()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and len(done) < len(ids) and p.alive():
        for oid in ids:
            if oid not in done:
                try:
                    s3.head_object(Bucket=bucket, Key=f"processed/{oid}.json")
                    done.add(oid)
                except s3.exceptions.ClientError:
                    pass
        time.sleep(0.05)
    if not p.alive():
        code = procs.stop("l01-worker-check")
        r.fail(
            f"the worker exited by itself (code {code}) before it was asked to stop. Its output:\n"
            + "\n".join(p.output().strip().splitlines()[-6:])
        )
    r.expect(
        len(done) == len(ids),
        "it processed the queued orders into processed/<order_id>.json",
        f"after {time.monotonic() - t0:.1f} s, {len(done)}/{len(ids)} test orders had "
        "a processed/<order_id>.json object",
    )
    t1 = time.monotonic()
    code = procs.stop("l01-worker-check", grace=3)
    took = time.monotonic() - t1
    r.expect(
        code == 0,
        "SIGTERM -> exit code 0",
        f"after SIGTERM the exit code was {code} (should be 0; None means it had to be killed)",
    )
    r.expect(
        took < 3, f"it stopped {took:.2f} s after SIGTERM", f"it took {took:.1f} s to stop (limit 3 s): handle SIGTERM"
    )
    recs = json_lines(p.output())
    r.expect(
        any(x.get("event") == "shutdown" for x in recs),
        "it logged a JSON 'shutdown' event",
        'no JSON line with "event": "shutdown" on stdout',
    )
