"""Lesson 09's operational checks: the dead-letter queue and the restore drill (the chaos experiment: checks_chaos)."""

from __future__ import annotations

import json
import random
import time
import uuid

from .. import aws
from ..checks import check
from . import drills

# ======================================================================= 09.4 dead-letter queue
EX_QUEUE, EX_DLQ = "l09-ex-jobs", "l09-ex-jobs-dlq"


@check(
    "09.4",
    "A message that always fails ends in the dead-letter queue after 3 receives",
    hints=[
        "Create the DLQ first (MessageRetentionPeriod '1209600', 14 days), read its QueueArn with "
        "get_queue_attributes, then create the source queue with a RedrivePolicy attribute.",
        "RedrivePolicy is a JSON string: json.dumps({'deadLetterTargetArn': dlq_arn, 'maxReceiveCount': '3'}). "
        "If the queue already exists, set it with sqs.set_queue_attributes.",
    ],
)
def check_dlq(r, ns):
    sqs = aws.client("sqs")
    urls = {}
    for name in (EX_QUEUE, EX_DLQ):
        try:
            urls[name] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            r.fail(f"there is no queue {name!r} yet: create it in the task cell")
    src = sqs.get_queue_attributes(QueueUrl=urls[EX_QUEUE], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=urls[EX_DLQ], AttributeNames=["All"])["Attributes"]
    r.require(
        "RedrivePolicy" in src,
        f"{EX_QUEUE} has a redrive policy",
        f"{EX_QUEUE} has no RedrivePolicy: a failing message would be retried until it expires",
    )
    try:
        policy = json.loads(src["RedrivePolicy"])
    except ValueError:
        r.fail(f"the RedrivePolicy of {EX_QUEUE} is not JSON: {src['RedrivePolicy']!r:.100}")
    r.expect(
        policy.get("deadLetterTargetArn") == dlq["QueueArn"],
        f"its dead-letter target is {EX_DLQ}",
        f"deadLetterTargetArn is {policy.get('deadLetterTargetArn')!r}, not the ARN of {EX_DLQ} ({dlq['QueueArn']})",
    )
    r.expect(
        str(policy.get("maxReceiveCount")) == "3",
        "maxReceiveCount is 3",
        f"maxReceiveCount is {policy.get('maxReceiveCount')!r}; the task asks for 3 (a poison message should not "
        "be retried for ever, nor moved after one unlucky failure)",
    )
    r.expect(
        "RedrivePolicy" not in dlq,
        f"{EX_DLQ} itself has no redrive policy (nothing leaves it by itself)",
        f"{EX_DLQ} has a RedrivePolicy too: the policy belongs on the source queue",
    )
    kept, src_kept = int(dlq.get("MessageRetentionPeriod", 345600)), int(src.get("MessageRetentionPeriod", 345600))
    r.expect(
        kept == 1209600,
        "the DLQ keeps messages 14 days (time to investigate)",
        f"the DLQ keeps messages {_days(kept)}; set MessageRetentionPeriod to 1209600 (14 days, in seconds) so a "
        "poison message is still there when someone looks",
    )
    r.expect(
        kept > src_kept,
        f"the DLQ keeps messages longer than {EX_QUEUE} ({_days(kept)} against {_days(src_kept)}): a moved message "
        "keeps its first enqueue time, so the DLQ's clock started in the source queue",
        f"the DLQ keeps messages {_days(kept)} and {EX_QUEUE} {_days(src_kept)}: a message moved to a standard "
        "queue's DLQ keeps its original enqueue time (SQS Developer Guide, dead-letter queue retention), so a DLQ "
        "that is not kept longer than its source can delete it at once; leave the source at its default (4 days)",
    )
    marker = f"poison-{uuid.uuid4().hex[:10]}"
    sqs.send_message(QueueUrl=urls[EX_QUEUE], MessageBody=json.dumps({"order": marker, "poison": True}))
    receives, in_dlq = 0, None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and in_dlq is None and receives <= 10:
        for m in sqs.receive_message(QueueUrl=urls[EX_QUEUE], MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            if marker in m["Body"]:
                receives += 1  # the worker fails: no delete, the message comes back
        for m in sqs.receive_message(QueueUrl=urls[EX_DLQ], MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            if marker in m["Body"]:
                in_dlq = m
                sqs.delete_message(QueueUrl=urls[EX_DLQ], ReceiptHandle=m["ReceiptHandle"])
    r.expect(
        in_dlq is not None and receives == 3,
        f"a poison message was received 3 times, then moved to {EX_DLQ}",
        f"a message that always fails was received {receives} times and "
        + ("reached the DLQ" if in_dlq else f"did not reach {EX_DLQ} within 5 s"),
    )


def _days(seconds: int) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds} s"


# ======================================================================= 09.5 backup and restore
RTO_S = 5.0


@check(
    "09.5",
    "The restore brings back exactly the damaged objects, within the RTO",
    hints=[
        "take_backup: list_object_versions(Bucket=bucket) (all pages) and keep, for each key, the VersionId "
        "of the version with IsLatest True. That dict IS the backup: versioning keeps the bytes.",
        "restore: compare each key's current latest version with the backup; only for keys that differ (or "
        "are deleted), copy the backed-up version back onto its key: copy_object(Bucket=b, Key=k, CopySource="
        "{'Bucket': b, 'Key': k, 'VersionId': v}, MetadataDirective='REPLACE') (the emulator needs REPLACE). "
        "Leave the other keys alone.",
        "Return the sorted list of keys you restored. Objects written after the backup are not yours to delete.",
    ],
)
def check_restore(r, ns):
    take_backup = r.need(ns, "take_backup", callable)
    restore = r.need(ns, "restore", callable)
    s3 = aws.client("s3")
    bucket = drills.versioned_bucket(s3, f"l09-ex-drill-{uuid.uuid4().hex[:6]}")
    rng = random.Random()
    keys = [f"orders/{i}.json" for i in range(1, 7)] + ["refunds/2026 Q1/r-1.json", "refunds/2026 Q1/r-2.json"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=json.dumps({"order": k, "v": 1}).encode())
    s3.put_object(Bucket=bucket, Key=keys[4], Body=json.dumps({"order": keys[4], "v": 2}).encode())
    before = drills.contents(s3, bucket)
    backup = r.call(take_backup, s3, bucket)
    r.require(
        isinstance(backup, dict) and set(backup) >= set(keys),
        f"take_backup returns a dict with an entry for each of the {len(keys)} objects (this check cannot tell "
        "whether it reads every page: list_object_versions returns 1000 versions per page, so on a real bucket "
        "use its paginator)",
        f"take_backup should return a dict with an entry per key, got {type(backup).__name__}: {backup!r:.120}",
    )
    versions_before = {k: _versions(s3, bucket, k) for k in keys}
    damaged = sorted(rng.sample(keys[:4], 3) + [keys[6]])  # one under another prefix, with a space in it
    s3.delete_object(Bucket=bucket, Key=damaged[0])
    s3.delete_object(Bucket=bucket, Key=damaged[1])
    for body in (b"garbage", b"more garbage"):  # corrupted twice: 'the previous version' is not the good one
        s3.put_object(Bucket=bucket, Key=damaged[2], Body=body)
    s3.delete_object(Bucket=bucket, Key=damaged[3])
    s3.put_object(Bucket=bucket, Key=damaged[3], Body=b"{")
    s3.put_object(Bucket=bucket, Key="orders/new.json", Body=b'{"order": "written after the backup"}')
    t0 = time.monotonic()
    try:
        restored = restore(s3, bucket, backup)
    except Exception as e:
        if "to itself" in str(e):
            r.fail(
                "copy_object refused to copy an older version onto its own key: the emulator needs "
                "MetadataDirective='REPLACE' for that (real AWS accepts the plain copy too)"
            )
        restored = r.call(restore, s3, bucket, backup)  # reports any other error in plain words
    took = time.monotonic() - t0
    now = drills.contents(s3, bucket)
    wrong = [k for k in keys if now.get(k) != before[k]]
    r.expect(
        not wrong,
        "every damaged object has its backed-up content again (deleted, corrupted twice, deleted and rewritten)",
        f"after the restore these objects differ from the backup: {wrong} (the bucket was only damaged, "
        "never restored, if this lists them all)",
    )
    untouched = [k for k in keys if k not in damaged]
    extra = [k for k in untouched if _versions(s3, bucket, k) != versions_before[k]]
    r.expect(
        not extra,
        "objects that were not damaged were left alone (no new versions)",
        f"objects that were fine got new versions: {extra}: restore only what changed",
    )
    r.expect(
        "orders/new.json" in now,
        "an object written after the backup is still there",
        "orders/new.json, written after the backup, is gone: a restore must not delete newer data",
    )
    r.expect(
        isinstance(restored, (list, tuple)) and sorted(restored) == damaged,
        f"restore returned the restored keys: {damaged}",
        f"restore should return the keys it restored ({damaged}), returned {restored!r:.150}",
    )
    r.expect(
        took <= RTO_S,
        f"it took {took:.2f} s, within the RTO of {RTO_S:g} s",
        f"the restore took {took:.1f} s, over the RTO of {RTO_S:g} s",
    )
    from ..cleanup import empty_and_delete_bucket

    empty_and_delete_bucket(s3, bucket)


def _versions(s3, bucket: str, key: str) -> list[str]:
    out = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in out.get("Versions", []) + out.get("DeleteMarkers", []) if v["Key"] == key]
