"""Lesson 11's adapter checks (11.1 Cloud Storage, 11.2 Azure Queue storage): the port's contract suite against
the learner's class, through a relay behind the provider's standard variable, then what the contract cannot see:

* 11.1: the version ``put`` returns is the object's real generation; what another writer put, overwrote or
  deleted is what ``get``/``list`` answer (nothing cached in the process); ``delete`` removes that key only;
  two writers creating the same key at the same moment (through a relay that slows every request, so a
  read-then-write interleaves) leave exactly one winner;
* 11.2: a lease of a length the notebook never used keeps the message hidden for that long (not for a lease
  written into the code); ``receive(1)`` leases one message, not the queue; a released message comes back with
  its id and its delivery count raised (not as a new message).
"""

from __future__ import annotations

import threading
import time
import uuid

from ..checks import check
from ..multicloud import adapters, contract, emulators, guard
from ..multicloud.port import AlreadyExists, Message
from ..multicloud.relay import Relay
from .checks import _bounded, _clauses, _env, _fresh, _own_class

RACE_DELAY = 0.4  # seconds the race's relay holds every request: longer than two threads' start-up skew


# ======================================================================= 11.1 the GCS adapter
@check(
    "11.1",
    "The Cloud Storage adapter keeps the port's contract, on the emulator named by STORAGE_EMULATOR_HOST",
    hints=[
        "Make the client with `storage.Client()` (or `guard.storage_client()`): with STORAGE_EMULATOR_HOST set it "
        "talks to the emulator. Never write the emulator's address into your code, and keep nothing in the process "
        "(another writer changes the bucket too).",
        "put: `bucket.blob(key).upload_from_string(data, if_generation_match=0 if if_absent else None)` (ONE "
        "request: checking `exists()` first is a race), turn google.api_core.exceptions.PreconditionFailed into "
        "AlreadyExists, return str(blob.generation); get: `bucket.get_blob(key)` is None when missing; list: "
        "`client.list_blobs(bucket, prefix=prefix)` (a prefix, not `in`), sorted names.",
        "delete: `bucket.blob(key).delete()` (that key only), ignoring NotFound. The check runs the contract through "
        "its own STORAGE_EMULATOR_HOST, then reads and writes the bucket with its own client.",
    ],
)
def check_gcs_store(r, ns):
    cls = _own_class(r, ns, "GcsStore", adapters.GcsStore)
    bucket = _fresh("l11-ex-gcs")
    real = guard.storage_client()
    real.create_bucket(bucket)
    try:
        port = int(emulators.address("gcs").rsplit(":", 1)[1])
        with Relay(port) as relay, _env(STORAGE_EMULATOR_HOST=relay.url):
            store = r.call(cls, bucket)
            results = contract.run_clauses(store, contract.STORE_CLAUSES, "gcp")
            _clauses(r, results, "contract")
            r.require(
                relay.connections > 0,
                "it reached the emulator through STORAGE_EMULATOR_HOST (the check's relay saw its requests)",
                "no request went through STORAGE_EMULATOR_HOST: the adapter talks to an address of its own; read the "
                "standard variable (storage.Client() does) instead of hard-coding the emulator's URL",
            )
            _generations(r, store, real, bucket)
            _other_writers(r, store, real, bucket)
        names = sorted(b.name for b in real.list_blobs(bucket))
        claims = [n for n in names if n.startswith("claims/")]
        if claims:
            first = real.bucket(bucket).blob(claims[0]).download_as_bytes()
            r.expect(
                first == b"first",
                "the refused create left the first object untouched in the bucket",
                f"the bucket's {claims[0]} holds {first!r}: a create-only put overwrote it",
            )
        if all(res.ok for res in results if res.clause == "create only"):
            _race(r, cls, real, bucket, port)
    finally:
        adapters.GcsStore(bucket, client=real).drop()


