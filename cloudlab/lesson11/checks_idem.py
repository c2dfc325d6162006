"""Lesson 11's idempotency check (11.3): each order is charged once, whatever Pub/Sub redelivers, also when a
worker dies between its claim and its charge, when a publisher sends an order twice, and when copies arrive at
the same moment. The same pattern as lesson 09's (a claim with a status and a lease), in Firestore.

The messages are real (published to and pulled from the Pub/Sub emulator); the claims are read in the Firestore
emulator; time is a clock the check moves on. A worker that "dies" is a thread frozen inside ``charge``: like a
killed process, it never returns and runs no ``except`` block while the check redelivers its message (the
Firestore client's gRPC channels do not survive a fork, so the check does not fork the kernel the way lesson 09's
does). When the check ends, the frozen charges raise an exception that only a bare ``except:`` or a ``finally``
sees, and the documents of the run are deleted.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter

from ..checks import ScriptedClock, check
from ..multicloud import adapters, emulators, guard
from ..multicloud.port import Message
from ..multicloud.relay import Relay
from .checks import _env

EX_CLAIMS = "l11-charged"
LEASE_S = 45.0  # the check's lease: not the task's default (30), so a worker must use the lease it is given
RESULTS = ("charged", "duplicate", "in-progress")
RACE_DELAY = 0.4  # seconds the races' relay holds each new request: more than the copies' start-up skew


class _WorkerKilled(BaseException):
    """What a frozen charge raises when the check ends: only a bare except or a finally sees it."""


class _Charges:
    """The card processor: counts charges per order; can freeze a charge (a dying worker) or fail one."""

    def __init__(self):
        self.done: Counter = Counter()
        self.lock = threading.Lock()
        self.freeze: set[str] = set()
        self.fail_once: set[str] = set()
        self.started: dict[str, threading.Event] = {}
        self.release = threading.Event()

    def __call__(self, order):
        oid = order.get("id") if isinstance(order, dict) else order
        with self.lock:
            frozen = oid in self.freeze
            if frozen:
                self.freeze.discard(oid)
            failing = oid in self.fail_once
            self.fail_once.discard(oid)
        if frozen:  # this worker dies here: it never charges and never returns while the check looks
            self.started.setdefault(oid, threading.Event()).set()
            self.release.wait(120)
            raise _WorkerKilled()
        if failing:
            raise RuntimeError("the card processor answered 503 (the check fails this charge once)")
        with self.lock:
            self.done[oid] += 1
        time.sleep(0.02)


@check(
    "11.3",
    "Each order is charged once, whatever Pub/Sub redelivers, even when a worker dies between claim and charge",
    hints=[
        f"Key the claim on the ORDER id (a publisher's retry is a new message with a new id): the document "
        f"`db.collection('{EX_CLAIMS}').document(order['id'])`. Claim it in one atomic step: "
        "`create({'status': 'charging', 'expires': clock() + lease_s})` raises AlreadyExists when it is there.",
        "AlreadyExists: read the document. 'charged' -> return 'duplicate'; 'charging' with expires >= clock() -> "
        "'in-progress' (do not charge). 'charging' and expired (its worker died): take over with ONE conditional "
        "write, `update({...new lease...}, option=db.write_option(last_update_time=snapshot.update_time))`; "
        "FailedPrecondition means another worker took it first -> 'in-progress'.",
        "Claimed: charge(order), then update({'status': 'charged'}) and return 'charged'; if charge raises, delete "
        "the claim and re-raise. Releasing the claim in an except block alone is at most once: a worker that dies "
        "runs no except block; the lease is what lets the next delivery take over.",
    ],
)
def check_idempotent(r, ns):
    handle = r.need(ns, "handle", callable)
    db = guard.firestore_client()
    tag = uuid.uuid4().hex[:8]
    clock, card = ScriptedClock(), _Charges()
    queue = adapters.PubSubQueue(f"l11-ex-idem-{tag}").ensure()
    orders: list[str] = []
    threads: list[threading.Thread] = []

    def new_order() -> str:
        orders.append(f"o-{uuid.uuid4().hex[:6]}-{tag}")
        return orders[-1]

    def deliver(order: str) -> Message:
        """Publish the order (as a producer does) and pull it back: a real Pub/Sub message."""
        queue.send(json.dumps({"id": order, "item": "book", "qty": 1}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for m in queue.receive(max_messages=10, lease_seconds=60):
                queue.ack(m)  # the check keeps the message itself: it redelivers it when it wants
                if json.loads(m.body).get("id") == order:
                    return m
        raise RuntimeError(f"the check's own message for {order} did not come back from Pub/Sub within 10 s")

    def run(message, charge=card):
        return r.call(handle, message, db, charge, lease_s=LEASE_S, clock=clock)

    def doc(order: str) -> dict:
        snap = db.collection(EX_CLAIMS).document(order).get()
        return snap.to_dict() if snap.exists else {}

    try:
        _basics(r, run, new_order, deliver, card, doc)
        took_over = _crash_and_redeliver(r, handle, db, run, new_order, deliver, card, doc, clock, threads)
        _copies_at_once(r, handle, db, new_order, deliver, card, clock, threads, took_over)
        _charge_fails(r, handle, db, run, new_order, deliver, card, clock)
        mine = {d.id for d in db.collection(EX_CLAIMS).list_documents() if tag in d.id}
        extra = sorted(mine - set(orders))
        r.expect(
            not extra,
            f"`{EX_CLAIMS}` holds one document per order, named by the order id",
            f"`{EX_CLAIMS}` holds documents that are not order ids ({', '.join(extra[:3])}): one per order, "
            "document id = the order's id",
        )
    finally:
        card.release.set()  # the frozen workers 'die' now
        for t in threads:
            t.join(5)
        queue.drop()
        for o in orders:
            db.collection(EX_CLAIMS).document(o).delete()


def _basics(r, run, new_order, deliver, card, doc):
    order = new_order()
    first = deliver(order)
    got = run(first)
    r.require(
        got == "charged" and card.done[order] == 1,
        "a new order is charged once: 'charged'",
        f"the first delivery of a new order returned {got!r} and charged it {card.done[order]} time(s); expected "
        "'charged' and exactly one charge",
    )
    status = doc(order).get("status")
    r.expect(
        status == "charged",
        f"its claim in `{EX_CLAIMS}` says 'charged'",
        f"after the charge, the order's document has status {status!r}; set it to 'charged' once charge returned"
        if doc(order)
        else f"there is no document `{EX_CLAIMS}/{order}`: claim with the order id as the document id",
    )
    again = run(first)
    r.expect(
        again == "duplicate" and card.done[order] == 1,
        "the same message delivered again (a lost ack): 'duplicate', no second charge",
        f"the same message delivered again returned {again!r} and the order has been charged {card.done[order]} "
        "times: a charged order is a duplicate (return 'duplicate' without charging)",
    )
    retry = deliver(order)
    retried = run(retry)
    r.expect(
        retried == "duplicate" and card.done[order] == 1,
        "the publisher's retry (a new message with a new id, the same order) is a 'duplicate' too",
        f"the publisher sent the order again (a new message, id {retry.id}): handle returned {retried!r} and the "
        f"order has been charged {card.done[order]} times; claim the order's id, not the message's",
    )


def _frozen_worker(handle, db, message, card, clock, threads, order) -> tuple[str, dict]:
    """Run ``handle`` in a worker that freezes (dies) inside charge. Returns ("frozen", {}) or what happened."""
    card.freeze.add(order)
    started = card.started.setdefault(order, threading.Event())
    box: dict = {}

    def work():
        try:
            box["returned"] = handle(message, db, card, lease_s=LEASE_S, clock=clock)
        except BaseException as e:  # noqa: BLE001 - reported below
            box["raised"] = e

    t = threading.Thread(target=work, daemon=True)
    threads.append(t)
    t.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not started.is_set() and t.is_alive():
        time.sleep(0.02)
    if started.is_set():
        return "frozen", box
    card.freeze.discard(order)
    return "finished", box


def _crash_and_redeliver(r, handle, db, run, new_order, deliver, card, doc, clock, threads) -> bool:
    order = new_order()
    message = deliver(order)
    how, box = _frozen_worker(handle, db, message, card, clock, threads, order)
    if how != "frozen":
        said = f"it returned {box['returned']!r}" if "returned" in box else f"it raised {box.get('raised')!r:.120}"
        r.fail(
            f"a worker handling a new order never started its charge ({said}): a new order must be claimed and charged"
        )
    r.expect(True, "a worker died in the middle of its charge (the check froze it there)", "")
    claim = doc(order)
    r.require(
        bool(claim),
        "its claim was in Firestore before the charge started",
        f"the worker died while charging, and `{EX_CLAIMS}/{order}` does not exist: claim BEFORE charging",
    )
    expires = claim.get("expires")
    r.expect(
        claim.get("status") == "charging",
        "the dead worker's claim says 'charging'",
        f"the claim of an order whose charge had just started has status {claim.get('status')!r}, not 'charging'",
    )
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        r.expect(
            False,
            "",
            f"the claim has no number `expires` ({expires!r}): if its worker dies, nobody may ever take it over, "
            "and the order is never charged",
        )
    else:
        off = expires - (clock() + LEASE_S)
        r.expect(
            abs(off) <= 2,
            f"its lease ends at clock() + lease_s ({LEASE_S:g} s from the clock you were given)",
            f"the claim's `expires` is {expires - clock():.0f} s after clock(); it should be clock() + lease_s "
            f"({LEASE_S:g} s): epoch seconds, from the clock and the lease_s you were given",
        )
    clock.now += 10
    live = run(message)
    r.expect(
        live == "in-progress" and card.done[order] == 0,
        "delivered again 10 s later, while the lease is live: 'in-progress', nothing charged twice at once",
        {
            "duplicate": "delivered again while the dead worker's claim was live, handle returned 'duplicate' although "
            "nothing was charged: the loop acks it and the order is LOST (at most once); a claim that is not "
            "'charged' is 'in-progress'",
            "charged": f"delivered again while another worker's lease was live (10 s of {LEASE_S:g}), handle took it "
            "over and charged: two workers would charge the same order at once",
        }.get(live, f"delivered again while the lease was live, handle returned {live!r}, not 'in-progress'"),
    )
    if live == "charged":
        return False
    clock.now += LEASE_S
    late = run(message)
    r.expect(
        late == "charged" and card.done[order] == 1,
        "delivered again after the lease ended: taken over and charged once (nothing lost)",
        f"delivered again after the dead worker's lease ended ({LEASE_S:g} s by the clock you were given), handle "
        f"returned {late!r} and the order was charged {card.done[order]} time(s): "
        + ("the order was LOST; " if card.done[order] == 0 else "")
        + "a claim whose lease is over (expires < clock()) must be taken over, in one conditional write",
    )
    if late != "charged":
        return False
    after = run(message)
    r.expect(
        after == "duplicate" and card.done[order] == 1,
        "and once it is charged, later copies are duplicates",
        f"after the takeover charged the order, another copy returned {after!r} ({card.done[order]} charges)",
    )
    return True


def _together(handle, db, messages, card, clock) -> tuple[list, list]:
    results, errors = [], []
    barrier = threading.Barrier(len(messages))

    def worker(m):
        try:
            barrier.wait(10)
            results.append(handle(m, db, card, lease_s=LEASE_S, clock=clock))
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(f"{type(e).__name__}: {str(e)[:80]}")

    ts = [threading.Thread(target=worker, args=(m,), daemon=True) for m in messages]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    return results, errors


@contextlib.contextmanager
def _racing_client():
    """A Firestore client whose requests each wait ``RACE_DELAY`` in a relay, the way a slow network makes them.

    Copies handled at once then all read a claim before any of them writes it, on a busy machine too: a copy that
    reads and then writes always meets the others' writes, so the race shows every time, not when the threads
    happen to interleave (under make test's load they ran one after the other, and a plain set() passed)."""
    port = int(emulators.address("firestore").rsplit(":", 1)[1])
    with Relay(port, delay=RACE_DELAY) as slow:
        with _env(**{guard.GCP_VARS["firestore"]: slow.address}):
            db = guard.firestore_client()  # it reads the variable now, once
        try:
            yield db
        finally:
            with contextlib.suppress(Exception):
                db.close()


def _copies_at_once(r, handle, db, new_order, deliver, card, clock, threads, took_over):
    with _racing_client() as racing:
        _race_copies(r, handle, db, racing, new_order, deliver, card, clock, threads, took_over)


def _race_copies(r, handle, db, racing, new_order, deliver, card, clock, threads, took_over):
    order = new_order()
    first = deliver(order)
    copies = [first, first, first, deliver(order), deliver(order), first]
    results, errors = _together(handle, racing, copies, card, clock)
    n = card.done[order]
    r.expect(
        n == 1 and results.count("charged") == 1 and set(results) <= set(RESULTS) and not errors,
        "six copies of an order at the same moment: charged once (one atomic claim wins)",
        f"six copies of an order handled at the same moment charged it {n} time(s) and returned {sorted(results)}"
        + (f" (errors: {errors[:2]})" if errors else "")
        + ": exactly one copy may win the claim; reading first and writing afterwards is a race, create() is one step",
    )
    if not took_over:
        return  # a takeover that fails alone is reported above; racing ones would only say it again
    order = new_order()
    message = deliver(order)
    how, _ = _frozen_worker(handle, db, message, card, clock, threads, order)
    if how != "frozen":
        return
    clock.now += LEASE_S + 1
    results, errors = _together(handle, racing, [message] * 4, card, clock)
    n = card.done[order]
    r.expect(
        n == 1 and results.count("charged") == 1 and not errors,
        "four copies at once after a dead worker's lease ended: exactly one takes over",
        f"four copies handled at once after a dead worker's lease ended charged it {n} time(s) ({sorted(results)}"
        + (f", errors: {errors[:2]}" if errors else "")
        + "): taking over is a race too; read the claim, then update it with a precondition on its update_time "
        "(or in a transaction), never a plain set()",
    )


def _charge_fails(r, handle, db, run, new_order, deliver, card, clock):
    order = new_order()
    message = deliver(order)
    card.fail_once.add(order)
    try:
        handle(message, db, card, lease_s=LEASE_S, clock=clock)
        raised = "it returned instead"
    except RuntimeError:
        raised = ""
    except Exception as e:  # noqa: BLE001 - reported below
        raised = f"it raised {type(e).__name__} instead"
    again = run(message)
    r.expect(
        not raised and again == "charged" and card.done[order] == 1,
        "a charge that fails re-raises and releases the claim: the redelivery charges the order at once",
        f"when charge raised, the error should reach the loop ({raised or 'it did'}) and the next delivery should "
        f"charge the order; it returned {again!r} ({card.done[order]} charges): delete the claim, then re-raise",
    )
