"""Lesson 09's idempotency check (09.3): each order is processed once, also when a worker PROCESS is killed between
its claim and its work, when a producer sends an order twice, and when copies arrive at the same moment.

The crash is real: the learner's ``process_once`` runs in a forked child process whose handler kills that
process with SIGKILL (no ``except``, no ``finally`` runs), then the check delivers the message again, during
the lease and after it (on a scripted clock), and counts the invoices in S3.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
import warnings

from .. import aws
from ..checks import ScriptedClock, check
from . import drills

LEASE_S = 45.0  # the check's lease: not the task's default (30), so a worker must use the lease it is given
BUCKET = "l09-ex-effects"
RESULTS = ("processed", "duplicate", "in-progress")


class _SlowReads:
    """The real DynamoDB client, with 150 ms more latency on reads: it widens a check-then-write race."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name in ("get_item", "query", "scan", "batch_get_item"):

            def slow(**kw):
                out = attr(**kw)
                time.sleep(0.15)
                return out

            return slow
        return attr


class _WorkerKilled(BaseException):
    """Where a process cannot be forked: the nearest thing to SIGKILL (only a bare except or finally sees it)."""


def _crash(process_once, table: str, message: dict, clock) -> tuple[str, str]:
    """Run ``process_once`` in a worker process that dies (SIGKILL) as soon as the handler starts: after the
    claim, before the work. Returns ("killed", "") or ("finished", what it returned or raised)."""
    if not hasattr(os, "fork"):  # pragma: no cover - the course runs on Linux and macOS
        try:
            out = process_once(aws.client("dynamodb"), table, message, _raise_killed, lease_s=LEASE_S, clock=clock)
        except _WorkerKilled:
            return "killed", ""
        except Exception as e:
            return "finished", f"it raised {type(e).__name__}: {e}"
        return "finished", f"it returned {out!r}"
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about fork() with threads; the child only runs this
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the worker process: never returns
        try:
            os.close(read)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # the kernel's streams belong to the parent
            ddb = aws.client("dynamodb")

            def die():
                os.kill(os.getpid(), signal.SIGKILL)

            try:
                said = f"it returned {process_once(ddb, table, message, die, lease_s=LEASE_S, clock=clock)!r}"
            except BaseException as e:  # noqa: BLE001 - whatever happened, report it to the parent
                said = f"it raised {type(e).__name__}: {e}"
            os.write(write, said.encode()[:400])
        finally:
            os._exit(0)
    os.close(write)
    deadline, status = time.monotonic() + 20, None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        return "finished", "it was still running after 20 s"
    said = os.read(read, 400).decode(errors="replace")
    os.close(read)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed", ""
    return "finished", said or f"the worker exited with status {status}"


def _raise_killed():  # pragma: no cover - see _crash
    raise _WorkerKilled()


