"""Lesson 09's drills: an idempotent SQS worker (a claim with a lease) with a dead-letter queue, a worker process
that dies half-way, and a backup-and-restore drill."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time

from .. import aws
from ..lab import ROOT
from ..reliability import idempotency
from ..tables import Table

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


def queue_with_dlq(sqs, name: str, dlq: str, max_receives: int = 3, visibility: int = 2) -> tuple[str, str]:
    """A queue (4 days' retention, SQS's default) whose messages move to ``dlq`` (14 days: longer than the source
    queue's, since a moved message keeps its first enqueue time) after ``max_receives`` receives. Both URLs."""
    dlq_url = sqs.create_queue(QueueName=dlq, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)})
    attrs = {"RedrivePolicy": policy, "VisibilityTimeout": str(visibility), "MessageRetentionPeriod": "345600"}
    url = sqs.create_queue(QueueName=name, Attributes=attrs)
    return url["QueueUrl"], dlq_url


LEASE_S = 3.0  # the demo's lease: short, so the lesson sees it end; a real one outlasts the longest piece of work


def work_once(
    sqs,
    ddb,
    s3,
    queue_url: str,
    table: str,
    bucket: str,
    lease_s: float = LEASE_S,
    crash_after_claim: str = "",
    wait_s: int = 0,
    say=None,
) -> list[str]:
    """One poll of the worker: each order is processed once (:func:`idempotency.process_once`, keyed on the
    ORDER id: a producer's retry is a new message with a new MessageId). Its work writes the order's invoice to
    S3 under the order's own key (idempotent by itself). A processed or duplicate message is deleted; one whose
    order is in progress elsewhere goes back to the queue until that lease ends; a failure releases the claim
    and leaves the message (after maxReceiveCount receives, SQS moves it to the DLQ).

    ``crash_after_claim``: the worker process kills itself (SIGKILL) right after claiming that order, before
    the invoice: a crash between the claim and the work (what ``python -m cloudlab.lesson09.drills work`` shows).
    ``wait_s``: long polling (wait up to that long for a message); ``say(line)``: each line as it happens.
    """
    log: list[str] = []
    if say is not None:
        log = _Said(say)
    msgs = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_s,
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )
    for m in msgs.get("Messages", []):
        body = json.loads(m["Body"])
        order = body["order_id"]
        seen = f"{order} (message {m['MessageId'][:8]}, receive #{m['Attributes']['ApproximateReceiveCount']})"

        def invoice(body=body, order=order, seen=seen):
            if order == crash_after_claim:
                print(f"{seen}: claimed; the worker dies now (SIGKILL), before the invoice", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            if body.get("poison"):
                raise ValueError("the order has no items")
            s3.put_object(Bucket=bucket, Key=f"invoices/{order}.json", Body=json.dumps(body).encode())

        try:
            result = idempotency.process_once(ddb, table, order, invoice, lease_s)
        except ValueError as e:
            log.append(f"{seen}: failed ({e}): claim released, the message stays in the queue")
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            continue
        if result == idempotency.IN_PROGRESS:
            left = lease_left(ddb, table, order)
            log.append(f"{seen}: in progress in another worker, its lease ends in {left:.1f} s: left in the queue")
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=max(1, math.ceil(left))
            )
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        log.append(f"{seen}: {result}" + (" (done before: skipped)" if result == idempotency.DUPLICATE else ""))
    return log


class _Said(list):
    def __init__(self, say):
        super().__init__()
        self.say = say

    def append(self, line):
        super().append(line)
        self.say(line)


def drain(sqs, ddb, s3, queue_url: str, table: str, bucket: str, first: int = 3, most: int = 8) -> None:
    """Poll (long polling, 1 s) until a poll finds nothing, printing each poll: what the worker does next."""
    for n in range(first, first + most):
        log = work_once(sqs, ddb, s3, queue_url, table, bucket, wait_s=1)
        print(f"poll {n}:", "; ".join(log) if log else "the queue is empty")
        if not log:
            return


def lease_left(ddb, table: str, key: str) -> float:
    """Seconds until the claim on ``key`` may be taken over (0 if none or over)."""
    rec = idempotency.records(ddb, table).get(key) or {}
    return max(0.0, (rec.get("expires") or 0) - time.time())


def records_table(ddb, table: str) -> Table:
    """The idempotency table as the worker left it: each order's status, and when an INPROGRESS lease ends."""
    now = time.time()
    rows = [
        (key, rec["status"], f"in {rec['expires'] - now:.1f} s" if rec["expires"] else "-")
        for key, rec in sorted(idempotency.records(ddb, table).items())
    ]
    return Table(("order (idempotency key)", "status", "lease ends"), rows, title=f"DynamoDB table {table}")


def crashing_worker(queue_url: str, table: str, bucket: str, crash_after_claim: str, lease_s: float = LEASE_S) -> int:
    """Run one poll of the worker in a process of its own that dies (SIGKILL) right after claiming
    ``crash_after_claim``; print what it did. Returns its exit code (-9: killed)."""
    args = ["work", "--queue", queue_url, "--table", table, "--bucket", bucket, "--lease", f"{lease_s:g}"]
    args += ["--crash-after-claim", crash_after_claim]
    print("$ python -m cloudlab.lesson09.drills " + " ".join(args))
    out = subprocess.run(
        [sys.executable, "-m", "cloudlab.lesson09.drills", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
    )
    for line in out.stdout.splitlines():
        print("   ", line)
    why = "killed by SIGKILL" if out.returncode == -signal.SIGKILL else f"exit {out.returncode} {out.stderr[-300:]}"
    print(f"    the worker process ended: {why}")
    return out.returncode


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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m cloudlab.lesson09.drills", description="lesson 09's SQS worker")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("work", help="one poll of the idempotent worker")
    w.add_argument("--queue", required=True)
    w.add_argument("--table", required=True)
    w.add_argument("--bucket", required=True)
    w.add_argument("--lease", type=float, default=LEASE_S)
    w.add_argument("--crash-after-claim", default="", help="die (SIGKILL) right after claiming this order")
    a = p.parse_args(argv)
    s3, sqs, ddb = clients()
    work_once(
        sqs, ddb, s3, a.queue, a.table, a.bucket, a.lease, a.crash_after_claim, say=lambda x: print(x, flush=True)
    )


if __name__ == "__main__":
    main()
