"""The port: what the order service needs from a cloud, in its own words (lesson 11).

Two small interfaces, nothing provider-specific in them:

* :class:`ObjectStore`: ``put(key, data, if_absent=False) -> version``, ``get(key) -> bytes | None``,
  ``list(prefix) -> sorted keys``, ``delete(key)``;
* :class:`MessageQueue`: ``send(body) -> id``, ``receive(max_messages, lease_seconds) -> [Message]``,
  ``ack(message)``, ``release(message)``.

Each cloud gets an adapter (:mod:`.adapters_aws`, :mod:`.adapters_gcp`, :mod:`.adapters_azure`) and one contract
suite (:mod:`.contract`) says what every adapter must do, run against every emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class AlreadyExists(Exception):
    """``put(..., if_absent=True)`` found the key already there (HTTP 412/409 at the provider)."""


@dataclass
class Message:
    """A received message: its id, body, the receipt that acks it (this delivery only), its delivery count."""

    id: str
    body: str
    receipt: str
    attempts: int
    raw: object = field(default=None, repr=False)


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, if_absent: bool = False) -> str: ...

    def get(self, key: str) -> bytes | None: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def delete(self, key: str) -> None: ...


class MessageQueue(Protocol):
    def send(self, body: str) -> str: ...

    def receive(self, max_messages: int = 1, lease_seconds: int = 30) -> list[Message]: ...

    def ack(self, message: Message) -> None: ...

    def release(self, message: Message) -> None: ...


def consume(queue: MessageQueue, handler, max_messages: int = 10, lease_seconds: int = 10) -> dict[str, int]:
    """One poll: receive, call ``handler(message)`` on each, ack what succeeded, release what raised, and leave
    what the handler says is ``"in-progress"`` (another worker holds it: the message comes back when its lease
    ends, without an ack or a release).

    The loop of every queue worker, on any cloud. Returns counts: received, acked, released, left."""
    counts = {"received": 0, "acked": 0, "released": 0, "left": 0}
    for m in queue.receive(max_messages=max_messages, lease_seconds=lease_seconds):
        counts["received"] += 1
        try:
            outcome = handler(m)
        except Exception:  # noqa: BLE001 - any failure: give the message back for another try
            queue.release(m)
            counts["released"] += 1
            continue
        if outcome == "in-progress":
            counts["left"] += 1
            continue
        queue.ack(m)
        counts["acked"] += 1
    return counts
