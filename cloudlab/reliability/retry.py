"""Timeouts and retries: capped exponential backoff with full jitter, and which errors deserve a retry.

Why our own helper and not tenacity: it is 30 lines the learner can read, it needs no new dependency
in the kernel, and every sleep goes through an injectable ``sleep`` (a test, or a check, can watch the
delays without waiting). tenacity's ``wait_random_exponential(multiplier=base, max=cap)`` with
``stop_after_attempt(n)`` and ``retry_if_exception(is_retryable)`` does the same job. For AWS calls,
use botocore's own retry modes instead (:func:`botocore_config`): they already do this, with a
retry quota on top. Serves lesson 09.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class DependencyError(Exception):
    """A call to a dependency failed. ``status`` is the HTTP status (None: no answer at all)."""

    retryable = False

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Unavailable(DependencyError):
    """It may work next time: 5xx, 429 (throttled), a refused connection, a timeout."""

    retryable = True


class Rejected(DependencyError):
    """It will fail again, however often we try: 4xx (a bad request, not found, forbidden)."""

    retryable = False


def is_retryable(exc: BaseException) -> bool:
    """Retry what may succeed next time (timeouts, refused connections, 5xx, 429); never a 4xx."""
    if isinstance(exc, DependencyError):
        return exc.retryable
    return isinstance(exc, (TimeoutError, ConnectionError))


def error_for_status(status: int, what: str = "") -> DependencyError | None:
    """The exception an HTTP status means: None for 2xx/3xx, Unavailable for 5xx and 429, Rejected for 4xx."""
    if status < 400:
        return None
    if status >= 500 or status == 429:
        return Unavailable(f"{what} answered {status}".strip(), status)
    return Rejected(f"{what} answered {status}".strip(), status)


def backoff_bound(attempt: int, base: float, cap: float) -> float:
    """The longest wait before retry number ``attempt`` (1, 2, ...): ``min(cap, base * 2**(attempt-1))``."""
    return min(cap, base * 2 ** (attempt - 1))


def backoff_delay(attempt: int, base: float, cap: float, jitter: str = "full", rng=random) -> float:
    """The wait before retry ``attempt``. ``jitter``: "full" (uniform 0..bound, AWS's advice), "none"."""
    bound = backoff_bound(attempt, base, cap)
    if jitter == "full":
        return rng.uniform(0, bound)
    if jitter == "none":
        return bound
    raise ValueError(f"jitter is 'full' or 'none', not {jitter!r}")


def retry_call(
    fn: Callable,
    attempts: int = 5,
    base: float = 0.1,
    cap: float = 2.0,
    jitter: str = "full",
    retryable: Callable[[BaseException], bool] = is_retryable,
    sleep: Callable[[float], None] = time.sleep,
    rng=random,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
):
    """Call ``fn()`` up to ``attempts`` times; between tries wait a capped, jittered, exponential delay.

    A non-retryable error is raised at once; after the last attempt the last error is raised.
    ``on_retry(attempt, delay, error)`` is called before each wait (to log or count retries).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as e:
            if attempt == attempts or not retryable(e):
                raise
            delay = backoff_delay(attempt, base, cap, jitter, rng)
            if on_retry is not None:
                on_retry(attempt, delay, e)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def botocore_config(mode: str = "standard", max_attempts: int = 3, connect_timeout: float = 2, read_timeout: float = 5):
    """botocore's own retries for AWS calls: ``standard`` (capped exponential backoff with jitter, and a
    retry quota that stops retry storms) or ``adaptive`` (also slows the client down when throttled)."""
    from botocore.config import Config

    return Config(
        retries={"mode": mode, "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
