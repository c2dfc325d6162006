"""The lab's SQS event source mapping: the poller Lambda runs between a queue and a function.

Lambda's own poller is part of the service (no emulator here runs one without Docker), so the lab runs this
one against the real queue (LocalStack's SQS). It behaves as the Lambda documentation describes:

* long-polls the queue, gathers up to ``batch_size`` messages (waiting at most ``batching_window`` s) and
  invokes the function ONCE per batch, synchronously, with ``{"Records": [...]}`` in the SQS event shape;
* while the function runs, the batch's messages are invisible for the queue's visibility timeout;
* the function succeeds: every message of the batch is deleted;
* the function fails (an exception, a timeout, a runtime that died): nothing is deleted, the whole batch
  comes back after the visibility timeout;
* with ``report_batch_item_failures`` (``FunctionResponseTypes=["ReportBatchItemFailures"]``) a success answer
  ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}`` deletes every message EXCEPT those listed;
  an empty or null list, or an empty or null answer, is a complete success; an empty or null itemIdentifier,
  a wrong key name, or an id that is not a message of the batch makes it a complete failure;
* redrive to the dead-letter queue is the QUEUE's job (its RedrivePolicy, ``maxReceiveCount``), not the poller's.

Each poll round is recorded in :attr:`EventSourceMapping.journal`. Serves lesson 12.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .pool import Function, Throttled


def sqs_event(messages: list[dict], queue_arn: str, region: str = "us-east-1") -> dict:
    """The event Lambda gives a function for a batch of SQS messages (``receive_message`` answers)."""
    records = []
    for m in messages:
        attrs = dict(m.get("Attributes") or {})
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m.get("Body", ""),
                "attributes": attrs,
                "messageAttributes": {
                    k: {
                        "stringValue": v.get("StringValue"),
                        "binaryValue": v.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.get("DataType"),
                    }
                    for k, v in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_ids(answer, message_ids: list[str]) -> tuple[set[str] | None, str]:
    """Read a partial batch response: (the message ids to keep, why), or (None, why) for a complete failure."""
    if answer is None or answer == {} or answer == "":
        return set(), "an empty answer: the whole batch succeeded"
    if not isinstance(answer, dict):
        return None, f"the answer {str(answer)[:60]!r} is not a JSON object: the whole batch failed"
    items = answer.get("batchItemFailures")
    if items is None or items == []:
        return set(), "no batchItemFailures: the whole batch succeeded"
    if not isinstance(items, list):
        return None, "batchItemFailures is not a list: the whole batch failed"
    keep = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return None, f"{str(item)[:60]} has no itemIdentifier key: the whole batch failed"
        if ident in (None, ""):
            return None, "an empty or null itemIdentifier: the whole batch failed"
        if ident not in message_ids:
            return None, f"itemIdentifier {str(ident)[:40]!r} is not a messageId of this batch: the whole batch failed"
        keep.add(ident)
    return keep, f"{len(keep)} item(s) reported failed: the rest of the batch is deleted"


@dataclass
class Round:
    """One batch: what the poller received, what the function said, what was deleted."""

    at: float
    message_ids: list[str]
    bodies: list[str]
    receive_counts: list[int]
    outcome: str = ""
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    error: str = ""


class EventSourceMapping:
    """Polls ``queue_url`` and invokes ``function`` with batches, in background threads (``max_concurrency``)."""

    def __init__(
        self,
        sqs,
        queue_url: str,
        function: Function,
        batch_size: int = 10,
        batching_window: float = 0.2,
        report_batch_item_failures: bool = True,
        max_concurrency: int = 1,
    ):
        self.sqs = sqs
        self.queue_url = queue_url
        self.function = function
        self.batch_size = int(batch_size)
        self.batching_window = float(batching_window)
        self.report_batch_item_failures = bool(report_batch_item_failures)
        self.max_concurrency = int(max_concurrency)
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attrs["QueueArn"]
        self.journal: list[Round] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ one round
    def _receive(self) -> list[dict]:
        got: list[dict] = []
        deadline = time.monotonic() + self.batching_window
        while len(got) < self.batch_size and not self._stop.is_set():
            wait = 1 if not got else 0
            msgs = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(got)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            got += msgs
            if not msgs and (got or time.monotonic() > deadline):
                break
            if got and time.monotonic() > deadline:
                break
        return got

    def poll_once(self) -> Round | None:
        """Receive one batch, invoke the function with it, delete what succeeded. None when the queue is empty."""
        msgs = self._receive()
        if not msgs:
            return None
        ids = [m["MessageId"] for m in msgs]
        rnd = Round(
            time.time(),
            ids,
            [m.get("Body", "") for m in msgs],
            [int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 0)) for m in msgs],
        )
        with self._lock:
            self.journal.append(rnd)
        try:
            inv = self.function.invoke(sqs_event(msgs, self.queue_arn))
        except Throttled as e:
            rnd.outcome, rnd.kept = f"throttled ({e.limit} busy): the batch returns after the visibility timeout", ids
            return rnd
        if not inv.ok:
            rnd.error = f"{inv.error_type or inv.status}: {inv.error_message[:120]}"
            rnd.outcome, rnd.kept = "the function failed: the whole batch returns after the visibility timeout", ids
            return rnd
        if self.report_batch_item_failures:
            keep, why = failed_ids(inv.payload, ids)
        else:
            keep, why = set(), "success (ReportBatchItemFailures is off: the answer is not read)"
        if keep is None:
            rnd.outcome, rnd.kept = why, ids
            return rnd
        done = [m for m in msgs if m["MessageId"] not in keep]
        for i in range(0, len(done), 10):
            chunk = done[i : i + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
        rnd.deleted = [m["MessageId"] for m in done]
        rnd.kept = sorted(keep)
        rnd.outcome = why
        return rnd

    # ------------------------------------------------------------------ in the background
    def start(self) -> EventSourceMapping:
        self._stop.clear()
        for i in range(self.max_concurrency):
            th = threading.Thread(target=self._loop, name=f"esm-{self.function.name}-{i}", daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._busy += 1
            try:
                rnd = self.poll_once()
            except Exception as e:  # the queue went away (a reset), the emulator is down: stop quietly
                self.journal.append(Round(time.time(), [], [], [], outcome=f"poller stopped: {e}"))
                return
            finally:
                with self._lock:
                    self._busy -= 1
            if rnd is None:
                time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout)
        self._threads.clear()

    def wait_until(self, done, timeout: float = 20.0, interval: float = 0.1) -> bool:
        """Wait until ``done()`` is true (a condition on the real queues and tables), or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            time.sleep(interval)
        return bool(done())

    def rounds_text(self, last: int = 12) -> str:
        lines = []
        for r in self.journal[-last:]:
            counts = ",".join(str(c) for c in r.receive_counts)
            lines.append(
                f"batch of {len(r.message_ids)} (receive counts {counts}): {r.outcome}"
                + (f" [{r.error}]" if r.error else "")
            )
        return "\n".join(lines) or "(no batch yet)"
