"""Lesson 01's exercise checks. Each uses fresh names and values of its own (a bucket, a queue, decoy
variables), so neither hard-coded answers nor state left by an earlier run can pass; the wrong answers
they must reject are in tests/test_lesson01.py."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .. import aws, cleanup, procs
from ..checks import check
from . import json_lines, work_dir, worker_path

# Values the config check puts into os.environ while it runs: an answer that reads os.environ instead of
# the mapping it was given finds these, not the check's values.
DECOYS = {
    "ORDERS_BUCKET": "decoy-from-os-environ",
    "ORDERS_QUEUE_URL": "http://decoy/from-os-environ",
    "PORT": "1111",
    "LOG_LEVEL": "WARNING",
}


def _fresh(kind: str) -> str:
    return f"l01-chk-{kind}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def _decoy_environment():
    saved = {k: os.environ.get(k) for k in DECOYS}
    os.environ.update(DECOYS)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _same(a, b) -> bool:
    """``a == b`` for any learner value (an object whose == raises, or returns an array, is not equal)."""
    try:
        return bool(a == b)
    except Exception:
        return False


def _outcome(r, fn, env):
    """Call the learner's function: ("returned", value) or ("raised", exception); never raises itself."""
    try:
        return "returned", fn(env)
    except NotImplementedError:
        r.fail(f"`{getattr(fn, '__name__', fn)}` still raises NotImplementedError: replace the TODO with your code.")
    except SystemExit as e:
        return "raised", e
    except Exception as e:
        return "raised", e


# ------------------------------------------------------------------ 01.1
@check(
    "01.1",
    "Config comes from the environment",
    hints=[
        "Read every setting from the mapping you are given (`environ`), never from constants or os.environ.",
        "`environ.get('PORT', '8080')` gives a default; `int(...)` converts it. A required name that is missing "
        "or empty: `raise ValueError('ORDERS_BUCKET is not set')` (a function raises; the program decides to exit).",
        "for name in ('ORDERS_BUCKET', 'ORDERS_QUEUE_URL'): if not environ.get(name): raise ValueError(...); then "
        "return {'bucket': environ['ORDERS_BUCKET'], ..., 'port': int(environ.get('PORT', '8080')), ...}.",
    ],
)
def check_config(r, ns):
    load_config = r.need(ns, "load_config", callable)
    marker = uuid.uuid4().hex[:8]
    env = {
        "ORDERS_BUCKET": f"b-{marker}",
        "ORDERS_QUEUE_URL": f"http://q/{marker}",
        "PORT": str(9000 + int(marker[:3], 16) % 900),
        "LOG_LEVEL": "DEBUG",
    }
    port = int(env["PORT"])
    given = dict(env)
    with _decoy_environment():
        cfg = r.call(load_config, given)
        r.require(
            isinstance(cfg, dict),
            "load_config returns a dict",
            f"load_config should return a dict, but returned {type(cfg).__name__}: {cfg!r:.80}",
        )
        from_os = sorted(repr(k) for k, v in cfg.items() if any(_same(v, d) for d in (*DECOYS.values(), 1111)))
        r.expect(
            not from_os,
            "nothing is read from os.environ",
            f"{', '.join(from_os)} came from os.environ: read only the mapping passed in as `environ` "
            "(that is what makes the function testable, and the caller decides where settings come from)",
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
            cfg.get("port") == port and type(cfg.get("port")) is int,
            "port comes from PORT, as an int",
            f"cfg['port'] should be the int {port} when PORT={env['PORT']!r}, got {cfg.get('port')!r}"
            + (" (a string: convert it with int(...))" if isinstance(cfg.get("port"), str) else ""),
        )
        r.expect(
            cfg.get("log_level") == "DEBUG",
            "log_level comes from LOG_LEVEL",
            f"cfg['log_level'] should be 'DEBUG' when LOG_LEVEL='DEBUG', got {cfg.get('log_level')!r}",
        )
        minimal = {"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q"}
        given_min = dict(minimal)
        how, d = _outcome(r, load_config, given_min)
        r.expect(
            given == env and given_min == minimal,
            "the mapping it reads is left unchanged",
            "load_config changed the mapping it was given (setdefault/pop/assignment): read it, do not write it "
            "(with os.environ, that would change the process's own environment)",
        )
        if how == "raised":
            r.expect(False, "", f"with only the two required variables set, load_config raised {d!r:.100}")
        elif not isinstance(d, dict):
            r.expect(False, "", f"with only the two required variables set, load_config returned {d!r:.80}")
        else:
            r.expect(
                d.get("port") == 8080 and type(d.get("port")) is int,
                "PORT defaults to 8080",
                f"without PORT, port should default to the int 8080, got {d.get('port')!r}",
            )
            r.expect(
                d.get("log_level") == "INFO",
                "LOG_LEVEL defaults to INFO",
                f"without LOG_LEVEL, log_level should default to 'INFO', got {d.get('log_level')!r}",
            )
        for missing in ("ORDERS_BUCKET", "ORDERS_QUEUE_URL"):
            for label, env2 in (
                ("missing", {k: v for k, v in minimal.items() if k != missing}),
                ("empty", {**minimal, missing: ""}),
            ):
                how, got = _outcome(r, load_config, env2)
                if how == "returned":
                    r.expect(
                        False,
                        "",
                        f"with {missing} {label}, load_config should raise ValueError (fail fast at start-up), "
                        f"but it returned {got!r:.80}",
                    )
                elif isinstance(got, SystemExit):
                    r.expect(
                        False,
                        "",
                        f"with {missing} {label}, load_config called sys.exit: raise ValueError instead "
                        "(the service's main() turns it into an exit code; a test can catch an exception)",
                    )
                elif not isinstance(got, ValueError):
                    r.expect(
                        False,
                        "",
                        f"with {missing} {label}, raise ValueError, not {type(got).__name__}: {got}",
                    )
                else:
                    article = "an" if label == "empty" else "a"
                    r.expect(
                        missing in str(got),
                        f"{article} {label} {missing} raises ValueError naming it",
                        f"the ValueError for {article} {label} {missing} should name it, but says {str(got)!r}",
                    )


