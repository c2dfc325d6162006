"""Lesson 12: one plausible wrong attempt per check, run in the retry notebook between the blank task and the
solution (see the brief's "Retry attempts"). Tasks 1 to 5 are files (%%writefile): an attempt is the module's
text after the given imports; task 6 has two solution blocks (a tuple)."""

ATTEMPTS = {
    # 12.1: POST without a condition: a second order with the same id overwrites the first (and answers 201)
    "12.1": """
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
        ddb.put_item(TableName=TABLE, Item=item)
    except ddb.exceptions.ConditionalCheckFailedException:
        return respond(409, {"error": f"order {order_id} exists"})
    return respond(201, {"order_id": order_id, "customer": customer, "total": total})
""",
    # 12.2: only the first page: `next` is always null
    "12.2": """
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
    return respond(200, {"orders": orders, "next": None})
""",
    # 12.3: one bad record raises: the whole batch fails and comes back, good orders are charged again
    "12.3": """
for record in event["Records"]:
    order = json.loads(record["body"])
    charge(order["order_id"], order["amount"])
""",
    # 12.4: idempotent on the whole SQS record: every delivery has another receipt handle, so nothing matches
    "12.4": """
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
config = IdempotencyConfig(expires_after_seconds=24 * 3600)


@idempotent_function(data_keyword_argument="record", persistence_store=persistence, config=config)
def charge_once(record):
    order = json.loads(record["body"])
    return charge(order["order_id"], order["amount"])


def handler(event, context):
    config.register_lambda_context(context)
    failures = []
    for record in event["Records"]:
        try:
            charge_once(record=record)
        except Exception as e:
            print(f"message {record['messageId']} failed: {e!r}")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
""",
    # 12.5: numpy still imported at the top: every cold start of a mean request pays for it
    "12.5": """
import numpy as np  # noqa: F401
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
""",
    # 12.6: megabytes divided by 1000, not 1024
    "12.6": (
        """
billed_s = sum(i.billed_ms for i in invocations) / len(invocations) / 1000
gb = invocations[0].memory_mb / 1000
per_request = PRICES.price("lambda.requests", "us-east-1", "per_million") / 1e6
per_request += gb * billed_s * PRICES.price("lambda.duration", "us-east-1", "x86_64")
return requests_per_month * per_request
""",
        """
return always_on_usd / lambda_monthly_usd(invocations, 1)
""",
    ),
    # 12.7: the restore as tutorials show it: the default parameter group and security group
    "12.7": """
snap_id = f"{source_id}-drill-{uuid.uuid4().hex[:8]}"
rds.create_db_snapshot(DBSnapshotIdentifier=snap_id, DBInstanceIdentifier=source_id)
rds.get_waiter("db_snapshot_available").wait(DBSnapshotIdentifier=snap_id, WaiterConfig={"Delay": 1})
rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=target_id, DBSnapshotIdentifier=snap_id)
rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=target_id, WaiterConfig={"Delay": 1})
return snap_id
""",
}
