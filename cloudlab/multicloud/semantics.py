"""Where the clouds differ, shown by real calls against the emulators (lesson 11).

Each function runs the same experiment on the three clouds (side by side where it waits) and returns a table of
what the emulators really answered: leases and redelivery, a stale receipt, conditional writes, ordering.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ..tables import Table
from . import adapters, guard

LEASE_CALL = {
    "aws": "ReceiveMessage(VisibilityTimeout=2)",
    "gcp": "pull, then ModifyAckDeadline(ack_deadline_seconds=2)",
    "azure": "receive_messages(visibility_timeout=2)",
}
COUNTER = {"aws": "ApproximateReceiveCount", "gcp": "delivery_attempt", "azure": "dequeue_count"}


def _queues(prefix: str) -> dict:
    tag = uuid.uuid4().hex[:6]
    return {c: q(f"{prefix}-{c}-{tag}").ensure() for c, q in adapters.QUEUES.items()}


def _lease_one(queue, lease: int) -> dict:
    queue.send('{"order": "o-lease"}')
    first = []
    for _ in range(20):
        first = queue.receive(1, lease)
        if first:
            break
    t0 = time.monotonic()
    hidden = not queue.receive(10, lease)
    back = []
    while not back and time.monotonic() - t0 < lease + 10:
        back = queue.receive(1, 30)
    took = time.monotonic() - t0
    out = {
        "hidden": hidden,
        "back_after": took if back else None,
        "attempts": (first[0].attempts, back[0].attempts if back else None),
        "new_receipt": bool(back) and back[0].receipt != first[0].receipt,
        "first": first[0],
        "back": back[0] if back else None,
    }
    return out


def leases(lease: int = 2):
    """Send one message per cloud, receive it with a ``lease``-second lease, never ack: when does it come back?"""
    qs = _queues("l11-lease")
    with ThreadPoolExecutor(3) as pool:
        seen = dict(zip(qs, pool.map(lambda q: _lease_one(q, lease), qs.values()), strict=True))
    rows = []
    for c, s in seen.items():
        back = "never (within the wait)" if s["back_after"] is None else f"{s['back_after']:.1f} s"
        rows.append(
            (
                adapters.CLOUDS[c],
                LEASE_CALL[c],
                "yes" if s["hidden"] else "NO",
                back,
                f"{COUNTER[c]}: {s['attempts'][0]} -> {s['attempts'][1]}",
                "new" if s["new_receipt"] else "same",
            )
        )
    return Table(
        ("cloud", "the lease", "hidden meanwhile", "back after", "delivery counter", "receipt on redelivery"),
        rows,
        title=f"At-least-once: a message received with a {lease} s lease and never acked",
    ), (qs, seen)


def stale_receipt(queues_and_seen):
    """Ack each redelivered message with the receipt of its FIRST delivery: what does each cloud do?"""
    qs, seen = queues_and_seen
    rows = []
    for c, q in qs.items():
        s = seen[c]
        try:
            q.ack(s["first"])
            answer = "accepted"
        except Exception as e:  # noqa: BLE001 - the provider's answer is the lesson
            answer = f"refused: {getattr(e, 'error_code', None) or type(e).__name__}"
        time.sleep(0.2)
        still = None
        if s["back"] is not None:
            try:
                q.release(s["back"])  # if the message still exists, this makes it visible again at once
                still = bool(q.receive(1, 30))
            except Exception:  # noqa: BLE001 - releasing a deleted message fails: it is gone
                still = False
        rows.append((adapters.CLOUDS[c], answer, {True: "still there", False: "deleted", None: "?"}[still]))
        q.drop()
    return Table(("cloud", "ack with the first delivery's receipt", "the message afterwards"), rows)


def conditional_writes():
    """Create-only and compare-and-swap writes on the three object stores, with each provider's own mechanism."""
    tag = uuid.uuid4().hex[:6]
    rows = []
    # AWS: If-None-Match: * to create, If-Match: <etag> to update
    s3 = adapters.S3Store(f"l11-cond-{tag}").ensure()
    rows.append(_cas("aws", s3, "IfNoneMatch='*'", "IfMatch=<ETag>", *_s3_ops(s3)))
    gcs = adapters.GcsStore(f"l11-cond-{tag}").ensure()
    rows.append(_cas("gcp", gcs, "if_generation_match=0", "if_generation_match=<generation>", *_gcs_ops(gcs)))
    blob = adapters.BlobStore(f"l11-cond-{tag}").ensure()
    rows.append(_cas("azure", blob, "overwrite=False (If-None-Match: *)", "etag=<ETag>, IfNotModified", *_az_ops(blob)))
    for s in (s3, gcs, blob):
        s.drop()
    return Table(
        ("cloud", "create only", "2nd create", "update if unchanged", "stale update", "current update"),
        rows,
        title="Conditional writes: the version each cloud hands out, and who refuses what",
    )


