"""Lesson 12's checks of the SQS consumers (12.3 partial batch failures, 12.4 idempotency): each deploys the
learner's file, connects it to a fresh queue with the lab's event source mapping, sends orders the notebook
never used (some poisoned, one flaky, one duplicated, one that hangs until the check kills the function) and
reads what really happened: the ledger's charges, the queue, the dead-letter queue, the idempotency table."""

from __future__ import annotations

import json
import time
import uuid

from .. import aws
from ..checks import check
from ..serverless import EventSourceMapping
from . import setup
from .checks_api import learner_file

PAY_FILE, ONCE_FILE = "l12_payments.py", "l12_payments_once.py"
TIMEOUT = 6.0  # the function's timeout: above the INIT of boto3 + Powertools on a busy machine (the RIE counts INIT)
VISIBILITY = 2  # the checks' queues: short, so a redelivery comes in seconds (see the lesson on the 6x rule)


def _order(prefix: str, amount: float = 25.0) -> tuple[str, str]:
    oid = f"{prefix}-{uuid.uuid4().hex[:6]}"
    return oid, json.dumps({"order_id": oid, "amount": amount})


def _smoke(r, fn) -> None:
    """One invoke with an empty batch: a blank or broken file fails here, in a second, with its own words."""
    inv = fn.invoke({"Records": []})
    text = f"{inv.error_type}: {inv.error_message}"
    if "NotImplementedError" in text:
        r.fail("the handler still raises NotImplementedError: replace the TODO with your code")
    if inv.error_type and inv.error_type.startswith("Runtime."):
        r.fail(f"the function could not start: {text[:220]}")
    if inv.timed_out:
        r.fail(f"the function did not answer an empty batch within its {TIMEOUT:g} s timeout")


def _send(sqs, url: str, bodies: list[str]) -> None:
    for i in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[i : i + 10])]
        )


# ======================================================================= 12.3 partial batch failures
@check(
    "12.3",
    "The SQS consumer reports only its failed messages: poison goes to the DLQ, nothing good is charged twice",
    hints=[
        "Handle each record of event['Records'] on its own, inside try/except: a failure of one must not stop the "
        "others, and must not be swallowed either.",
        "Return {'batchItemFailures': [{'itemIdentifier': record['messageId']}, ...]} listing exactly the records that "
        "failed (the messageId, not the receipt handle, not the order id). The poller deletes all the others.",
        "for record in event['Records']:\n    try:\n        order = json.loads(record['body'])\n"
        "        charge(order['order_id'], order['amount'])\n    except Exception:\n"
        "        failures.append({'itemIdentifier': record['messageId']})\nreturn {'batchItemFailures': failures}",
    ],
)
def check_partial_batch(r, ns):
    src = learner_file(r, PAY_FILE)
    ddb, sqs = aws.client("dynamodb"), aws.client("sqs")
    ledger = setup.create_table(ddb, setup.fresh("l12-chk-ledger"))
    q, dlq = setup.queue_with_dlq(
        sqs, setup.fresh("l12-chk-pay"), setup.fresh("l12-chk-pay-dlq"), max_receives=2, visibility=VISIBILITY
    )
    good = [_order("ok") for _ in range(5)]
    flaky = _order("flaky", 31.5)
    poison = [json.dumps({"order_id": f"neg-{uuid.uuid4().hex[:6]}", "amount": -12}), "{this is not json"]
    env = {"LEDGER_TABLE": ledger, "LEDGER_FAIL_ONCE": flaky[0]}
    fn = setup.deploy("l12-chk-pay", src, "l12_payments.handler", timeout=TIMEOUT, env=env)
    esm = None
    try:
        _smoke(r, fn)
        _send(sqs, q, [b for _, b in good[:3]] + [poison[0], flaky[1], poison[1]] + [b for _, b in good[3:]])
        esm = setup.keep("mappings", EventSourceMapping(sqs, q, fn, batch_size=10, batching_window=0.5).start())
        wanted = {o for o, _ in good} | {flaky[0]}

        def settled():  # every message either deleted or moved to the DLQ (in-flight ones count as in the queue)
            return esm.journal and setup.queue_depth(sqs, q) == 0

        setup.wait(settled, timeout=6 * VISIBILITY + 2 * TIMEOUT, every=0.3)
        esm.stop()
        charged = setup.charges(ddb, ledger)
        dead = setup.queue_messages(sqs, dlq)
        twice = {o: n for o, n in charged.items() if n > 1}
        never = sorted(wanted - set(charged))
        r.expect(
            not never and not twice,
            f"every good order was charged exactly once ({len(wanted)}, the flaky one after its retry)",
            (f"{len(never)} good order(s) were never charged ({', '.join(never[:3])}); " if never else "")
            + (f"charged more than once: {twice}; " if twice else "")
            + "report only the failed records, so the poller deletes the others",
        )
        r.expect(
            sorted(dead) == sorted(poison),
            "the dead-letter queue holds exactly the two poison messages (a negative amount, a body that is not JSON)",
            f"the dead-letter queue should hold the 2 poison messages and nothing else; it holds {len(dead)}: "
            + (", ".join(d[:40] for d in dead[:4]) or "nothing (was a failure swallowed, or reported as a success?)"),
        )
        left = setup.queue_depth(sqs, q)
        r.expect(left == 0, "the queue is empty", f"{left} message(s) are still in the queue after the retries")
        partial = [x for x in esm.journal if x.deleted and x.kept]
        r.expect(
            partial,
            "a batch was partly deleted: the poller kept only the reported failures",
            "no batch was partly deleted; the poller's rounds:\n      " + esm.rounds_text(4).replace("\n", "\n      "),
        )
    finally:
        if esm is not None:
            esm.stop()
        fn.stop()