@check(
    "09.3",
    "Each order is processed once, even when a worker dies between its claim and its work",
    hints=[
        "Key on the ORDER: json.loads(message['Body'])['order_id'] (a producer's retry is a new message with a new "
        "MessageId). Claim it with ONE put_item whose ConditionExpression lets it through only when there is no "
        "item, or the item is INPROGRESS and its lease is over: 'attribute_not_exists(pk) OR (#s = :inprogress "
        "AND expires < :now)' (status is a reserved word: ExpressionAttributeNames={'#s': 'status'}).",
        "Put {'pk': {'S': key}, 'status': {'S': 'INPROGRESS'}, 'expires': {'N': str(now + lease_s)}} with now = "
        "clock(). On ConditionalCheckFailedException read the item (get_item): status COMPLETED -> return "
        "'duplicate'; otherwise return 'in-progress'. In both cases do not call handler.",
        "Claimed: try: handler() / except Exception: delete_item(...) and raise. Then update_item with "
        "UpdateExpression='SET #s = :done' (:done = 'COMPLETED') and return 'processed'. Releasing the claim in an "
        "except block is not enough: a KILLED worker runs no except block; the lease is what lets the next "
        "delivery take over.",
    ],
)
def check_idempotent(r, ns):
    process_once = r.need(ns, "process_once", callable)
    s3, sqs, ddb = drills.clients()
    run_id = uuid.uuid4().hex[:6]
    table = drills.create_key_table(ddb, f"l09-ex-idem-{run_id}")
    queue = sqs.create_queue(QueueName=f"l09-ex-idem-{run_id}")["QueueUrl"]
    try:
        s3.create_bucket(Bucket=BUCKET)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    clock = ScriptedClock()
    orders: list[str] = []

    def new_order() -> str:
        orders.append(f"ord-{uuid.uuid4().hex[:8]}")
        return orders[-1]

    def send(order: str) -> str:
        body = json.dumps({"order_id": order, "total": 17})
        return sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"]

    def deliver(message_id: str) -> dict:
        """The message as SQS delivers it (again and again: visibility 0)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
                "Messages", []
            ):
                if m["MessageId"] == message_id:
                    return m
        raise RuntimeError(f"the check's own message {message_id} did not come back from SQS within 5 s")

    def invoice(order: str):
        def handler():
            s3.put_object(Bucket=BUCKET, Key=f"{run_id}/{order}/{uuid.uuid4().hex}", Body=b"invoice sent")

        return handler

    def invoices(order: str) -> int:
        return s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{run_id}/{order}/").get("KeyCount", 0)

    def record(order: str) -> dict:
        return ddb.get_item(TableName=table, Key={"pk": {"S": order}}, ConsistentRead=True).get("Item") or {}

    def run(message: dict, handler, client=ddb):
        return r.call(process_once, client, table, message, handler, lease_s=LEASE_S, clock=clock)

    try:
        _basics(r, run, new_order, send, deliver, invoice, invoices, record)
        took_over = _crash_and_redeliver(
            r, process_once, run, new_order, send, deliver, invoice, invoices, record, table, clock
        )
        _copies_at_once(r, process_once, new_order, send, deliver, invoice, invoices, ddb, table, clock, took_over)
        _handler_fails(r, process_once, run, new_order, send, deliver, invoice, invoices, ddb, table, clock)
        extra = sorted(set(_keys(ddb, table)) - set(orders))
        r.expect(
            not extra,
            "the table holds one record per order, keyed by the order id, and nothing else",
            f"the table holds records that are not order ids ({', '.join(extra[:3])}): one record per order, "
            "keyed by json.loads(message['Body'])['order_id']",
        )
    finally:
        ddb.delete_table(TableName=table)
        sqs.delete_queue(QueueUrl=queue)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{run_id}/"):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=BUCKET, Key=o["Key"])


def _keys(ddb, table: str) -> list[str]:
    out = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        out += [it["pk"]["S"] for it in page.get("Items", []) if "S" in it.get("pk", {})]
    return out


def _basics(r, run, new_order, send, deliver, invoice, invoices, record):
    order = new_order()
    first_id = send(order)
    first = run(deliver(first_id), invoice(order))
    r.require(
        first == "processed" and invoices(order) == 1,
        "an order delivered once is processed: 'processed', 1 invoice in S3",
        f"the first delivery of an order returned {first!r} and sent {invoices(order)} invoice(s); expected "
        "'processed' and exactly 1 (the handler is the work: call it once)",
    )
    rec = record(order)
    status = rec.get("status", {}).get("S")
    r.expect(
        status == "COMPLETED",
        "its record says COMPLETED",
        f"after the work, the order's record has status {status!r}; set it to 'COMPLETED' once handler() returned"
        if rec
        else f"the table has no record keyed by the order id {order!r} (attribute pk): the key is "
        "json.loads(message['Body'])['order_id']",
    )
    again = run(deliver(first_id), invoice(order))
    r.expect(
        again == "duplicate" and invoices(order) == 1,
        "the same message delivered again: 'duplicate', no second invoice",
        f"the same message delivered again returned {again!r} and the order now has {invoices(order)} invoices: "
        "a COMPLETED order is a duplicate (return 'duplicate' without calling handler)",
    )
    retry_id = send(order)
    retried = run(deliver(retry_id), invoice(order))
    r.expect(
        retried == "duplicate" and invoices(order) == 1,
        "the producer's retry (a new message, a new MessageId, the same order) is a 'duplicate' too: the key is "
        "the order id",
        f"the producer sent order {order} again (a new message, MessageId {retry_id[:8]}...): process_once returned "
        f"{retried!r} and the order has {invoices(order)} invoices; the idempotency key must be the order id in "
        "the body, not the MessageId",
    )


def _crash_and_redeliver(r, process_once, run, new_order, send, deliver, invoice, invoices, record, table, clock):
    """A worker killed between claim and work; delivered again during the lease and after. True if taken over."""
    order = new_order()
    msg_id = send(order)
    how, said = _crash(process_once, table, deliver(msg_id), clock)
    r.require(
        how == "killed",
        "a worker process was killed (SIGKILL) right after its claim, before its work",
        f"in the worker process the check kills as soon as the work starts, the work never started ({said}): "
        "a new order must be claimed and its handler called",
    )
    item = record(order)
    r.require(
        bool(item),
        "the claim was in the table before the work started",
        "after the worker died in the middle of the work, the table has no record of the order: claim it BEFORE "
        "calling handler()",
    )
    status = item.get("status", {}).get("S")
    expires = item.get("expires", {}).get("N")
    want = clock() + LEASE_S
    r.expect(
        status == "INPROGRESS",
        "the dead worker's record says INPROGRESS",
        f"the record of an order whose work had just started has status {status!r}, not 'INPROGRESS'",
    )
    if expires is None:
        r.expect(False, "", "the claim has no 'expires': if its worker dies, nobody may ever take it over (lost)")
    else:
        off = float(expires) - want
        r.expect(
            abs(off) <= 2,
            f"its lease ends at clock() + lease_s ({LEASE_S:g} s from the clock you were given, epoch seconds)",
            f"the claim's 'expires' is {float(expires) - clock():.0f} s after clock(); it should be clock() + lease_s "
            f"({LEASE_S:g} s): epoch seconds, from the clock and the lease_s you were given",
        )
    clock.now += 10
    live = run(deliver(msg_id), invoice(order))
    r.expect(
        live == "in-progress" and invoices(order) == 0,
        "delivered again 10 s later, while the lease is live: 'in-progress', the work is not started twice",
        {
            "duplicate": "delivered again while the dead worker's claim was live, process_once returned "
            "'duplicate' although no invoice was ever sent: the caller deletes the message and the order is LOST "
            "(that is at most once); a claim that is not COMPLETED is 'in-progress'",
            "processed": "delivered again while another worker's lease was live (10 s of "
            f"{LEASE_S:g}), process_once took it over and ran the work: two workers would run the same order at once",
        }.get(live, f"delivered again while the lease was live, process_once returned {live!r}, not 'in-progress'"),
    )
    if live == "processed":
        return False  # taken over while live: the later steps would only say it again
    clock.now += LEASE_S
    late = run(deliver(msg_id), invoice(order))
    r.expect(
        late == "processed" and invoices(order) == 1,
        "delivered again after the lease ended: taken over and processed, exactly 1 invoice (nothing lost)",
        f"delivered again after the dead worker's lease ended ({LEASE_S:g} s by the clock you were given), "
        f"process_once returned {late!r} and the order has {invoices(order)} invoice(s): "
        + ("the order was LOST; " if invoices(order) == 0 else "")
        + "a claim whose lease is over (expires < clock()) must be taken over, in the same conditional write",
    )
    if late != "processed":
        return False
    after = run(deliver(msg_id), invoice(order))
    r.expect(
        after == "duplicate" and invoices(order) == 1,
        "and once it is done, later copies are duplicates",
        f"after the takeover finished, another copy returned {after!r} ({invoices(order)} invoices)",
    )
    return True


def _copies_at_once(r, process_once, new_order, send, deliver, invoice, invoices, ddb, table, clock, took_over):
    def together(order: str, messages: list[dict]) -> tuple[list, list]:
        slow, results, errors = _SlowReads(ddb), [], []
        barrier = threading.Barrier(len(messages))

        def worker(m):
            barrier.wait()
            try:
                results.append(process_once(slow, table, m, invoice(order), lease_s=LEASE_S, clock=clock))
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")

        threads = [threading.Thread(target=worker, args=(m,), daemon=True) for m in messages]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        return results, errors

    order = new_order()
    ids = [send(order) for _ in range(3)]
    first = deliver(ids[0])
    results, errors = together(order, [first, first, first] + [deliver(i) for i in ids[1:]] + [first])
    n = invoices(order)
    r.expect(
        n == 1 and results.count("processed") == 1 and set(results) <= set(RESULTS) and not errors,
        "six copies of an order at the same moment: processed once (one atomic claim wins)",
        f"six copies of an order delivered at the same moment sent {n} invoice(s) and returned {sorted(results)}"
        + (f" (errors: {errors[:2]})" if errors else "")
        + ": exactly one copy may win the claim; one conditional write that fails while another copy's claim is "
        "live (reading first and writing afterwards is a race)",
    )
    if not took_over:
        return  # a takeover that fails alone is reported above; racing ones would only say it again
    order = new_order()
    msg = deliver(send(order))
    how, _ = _crash(process_once, table, msg, clock)
    if how != "killed":
        return
    clock.now += LEASE_S + 1
    results, errors = together(order, [msg] * 4)
    n = invoices(order)
    r.expect(
        n == 1 and results.count("processed") == 1 and not errors,
        "four copies at once after a dead worker's lease ended: exactly one takes over",
        f"four copies delivered at once after a dead worker's lease ended sent {n} invoice(s) ({sorted(results)}"
        + (f", errors: {errors[:2]}" if errors else "")
        + "): taking over is a race too; do it in the claim's own conditional write, not with a read and a put",
    )


def _handler_fails(r, process_once, run, new_order, send, deliver, invoice, invoices, ddb, table, clock):
    order = new_order()
    msg = deliver(send(order))

    def fails():
        raise RuntimeError("the invoice service answered 500")

    try:
        process_once(ddb, table, msg, fails, lease_s=LEASE_S, clock=clock)
        raised = "it returned instead"
    except RuntimeError:
        raised = ""
    except Exception as e:
        raised = f"it raised {type(e).__name__} instead"
    again = run(msg, invoice(order))
    r.expect(
        not raised and again == "processed" and invoices(order) == 1,
        "work that fails re-raises and releases the claim: the next delivery processes the order at once",
        f"when handler() raised, the error should reach the caller ({raised or 'it did'}) and the next delivery "
        f"should process the order; it returned {again!r} ({invoices(order)} invoices): delete the claim, then "
        "re-raise",
    )