def _generations(r, store, real, bucket):
    key = f"gen/{uuid.uuid4().hex[:8]}.json"
    versions = [r.call(store.put, key, b'{"v": 1}'), r.call(store.put, key, b'{"v": 2}')]
    now = real.bucket(bucket).get_blob(key)
    r.expect(
        now is not None and versions[1] == str(now.generation) and versions[0] != versions[1],
        "put returns the object's generation (a string), a new one for every write",
        f"put returned {versions[0]!r:.40} and then {versions[1]!r:.40}; the object's generation is "
        f"{getattr(now, 'generation', None)!r}: return str(blob.generation) after the upload (not the ETag, the "
        "checksum or a number of your own)",
    )


def _other_writers(r, store, real, bucket):
    """Another writer (the check's own client) puts, overwrites and deletes: the adapter must see the bucket."""
    b = real.bucket(bucket)
    key = f"shared/{uuid.uuid4().hex[:8]}.json"
    b.blob(key).upload_from_string(b"from another writer")
    seen = [r.call(store.get, key)]
    listed = r.call(store.list, "shared/")
    b.blob(key).upload_from_string(b"changed by another writer")
    seen.append(r.call(store.get, key))
    b.blob(key).delete()
    seen.append(r.call(store.get, key))
    r.expect(
        seen == [b"from another writer", b"changed by another writer", None] and key in (listed or []),
        "what another writer puts, overwrites and deletes is what get and list answer (nothing kept in the process)",
        f"another writer put, overwrote, then deleted {key}; get answered {seen} and list('shared/') {listed!r:.80}: "
        "read the bucket every time, never a copy kept in memory or on disk",
    )
    twin = f"tmp/{uuid.uuid4().hex[:8]}.json"
    for k in (twin, twin + ".bak", twin + "/part-1"):
        b.blob(k).upload_from_string(b"x")
    r.call(store.delete, twin)
    left = sorted(x.name for x in real.list_blobs(bucket, prefix=twin))
    r.expect(
        left == [twin + ".bak", twin + "/part-1"],
        "delete removes that key only (not the keys that merely start with it)",
        f"delete('{twin}') left {left}: expected exactly [{twin}.bak, {twin}/part-1]; delete the one blob, never "
        "everything listed under the key",
    )


