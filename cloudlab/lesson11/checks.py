"""Lesson 11's checks: each drives the learner's code against the real emulators, with fresh names, and reads
what really happened there (the bucket's objects, the queue's messages, the Firestore documents, the push
subscription). Two of them put a relay (:mod:`cloudlab.multicloud.relay`) behind the provider's standard variable:
code that hard-coded an emulator's address never reaches it."""

from __future__ import annotations

import json
import os
import threading
import uuid
from contextlib import contextmanager

from .. import net, procs
from ..checks import check
from ..multicloud import adapters, egress, emulators, functions, guard

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