# ------------------------------------------------------------------ 01.2
@contextlib.contextmanager
def _captured_output():
    """Everything written to stdout or stderr while inside, however it is written.

    ``print`` goes to ``sys.stdout``, which is swapped for a buffer; a logging handler made earlier holds
    the old stream object, so that object's ``write`` is redirected too (and restored afterwards).
    """
    out, err = io.StringIO(), io.StringIO()
    patched = []
    for stream, buf in ((sys.stdout, out), (sys.stderr, err), (sys.__stdout__, out), (sys.__stderr__, err)):
        if stream is None or any(stream is s for s, _, _ in patched):
            continue
        try:
            had = "write" in vars(stream)
            old = vars(stream).get("write")
            stream.write = buf.write
            patched.append((stream, had, old))
        except (AttributeError, TypeError):  # a stream that takes no attributes: redirecting sys.* still works
            continue
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = saved
        for stream, had, old in patched:
            if had:
                stream.write = old
            else:
                with contextlib.suppress(AttributeError):
                    del stream.write


def _files(folder: Path) -> dict[str, float]:
    try:
        return {p.name: p.stat().st_mtime for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()}
    except OSError:
        return {}


@check(
    "01.2",
    "Logs are an event stream of JSON lines on stdout",
    hints=[
        "Build a dict: ts, level, event, then the extra fields; `json.dumps` it (no indent: one line); `print` it. "
        "No files, no stderr (the logging module writes to stderr unless told otherwise).",
        "`datetime.now(timezone.utc).isoformat()` is a good `ts` (it ends in +00:00); "
        "`{'ts': ..., 'level': level, 'event': event, **fields}`.",
        "print(json.dumps({'ts': datetime.now(timezone.utc).isoformat(), 'level': level, 'event': event, "
        "**fields}), flush=True)",
    ],
)
def check_logs(r, ns):
    log_event = r.need(ns, "log_event", callable)
    rid = uuid.uuid4().hex
    folder = Path.cwd()
    before = _files(folder)
    with _captured_output() as (out, err):
        r.call(log_event, "order_stored", order_id="o-1", request_id=rid)
        r.call(log_event, "payment_failed", level="ERROR", request_id=rid, amount=12.5)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    why = ""
    if err.getvalue().strip():
        why = " (it wrote to stderr instead: the platform collects stdout; logging's default handler uses stderr)"
    elif len(lines) > 2 and lines[0].strip() == "{":
        why = " (pretty-printed JSON spreads one event over many lines: json.dumps without indent)"
    r.require(
        len(lines) == 2,
        "one line on stdout per event",
        f"two calls should write exactly two lines to stdout, found {len(lines)}{why}",
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
        f"each line must be a JSON object ({{...}}), got {lines[0][:60]!r}",
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
    ts = a.get("ts")
    try:
        when = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        r.expect(False, "", f"'ts' should be an ISO 8601 timestamp like 2026-05-04T12:00:00+00:00, got {ts!r}")
    else:
        offset = when.utcoffset()
        r.expect(
            offset is not None and offset.total_seconds() == 0,
            "'ts' is in UTC and says so",
            f"'ts' should be UTC and say so (end in +00:00 or Z), got {ts!r}: "
            + (
                "a timestamp without a zone is read differently on every machine"
                if offset is None
                else "log pipelines compare events from many machines in UTC"
            ),
        )
        if offset is not None:
            age = abs((datetime.now(UTC) - when).total_seconds())
            r.expect(
                age < 300,
                "'ts' is the time of the event",
                f"'ts' should be the time the event happened (now), but is {age / 60:.0f} minutes away from now",
            )
    r.expect(
        not err.getvalue().strip(),
        "nothing goes to stderr (one copy of each event, on stdout)",
        f"it also wrote to stderr ({err.getvalue().strip()[:80]!r}): the platform collects both streams, so each "
        "event would arrive twice (a logging handler on stderr next to the print?)",
    )
    after = _files(folder)
    new = sorted(set(after) - set(before))
    touched = sorted(n for n in set(after) & set(before) if n.endswith(".log") and after[n] != before[n])
    r.expect(
        not new and not touched,
        "nothing is written to files",
        f"files were written next to the notebook: {', '.join(new + touched)}; logs go to stdout only",
    )


# ------------------------------------------------------------------ 01.3
def _drain(sqs, url: str, seconds: float = 2.0) -> list[str]:
    """Every message body in a queue (deleting them), waiting up to ``seconds`` for the first."""
    bodies: list[str] = []
    deadline = time.monotonic() + seconds
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not msgs and (bodies or time.monotonic() >= deadline):
            return bodies
        if not msgs:
            time.sleep(0.1)


_NOT_STATE = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def _holds(value, needle: str, depth: int = 0) -> bool:
    """Does a container (dict, list, set, tuple; nested a little) hold ``needle`` as a key, a value or a field?"""
    if depth > 3:
        return False
    if isinstance(value, str):
        return needle in value and depth > 0
    if isinstance(value, dict):
        items = list(value.items())[:10_000]
        return any(_holds(k, needle, depth + 1) or _holds(v, needle, depth + 1) for k, v in items)
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds(v, needle, depth + 1) for v in list(value)[:10_000])
    return False