def _race(r, cls, real, bucket, port):
    """Two adapters create the same key at the same moment, through a relay that slows every request."""
    with Relay(port, delay=RACE_DELAY) as slow, _env(STORAGE_EMULATOR_HOST=slow.url):
        writers = [r.call(cls, bucket) for _ in range(2)]
        for _ in range(2):  # a correct adapter always has one winner; a read-then-write one loses a round
            key = f"race/{uuid.uuid4().hex[:8]}.json"
            said: list = [None, None]
            start = threading.Barrier(2)

            def create(i, key=key, said=said, start=start):
                try:
                    start.wait(10)
                    writers[i].put(key, f"writer {i}".encode(), if_absent=True)
                    said[i] = "created"
                except AlreadyExists:
                    said[i] = "refused"
                except Exception as e:  # noqa: BLE001 - reported below
                    said[i] = f"raised {type(e).__name__}"

            threads = [threading.Thread(target=create, args=(i,), daemon=True) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            blob = real.bucket(bucket).get_blob(key)
            kept = blob.download_as_bytes().decode() if blob else None
            winner = f"writer {said.index('created')}" if said.count("created") == 1 else None
            if said.count("created") != 1 or said.count("refused") != 1 or kept != winner:
                r.fail(
                    f"two writers created {key} with if_absent=True at the same moment: they were told {said}, and "
                    f"the bucket holds {kept!r}: exactly one may win. Checking exists() and then writing is a race; "
                    "let Cloud Storage decide in the write itself (if_generation_match=0)"
                )
    r.expect(
        True, "two writers creating one key at the same moment: exactly one wins, the other gets AlreadyExists", ""
    )


# ======================================================================= 11.2 the Azure queue adapter
PROBE_LEASE = 4  # seconds: a lease the notebook never uses (the contract uses 2 and 30)


@check(
    "11.2",
    "The Azure Queue adapter keeps the port's contract: leases, redelivery, precise acks",
    hints=[
        "Build the client from the connection string: "
        "`QueueClient.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING'], name)`.",
        "receive: `receive_messages(max_messages=n, messages_per_page=n, visibility_timeout=lease_seconds)` (the "
        "lease and the number you are GIVEN) and wrap each in Message(m.id, m.content, m.pop_receipt, "
        "m.dequeue_count). ack: `delete_message(message.id, message.receipt)`.",
        "release: `update_message(message.id, message.receipt, visibility_timeout=0)` (the same message comes back, "
        "its dequeue_count raised); never delete on receive (at most once), never delete and send again (a new "
        "message that forgets its count), never clear the whole queue.",
    ],
)
def check_azure_queue(r, ns):
    cls = _own_class(r, ns, "AzureQueue", adapters.AzureQueue)
    name = _fresh("l11-ex-q")
    service = guard.queue_service()
    service.create_queue(name)
    plain = service.get_queue_client(name)
    try:
        parts = guard.parse_connection_string(guard.azure_connection_string())
        port = int(parts["QueueEndpoint"].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        with Relay(port) as relay:
            relayed = ";".join(
                f"{k}={v.replace(f':{port}/', f':{relay.port}/') if k == 'QueueEndpoint' else v}"
                for k, v in parts.items()
            )
            with _env(**{guard.AZURE_VAR: relayed}):
                queue = r.call(cls, name)
                plain.send_message('{"order": "from-the-sdk"}')
                got = _bounded(r, queue.receive, 1, 30)
                r.require(
                    isinstance(got, list) and len(got) == 1 and isinstance(got[0], Message),
                    "receive returns a list of Message",
                    f"receive(1, 30) returned {got!r:.120} for one message in the queue: a list of Message",
                )
                r.expect(
                    got[0].body == '{"order": "from-the-sdk"}',
                    "a message sent with the plain SDK arrives with its body",
                    f"a message sent with the SDK arrived as {got[0].body!r}",
                )
                r.call(queue.ack, got[0])
                results = contract.run_clauses(queue, contract.QUEUE_CLAUSES, "azure")
                _clauses(r, results, "contract")
                _one_lease(r, queue, plain)
        r.expect(
            relay.connections > 0,
            "it used AZURE_STORAGE_CONNECTION_STRING (the check's relay saw its requests)",
            "no request went through AZURE_STORAGE_CONNECTION_STRING's QueueEndpoint: build the client from the "
            "standard variable, not from an address or a connection string of your own",
        )
    finally:
        service.delete_queue(name)


def _visible(plain) -> int:
    return len(list(plain.peek_messages(max_messages=32)))


def _one_lease(r, queue, plain):
    """receive(1, PROBE_LEASE) with three messages waiting: one leased for PROBE_LEASE s, two left for others."""
    for i in range(3):
        plain.send_message(f'{{"order": "probe-{i}"}}')
    t0 = time.monotonic()
    got = r.call(queue.receive, 1, PROBE_LEASE)
    visible = _visible(plain)
    r.expect(
        isinstance(got, list) and len(got) == 1 and visible == 2,
        "receive(max_messages=1) leases one message and leaves the other two visible to other workers",
        f"with three messages waiting, receive(1, {PROBE_LEASE}) returned {len(got or [])} and left {visible} visible "
        "to other workers: lease the number of messages you are given, not the queue",
    )
    time.sleep(max(0.0, PROBE_LEASE / 2 + 0.5 - (time.monotonic() - t0)))
    later = _visible(plain)
    r.expect(
        later == visible,
        f"{PROBE_LEASE / 2 + 0.5:g} s into a {PROBE_LEASE} s lease the message is still hidden (the lease you are "
        "given, not one written into the code)",
        f"{PROBE_LEASE / 2 + 0.5:g} s into a lease of {PROBE_LEASE} s, {later - visible} leased message(s) were "
        "visible again: receive must pass visibility_timeout=lease_seconds, the lease it is given",
    )
    plain.clear_messages()  # the probe's messages (the contract's are acked): the queue goes back to empty
