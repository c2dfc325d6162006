"""A circuit breaker: stop calling a dependency that keeps failing, try again later with one probe.

States: ``closed`` (calls go through; ``fail_max`` failures in a row open it), ``open`` (calls fail at
once with :class:`CircuitOpen`, or get the fallback, without touching the dependency), ``half-open``
(after ``reset_timeout`` s one probe call goes through: success closes the circuit, failure opens it
again for another ``reset_timeout``). The clock is injectable, so tests and checks can script time.
A library such as pybreaker does the same; this one is small enough to read. Serves lesson 09.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitOpen(Exception):
    """The circuit is open: the call was not made. Fail fast, or serve a fallback."""


class CircuitBreaker:
    def __init__(
        self,
        fail_max: int = 3,
        reset_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        counts: Callable[[BaseException], bool] = lambda e: True,
    ):
        if fail_max < 1 or reset_timeout <= 0:
            raise ValueError("fail_max must be >= 1 and reset_timeout > 0")
        self.fail_max, self.reset_timeout, self.clock, self.counts = fail_max, reset_timeout, clock, counts
        self._state, self.failures, self.opened_at = CLOSED, 0, 0.0
        self.history: list[tuple[float, str]] = [(clock(), CLOSED)]  # (time, state) at each change
        self._lock = threading.Lock()
        self._probing = False

    def _set(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.history.append((self.clock(), state))

    @property
    def state(self) -> str:
        """closed, open or half-open (open turns half-open by itself once reset_timeout has passed)."""
        with self._lock:
            if self._state == OPEN and self.clock() - self.opened_at >= self.reset_timeout:
                self._set(HALF_OPEN)
            return self._state

    def call(self, fn: Callable, *args, fallback: Callable | None = None, **kwargs):
        """``fn(*args, **kwargs)`` through the breaker. When open (or when the call fails) and a ``fallback``
        is given, its result is returned instead: the caller degrades gracefully. Without one: CircuitOpen."""
        state = self.state
        with self._lock:
            if state == OPEN or (state == HALF_OPEN and self._probing):
                if fallback is not None:
                    return fallback()
                left = self.reset_timeout - (self.clock() - self.opened_at)
                raise CircuitOpen(f"circuit open: not calling for another {max(left, 0):.2f} s")
            if state == HALF_OPEN:
                self._probing = True  # one probe at a time
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            with self._lock:
                self._probing = False
                if self.counts(e):
                    self.failures += 1
                    if self._state == HALF_OPEN or self.failures >= self.fail_max:
                        self.opened_at = self.clock()
                        self._set(OPEN)
            if fallback is not None:
                return fallback()
            raise
        with self._lock:
            self._probing = False
            self.failures = 0
            self._set(CLOSED)
        return result
