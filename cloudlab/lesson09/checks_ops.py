"""Lesson 09's operational checks: the dead-letter queue, the restore drill and the chaos experiment."""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

from .. import aws
from ..checks import check
from ..reliability import chaos, faults, fleet
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
    r.expect(
        dlq.get("MessageRetentionPeriod") == "1209600",
        "the DLQ keeps messages 14 days (time to investigate)",
        f"the DLQ keeps messages {int(dlq.get('MessageRetentionPeriod', 345600)) // 86400} days; set "
        "MessageRetentionPeriod to 1209600 (14 days) so a poison message is still there when someone looks",
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
    keys = [f"orders/{i}.json" for i in range(1, 7)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=json.dumps({"order": k, "v": 1}).encode())
    s3.put_object(Bucket=bucket, Key=keys[4], Body=json.dumps({"order": keys[4], "v": 2}).encode())
    before = drills.contents(s3, bucket)
    backup = r.call(take_backup, s3, bucket)
    r.require(
        isinstance(backup, dict) and set(backup) >= set(keys),
        f"take_backup returns a dict with an entry for each of the {len(keys)} objects",
        f"take_backup should return a dict with an entry per key, got {type(backup).__name__}: {backup!r:.120}",
    )
    versions_before = {k: _versions(s3, bucket, k) for k in keys}
    damaged = sorted(rng.sample(keys[:4], 4))
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


# ======================================================================= 09.6 chaos experiment
EXPERIMENT_FILE = "l09-my-experiment.json"


def experiment_path() -> Path:
    """Where the exercise writes its experiment: next to the notebook (the kernel's working directory)."""
    return Path.cwd() / EXPERIMENT_FILE


@check(
    "09.6",
    "Your chaos experiment checks the hypothesis before and after a real fault, and rolls back",
    hints=[
        "The file needs: title, description, a steady-state-hypothesis (title + probes, each with a tolerance), "
        "a method with at least one action that injects a fault, and rollbacks. Run "
        "chaos.validate(path) to see what Chaos Toolkit thinks of it.",
        "Action: a process provider with path 'python' and arguments ['-m', 'cloudlab.reliability.faults', "
        "'partition', 'l09-web-c', '--for', '3']. Rollback: the same module with ['heal']. Probes: copy those "
        "of lessons/09_reliability-and-chaos/instance-dies.json.",
        "Add a pause after the fault ('pauses': {'after': 3}) so the after-hypothesis is checked once the "
        "partition is over; use '--min 3' in zones-up only if the fleet has healed by then.",
    ],
)
def check_experiment(r, ns):
    path = experiment_path()
    r.require(path.exists(), f"{path.name} exists", f"{path.name} does not exist yet: run the task cell that writes it")
    try:
        exp = json.loads(path.read_text())
    except ValueError as e:
        r.fail(f"{path.name} is not valid JSON: {e}")
    r.require(isinstance(exp, dict), "the experiment is a JSON object", "the experiment must be a JSON object")
    hyp = exp.get("steady-state-hypothesis") or {}
    probes = hyp.get("probes") if isinstance(hyp, dict) else None
    r.require(
        isinstance(probes, list) and len(probes) >= 1,
        f"it states a steady-state hypothesis with {len(probes or [])} probe(s)",
        "there is no steady-state-hypothesis with probes: without one, nothing can tell whether the system held",
    )
    actions = [a for a in exp.get("method") or [] if isinstance(a, dict) and a.get("type") == "action"]
    r.require(
        actions,
        f"its method has {len(actions)} action(s)",
        "the method has no action: probes alone observe, an experiment must inject a fault",
    )
    r.require(
        isinstance(exp.get("rollbacks"), list) and exp["rollbacks"],
        "it declares rollbacks",
        "there are no rollbacks: every experiment must undo what it did, also when it fails",
    )
    ok, why = chaos.validate(path, quiet=True)
    r.require(ok, "Chaos Toolkit says the experiment is valid", f"`chaos validate` refuses it: {why}")
    st = fleet.load_state()
    r.require(
        "lb" in st,
        "the fleet runs",
        "the fleet is not running: run the setup cell at the top of the notebook again",
    )
    t0 = time.time()
    try:
        journal = chaos.run(path, {"lb_url": st["lb"]["url"]}, timeout=60, quiet=True)
    except chaos.ChaosError as e:
        r.fail(str(e))
    ss = journal.get("steady_states") or {}
    before, after = ss.get("before") or {}, ss.get("after") or {}
    r.require(
        before.get("steady_state_met") is True,
        "the hypothesis held before the fault",
        "the hypothesis did NOT hold before the fault, so Chaos Toolkit injected nothing: a probe cannot reach "
        "the service or its tolerance is wrong. Read the journal: chaos.summary(journal)",
    )
    injected = [h for h in faults.history(t0) if h["event"] == "injected"]
    refused = [
        a["output"].get("stderr", "").strip()
        for a in journal.get("run", [])
        if isinstance(a.get("output"), dict) and "refused" in (a["output"].get("stderr") or "")
    ]
    r.require(
        bool(injected),
        f"the method injected a real fault: {', '.join(h['kind'] + ' on ' + h['target'] for h in injected)}",
        "the method injected no fault into the fleet"
        + (f": {refused[0][:200]}" if refused else ": call cloudlab.reliability.faults from an action"),
    )
    r.expect(
        "steady_state_met" in after,
        "the hypothesis was checked again after the fault",
        "the hypothesis was not checked after the fault (the run stopped early): see chaos.summary(journal)",
    )
    r.expect(
        after.get("steady_state_met") is True,
        "the hypothesis held after the fault",
        "the hypothesis did not hold after the fault: read chaos.summary(journal); a pause after the fault, or "
        "a fix in the system, is what makes it hold",
    )
    rb = journal.get("rollbacks") or []
    r.expect(
        rb and all(a.get("status") == "succeeded" for a in rb),
        f"{len(rb)} rollback(s) ran and succeeded",
        "no rollback ran" if not rb else "a rollback failed: " + ", ".join(a["activity"]["name"] for a in rb),
    )
    left = faults.active()
    r.expect(
        not left,
        "no fault is left active after the experiment",
        f"faults still active after the experiment: {sorted(left)}: roll back with faults heal",
    )
