"""A function as the Lambda service runs it: execution environments on demand, reused, and limited.

:class:`Function` keeps a pool of :class:`~.runtime.Environment`: an invoke takes an idle (warm) one, or
starts a new one (a cold start) while fewer than ``reserved_concurrency`` exist; beyond that limit the
invoke is **throttled** (``TooManyRequestsException``, HTTP 429), as Lambda does. Lambda keeps idle
environments for an unpublished while (minutes); here they stay until :meth:`Function.stop`.

Asynchronous invokes (``InvocationType="Event"``) are the lab's stand-in for Lambda's internal event queue:
the caller gets 202 at once; the event is invoked in the background and, on an error, retried
``maximum_retry_attempts`` times (Lambda's default: 2, after about 1 and then 2 minutes; the lab waits
``retry_delays`` seconds instead, to keep a lesson short), then sent to the on-failure destination, an SQS
queue, in the shape of Lambda's destination record. Serves lesson 12.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field

from .runtime import Environment, FunctionSpec, Invocation


class Throttled(Exception):
    """Every environment the function may have is busy: Lambda answers 429 TooManyRequestsException."""

    def __init__(self, function: str, limit: int):
        super().__init__(
            f"Rate Exceeded: {function} is at its concurrency limit ({limit} environments busy); "
            "TooManyRequestsException (HTTP 429)"
        )
        self.function, self.limit = function, limit


@dataclass
class AsyncRecord:
    """What happened to one asynchronous event: every attempt, and where it ended."""

    event_id: str
    event: object
    attempts: list[Invocation] = field(default_factory=list)
    outcome: str = "queued"  # queued | succeeded | sent to the on-failure destination | dropped


class Function:
    """A function with its own pool of execution environments (at most ``reserved_concurrency``)."""

    def __init__(
        self,
        spec: FunctionSpec,
        reserved_concurrency: int = 10,
        maximum_retry_attempts: int = 2,
        retry_delays: tuple[float, ...] = (1.0, 2.0),
        on_failure=None,
        make_environment=Environment,
    ):
        self.spec = spec
        self.make_environment = make_environment  # Environment (a process) or image.ContainerEnvironment
        self.reserved_concurrency = int(reserved_concurrency)
        self.maximum_retry_attempts = int(maximum_retry_attempts)
        self.retry_delays = tuple(retry_delays)
        self.on_failure = on_failure  # (sqs client, queue URL) of the on-failure destination, or None
        self.environments: list[Environment] = []
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self.throttles = 0
        self.cold_starts = 0
        self.history: list[Invocation] = []
        self.async_records: list[AsyncRecord] = []
        self._events: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    # ------------------------------------------------------------------ environments
    def _acquire(self) -> Environment:
        with self._lock:
            for env in self.environments:
                if env.name not in self._busy and env.alive():
                    self._busy.add(env.name)
                    return env
            self.environments = [e for e in self.environments if e.alive() or e.name in self._busy]
            if len(self.environments) >= self.reserved_concurrency:
                self.throttles += 1
                raise Throttled(self.name, self.reserved_concurrency)
            used = {e.index for e in self.environments}
            env = self.make_environment(self.spec, next(i for i in range(1, 10_000) if i not in used))
            self.environments.append(env)
            self._busy.add(env.name)
        try:
            env.start()
        except BaseException:
            with self._lock:
                self._busy.discard(env.name)
                self.environments.remove(env)
            raise
        return env

    def _release(self, env: Environment) -> None:
        with self._lock:
            self._busy.discard(env.name)

    def warm(self) -> int:
        """How many environments exist now (each one paid a cold start once)."""
        return sum(1 for e in self.environments if e.alive())

    # ------------------------------------------------------------------ invoking
    def invoke(self, event=None, invocation_type: str = "RequestResponse"):
        """Invoke like ``lambda.invoke``: RequestResponse waits for the :class:`Invocation`; Event queues the
        event and returns ``{"StatusCode": 202, "EventId": ...}``. Raises :class:`Throttled` (sync only)."""
        if invocation_type == "Event":
            return self.invoke_async(event)
        if invocation_type != "RequestResponse":
            raise ValueError(f"InvocationType must be RequestResponse or Event, not {invocation_type!r}")
        env = self._acquire()
        try:
            inv = env.invoke(event)
        finally:
            self._release(env)
        with self._lock:
            self.history.append(inv)
            self.cold_starts += int(inv.cold)
        return inv

    def invoke_async(self, event=None) -> dict:
        rec = AsyncRecord(str(uuid.uuid4()), event)
        self.async_records.append(rec)
        self._events.put(rec)
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._async_loop, name=f"{self.name}-events", daemon=True)
            self._worker.start()
        return {"StatusCode": 202, "EventId": rec.event_id}

    def _async_loop(self) -> None:
        while True:
            try:
                rec = self._events.get(timeout=30)
            except queue.Empty:
                return
            if rec is None:
                return
            self._deliver(rec)

    def _deliver(self, rec: AsyncRecord) -> None:
        for attempt in range(self.maximum_retry_attempts + 1):
            if attempt:
                time.sleep(self.retry_delays[min(attempt, len(self.retry_delays)) - 1])
            try:
                inv = self.invoke(rec.event)
            except Throttled:
                continue  # Lambda keeps a throttled event and tries again later (for up to 6 hours)
            except Exception as e:  # the lab itself failed (an environment did not start): say so, stop
                rec.outcome = f"dropped: {e}"
                return
            rec.attempts.append(inv)
            if inv.ok:
                rec.outcome = "succeeded"
                return
        last = rec.attempts[-1] if rec.attempts else None
        if self.on_failure is not None:
            sqs, url = self.on_failure
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(self.destination_record(rec, last)))
            rec.outcome = "sent to the on-failure destination"
        else:
            rec.outcome = "dropped (no on-failure destination)"

    def destination_record(self, rec: AsyncRecord, last: Invocation | None) -> dict:
        """The record Lambda sends to an on-failure destination (the documented shape, version 1.0)."""
        return {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {
                "requestId": rec.event_id,
                "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{self.name}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": len(rec.attempts),
            },
            "requestPayload": rec.event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": last.payload if last else None,
        }

    def wait_async(self, timeout: float = 30.0) -> list[AsyncRecord]:
        """Wait until every queued asynchronous event has ended (succeeded or left for good)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(r.outcome == "queued" for r in self.async_records):
            time.sleep(0.05)
        return self.async_records

    # ------------------------------------------------------------------ the end
    def stop(self) -> None:
        """Stop every environment (what Lambda does to idle ones after a while, or on a code update)."""
        self._events.put(None)
        for env in list(self.environments):
            env.stop()
        self.environments.clear()
        self._busy.clear()

    def __repr__(self) -> str:
        return (
            f"Function {self.name} ({self.spec.handler}, {self.spec.memory_mb} MB, timeout {self.spec.timeout:g} s, "
            f"reserved concurrency {self.reserved_concurrency}): {self.warm()} environment(s), "
            f"{self.cold_starts} cold start(s), {self.throttles} throttled"
        )
