"""Lesson 11's reference answers for the adapter and consumer tasks (11.1 to 11.3) and the wrong answers learners
are likely to write, as the classes and functions the checks read (shared by tests/test_lesson11.py). The reference
answers are the ones in solutions/11."""

from __future__ import annotations

import json
import os
import time

from google.api_core.exceptions import AlreadyExists as Conflict
from google.api_core.exceptions import FailedPrecondition, NotFound, PreconditionFailed

from cloudlab.multicloud.port import AlreadyExists, Message

CLAIMS = "l11-charged"


# ------------------------------------------------------------------ 11.1 the Cloud Storage adapter
class GcsOk:
    def __init__(self, bucket):
        from google.cloud import storage

        self.client = storage.Client()
        self.bucket = self.client.bucket(bucket)

    def put(self, key, data, if_absent=False):
        blob = self.bucket.blob(key)
        try:
            blob.upload_from_string(data, if_generation_match=0 if if_absent else None)
        except PreconditionFailed:
            raise AlreadyExists(key) from None
        return str(blob.generation)

    def get(self, key):
        blob = self.bucket.get_blob(key)
        return None if blob is None else blob.download_as_bytes()

    def list(self, prefix=""):
        return sorted(b.name for b in self.client.list_blobs(self.bucket.name, prefix=prefix))

    def delete(self, key):
        try:
            self.bucket.blob(key).delete()
        except NotFound:
            pass


class GcsSubstring(GcsOk):
    def list(self, prefix=""):
        return sorted(b.name for b in self.client.list_blobs(self.bucket.name) if prefix in b.name)


class GcsOverwrites(GcsOk):
    def put(self, key, data, if_absent=False):
        self.bucket.blob(key).upload_from_string(data)
        return "1"


class GcsHardCoded(GcsOk):
    def __init__(self, bucket):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        from cloudlab.multicloud import emulators

        fixed = emulators.env()["STORAGE_EMULATOR_HOST"]  # the address, written into the code
        self.client = storage.Client(
            project="demo", credentials=AnonymousCredentials(), client_options={"api_endpoint": fixed}
        )
        self.bucket = self.client.bucket(bucket)


class GcsInMemory:
    def __init__(self, bucket):
        self.data = {}

    def put(self, key, data, if_absent=False):
        if if_absent and key in self.data:
            raise AlreadyExists(key)
        self.data[key] = data
        return "1"

    def get(self, key):
        return self.data.get(key)

    def list(self, prefix=""):
        return sorted(k for k in self.data if k.startswith(prefix))

    def delete(self, key):
        self.data.pop(key, None)


class GcsExistsThenWrite(GcsOk):
    """Asks first, writes afterwards: right one writer at a time, a race for two."""

    def put(self, key, data, if_absent=False):
        blob = self.bucket.blob(key)
        if if_absent and blob.exists():
            raise AlreadyExists(key)
        blob.upload_from_string(data)
        return str(blob.generation)


class GcsReturnsEtag(GcsOk):
    def put(self, key, data, if_absent=False):
        super().put(key, data, if_absent)
        return self.bucket.get_blob(key).etag


class GcsCachesReads(GcsOk):
    """Writes through to the bucket, but answers get from what this process wrote."""

    def __init__(self, bucket):
        super().__init__(bucket)
        self.cache = {}

    def put(self, key, data, if_absent=False):
        version = super().put(key, data, if_absent)
        self.cache[key] = data
        return version

    def get(self, key):
        if key not in self.cache:
            self.cache[key] = super().get(key)
        return self.cache[key]

    def delete(self, key):
        super().delete(key)
        self.cache.pop(key, None)


class GcsDeletesPrefix(GcsOk):
    def delete(self, key):
        for blob in self.client.list_blobs(self.bucket.name, prefix=key):
            blob.delete()


# ------------------------------------------------------------------ 11.2 the Azure Queue adapter
class AzOk:
    def __init__(self, name):
        from azure.storage.queue import QueueClient

        self.queue = QueueClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"], name)

    def send(self, body):
        return self.queue.send_message(body).id

    def receive(self, max_messages=1, lease_seconds=30):
        got = self.queue.receive_messages(
            max_messages=max_messages, messages_per_page=max_messages, visibility_timeout=lease_seconds
        )
        return [Message(m.id, m.content, m.pop_receipt, m.dequeue_count) for m in got]

    def ack(self, message):
        self.queue.delete_message(message.id, message.receipt)

    def release(self, message):
        self.queue.update_message(message.id, message.receipt, visibility_timeout=0)


class AzNoLease(AzOk):
    def receive(self, max_messages=1, lease_seconds=30):
        got = self.queue.receive_messages(max_messages=max_messages, messages_per_page=max_messages)
        return [Message(m.id, m.content, m.pop_receipt, m.dequeue_count) for m in got]


class AzDeleteOnReceive(AzOk):
    def receive(self, max_messages=1, lease_seconds=30):
        out = super().receive(max_messages, lease_seconds)
        for m in out:
            self.queue.delete_message(m.id, m.receipt)
        return out

    def ack(self, message):
        pass


class AzClearsAll(AzOk):
    def ack(self, message):
        self.queue.clear_messages()


class AzFirstAttempt(AzOk):
    def receive(self, max_messages=1, lease_seconds=30):
        return [Message(m.id, m.body, m.receipt, 1) for m in super().receive(max_messages, lease_seconds)]


