"""Idempotent processing with a claim that has a status and a lease, in DynamoDB: each order once, even when a
worker dies half-way.

A queue delivers at least once, a producer that retries a send makes a second message (a new ``MessageId``) for
the same order, and a worker can die between any two lines. So the **idempotency key** is a business id (the
order id), and the worker records what it is doing under that key, in one table keyed by ``pk``:

    {"pk": key, "status": "INPROGRESS", "expires": <epoch s>}   claimed; the claim's lease ends at ``expires``
    {"pk": key, "status": "COMPLETED"}                           the work is done

1. **Claim** with ONE conditional write: put the INPROGRESS item if there is none, or if the one there is
   INPROGRESS with its lease already over (the worker that held it died: take over)::

       ConditionExpression="attribute_not_exists(pk) OR (#s = :inprogress AND expires < :now)"

   Of two copies claiming at once exactly one wins (reading first and writing afterwards is a race).
2. Claimed: do the work, then mark it COMPLETED. If the work raises, delete the claim so the next delivery can
   try at once.
3. Not claimed: COMPLETED means a duplicate (delete the message); INPROGRESS means another worker holds a live
   lease: leave the message, the queue delivers it again later (after its visibility timeout).

Claiming the key and deleting the claim only on an exception is *at most once*: a worker killed between the claim
and the work leaves a claim that nobody may take over, and every redelivery is skipped as a "duplicate". The
lease makes it at least once again, without running the work twice at the same time. One gap stays: a worker
that dies after the work but before COMPLETED is redone once its lease ends, so the work itself should be
idempotent where it can (an invoice written under the order's own key, a payment API given the order id as
its idempotency key).

These are the words of Powertools for AWS Lambda's idempotency utility (lesson 12): ``INPROGRESS`` with an
in-progress expiry, then ``COMPLETED``, and the record deleted when the function raises. Serves lesson 09.
"""

from __future__ import annotations

import time
from collections.abc import Callable

INPROGRESS, COMPLETED = "INPROGRESS", "COMPLETED"
PROCESSED, DUPLICATE, IN_PROGRESS = "processed", "duplicate", "in-progress"
CLAIM_CONDITION = "attribute_not_exists(pk) OR (#s = :inprogress AND expires < :now)"


def claim(ddb, table: str, key: str, lease_s: float, now: float) -> tuple[bool, dict]:
    """Claim ``key`` for ``lease_s`` seconds from ``now`` (epoch seconds). Returns (claimed?, the item that was
    there when the claim failed, as DynamoDB returned it)."""
    try:
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": key}, "status": {"S": INPROGRESS}, "expires": {"N": f"{now + lease_s:.3f}"}},
            ConditionExpression=CLAIM_CONDITION,
            ExpressionAttributeNames={"#s": "status"},  # `status` is a DynamoDB reserved word
            ExpressionAttributeValues={":inprogress": {"S": INPROGRESS}, ":now": {"N": f"{now:.3f}"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return True, {}
    except ddb.exceptions.ConditionalCheckFailedException as e:
        return False, e.response.get("Item") or {}


def complete(ddb, table: str, key: str) -> None:
    """Mark the work of ``key`` done (a COMPLETED record answers every later copy with 'duplicate')."""
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": key}},
        UpdateExpression="SET #s = :done REMOVE expires",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": COMPLETED}},
    )


def release(ddb, table: str, key: str) -> None:
    """Give the claim up (the work failed): the next delivery may claim it at once."""
    ddb.delete_item(TableName=table, Key={"pk": {"S": key}})


def process_once(
    ddb, table: str, key: str, handler: Callable[[], object], lease_s: float = 30, clock: Callable = time.time
) -> str:
    """Run ``handler()`` once for ``key``: 'processed' (ran now), 'duplicate' (done before) or 'in-progress'
    (another worker holds a live lease: try again later). A handler that raises releases the claim and the
    error propagates."""
    claimed, item = claim(ddb, table, key, lease_s, clock())
    if not claimed:
        return DUPLICATE if item.get("status", {}).get("S") == COMPLETED else IN_PROGRESS
    try:
        handler()
    except Exception:
        release(ddb, table, key)
        raise
    complete(ddb, table, key)
    return PROCESSED


def records(ddb, table: str) -> dict[str, dict]:
    """Every record of the table: {key: {"status", "expires" (epoch s or None)}} (one scan, for lessons and checks)."""
    out = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for it in page.get("Items", []):
            exp = it.get("expires", {}).get("N")
            out[it["pk"]["S"]] = {"status": it.get("status", {}).get("S"), "expires": float(exp) if exp else None}
    return out
