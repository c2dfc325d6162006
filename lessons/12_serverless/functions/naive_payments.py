"""An SQS consumer as many are first written: it charges every order of the batch and lets an exception out."""

import json

from ledger import charge


def handler(event, context):
    for record in event["Records"]:
        order = json.loads(record["body"])
        charge(order["order_id"], order["amount"])
    return {"charged": len(event["Records"])}
