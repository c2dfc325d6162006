"""The payment provider of lesson 12's order service, as a module the consumer functions import.

``charge(order_id, amount)`` records one charge in the DynamoDB table named by ``LEDGER_TABLE`` (one item per
execution, so charging twice shows as two items). A charge that is not a positive number is refused every time
(a poison message). For the lesson's checks it can also misbehave on purpose, set by environment variables:
``LEDGER_FAIL_ONCE`` (order ids whose FIRST charge fails with a timeout, like a flaky provider) and
``LEDGER_SLOW`` (order ids whose first charge hangs for ``LEDGER_SLOW_SECONDS``, so a check can kill the
function in the middle of a batch). Both remember their first time in the same table.
"""

import os
import time
import uuid

import boto3

TABLE = os.environ.get("LEDGER_TABLE", "l12-ledger")
_ddb = boto3.client("dynamodb")


def _ids(var):
    return {s.strip() for s in os.environ.get(var, "").split(",") if s.strip()}


def _first_time(order_id, what):
    """True the first time this (order, what) is seen, recorded atomically in the ledger table."""
    try:
        _ddb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": order_id}, "sk": {"S": f"#{what}"}, "at": {"N": str(time.time())}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        return True
    except _ddb.exceptions.ConditionalCheckFailedException:
        return False


def charge(order_id, amount):
    """Charge ``amount`` for ``order_id``; returns the charge. Raises ValueError for an amount that can never
    be charged, ConnectionError for a provider that timed out (try again later)."""
    if not isinstance(order_id, str) or not order_id:
        raise ValueError(f"order_id must be a non-empty string, got {order_id!r}")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
        raise ValueError(f"order {order_id}: amount must be a positive number, got {amount!r}")
    if order_id in _ids("LEDGER_FAIL_ONCE") and _first_time(order_id, "failed-once"):
        raise ConnectionError(f"order {order_id}: the payment provider timed out (try again)")
    if order_id in _ids("LEDGER_SLOW") and _first_time(order_id, "slow-started"):
        time.sleep(float(os.environ.get("LEDGER_SLOW_SECONDS", "30")))
    charge_id = f"charge#{uuid.uuid4().hex[:12]}"
    _ddb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": order_id},
            "sk": {"S": charge_id},
            "amount": {"N": str(amount)},
            "pid": {"N": str(os.getpid())},
            "at": {"N": str(time.time())},
        },
    )
    return {"order_id": order_id, "charge_id": charge_id, "amount": amount}
