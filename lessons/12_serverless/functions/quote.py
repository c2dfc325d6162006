"""A function made idempotent with Powertools: the same request (same order and amount) returns the stored
answer instead of running again. The DynamoDB persistence layer keeps one record per request: INPROGRESS (with an
expiry at the function's timeout) while it runs, then COMPLETED with the answer (kept expires_after_seconds).
Powertools' Logger writes one JSON object per log line (with cold_start and the request id), and Metrics writes
CloudWatch's embedded metric format (EMF) to stdout, which Lambda's log pipeline turns into metrics."""

import os
import time
import uuid

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent

logger = Logger(service="quotes")
metrics = Metrics(namespace="Orders", service="quotes")
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
config = IdempotencyConfig(event_key_jmespath="[order_id, amount]", expires_after_seconds=600)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@idempotent(persistence_store=persistence, config=config)
def handler(event, context):
    time.sleep(float(event.get("work_s", 1.0)))  # the expensive part (a call to a payment provider)
    logger.info("quoted", extra={"order_id": event["order_id"]})
    metrics.add_metric(name="QuotesCreated", unit=MetricUnit.Count, value=1)
    return {"quote_id": uuid.uuid4().hex[:8], "order_id": event["order_id"], "at": round(time.time(), 3)}