class AzHardCoded(AzOk):
    def __init__(self, name):
        from azure.storage.queue import QueueClient

        self.queue = QueueClient.from_connection_string("UseDevelopmentStorage=true", name)


class AzLeaseOfTwo(AzOk):
    """The lease the notebook's contract uses (2 s), written into the code."""

    def receive(self, max_messages=1, lease_seconds=30):
        return super().receive(max_messages, 2 if lease_seconds < 30 else lease_seconds)


class AzReceivesAll(AzOk):
    def receive(self, max_messages=1, lease_seconds=30):
        return super().receive(32, lease_seconds)


class AzReleaseResends(AzOk):
    """release as delete + send: the message comes back, as a new one that forgot its count."""

    def release(self, message):
        self.queue.delete_message(message.id, message.receipt)
        self.queue.send_message(message.body)


# ------------------------------------------------------------------ 11.3 the idempotent consumer
def handle_ok(message, db, charge, lease_s=30, clock=time.time):
    order = json.loads(message.body)
    claim = db.collection(CLAIMS).document(order["id"])
    now = clock()
    try:
        claim.create({"status": "charging", "expires": now + lease_s})
    except Conflict:
        snap = claim.get()
        if not snap.exists:
            return "in-progress"
        if snap.get("status") == "charged":
            return "duplicate"
        if snap.get("expires") >= now:
            return "in-progress"
        try:
            claim.update(
                {"status": "charging", "expires": now + lease_s},
                option=db.write_option(last_update_time=snap.update_time),
            )
        except FailedPrecondition:
            return "in-progress"
    try:
        charge(order)
    except Exception:
        claim.delete()
        raise
    claim.update({"status": "charged"})
    return "charged"


def handle_every_time(message, db, charge, lease_s=30, clock=time.time):
    charge(json.loads(message.body))
    return "charged"


def handle_by_message_id(message, db, charge, lease_s=30, clock=time.time):
    order = json.loads(message.body)
    claim = db.collection(CLAIMS).document(message.id)
    try:
        claim.create({"status": "charging", "expires": clock() + lease_s})
    except Conflict:
        return "duplicate" if claim.get().get("status") == "charged" else "in-progress"
    charge(order)
    claim.update({"status": "charged"})
    return "charged"


def handle_read_then_write(message, db, charge, lease_s=30, clock=time.time):
    order = json.loads(message.body)
    claim = db.collection(CLAIMS).document(order["id"])
    snap = claim.get()
    if snap.exists and (snap.get("status") == "charged" or snap.get("expires") >= clock()):
        return "duplicate" if snap.get("status") == "charged" else "in-progress"
    claim.set({"status": "charging", "expires": clock() + lease_s})
    try:
        charge(order)
    except Exception:
        claim.delete()
        raise
    claim.update({"status": "charged"})
    return "charged"


def handle_keeps_claim(message, db, charge, lease_s=30, clock=time.time):
    """lesson 11's first answer, without the release: a failed charge leaves a claim nobody takes until it expires."""
    order = json.loads(message.body)
    claim = db.collection(CLAIMS).document(order["id"])
    try:
        claim.create({"status": "charging", "expires": clock() + lease_s})
    except Conflict:
        snap = claim.get()
        return "duplicate" if snap.get("status") == "charged" else "in-progress"
    charge(order)
    claim.update({"status": "charged"})
    return "charged"


def handle_any_claim_is_duplicate(message, db, charge, lease_s=30, clock=time.time):
    """The one-step claim of a simpler task: any document means 'done', so a dead worker's order is lost."""
    order = json.loads(message.body)
    claim = db.collection(CLAIMS).document(order["id"])
    try:
        claim.create({"status": "charging", "expires": clock() + lease_s})
    except Conflict:
        return "duplicate"
    try:
        charge(order)
    except Exception:
        claim.delete()
        raise
    claim.update({"status": "charged"})
    return "charged"


def handle_no_lease(message, db, charge, lease_s=30, clock=time.time):
    """A status but no lease: released in `except`, which a dying worker never runs."""
    order = json.loads(message.body)
    claim = db.collection(CLAIMS).document(order["id"])
    try:
        claim.create({"status": "charging"})
    except Conflict:
        return "duplicate" if claim.get().get("status") == "charged" else "in-progress"
    try:
        charge(order)
    except Exception:
        claim.delete()
        raise
    claim.update({"status": "charged"})
    return "charged"


def handle_takeover_with_set(message, db, charge, lease_s=30, clock=time.time):
    """Takes an expired claim over with a plain set(): every copy that read it expired takes it."""
    order = json.loads(message.body)
    claim = db.collection(CLAIMS).document(order["id"])
    now = clock()
    try:
        claim.create({"status": "charging", "expires": now + lease_s})
    except Conflict:
        snap = claim.get()
        if not snap.exists:
            return "in-progress"
        if snap.get("status") == "charged":
            return "duplicate"
        if snap.get("expires") >= now:
            return "in-progress"
        claim.set({"status": "charging", "expires": now + lease_s})
    try:
        charge(order)
    except Exception:
        claim.delete()
        raise
    claim.update({"status": "charged"})
    return "charged"


def handle_wall_clock(message, db, charge, lease_s=30, clock=time.time):
    """The reference answer, on time.time() instead of the clock it is given."""
    return handle_ok(message, db, charge, lease_s=lease_s, clock=time.time)


def handle_default_lease(message, db, charge, lease_s=30, clock=time.time):
    """The reference answer, with the task's default lease written in."""
    return handle_ok(message, db, charge, lease_s=30, clock=clock)
