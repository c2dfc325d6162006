"""Lesson 09's drills: an idempotent worker with a dead-letter queue, and a backup-and-restore drill."""

from __future__ import annotations

import hashlib
import json
import time

from .. import aws

IDEMPOTENCY_TABLE = "l09-processed"
JOBS, JOBS_DLQ = "l09-jobs", "l09-jobs-dlq"
BACKUP_BUCKET, ORDERS_TABLE = "l09-records", "l09-orders"


def create_key_table(ddb, name: str) -> str:
    """A DynamoDB table keyed by the string ``pk`` (on-demand); waits until it is active."""
    try:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ddb.exceptions.ResourceInUseException:
        pass
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    return name


def queue_with_dlq(sqs, name: str, dlq: str, max_receives: int = 3, visibility: int = 1) -> tuple[str, str]:
    """A queue whose messages move to ``dlq`` after ``max_receives`` receives. Returns both URLs."""
    dlq_url = sqs.create_queue(QueueName=dlq, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy, "VisibilityTimeout": str(visibility)})
    return url["QueueUrl"], dlq_url


def work_once(sqs, ddb, s3, queue_url: str, table: str, bucket: str, crash_before_delete: bool = False) -> list[str]:
    """One poll of the worker: each message is processed at most once (a conditional write claims its
    id first), its side effect is an S3 object; a message that raises stays in the queue (and, after
    maxReceiveCount receives, moves to the DLQ). ``crash_before_delete`` simulates a worker that dies
    after processing but before deleting: SQS will deliver the message again."""
    log = []
    msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0)
    for m in msgs.get("Messages", []):
        body = json.loads(m["Body"])
        try:
            ddb.put_item(
                TableName=table,
                Item={"pk": {"S": m["MessageId"]}, "at": {"N": str(time.time())}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            log.append(f"{body['order']}: duplicate delivery, skipped")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            continue
        if body.get("poison"):
            ddb.delete_item(TableName=table, Key={"pk": {"S": m["MessageId"]}})  # release the claim: retry later
            log.append(
                f"{body['order']}: failed (receive #{m.get('Attributes', {}).get('ApproximateReceiveCount', '?')})"
            )
            continue
        s3.put_object(Bucket=bucket, Key=f"invoices/{body['order']}.json", Body=json.dumps(body).encode())
        log.append(f"{body['order']}: processed")
        if not crash_before_delete:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return log


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def manifest(s3, bucket: str) -> dict[str, str]:
    """A backup manifest: each key's current version id (versioning keeps the bytes)."""
    out = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            if v["IsLatest"]:
                out[v["Key"]] = v["VersionId"]
    return out


def restore_from(s3, bucket: str, backup: dict[str, str]) -> list[str]:
    """Bring every key of ``backup`` back to its version there, touching only keys that changed."""
    now = manifest(s3, bucket)
    restored = []
    for key, version in sorted(backup.items()):
        if now.get(key) == version:
            continue
        copy_version_back(s3, bucket, key, version)
        restored.append(key)
    return restored


def copy_version_back(s3, bucket: str, key: str, version: str) -> None:
    """Make an older version the current one again, by copying it onto its own key.

    The emulator refuses a plain copy of a version onto its own key (real AWS accepts it); with
    ``MetadataDirective='REPLACE'`` (and the version's own content type and metadata) both accept it.
    """
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version)
    s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key, "VersionId": version},
        MetadataDirective="REPLACE",
        ContentType=head.get("ContentType", "binary/octet-stream"),
        Metadata=head.get("Metadata", {}),
    )


def contents(s3, bucket: str) -> dict[str, str]:
    """{key: sha256 prefix} of every current object."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = digest(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
    return out


def versioned_bucket(s3, name: str) -> str:
    try:
        s3.create_bucket(Bucket=name)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def clients():
    return aws.client("s3"), aws.client("sqs"), aws.client("dynamodb")
