"""Lesson 11's checks: each drives the learner's code against the real emulators, with fresh names, and reads
what really happened there (the bucket's objects, the queue's messages, the Firestore documents, the push
subscription). Two of them put a relay (:mod:`cloudlab.multicloud.relay`) behind the provider's standard variable:
code that hard-coded an emulator's address never reaches it."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager

from .. import net, procs
from ..checks import check
from ..multicloud import adapters, contract, egress, emulators, functions, guard
from ..multicloud.port import Message
from ..multicloud.relay import Relay

EX_CLAIMS = "l11-charged"
EX_TOPIC = "l11-ex-orders"
EX_PUSH = "l11-ex-archive-push"
EX_ARCHIVE_BUCKET = "l11-ex-archive"


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _own_class(r, ns, name: str, toolkit_cls):
    cls = r.need(ns, name, type, "class")
    r.require(
        not issubclass(cls, toolkit_cls),
        f"`{name}` is your own class",
        f"`{name}` is the toolkit's {toolkit_cls.__name__} (or built on it): write the adapter yourself",
    )
    return cls


def _bounded(r, fn, *args, seconds: float = 10.0):
    """Call learner code in a thread: an SDK retrying an address where nothing listens is reported, not waited for."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported below
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    if th.is_alive():
        r.fail(
            f"`{getattr(fn, '__name__', fn)}` had no answer after {seconds:.0f} s: is it talking to the emulator named "
            "by the standard variable? (An SDK retries an address where nothing listens for a long time.)"
        )
    if "error" in box:
        return r.call(lambda: (_ for _ in ()).throw(box["error"]))
    return box.get("value")


def _clauses(r, results, what: str) -> None:
    for res in results:
        r.expect(res.ok, f"{what}: {res.detail}", f"{what}, clause '{res.clause}': {res.detail}")