def _kept_in_memory(ns: dict, functions, needle: str) -> list[str]:
    """The names of module-level containers (the notebook's, the functions' globals and defaults) that hold
    ``needle`` after the learner's code ran: an order kept in a dict at module level is state too."""
    found = []
    for space in [ns, *(getattr(f, "__globals__", {}) for f in functions)]:
        for name, value in list(space.items()):
            if name.startswith("_") or name in _NOT_STATE or name in found:
                continue
            if isinstance(value, (dict, list, set, tuple)) and _holds(value, needle):
                found.append(name)
    for f in functions:
        for default in getattr(f, "__defaults__", None) or ():
            if _holds(default, needle):
                found.append(f"a default argument of {getattr(f, '__name__', 'a function')}")
    return found


def _delete_bucket_and_queues(s3, sqs, bucket: str | None, queue_urls) -> None:
    if bucket:
        with contextlib.suppress(Exception):
            cleanup.empty_and_delete_bucket(s3, bucket)
    for url in queue_urls:
        with contextlib.suppress(Exception):
            sqs.delete_queue(QueueUrl=url)


@check(
    "01.3",
    "Orders live in backing services (S3 + SQS), not on the local disk",
    hints=[
        "Use the arguments you are given (the check passes a fresh bucket and queue): s3.put_object(Bucket=bucket, "
        "Key=..., Body=...) and sqs.send_message(QueueUrl=queue_url, MessageBody=...).",
        "save_order: Key=f\"orders/{order['id']}.json\", Body=json.dumps(order); return that key. "
        "publish_order: MessageBody=json.dumps({'type': 'order_created', 'order_id': order['id']}).",
    ],
)
def check_backing(r, ns):
    save_order = r.need(ns, "save_order", callable)
    publish_order = r.need(ns, "publish_order", callable)
    s3, sqs = aws.client("s3"), aws.client("sqs")
    bucket = _fresh("orders")
    s3.create_bucket(Bucket=bucket)
    qurl = None
    try:
        qurl = sqs.create_queue(QueueName=bucket, Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
        order = {"id": "chk" + uuid.uuid4().hex[:9], "item": "check-book", "qty": 2}
        key = r.call(save_order, s3, bucket, dict(order))
        want = f"orders/{order['id']}.json"
        r.expect(
            key == want, f"save_order returns the key {want}", f"save_order should return {want!r}, returned {key!r}"
        )
        stored = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        if want in stored:
            raw = s3.get_object(Bucket=bucket, Key=want)["Body"].read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            r.expect(
                body == order,
                "the order really is in the bucket, as JSON",
                f"the object {want} should hold the order as JSON (json.dumps(order)); it holds {raw[:100]!r}",
            )
        elif stored:
            r.expect(False, "", f"the order was stored under {stored[0]!r}, not {want!r}")
        else:
            r.expect(
                False,
                "",
                f"no object arrived in the bucket {bucket} that the check passed in: save_order must store "
                "the order there (the `bucket` argument, not a name of your own)",
            )
        early = _drain(sqs, qurl, seconds=0.3)
        r.expect(
            not early,
            "save_order only stores (the event is publish_order's job)",
            f"save_order also sent {len(early)} message(s): keep storing and publishing apart",
        )
        r.call(publish_order, sqs, qurl, dict(order))
        bodies = _drain(sqs, qurl)
        payloads = []
        for body in bodies:
            try:
                payloads.append(json.loads(body))
            except ValueError:
                payloads.append(body)
        mine = [p for p in payloads if isinstance(p, dict) and p.get("order_id") == order["id"]]
        if not bodies:
            r.expect(
                False,
                "",
                "no message arrived in the queue that the check passed in (use the `queue_url` argument)",
            )
        elif not mine:
            r.expect(
                False,
                "",
                f"a message arrived, but it is not JSON with order_id={order['id']!r}: {str(bodies[0])[:100]!r}",
            )
        else:
            r.expect(
                len(bodies) == 1,
                "exactly one event for one order",
                f"{len(bodies)} messages arrived for one order: a consumer would process it {len(bodies)} times",
            )
            r.expect(
                mine[0].get("type") == "order_created",
                "the event says type=order_created",
                f"the event's 'type' should be 'order_created', got {mine[0].get('type')!r}",
            )
            extra = sorted(set(mine[0]) - {"type", "order_id"})
            r.expect(
                not extra,
                "the event carries the id only (the order itself lives in the bucket)",
                f"the event also carries {', '.join(extra)}: announce the id only; a second copy of the order in "
                "the queue goes stale, and every reader of the queue sees the customer's data",
            )
        leftovers = [p.name for d in (Path.cwd(), work_dir()) for p in d.glob(f"*{order['id']}*")]
        r.expect(not leftovers, "nothing was written to the local disk", f"files on the local disk: {leftovers}")
        kept = _kept_in_memory(ns, (save_order, publish_order), order["id"])
        r.expect(
            not kept,
            "no copy of the order stays in the process's memory",
            f"{', '.join(kept)} now holds the check's order: process memory is state too (another copy of the "
            "service, or this one after a restart, does not have it). Keep orders in the bucket only",
        )
    finally:
        _delete_bucket_and_queues(s3, sqs, bucket, [qurl] if qurl else [])


# ------------------------------------------------------------------ 01.4
_ENDPOINT_IN_CODE = re.compile(r"endpoint_url\s*=\s*['\"]|https?://(127\.0\.0\.1|localhost|localstack)[:/]")
_KEY_IN_CODE = re.compile(r"aws_(access_key_id|secret_access_key)\s*=\s*['\"]")
WORKER_WAIT = (
    10.0  # seconds the worker has to handle the test messages (generous: a loaded machine starts Python slowly)
)
STOP_GRACE = 3.0
VISIBILITY = 5  # the check's queue: a message received and not deleted is delivered again after 5 s


def _queue_counts(sqs, url: str) -> int:
    a = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(a.get("ApproximateNumberOfMessages", 0)) + int(a.get("ApproximateNumberOfMessagesNotVisible", 0))


def _visible(sqs, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(a.get("ApproximateNumberOfMessages", 0))


@check(
    "01.4",
    "The worker is disposable: it processes each order once, survives bad messages, exits cleanly on SIGTERM",
    hints=[
        "Read ORDERS_BUCKET and ORDERS_QUEUE_URL from os.environ; poll with receive_message(WaitTimeSeconds=1) in a "
        "`while not stopping` loop; write processed/<order_id>.json, THEN delete the message.",
        "Wrap json.loads in try/except ValueError: print a JSON line with level ERROR and `continue` without "
        "deleting (the queue's redrive policy moves it aside). Other event types: delete, write nothing.",
        "signal.signal(signal.SIGTERM, handler) where handler only sets `stopping = True`; after the loop print "
        "json.dumps({'event': 'shutdown'}) and sys.exit(0). Create clients with plain boto3.client('s3'): no endpoint.",
    ],
)
def check_worker(r, ns):
    path = worker_path()
    r.require(
        path.exists(),
        f"the worker file exists ({path.name})",
        f"{path.name} does not exist next to this notebook yet: run the %%writefile cell above",
    )
    source = path.read_text(errors="replace")
    r.require(
        not _ENDPOINT_IN_CODE.search(source) and not _KEY_IN_CODE.search(source),
        "the worker names no endpoint and no keys (boto3 reads them from the environment)",
        "the worker's code names an endpoint or a key: delete it and let boto3 read AWS_ENDPOINT_URL and the "
        "credentials from the environment, so the same file runs unchanged on AWS (factor X)",
    )
    s3, sqs = aws.client("s3"), aws.client("sqs")
    bucket = _fresh("work")  # created only after the worker has tried (and failed) to write into it
    urls: list[str] = []
    try:
        dlq = sqs.create_queue(QueueName=f"{bucket}-dlq")["QueueUrl"]
        urls.append(dlq)
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        qurl = sqs.create_queue(
            QueueName=bucket,
            Attributes={
                "VisibilityTimeout": str(VISIBILITY),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
            },
        )["QueueUrl"]
        urls.insert(0, qurl)
        _run_worker(r, path, s3, sqs, bucket, qurl, dlq)
    finally:
        procs.stop("l01-worker-check", grace=1)
        _delete_bucket_and_queues(s3, sqs, bucket, urls)


def _settle(sqs, url: str, p, quiet: float = 1.0, limit: float = 5.0) -> int:
    """Wait until the queue's message count has not changed for ``quiet`` seconds (at most ``limit``)."""
    t_end = time.monotonic() + limit
    last, since = _queue_counts(sqs, url), time.monotonic()
    while time.monotonic() < t_end and p.alive():
        time.sleep(0.1)
        now = _queue_counts(sqs, url)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def _exited(r, p, why: str) -> None:
    code = procs.stop("l01-worker-check")
    tail = "\n".join(p.output().strip().splitlines()[-6:])
    hints = [
        (" — did a message that is not JSON crash it?", "JSONDecodeError" in tail),
        (" — did a write that failed crash it? Catch the error, log it, leave the message", "NoSuchBucket" in tail),
    ]
    r.fail(
        f"the worker exited by itself (code {code}) {why}"
        + "".join(h for h, hit in hints if hit)
        + ". A worker runs until the platform stops it, even while the queue is empty. Its last output:\n"
        + tail
    )


def _run_worker(r, path, s3, sqs, bucket, qurl, dlq):
    good = ["w" + uuid.uuid4().hex[:10] for _ in range(2)]
    other = "c" + uuid.uuid4().hex[:10]
    bodies = [
        json.dumps({"type": "order_created", "order_id": good[0]}),
        json.dumps({"type": "order_cancelled", "order_id": other}),
        "{not json: a producer's bug",
        json.dumps({"type": "order_created", "order_id": good[1]}),
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=qurl, MessageBody=body)
    disk = {d: _files(d) for d in (Path.cwd(), work_dir())}
    t0 = time.monotonic()
    p = procs.start(
        "l01-worker-check", [path], env={"ORDERS_BUCKET": bucket, "ORDERS_QUEUE_URL": qurl}, cwd=str(work_dir())
    )
    # Phase 1: the bucket does not exist yet, so every write fails. Nothing may be deleted that was not done.
    while time.monotonic() - t0 < WORKER_WAIT and p.alive() and _visible(sqs, qurl) > 0:
        time.sleep(0.1)
    held = _settle(sqs, qurl, p)
    if not p.alive():
        _exited(r, p, "while its first writes failed (the check creates the bucket a moment later)")
    r.expect(
        held >= len(good) + 1,
        "while writing failed, it deleted no order message (each waits on the queue for another try)",
        f"while the bucket could not be written, it deleted {len(good) + 1 - held} order message(s) anyway: those "
        "orders are lost. Delete a message only after its work is done; if the work fails, log it and leave it",
    )
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    t1 = time.monotonic()

    def processed() -> set[str]:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="processed/").get("Contents", [])]
        return {k[len("processed/") : -len(".json")] for k in keys if k.endswith(".json")}

    # Phase 2: the bucket is there; the orders come back after the visibility timeout and must now be done.
    done: set[str] = set()
    while time.monotonic() - t1 < VISIBILITY + WORKER_WAIT and p.alive():
        done = processed()
        if set(good) <= done and _queue_counts(sqs, qurl) <= 1:
            break
        if not set(good) <= done and _queue_counts(sqs, qurl) <= 1 and time.monotonic() - t1 > VISIBILITY + 2:
            break  # nothing of the orders left to come back: they were lost
        time.sleep(0.1)
    time.sleep(0.6)  # let it finish what it holds (the messages it received last)
    if not p.alive():
        _exited(r, p, "before it was asked to stop")
    done = processed()
    r.expect(
        set(good) <= done,
        "it wrote processed/<order_id>.json for each order_created event (once the bucket was there)",
        f"after {time.monotonic() - t0:.1f} s, {len(set(good) & done)}/2 test orders had a processed/<order_id>.json "
        f"object in the bucket named by ORDERS_BUCKET",
    )
    r.expect(
        other not in done and done <= set(good),
        "nothing was written for events that are not order_created",
        f"it wrote processed/ objects for messages that are not order_created events: {sorted(done - set(good))}",
    )
    versions = s3.list_object_versions(Bucket=bucket, Prefix="processed/").get("Versions", [])
    twice = sorted({v["Key"] for v in versions if sum(w["Key"] == v["Key"] for w in versions) > 1})
    r.expect(
        not twice,
        "each order was processed exactly once",
        f"these objects were written more than once: {twice} (each message should be handled once, then deleted)",
    )
    # What is still on the queues: the messages it received and did not delete are "in flight".
    left = sum(_queue_counts(sqs, u) for u in (qurl, dlq))
    r.expect(
        left >= 1,
        "the malformed message was left for the dead-letter queue, not deleted",
        "the malformed message was deleted: it is lost now. Log it and leave it on the queue; the queue's redrive "
        "policy moves it to a dead-letter queue where a person can look at it",
    )
    r.expect(
        left <= 1,
        "every message it handled was deleted",
        f"{left - 1} handled message(s) were never deleted, so SQS would deliver them again: delete an "
        "order_created message after writing its object, other event types right away",
    )
    written = sorted(n for d, names in disk.items() for n in set(_files(d)) - set(names))
    r.expect(
        not written,
        "it wrote nothing on the instance's disk",
        f"it wrote {', '.join(written[:4])} on the instance's disk: a disposable worker keeps nothing there "
        "(the next copy of it runs on another machine)",
    )
    for u in (qurl, dlq):  # an empty queue: a worker that waits 20 s per poll now shows it
        sqs.purge_queue(QueueUrl=u)
    t2 = time.monotonic()
    code = procs.stop("l01-worker-check", grace=STOP_GRACE)
    took = time.monotonic() - t2
    r.expect(
        code == 0,
        "SIGTERM -> exit code 0",
        f"after SIGTERM the exit code was {code} (should be 0; None means it had to be killed)",
    )
    r.expect(
        took < STOP_GRACE,
        f"it stopped {took:.2f} s after SIGTERM",
        f"it took {took:.1f} s to stop (limit {STOP_GRACE:g} s): handle SIGTERM, and poll with a short wait "
        "(WaitTimeSeconds=1): the loop only sees the flag between polls",
    )
    recs = json_lines(p.output())
    r.expect(
        any(str(x.get("level", "")).upper() == "ERROR" for x in recs),
        "it logged the malformed message as a JSON line with level ERROR",
        'no JSON line with "level": "ERROR" for the message that is not JSON: say what went wrong, on stdout',
    )
    r.expect(
        any(x.get("event") == "shutdown" for x in recs),
        "it logged a JSON 'shutdown' event",
        'no JSON line with "event": "shutdown" on stdout',
    )
