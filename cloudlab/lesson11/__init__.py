"""Lesson 11 (multi-cloud): the lesson's glue, its reset and its checks.

The toolkit is :mod:`cloudlab.multicloud` (guard, emulators, port + adapters + contract, semantics, the Cloud
Function, egress prices, the services map). Here: the setup cell's :func:`start`, the names the notebooks use,
the reset hook (the emulators keep running; their l11 data goes) and the checks (:mod:`.checks`).
"""

from __future__ import annotations

import os

from .. import cleanup, net
from ..multicloud import emulators, guard
from .checks import EX_ARCHIVE_BUCKET, EX_PUSH, EX_TOPIC, check_egress, check_function  # noqa: F401
from .checks_adapters import check_azure_queue, check_gcs_store  # noqa: F401
from .checks_idem import EX_CLAIMS, check_idempotent  # noqa: F401

cleanup.keep_running("11", *emulators.PROC.values())


def start():
    """Start (or reuse) the four emulators side by side and set the providers' variables; show the table."""
    return emulators.table(emulators.start())


def deploy(source, bucket: str = EX_ARCHIVE_BUCKET):
    """Deploy a function file the way the lesson does (functions-framework on the lab's function port)."""
    from ..multicloud import functions

    return functions.deploy(source, bucket=bucket)


def _answering(name: str) -> bool:
    try:
        return emulators.answers(name)
    except Exception:  # noqa: BLE001 - an emulator that is not there has nothing to wipe
        return False


@cleanup.extra("11")
def _reset() -> cleanup.Removed:
    """Wipe the lesson's data in the emulators that run (they stay up: Java starts slowly)."""
    for k, v in emulators.env().items():
        os.environ.setdefault(k, v)
    removed: cleanup.Removed = {}
    if _answering("pubsub"):
        pub, sub = guard.publisher(), guard.subscriber()
        project = f"projects/{guard.project()}"
        removed["subscriptions"] = []
        for s in sub.list_subscriptions(project=project):
            if s.name.rsplit("/", 1)[-1].startswith("l11-"):
                sub.delete_subscription(subscription=s.name)
                removed["subscriptions"].append(s.name.rsplit("/", 1)[-1])
        removed["topics"] = []
        for t in pub.list_topics(project=project):
            if t.name.rsplit("/", 1)[-1].startswith("l11-"):
                pub.delete_topic(topic=t.name)
                removed["topics"].append(t.name.rsplit("/", 1)[-1])
    if _answering("firestore"):  # the lab's own project: the emulator's reset endpoint wipes it
        url = f"{emulators.address('firestore')}/emulator/v1/projects/{guard.project()}/databases/(default)/documents"
        net.request("DELETE", url, timeout=10)
        removed["firestore"] = [guard.project()]
    if _answering("gcs"):
        client = guard.storage_client()
        removed["gcs buckets"] = []
        for b in client.list_buckets():
            if b.name.startswith("l11-"):
                for blob in client.list_blobs(b.name):
                    blob.delete()
                b.delete()
                removed["gcs buckets"].append(b.name)
    if _answering("azurite"):
        removed["azure"] = []
        blobs = guard.blob_service()
        for c in blobs.list_containers(name_starts_with="l11-"):
            blobs.delete_container(c.name)
            removed["azure"].append(c.name)
        queues = guard.queue_service()
        for q in queues.list_queues(name_starts_with="l11-"):
            queues.delete_queue(q.name)
            removed["azure"].append(q.name)
        tables = guard.table_service()
        for t in tables.list_tables():
            if t.name.startswith("l11"):
                tables.delete_table(t.name)
                removed["azure"].append(t.name)
    return {k: v for k, v in removed.items() if v}