def _outcome(fn) -> str:
    try:
        fn()
        return "accepted"
    except Exception as e:  # noqa: BLE001 - the provider's status is the lesson
        code = getattr(e, "code", None) or getattr(e, "status_code", None)
        if code is None and hasattr(e, "response"):
            code = (getattr(e, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"refused ({code or type(e).__name__})"


def _cas(cloud, store, create, update, put_new, version, put_if):
    key = "orders/o-1.json"
    first = _outcome(lambda: put_new(key, b"v1"))
    second = _outcome(lambda: put_new(key, b"v2"))
    v1 = version(key)
    ok1 = _outcome(lambda: put_if(key, b"v3", v1))
    stale = _outcome(lambda: put_if(key, b"v4", v1))
    now = _outcome(lambda: put_if(key, b"v5", version(key)))
    assert first == "accepted"
    return (adapters.CLOUDS[cloud], create, second, f"{update}: {ok1}", stale, now)


def _s3_ops(s):
    def put_new(k, d):
        s.s3.put_object(Bucket=s.bucket, Key=k, Body=d, IfNoneMatch="*")

    def version(k):
        return s.s3.head_object(Bucket=s.bucket, Key=k)["ETag"]

    def put_if(k, d, v):
        s.s3.put_object(Bucket=s.bucket, Key=k, Body=d, IfMatch=v)

    return put_new, version, put_if


def _gcs_ops(s):
    def put_new(k, d):
        s.bucket.blob(k).upload_from_string(d, if_generation_match=0)

    def version(k):
        return s.bucket.get_blob(k).generation

    def put_if(k, d, v):
        s.bucket.blob(k).upload_from_string(d, if_generation_match=v)

    return put_new, version, put_if


def _az_ops(s):
    from azure.core import MatchConditions

    def put_new(k, d):
        s.container.get_blob_client(k).upload_blob(d, overwrite=False)

    def version(k):
        return s.container.get_blob_client(k).get_blob_properties().etag

    def put_if(k, d, v):
        s.container.get_blob_client(k).upload_blob(
            d, overwrite=True, etag=v, match_condition=MatchConditions.IfNotModified
        )

    return put_new, version, put_if


def ordering():
    """Ordering keys: what each cloud asks for, and what happens without it (real client calls)."""
    from google.cloud import pubsub_v1

    rows = []
    tag = uuid.uuid4().hex[:6]
    sqs = adapters.SqsQueue("x").sqs
    fifo = sqs.create_queue(QueueName=f"l11-order-{tag}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    no_group = _outcome(lambda: sqs.send_message(QueueUrl=fifo, MessageBody="o-1"))
    ok = _outcome(
        lambda: sqs.send_message(QueueUrl=fifo, MessageBody="o-1", MessageGroupId="cust-1", MessageDeduplicationId="1")
    )
    sqs.delete_queue(QueueUrl=fifo)
    rows.append(
        (adapters.CLOUDS["aws"], "a FIFO queue (name .fifo) + MessageGroupId", f"without a group: {no_group}", ok)
    )
    guard.gcp_endpoint("pubsub")
    plain = pubsub_v1.PublisherClient()
    topic = plain.topic_path(guard.project(), f"l11-order-{tag}")
    plain.create_topic(name=topic)
    without = _outcome(lambda: plain.publish(topic, b"o-1", ordering_key="cust-1").result())
    ordered = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    ok = _outcome(lambda: ordered.publish(topic, b"o-1", ordering_key="cust-1").result())
    plain.delete_topic(topic=topic)
    rows.append(
        (
            adapters.CLOUDS["gcp"],
            "ordering_key + enable_message_ordering (publisher and subscription)",
            f"ordering not enabled: {without}",
            ok,
        )
    )
    rows.append((adapters.CLOUDS["azure"], "none in Queue Storage (Service Bus: sessions)", "no such parameter", "-"))
    return Table(("cloud", "in-order delivery needs", "a key without the setting", "with it"), rows)