# ======================================================================= 12.4 idempotency under redelivery and a crash
@check(
    "12.4",
    "With Powertools idempotency, a redelivered or duplicated order is charged once, even after a crash mid-batch",
    hints=[
        "Keep 12.3's loop, but charge through a function decorated with Powertools' @idempotent_function, keyed on "
        "the ORDER (event_key_jmespath='order_id'), with DynamoDBPersistenceLayer(table_name=os.environ["
        "'IDEMPOTENCY_TABLE']).",
        "Pass only the order to it (charge_once(order=json.loads(record['body']))): the whole record changes on every "
        "delivery (receipt handle, receive count), so it would never match. In the handler, call "
        "config.register_lambda_context(context) first.",
        "register_lambda_context gives each INPROGRESS record an expiry at the function's timeout: without it, the "
        "order that was running when the function died stays INPROGRESS for expires_after_seconds (an hour), and "
        "every redelivery fails.",
    ],
)
def check_idempotent(r, ns):
    src = learner_file(r, ONCE_FILE)
    ddb, sqs = aws.client("dynamodb"), aws.client("sqs")
    ledger = setup.create_table(ddb, setup.fresh("l12-chk-ledger"))
    idem = setup.create_table(ddb, setup.fresh("l12-chk-idem"), "id", None)
    q, dlq = setup.queue_with_dlq(
        sqs, setup.fresh("l12-chk-once"), setup.fresh("l12-chk-once-dlq"), max_receives=10, visibility=VISIBILITY
    )
    orders = [_order("o", 10 + i) for i in range(4)]
    slow = _order("slow", 99.0)
    env = {"LEDGER_TABLE": ledger, "IDEMPOTENCY_TABLE": idem, "LEDGER_SLOW": slow[0], "LEDGER_SLOW_SECONDS": "30"}
    fn = setup.deploy("l12-chk-once", src, "l12_payments_once.handler", timeout=TIMEOUT, env=env)
    esm = None
    try:
        _smoke(r, fn)
        # the producer sent orders[1] twice (its retry after a timeout): a new message, the same order
        _send(sqs, q, [b for _, b in orders] + [orders[1][1], slow[1]])
        esm = setup.keep("mappings", EventSourceMapping(sqs, q, fn, batch_size=10, batching_window=0.5).start())

        def slow_started():
            got = ddb.get_item(TableName=ledger, Key={"pk": {"S": slow[0]}, "sk": {"S": "#slow-started"}})
            return "Item" in got

        r.require(
            setup.wait(slow_started, timeout=TIMEOUT + 6, every=0.05),
            "the batch reached the order that hangs",
            "the function never started to charge the order that hangs; the poller's rounds:\n      "
            + esm.rounds_text(4).replace("\n", "\n      "),
        )
        before = setup.charges(ddb, ledger)
        killed = next((e.kill_runtime() for e in fn.environments if e.runtime_pid()), None)
        r.require(killed, "the check killed the function mid-batch (SIGKILL)", "the check found no runtime to kill")
        wanted = {o for o, _ in orders} | {slow[0]}
        t_kill = time.monotonic()

        def settled():
            return wanted <= set(setup.charges(ddb, ledger)) and setup.queue_depth(sqs, q) == 0

        setup.wait(settled, timeout=TIMEOUT + 3 * VISIBILITY + 2, every=0.3)
        esm.stop()
        charged = setup.charges(ddb, ledger)
        twice = {o: n for o, n in charged.items() if n > 1}
        never = sorted(wanted - set(charged))
        records = ddb.scan(TableName=idem).get("Items", [])
        status = {i.get("status", {}).get("S") for i in records}
        stuck = [i["id"]["S"] for i in records if i.get("status", {}).get("S") == "INPROGRESS"]
        r.expect(
            not twice,
            f"no order was charged twice: {len(before)} charged before the crash were not charged again, and the "
            "duplicated order once",
            f"charged more than once: {twice} (the crash redelivered the whole batch"
            + (", and one order was sent twice" if orders[1][0] in twice else "")
            + "): make the charge idempotent on the order id",
        )
        r.expect(
            not never,
            f"every order was charged, the one that was running when the function died too "
            f"({time.monotonic() - t_kill:.1f} s after the crash)",
            f"never charged: {', '.join(never)}"
            + (
                f"; its idempotency record is still INPROGRESS ({len(stuck)} stuck): without the Lambda context it "
                "has no in-progress expiry"
                if stuck
                else ""
            )
            + "; a crashed attempt must not block the next one",
        )
        r.expect(
            records and "COMPLETED" in status,
            f"the idempotency table holds Powertools' records ({len(records)}, status COMPLETED, with an expiry)",
            f"the idempotency table {idem} holds no COMPLETED record: use DynamoDBPersistenceLayer with the table "
            "named by IDEMPOTENCY_TABLE",
        )
        dead = setup.queue_messages(sqs, dlq)
        r.expect(
            not dead and setup.queue_depth(sqs, q) == 0,
            "the queue is empty and nothing went to the dead-letter queue",
            f"{setup.queue_depth(sqs, q)} message(s) left in the queue, {len(dead)} in the dead-letter queue",
        )
    finally:
        if esm is not None:
            esm.stop()
        fn.stop()
