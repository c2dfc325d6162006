"""Lesson 01: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # A default where the task says the setting is required: a missing bucket goes unnoticed.
    "01.1": """
return {
    "bucket": environ.get("ORDERS_BUCKET", "l01-orders"),
    "queue_url": environ.get("ORDERS_QUEUE_URL", ""),
    "port": environ.get("PORT", "8080"),
    "log_level": environ.get("LOG_LEVEL", "INFO"),
}
""",
    # Plain text instead of one JSON object per line.
    "01.2": """
print(f"{level} {event} {fields}", flush=True)
""",
    # The order stored, and also kept in a module-level "cache" (process memory is state too); the event
    # carries the whole order instead of its id.
    "01.3": (
        """
key = f"orders/{order['id']}.json"
s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(order).encode())
globals().setdefault("ORDER_CACHE", {})[order["id"]] = order
return key
""",
        """
sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"type": "order_created", **order}))
""",
    ),
    # A worker that deletes before it works (a write that fails loses the order) and ignores SIGTERM.
    "01.4": """
bucket = os.environ["ORDERS_BUCKET"]
queue_url = os.environ["ORDERS_QUEUE_URL"]
s3, sqs = boto3.client("s3"), boto3.client("sqs")
while True:
    for msg in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])
        order_id = json.loads(msg["Body"])["order_id"]
        s3.put_object(Bucket=bucket, Key=f"processed/{order_id}.json", Body=msg["Body"].encode())
""",
}
