"""One contract suite for every adapter of the port, run against the real emulators (lesson 11).

A clause is a function ``clause(subject, names) -> str`` that exercises a store or a queue with real calls and
returns what it saw, or raises :class:`Broken` saying what went wrong. :func:`run` runs the clauses against
several clouds side by side (the queue clauses wait for real leases to run out) and returns a :class:`Result`
per clause and cloud; :func:`table` shows them. The checks of lesson 11 run the same clauses against the
learner's adapters: the contract is the definition of "works on every cloud".
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .port import AlreadyExists

LEASE = 2  # seconds: long enough to see a message stay hidden, short enough for a notebook


class Broken(AssertionError):
    """A clause of the contract does not hold; the message says what the adapter did."""


@dataclass
class Result:
    clause: str
    cloud: str
    ok: bool
    detail: str
    seconds: float


def _expect(ok, wrong: str) -> None:
    if not ok:
        raise Broken(wrong)


# ------------------------------------------------------------------ object store clauses
def round_trip(store, tag: str) -> str:
    data = f"order {tag} \u00e9\n".encode()
    store.put(f"orders/{tag}.json", data)
    got = store.get(f"orders/{tag}.json")
    _expect(got == data, f"get returned {got!r}, not the {len(data)} bytes put")
    return "put then get: the same bytes"


def missing_is_none(store, tag: str) -> str:
    got = store.get(f"orders/missing-{tag}.json")
    _expect(got is None, f"get of a missing key returned {got!r}, not None")
    return "missing key: None"


def list_by_prefix(store, tag: str) -> str:
    mine = [f"{tag}/orders/b.json", f"{tag}/orders/a.json", f"{tag}/ordersX/d.json"]
    for k in [*mine, f"old/{tag}/orders/c.json"]:  # the last one holds the prefix in its middle
        store.put(k, b"{}")
    got = store.list(f"{tag}/orders/")
    want = [f"{tag}/orders/a.json", f"{tag}/orders/b.json"]
    _expect(got == want, f"list('{tag}/orders/') returned {got}, expected exactly {want} (keys that START with it)")
    every = store.list(f"{tag}/")
    _expect(every == sorted(mine), f"list('{tag}/') returned {every}, expected {sorted(mine)}: sorted, by prefix")
    return "list: keys that start with the prefix, sorted"


def create_only(store, tag: str) -> str:
    key = f"claims/{tag}.json"
    store.put(key, b"first", if_absent=True)
    try:
        store.put(key, b"second", if_absent=True)
    except AlreadyExists:
        pass
    else:
        raise Broken("put(..., if_absent=True) on an existing key succeeded: it must raise AlreadyExists")
    got = store.get(key)
    _expect(got == b"first", f"after the refused put the object holds {got!r}, not the first value")
    return "if_absent: a second create is refused (412/409), the first value stays"


def delete_is_idempotent(store, tag: str) -> str:
    key = f"tmp/{tag}.json"
    store.put(key, b"x")
    store.delete(key)
    _expect(store.get(key) is None, "the key is still there after delete")
    store.delete(key)
    return "delete: gone, and a second delete is fine"


STORE_CLAUSES = [round_trip, missing_is_none, list_by_prefix, create_only, delete_is_idempotent]


# ------------------------------------------------------------------ queue clauses
def _drain(queue):
    for _ in range(5):
        got = queue.receive(max_messages=10, lease_seconds=1)
        if not got:
            return
        for m in got:
            queue.ack(m)


def deliver_once_then_hide(queue, tag: str) -> str:
    body = f'{{"order": "{tag}"}}'
    queue.send(body)
    got = _receive(queue, 1, LEASE, wait=5)
    _expect(len(got) == 1 and got[0].body == body, f"received {[m.body for m in got]}, not the one message sent")
    m = got[0]
    _expect(m.attempts == 1, f"a first delivery should count attempts == 1, got {m.attempts}")
    again = queue.receive(max_messages=10, lease_seconds=LEASE)
    _expect(not again, f"during its lease the message was delivered again ({len(again)}): the lease must hide it")
    back = _receive(queue, 1, LEASE, wait=LEASE + 6)
    _expect(back and back[0].body == body, f"{LEASE} s after the lease ran out the unacked message did not come back")
    _expect(back[0].attempts == 2, f"a redelivery should count attempts == 2, got {back[0].attempts}")
    queue.ack(back[0])
    gone = _receive(queue, 1, LEASE, wait=LEASE + 1)
    _expect(not gone, "an acked message came back: ack must remove it for good")
    return f"lease hides it, it returns after {LEASE} s with attempts 2, ack removes it"


def release_returns_at_once(queue, tag: str) -> str:
    body = f'{{"order": "{tag}-r"}}'
    queue.send(body)
    got = _receive(queue, 1, 30, wait=5)
    _expect(got, "the message sent was not received")
    queue.release(got[0])
    t0 = time.monotonic()
    back = _receive(queue, 1, 30, wait=3)
    _expect(back and back[0].body == body, "a released message did not come back within 3 s (its 30 s lease)")
    queue.ack(back[0])
    _expect(
        back[0].id == got[0].id and back[0].attempts == got[0].attempts + 1,
        f"the released message came back as id {back[0].id} with attempts {back[0].attempts} (it was id {got[0].id}, "
        f"attempts {got[0].attempts}): release must return THAT message, its delivery count raised, not send a new one",
    )
    return f"release: back after {time.monotonic() - t0:.1f} s, not after its 30 s lease, the same message"


def _receive(queue, n, lease, wait):
    deadline = time.monotonic() + wait
    while True:
        got = queue.receive(max_messages=n, lease_seconds=lease)
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def ack_is_precise(queue, tag: str) -> str:
    bodies = {f'{{"order": "{tag}-a"}}', f'{{"order": "{tag}-b"}}'}
    for b in sorted(bodies):
        queue.send(b)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        got += queue.receive(max_messages=2, lease_seconds=30)
    _expect({m.body for m in got} == bodies, f"sent two messages, received {[m.body for m in got]}")
    queue.ack(got[0])
    queue.release(got[1])
    back = _receive(queue, 2, 30, wait=3)
    _expect([m.body for m in back] == [got[1].body], f"after acking one of two, received {[m.body for m in back]}")
    queue.ack(back[0])
    return "ack removes that message only"


QUEUE_CLAUSES = [deliver_once_then_hide, release_returns_at_once, ack_is_precise]


def _describe(clause) -> str:
    return clause.__name__.replace("_", " ")


def run_clauses(subject, clauses, cloud: str) -> list[Result]:
    """Run ``clauses`` against one store or queue, in order; every clause runs, whatever the others did."""
    out = []
    for clause in clauses:
        tag = uuid.uuid4().hex[:8]
        t0 = time.monotonic()
        try:
            detail, ok = clause(subject, tag), True
        except Broken as e:
            detail, ok = str(e), False
        except Exception as e:  # noqa: BLE001 - an adapter that raises breaks the clause, with the error shown
            detail, ok = f"raised {type(e).__name__}: {str(e)[:200]}", False
        out.append(Result(_describe(clause), cloud, ok, detail, round(time.monotonic() - t0, 1)))
    return out


def run(subjects: dict[str, tuple]) -> list[Result]:
    """``{cloud: (store, queue)}`` -> every clause against every cloud, the clouds side by side."""
    with ThreadPoolExecutor(max_workers=len(subjects)) as pool:
        futures = {
            cloud: pool.submit(
                lambda s, q, c: run_clauses(s, STORE_CLAUSES, c) + run_clauses(q, QUEUE_CLAUSES, c), s, q, cloud
            )
            for cloud, (s, q) in subjects.items()
        }
        return [r for f in futures.values() for r in f.result()]


def table(results: list[Result]):
    from ..tables import Table

    clouds = list(dict.fromkeys(r.cloud for r in results))
    clauses = list(dict.fromkeys(r.clause for r in results))
    cell = {(r.clause, r.cloud): r for r in results}
    rows = [[c] + [("PASS" if cell[(c, k)].ok else "FAIL") if (c, k) in cell else "" for k in clouds] for c in clauses]
    failed = [r for r in results if not r.ok]
    notes = [f"FAIL {r.cloud} / {r.clause}: {r.detail}" for r in failed]
    passed = len(results) - len(failed)
    notes.append(f"{passed}/{len(results)} clauses hold")
    return Table(["clause", *clouds], rows, title="The contract suite, against each cloud's emulator", notes=notes)