# ======================================================================= 11.1 the GCS adapter
@check(
    "11.1",
    "The Cloud Storage adapter keeps the port's contract, on the emulator named by STORAGE_EMULATOR_HOST",
    hints=[
        "Make the client with `storage.Client()` (or `guard.storage_client()`): with STORAGE_EMULATOR_HOST set it "
        "talks to the emulator. Never write the emulator's address into your code.",
        "put: `bucket.blob(key).upload_from_string(data, if_generation_match=0 if if_absent else None)`, and turn "
        "google.api_core.exceptions.PreconditionFailed into AlreadyExists; get: `bucket.get_blob(key)` is None when "
        "missing; list: `client.list_blobs(bucket, prefix=prefix)` (a prefix, not `in`), sorted names.",
        "delete: `bucket.blob(key).delete()`, ignoring NotFound. The check runs the contract through its own "
        "STORAGE_EMULATOR_HOST, then reads the bucket with its own client.",
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
        r.expect(
            relay.connections > 0,
            "it reached the emulator through STORAGE_EMULATOR_HOST (the check's relay saw its requests)",
            "no request went through STORAGE_EMULATOR_HOST: the adapter talks to an address of its own; read the "
            "standard variable (storage.Client() does) instead of hard-coding the emulator's URL",
        )
        names = sorted(b.name for b in real.list_blobs(bucket))
        r.expect(
            any(n.startswith("claims/") for n in names) and any("/orders/" in n for n in names),
            f"the bucket really holds what the contract wrote ({len(names)} objects, read with the check's client)",
            f"the emulator's bucket holds {names[:5]}: the adapter's writes never reached Cloud Storage",
        )
        claims = [n for n in names if n.startswith("claims/")]
        if claims:
            first = real.bucket(bucket).blob(claims[0]).download_as_bytes()
            r.expect(
                first == b"first",
                "the refused create left the first object untouched in the bucket",
                f"the bucket's {claims[0]} holds {first!r}: a create-only put overwrote it",
            )
    finally:
        adapters.GcsStore(bucket, client=real).drop()


# ======================================================================= 11.2 the Azure queue adapter
@check(
    "11.2",
    "The Azure Queue adapter keeps the port's contract: leases, redelivery, precise acks",
    hints=[
        "Build the client from the connection string: "
        "`QueueClient.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING'], name)`.",
        "receive: `receive_messages(max_messages=n, messages_per_page=n, visibility_timeout=lease_seconds)` and "
        "wrap each in Message(m.id, m.content, m.pop_receipt, m.dequeue_count). ack: "
        "`delete_message(message.id, message.receipt)`.",
        "release: `update_message(message.id, message.receipt, visibility_timeout=0)`; never delete on receive "
        "(that is at-most-once) and never clear the whole queue.",
    ],
)
def check_azure_queue(r, ns):
    cls = _own_class(r, ns, "AzureQueue", adapters.AzureQueue)
    name = _fresh("l11-ex-q")
    service = guard.queue_service()
    service.create_queue(name)
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
                service.get_queue_client(name).send_message('{"order": "from-the-sdk"}')
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
        r.expect(
            relay.connections > 0,
            "it used AZURE_STORAGE_CONNECTION_STRING (the check's relay saw its requests)",
            "no request went through AZURE_STORAGE_CONNECTION_STRING's QueueEndpoint: build the client from the "
            "standard variable, not from an address or a connection string of your own",
        )
        left = service.get_queue_client(name).get_queue_properties().approximate_message_count
        r.expect(
            left == 0,
            "afterwards the queue is empty in Azurite: every acked message is really deleted",
            f"Azurite still holds {left} message(s) the contract acked: ack must delete_message with its pop receipt",
        )
    finally:
        service.delete_queue(name)


# ======================================================================= 11.3 idempotent consumer
def _order_ids(tag):
    return {k: f"o-{k}-{tag}" for k in "ABCD"}


@check(
    "11.3",
    "The Pub/Sub consumer charges each order once, whatever Pub/Sub redelivers",
    hints=[
        f"Claim the ORDER id (not the message id: a publisher retry makes a new message) in Firestore, in one "
        f"atomic step: `db.collection('{EX_CLAIMS}').document(order_id).create({{...}})` raises AlreadyExists "
        "(a Conflict) when it is there.",
        "Claimed already: return without charging (the message gets acked). Reading first and writing after "
        "(`get()` then `set()`) is a race: two copies both read 'not there'.",
        "If `charge(order)` raises, delete your claim and re-raise, so the redelivery can charge it.",
    ],
)
def check_idempotent(r, ns):
    handle = r.need(ns, "handle", callable)
    db = guard.firestore_client()
    tag = uuid.uuid4().hex[:8]
    ids = _order_ids(tag)
    charges: Counter = Counter()
    tries: Counter = Counter()
    lock = threading.Lock()

    def charge(order):
        oid = order["id"] if isinstance(order, dict) else order
        with lock:
            tries[oid] += 1
            if oid == ids["C"] and tries[oid] == 1:
                raise RuntimeError("the card processor timed out (the check fails this charge once)")
            charges[oid] += 1
        time.sleep(0.05)

    queue = adapters.PubSubQueue(_fresh("l11-ex-idem")).ensure()
    try:
        for key in "AABC":  # order A twice: a publisher that retried
            queue.send(json.dumps({"id": ids[key], "item": "book", "qty": 1}))
        lost_ack = {"done": False}
        deadline = time.monotonic() + 15
        errors = []
        idle_since = None
        while time.monotonic() < deadline:
            got = queue.receive(max_messages=10, lease_seconds=1)
            if not got:  # quiet for longer than a lease: nothing is coming back
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 2.5:
                    break
                time.sleep(0.2)
                continue
            idle_since = None
            for m in got:
                try:
                    handle(m, db, charge)
                except NotImplementedError:
                    r.fail("`handle` still raises NotImplementedError: replace the TODO with your code.")
                except Exception as e:  # noqa: BLE001 - a failure is allowed: the message goes back
                    errors.append(f"{type(e).__name__}: {e}")
                    queue.release(m)
                    continue
                if json.loads(m.body)["id"] == ids["B"] and not lost_ack["done"]:
                    lost_ack["done"] = True  # the worker 'crashed' after the work, before the ack: redelivered
                    continue
                queue.ack(m)
        r.expect(
            charges[ids["A"]] == 1,
            "an order published twice (two messages) is charged once",
            f"order A, published twice, was charged {charges[ids['A']]} times: key the claim on the order's id, not "
            "on the message id",
        )
        r.expect(
            charges[ids["B"]] == 1 and lost_ack["done"],
            "a message redelivered after a lost ack is not charged again",
            f"order B, redelivered after its ack was lost, was charged {charges[ids['B']]} times",
        )
        r.expect(
            charges[ids["C"]] == 1 and tries[ids["C"]] >= 2,
            "a charge that failed is retried on the redelivery and then charged once",
            f"order C's first charge failed; afterwards it was charged {charges[ids['C']]} times in {tries[ids['C']]} "
            "tries: on a failure, release your claim and re-raise, so the redelivery can charge it",
        )
        docs = {d.id for d in db.collection(EX_CLAIMS).list_documents()}
        missing = [ids[k] for k in "ABC" if ids[k] not in docs]
        r.expect(
            not missing,
            f"Firestore holds a claim in `{EX_CLAIMS}` for every charged order, named by the order id",
            f"no document {EX_CLAIMS}/<order id> for {missing}: claim with the order id as the document id",
        )
        left = queue.receive(max_messages=10, lease_seconds=1)
        r.expect(not left, "nothing is left in the subscription", f"{len(left)} message(s) still come back")
        # six copies of one new order at the same moment
        start = threading.Barrier(6)

        def one(i):
            start.wait(5)
            m = Message(f"dup-{i}-{tag}", json.dumps({"id": ids["D"], "item": "pen", "qty": 2}), f"r-{i}", 1)
            try:
                handle(m, db, charge)
            except Exception:  # noqa: BLE001 - counted through the charges
                pass

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        r.expect(
            charges[ids["D"]] == 1,
            "six copies handled at the same moment charge once (the claim is atomic)",
            f"six copies of order D handled at the same moment were charged {charges[ids['D']]} times: read-then-"
            "write is a race; create() the claim document in one step",
        )
    finally:
        queue.drop()
        for k in "ABCD":
            db.collection(EX_CLAIMS).document(ids[k]).delete()


# ======================================================================= 11.4 the Cloud Function
@check(
    "11.4",
    "A message on the topic becomes an object in the archive bucket, through your Cloud Function",
    hints=[
        "In `archive_order(cloud_event)`: the message is `cloud_event.data['message']`; its `data` is base64: "
        "`json.loads(base64.b64decode(...))`. Write `archive/<id>.json` to the bucket named by ARCHIVE_BUCKET.",
        f"The subscription: `subscriber.create_subscription(request={{'name': ..., 'topic': ..., 'push_config': "
        f"{{'push_endpoint': fn.url}}}})` on topic `{EX_TOPIC}`, named `{EX_PUSH}`.",
        "Read the bucket name from os.environ['ARCHIVE_BUCKET'] inside the function: the check deploys your file a "
        "second time with another bucket.",
    ],
)
def check_function(r, ns):
    sub = guard.subscriber()
    project = guard.project()
    path = sub.subscription_path(project, EX_PUSH)
    from google.api_core.exceptions import NotFound

    try:
        s = sub.get_subscription(subscription=path)
    except NotFound:
        r.fail(f"no subscription `{EX_PUSH}` in the Pub/Sub emulator: create it (push, to your function's URL)")
    fn_url = f"http://127.0.0.1:{emulators.lab().port('function')}"
    r.expect(
        s.topic.endswith(f"/topics/{EX_TOPIC}"),
        f"`{EX_PUSH}` listens to the topic `{EX_TOPIC}`",
        f"`{EX_PUSH}` is on {s.topic}, not on `{EX_TOPIC}`",
    )
    endpoint = s.push_config.push_endpoint
    r.require(
        endpoint.startswith(fn_url),
        f"it pushes to the deployed function ({endpoint})",
        f"`{EX_PUSH}` pushes to {endpoint or 'nowhere (a pull subscription)'}: set push_config.push_endpoint to "
        f"the function's URL {fn_url}",
    )
    r.require(
        net.answers(fn_url),
        "the function answers at its URL",
        f"nothing answers at {fn_url}: deploy the function (the cell with lesson11.deploy) again",
    )
    archive = adapters.GcsStore(EX_ARCHIVE_BUCKET).ensure()
    order = {"id": _fresh("o"), "item": "atlas", "qty": 3}
    adapters.PubSubQueue(EX_TOPIC).send(json.dumps(order))
    data = functions.wait_for_object(archive, f"archive/{order['id']}.json", timeout=8)
    r.require(
        data is not None and json.loads(data) == order,
        f"an order published on `{EX_TOPIC}` arrived in gs://{EX_ARCHIVE_BUCKET}/archive/<id>.json, unchanged",
        f"8 s after publishing order {order['id']} on `{EX_TOPIC}`, gs://{EX_ARCHIVE_BUCKET}/archive/"
        f"{order['id']}.json holds {data!r:.80}: see the function's log (`fn.logs()`)",
    )
    # the same source, deployed again with another bucket and topic: nothing in it may be hard-coded
    source = emulators.work_dir() / "l11-function" / "main.py"
    r.require(source.exists(), "the deployed source is there", "deploy your file with lesson11.deploy(...) first")
    bucket, topic, name = _fresh("l11-ex-fn"), _fresh("l11-ex-topic"), "l11-ex-check-fn"
    store = adapters.GcsStore(bucket).ensure()
    try:
        fn = functions.deploy(source, bucket=bucket, name=name, port=net.free_port())
        functions.push_to(fn.url, topic, f"{topic}-push")
        other = {"id": _fresh("o"), "item": "caf\u00e9 map", "qty": 1}
        adapters.PubSubQueue(topic).send(json.dumps(other))
        got = functions.wait_for_object(store, f"archive/{other['id']}.json", timeout=8)
        r.expect(
            got is not None and json.loads(got) == other,
            "deployed again with ARCHIVE_BUCKET set to another bucket, it archives there (nothing hard-coded)",
            f"deployed with ARCHIVE_BUCKET={bucket}, the function did not write archive/{other['id']}.json there: "
            "read the bucket from os.environ['ARCHIVE_BUCKET'] and the key from the order's id",
        )
    except functions.DeployFailed as e:
        r.fail(f"your file did not deploy a second time: {str(e)[:300]}")
    finally:
        procs.stop(name)
        store.drop()


# ======================================================================= 11.5 egress
SYNTHETIC = [
    egress.Tier(0, 200, 1.0),
    egress.Tier(200, 500, 0.5),
    egress.Tier(500, float("inf"), 0.1),
]


@check(
    "11.5",
    "Tiered egress prices: the bill for a month's volume, recomputed from the price file",
    hints=[
        "Each tier's price applies only to the GB inside that tier (from its lower_gb to its upper_gb), like tax "
        "brackets; never the whole volume at one rate.",
        "The free allowance counts from 0: a tier's billable part starts at max(tier.lower_gb, free_gb).",
        "total = sum(t.usd_per_gb * max(0, min(gb, t.upper_gb) - max(t.lower_gb, free_gb)) for t in tiers), "
        "rounded to cents.",
    ],
)
def check_egress(r, ns):
    fn = r.need(ns, "tiered_cost", callable)
    _, providers = egress.load()
    cases = [(p.key, gb, p.free_gb, p.tiers) for p in providers.values() for gb in (0, 80, 700, 12_000, 90_000, 2e5)]
    cases += [("a made-up provider", gb, 50, tuple(SYNTHETIC)) for gb in (30, 199, 350, 1000)]
    wrong = []
    for who, gb, free, tiers in cases:
        got = r.call(fn, gb, free, tiers)
        want = egress.tiered(gb, free, tiers)
        if not isinstance(got, int | float) or abs(got - want) > 0.011:
            wrong.append(f"{who}, {gb:g} GB: {got!r} instead of {want:,.2f}")
    r.expect(
        not wrong,
        f"{len(cases)} volumes priced right: the three providers' real tiers and a made-up table",
        "wrong bills: " + "; ".join(wrong[:4]),
    )
