"""Lesson 12's reference answers and the wrong answers learners are likely to write, as the files or functions
the checks read (shared by tests/test_lesson12.py). The reference answers are the ones in solutions/12."""

from __future__ import annotations

import textwrap

import cloudlab.cost.targets as _targets

PRICES = _targets.prices()


def swap(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced (once); fails loudly if ``old`` is not there (a wrong answer must differ)."""
    assert old in text, f"not in the answer: {old!r}"
    return text.replace(old, new, 1)


# ------------------------------------------------------------------ 12.1 the orders API
ORDERS_API = textwrap.dedent(
    """
    import json
    import os

    import boto3

    TABLE = os.environ["ORDERS_TABLE"]
    ddb = boto3.client("dynamodb")


    def respond(status, body):
        return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


    def handler(event, context):
        customer = event["pathParameters"]["customer"]
        key = {"pk": {"S": f"CUSTOMER#{customer}"}}
        if event["routeKey"].startswith("GET "):
            order_id = event["pathParameters"]["order_id"]
            item = ddb.get_item(TableName=TABLE, Key={**key, "sk": {"S": f"ORDER#{order_id}"}}).get("Item")
            if item is None:
                return respond(404, {"error": f"no order {order_id}"})
            return respond(200, {"order_id": order_id, "customer": customer, "total": float(item["total"]["N"])})
        try:
            order = json.loads(event.get("body") or "")
            order_id, total = order["order_id"], order["total"]
        except (ValueError, TypeError, KeyError):
            return respond(400, {"error": "the body must be JSON with order_id and total"})
        if not isinstance(order_id, str) or not order_id:
            return respond(400, {"error": "order_id must be a non-empty string"})
        if isinstance(total, bool) or not isinstance(total, (int, float)) or total <= 0:
            return respond(400, {"error": "total must be a number above 0"})
        item = {**key, "sk": {"S": f"ORDER#{order_id}"}, "order_id": {"S": order_id},
                "customer": {"S": customer}, "total": {"N": str(total)}}
        try:
            ddb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ddb.exceptions.ConditionalCheckFailedException:
            return respond(409, {"error": f"order {order_id} exists"})
        return respond(201, {"order_id": order_id, "customer": customer, "total": total})
    """
)
ORDERS_API_WRONG = {
    "overwrites (no condition)": swap(ORDERS_API, ', ConditionExpression="attribute_not_exists(pk)"', ""),
    "crashes on a body that is not JSON": swap(
        ORDERS_API, "except (ValueError, TypeError, KeyError):", "except KeyError:"
    ),
    "body as a dict, not a JSON string": swap(ORDERS_API, '"body": json.dumps(body)}', '"body": body}'),
    "200 with an empty object for a missing order": swap(
        ORDERS_API, 'return respond(404, {"error": f"no order {order_id}"})', "return respond(200, {})"
    ),
    "the customer left out of the key": swap(
        ORDERS_API, 'key = {"pk": {"S": f"CUSTOMER#{customer}"}}', 'key = {"pk": {"S": "ORDERS"}}'
    ),
    "200 instead of 201": swap(ORDERS_API, "return respond(201,", "return respond(200,"),
}

# ------------------------------------------------------------------ 12.2 pages
ORDERS_LIST = textwrap.dedent(
    """
    import base64
    import json
    import os

    import boto3

    TABLE = os.environ["ORDERS_TABLE"]
    ddb = boto3.client("dynamodb")


    def respond(status, body):
        return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


    def handler(event, context):
        customer = event["pathParameters"]["customer"]
        query = event.get("queryStringParameters") or {}
        try:
            limit = int(query.get("limit", "10"))
            start = json.loads(base64.urlsafe_b64decode(query["next"].encode())) if query.get("next") else None
        except (ValueError, TypeError):
            return respond(400, {"error": "limit must be a whole number; next must be a token from a page"})
        if not 1 <= limit <= 50:
            return respond(400, {"error": "limit must be between 1 and 50"})
        args = {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :o)",
            "ExpressionAttributeValues": {":p": {"S": f"CUSTOMER#{customer}"}, ":o": {"S": "ORDER#"}},
            "Limit": limit,
        }
        if start:
            args["ExclusiveStartKey"] = start
        page = ddb.query(**args)
        orders = [{"order_id": i["order_id"]["S"], "total": float(i["total"]["N"])} for i in page["Items"]]
        last = page.get("LastEvaluatedKey")
        token = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return respond(200, {"orders": orders, "next": token})
    """
)
ORDERS_LIST_WRONG = {
    "first page only": ORDERS_LIST.replace('"next": token}', '"next": None}'),
    "the profile item too (no begins_with)": ORDERS_LIST.replace(" AND begins_with(sk, :o)", "").replace(
        ', ":o": {"S": "ORDER#"}', ""
    ),
    "a Scan with a filter": ORDERS_LIST.replace('"KeyConditionExpression"', '"FilterExpression"').replace(
        "page = ddb.query(**args)", "page = ddb.scan(**args)"
    ),
    "no Limit": ORDERS_LIST.replace('        "Limit": limit,\n', ""),
    "a token Python's repr makes": ORDERS_LIST.replace(
        "base64.urlsafe_b64encode(json.dumps(last).encode()).decode()", "str(last)"
    ),
}

# ------------------------------------------------------------------ 12.3 partial batch failures
PAYMENTS = textwrap.dedent(
    """
    import json

    from ledger import charge


    def handler(event, context):
        failures = []
        for record in event["Records"]:
            try:
                order = json.loads(record["body"])
                charge(order["order_id"], order["amount"])
            except Exception as e:
                print(f"message {record['messageId']} failed: {e!r}")
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}
    """
)
PAYMENTS_WRONG = {
    "raises on the first failure": textwrap.dedent(
        """
        import json

        from ledger import charge


        def handler(event, context):
            for record in event["Records"]:
                order = json.loads(record["body"])
                charge(order["order_id"], order["amount"])
        """
    ),
    "swallows every failure": swap(PAYMENTS, 'failures.append({"itemIdentifier": record["messageId"]})', "pass"),
    "reports receipt handles": swap(PAYMENTS, 'record["messageId"]})', 'record["receiptHandle"]})'),
    "reports order ids": swap(
        swap(PAYMENTS, "        try:\n", "        order = {}\n        try:\n"),
        'failures.append({"itemIdentifier": record["messageId"]})',
        'failures.append({"itemIdentifier": order.get("order_id") or record["messageId"]})',
    ),
}

# ------------------------------------------------------------------ 12.4 idempotency with Powertools
PAYMENTS_ONCE = textwrap.dedent(
    """
    import json
    import os

    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from ledger import charge

    persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
    config = IdempotencyConfig(event_key_jmespath="order_id", expires_after_seconds=24 * 3600)


    @idempotent_function(data_keyword_argument="order", persistence_store=persistence, config=config)
    def charge_once(order):
        return charge(order["order_id"], order["amount"])


    def handler(event, context):
        config.register_lambda_context(context)
        failures = []
        for record in event["Records"]:
            try:
                charge_once(order=json.loads(record["body"]))
            except Exception as e:
                print(f"message {record['messageId']} failed: {e!r}")
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}
    """
)
PAYMENTS_ONCE_WRONG = {
    "no idempotency (12.3's consumer)": PAYMENTS,
    "keyed on the whole record": swap(
        swap(
            swap(PAYMENTS_ONCE, 'event_key_jmespath="order_id", ', ""),
            'data_keyword_argument="order", persistence_store=persistence, config=config)\ndef charge_once(order):\n'
            '    return charge(order["order_id"], order["amount"])',
            'data_keyword_argument="record", persistence_store=persistence, config=config)\ndef charge_once(record):\n'
            '    order = json.loads(record["body"])\n    return charge(order["order_id"], order["amount"])',
        ),
        'charge_once(order=json.loads(record["body"]))',
        "charge_once(record=record)",
    ),
    "keyed on the message id": swap(
        swap(PAYMENTS_ONCE, 'event_key_jmespath="order_id"', 'event_key_jmespath="messageId"'),
        'charge_once(order=json.loads(record["body"]))',
        'charge_once(order={**json.loads(record["body"]), "messageId": record["messageId"]})',
    ),
    "no Lambda context registered": swap(PAYMENTS_ONCE, "    config.register_lambda_context(context)\n", ""),
    "a claim with no lease: a crash after it loses the order for good": textwrap.dedent(
        """
        import json
        import os

        import boto3
        from ledger import charge

        ddb = boto3.client("dynamodb")
        TABLE = os.environ["IDEMPOTENCY_TABLE"]


        def handler(event, context):
            failures = []
            for record in event["Records"]:
                try:
                    order = json.loads(record["body"])
                    try:
                        claim = {"id": {"S": order["order_id"]}, "status": {"S": "COMPLETED"}}
                        ddb.put_item(TableName=TABLE, Item=claim, ConditionExpression="attribute_not_exists(id)")
                    except ddb.exceptions.ConditionalCheckFailedException:
                        continue
                    try:
                        charge(order["order_id"], order["amount"])
                    except Exception:
                        ddb.delete_item(TableName=TABLE, Key={"id": {"S": order["order_id"]}})
                        raise
                except Exception:
                    failures.append({"itemIdentifier": record["messageId"]})
            return {"batchItemFailures": failures}
        """
    ),
}

# ------------------------------------------------------------------ 12.5 cold start
REPORT = textwrap.dedent(
    """
    import io
    import statistics


    def handler(event, context):
        values = [float(v) for v in event.get("values", [1, 2, 3])]
        if event.get("chart"):
            import matplotlib  # only the rare chart request pays for it, once per environment

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(2, 1))
            ax.plot(values)
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            plt.close(fig)
            return {"png_bytes": len(buf.getvalue())}
        return {"mean": statistics.fmean(values)}
    """
)
REPORT_WRONG = {
    "the original (heavy imports at the top)": None,  # the tests read lessons/12_serverless/functions/report.py
    "numpy still at the top": "import numpy as np  # noqa\n" + REPORT,
    "imports inside the handler for every request": REPORT.replace(
        '    values = [float(v) for v in event.get("values", [1, 2, 3])]\n',
        '    values = [float(v) for v in event.get("values", [1, 2, 3])]\n    import matplotlib.pyplot  # noqa\n',
        1,
    ),
    "the chart dropped": REPORT.split('    if event.get("chart"):')[0]
    + '    return {"mean": statistics.fmean(values)}\n',
}


# ------------------------------------------------------------------ 12.6 the bill
def lambda_monthly_usd(invocations, requests_per_month):
    billed_s = sum(i.billed_ms for i in invocations) / len(invocations) / 1000
    gb = invocations[0].memory_mb / 1024
    per_request = PRICES.price("lambda.requests", "us-east-1", "per_million") / 1e6
    per_request += gb * billed_s * PRICES.price("lambda.duration", "us-east-1", "x86_64")
    return requests_per_month * per_request


def break_even_requests(invocations, always_on_usd):
    return always_on_usd / lambda_monthly_usd(invocations, 1)


def _bill(mb_per_gb=1024, ms_per_s=1000, requests=True, free=False):
    def monthly(invocations, requests_per_month):
        billed_s = sum(i.billed_ms for i in invocations) / len(invocations) / ms_per_s
        gb = invocations[0].memory_mb / mb_per_gb
        usd = requests_per_month * gb * billed_s * PRICES.price("lambda.duration", "us-east-1", "x86_64")
        if requests:
            usd += requests_per_month / 1e6 * PRICES.price("lambda.requests", "us-east-1", "per_million")
        if free:
            usd -= 400_000 * PRICES.price("lambda.duration", "us-east-1", "x86_64") + 0.2
        return max(usd, 0.0)

    return monthly


BILL_WRONG = {
    "MB / 1000": {"lambda_monthly_usd": _bill(mb_per_gb=1000), "break_even_requests": break_even_requests},
    "milliseconds as seconds": {"lambda_monthly_usd": _bill(ms_per_s=1), "break_even_requests": break_even_requests},
    "no request charge": {
        "lambda_monthly_usd": _bill(requests=False),
        "break_even_requests": lambda inv, usd: usd / _bill(requests=False)(inv, 1),
    },
    "the free tier taken off": {"lambda_monthly_usd": _bill(free=True), "break_even_requests": break_even_requests},
    "break-even without the request charge": {
        "lambda_monthly_usd": lambda_monthly_usd,
        "break_even_requests": lambda inv, usd: usd / _bill(requests=False)(inv, 1),
    },
}


# ------------------------------------------------------------------ 12.7 restore drill
def restore_drill(rds, source_id, target_id):
    import uuid

    src = rds.describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"][0]
    snap_id = f"{source_id}-drill-{uuid.uuid4().hex[:8]}"
    rds.create_db_snapshot(DBSnapshotIdentifier=snap_id, DBInstanceIdentifier=source_id)
    rds.get_waiter("db_snapshot_available").wait(DBSnapshotIdentifier=snap_id, WaiterConfig={"Delay": 1})
    rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=target_id,
        DBSnapshotIdentifier=snap_id,
        DBInstanceClass=src["DBInstanceClass"],
        MultiAZ=src["MultiAZ"],
        DBParameterGroupName=src["DBParameterGroups"][0]["DBParameterGroupName"],
        VpcSecurityGroupIds=[g["VpcSecurityGroupId"] for g in src["VpcSecurityGroups"]],
    )
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=target_id, WaiterConfig={"Delay": 1})
    return snap_id


def _drill(params=True, groups=True, klass=True, newest_old=False):
    def drill(rds, source_id, target_id):
        src = rds.describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"][0]
        if newest_old:
            snaps = rds.describe_db_snapshots(DBInstanceIdentifier=source_id, SnapshotType="manual")["DBSnapshots"]
            snap_id = max(snaps, key=lambda s: s["SnapshotCreateTime"])["DBSnapshotIdentifier"]
        else:
            snap_id = f"{source_id}-drill"
            rds.create_db_snapshot(DBSnapshotIdentifier=snap_id, DBInstanceIdentifier=source_id)
        kw = {"DBInstanceClass": src["DBInstanceClass"] if klass else "db.t4g.micro", "MultiAZ": src["MultiAZ"]}
        if params:
            kw["DBParameterGroupName"] = src["DBParameterGroups"][0]["DBParameterGroupName"]
        if groups:
            kw["VpcSecurityGroupIds"] = [g["VpcSecurityGroupId"] for g in src["VpcSecurityGroups"]]
        rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=target_id, DBSnapshotIdentifier=snap_id, **kw)
        return snap_id

    return drill


DRILL_WRONG = {
    "default parameter group": _drill(params=False),
    "default security group": _drill(groups=False),
    "a hard-coded instance class": _drill(klass=False),
    "the newest old snapshot instead of a new one": _drill(newest_old=True),
}
