"""Lesson 09's code checks (retries, breaker): they drive the learner's code with real faults.

Idempotency is in :mod:`.checks_idem`; the operational ones (DLQ, restore drill, chaos experiment) are in
:mod:`.checks_ops`."""

from __future__ import annotations

import threading
import time

from ..checks import ScriptedClock, check
from ..reliability.breaker import CircuitOpen
from ..reliability.retry import Rejected, Unavailable, backoff_bound
from .setup import dependency

ATTEMPTS, BASE, CAP = 6, 0.1, 0.8
RUNS = 200  # runs of the learner's retry loop on a scripted clock: enough to see the shape of the delays


class _Runaway(Exception):
    """Raised by the check's fake sleep when a retry loop never ends."""


def _call_bounded(r, fn, *args, seconds: float = 5.0, **kwargs):
    """Call learner code in a thread, so a loop that never ends is reported instead of hanging the notebook."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - everything the learner's code raises is reported
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    if th.is_alive():
        r.fail(f"`{getattr(fn, '__name__', fn)}` was still running after {seconds:.0f} s: does it ever stop retrying?")
    return box


def _dependency(r):
    """The lesson's dependency (started again if a reset or a lab restart stopped it)."""
    try:
        return dependency()
    except RuntimeError as e:
        r.fail(f"the fault-injecting dependency could not be started: {e}")


# ======================================================================= 09.1 retries
@check(
    "09.1",
    "Retries back off exponentially, with full jitter and a cap, and only on retryable errors",
    hints=[
        "Loop over attempts 1..attempts; on an exception, re-raise it at once if `is_retryable(e)` is False or "
        "this was the last attempt; otherwise sleep, then try again.",
        "The wait before retry number n is `random.uniform(0, min(cap, base * 2 ** (n - 1)))` (full jitter): "
        "random, growing, never above the cap. Call the `sleep` you were given, not time.sleep.",
        "for n in range(1, attempts + 1):\n    try: return fn()\n    except Exception as e:\n"
        "        if n == attempts or not is_retryable(e): raise\n"
        "        sleep(random.uniform(0, min(cap, base * 2 ** (n - 1))))",
    ],
)
def check_retry(r, ns):
    retry = r.need(ns, "retry_call", callable)
    delays: dict[int, list[float]] = {n: [] for n in range(ATTEMPTS + 1)}
    calls = {"n": 0}
    runaway = {"hit": False}

    def sleep(d):
        calls["slept"] = calls.get("slept", 0) + 1
        if calls["slept"] > 2 * ATTEMPTS:
            runaway["hit"] = True
            time.sleep(1.0)  # a loop that never stops: slow it down so it costs no CPU while we report it
            raise _Runaway()
        delays.setdefault(calls["slept"] - 1, []).append(float(d) if isinstance(d, (int, float)) else float("nan"))

    def down():
        calls["n"] += 1
        raise Unavailable("503 from the check's dependency", 503)

    outcomes = []
    for i in range(RUNS):
        calls.update(n=0, slept=0)
        t0 = time.monotonic()
        box = _call_bounded(r, retry, down, attempts=ATTEMPTS, base=BASE, cap=CAP, sleep=sleep)
        if i == 0 and time.monotonic() - t0 > 0.5 and not runaway["hit"]:
            r.fail(
                f"one call of retry_call took {time.monotonic() - t0:.1f} s although the check passed its own `sleep` "
                "(which returns at once): wait only by calling the `sleep` you were given, never time.sleep as well"
            )
        if runaway["hit"]:
            r.fail("it kept retrying an error that never went away: stop after `attempts` tries and raise the error")
        outcomes.append((calls["n"], calls["slept"], box))
        if "error" in box and isinstance(box["error"], (TypeError, NotImplementedError)):
            r.call(retry, down, attempts=ATTEMPTS, base=BASE, cap=CAP, sleep=sleep)  # reports it plainly
    tries, slept, box = outcomes[0]
    r.expect(
        all(o[0] == ATTEMPTS for o in outcomes),
        f"a dependency that stays down is tried exactly attempts={ATTEMPTS} times",
        f"a dependency that stays down was called {sorted({o[0] for o in outcomes})} times with attempts={ATTEMPTS}: "
        "stop after `attempts` tries",
    )
    r.expect(
        all(isinstance(o[2].get("error"), Unavailable) for o in outcomes),
        "after the last attempt the last error is raised to the caller",
        "after the last attempt the caller should get the Unavailable error raised, but "
        + (f"it returned {box.get('value')!r}" if "value" in box else f"it raised {box.get('error')!r}"),
    )
    r.expect(
        all(o[1] == ATTEMPTS - 1 for o in outcomes),
        f"it waits between tries only ({ATTEMPTS - 1} waits, none after the last one)",
        f"it waited {sorted({o[1] for o in outcomes})} times for {ATTEMPTS} tries: wait between tries only",
    )
    bad_n = []
    for n in range(1, ATTEMPTS):
        ds = delays[n - 1]
        bound = backoff_bound(n, BASE, CAP)
        if not ds or any(not (0 <= d <= bound + 1e-9) for d in ds):
            bad_n.append((n, bound, max(ds, default=float("nan"))))
    r.expect(
        not bad_n,
        f"every wait stays within min(cap, base * 2**(n-1)) (cap {CAP} s respected)",
        "waits went above min(cap, base * 2**(n-1)): "
        + ", ".join(f"retry {n} waited up to {m:.3f} s, limit {b:.3f} s" for n, b, m in bad_n[:3]),
    )
    grows = all(max(delays[n - 1], default=0) >= 0.7 * backoff_bound(n, BASE, CAP) for n in range(1, ATTEMPTS))
    r.expect(
        grows,
        "the waits grow exponentially up to the cap (seen over 200 runs)",
        "the longest waits do not grow like base * 2**(n-1) up to the cap: per retry they reached "
        + ", ".join(f"{max(delays[n - 1], default=0):.2f}" for n in range(1, ATTEMPTS))
        + f" s; expected about {', '.join(f'{backoff_bound(n, BASE, CAP):.2f}' for n in range(1, ATTEMPTS))} s",
    )
    jittered = all(
        len({round(d, 6) for d in delays[n - 1]}) > RUNS // 2
        and min(delays[n - 1]) <= 0.3 * backoff_bound(n, BASE, CAP)
        for n in range(1, ATTEMPTS)
        if delays[n - 1]
    )
    r.expect(
        jittered,
        "waits are spread from 0 up to the limit (full jitter): callers do not retry in lockstep",
        "the waits are not spread over 0..limit: with full jitter each wait is random.uniform(0, limit), "
        "so many callers do not all come back at the same moment",
    )
    piles = _piles(delays)
    r.expect(
        not piles,
        "no wait value repeats: no two callers come back at the same moment",
        "; ".join(f"{k} of {len(delays[n - 1])} waits before retry {n} were exactly {v:g} s" for n, v, k in piles[:2])
        + ": callers that drew it all come back at the same moment. A cap applied after the jitter "
        "(min(cap, uniform(0, base * 2**(n-1)))) piles the waits up at the cap: jitter the capped limit, "
        "uniform(0, min(cap, base * 2**(n-1)))",
    )

    _other_settings(r, retry, sleep, delays, calls)

    def bad_request():
        calls["n"] += 1
        raise Rejected("400 from the check's dependency: the order has no item", 400)

    calls.update(n=0, slept=0)
    box = _call_bounded(r, retry, bad_request, attempts=ATTEMPTS, base=BASE, cap=CAP, sleep=sleep)
    r.expect(
        calls["n"] == 1 and calls["slept"] == 0 and isinstance(box.get("error"), Rejected),
        "a 400 (Rejected) is not retried: one call, no wait, the error raised",
        f"a 400 (Rejected) was called {calls['n']} times with {calls['slept']} waits"
        + ("" if isinstance(box.get("error"), Rejected) else " and the Rejected error was not raised")
        + ": a bad request fails the same way every time, never retry it",
    )
    script = iter([Unavailable("503", 503), Unavailable("503", 503)])

    def flaky():
        calls["n"] += 1
        e = next(script, None)
        if e is not None:
            raise e
        return {"price": 42}

    calls.update(n=0, slept=0)
    box = _call_bounded(r, retry, flaky, attempts=ATTEMPTS, base=BASE, cap=CAP, sleep=sleep)
    r.expect(
        box.get("value") == {"price": 42} and calls["n"] == 3,
        "a call that works on the third try returns its value",
        f"a dependency failing twice then answering should give its answer after 3 calls; got {box} "
        f"after {calls['n']} calls",
    )
    dep = _dependency(r)
    dep.reset()
    dep.set_fault(script=[503, 503, 200])
    t0 = time.time()
    box = _call_bounded(r, retry, lambda: dep.get(timeout=2), attempts=4, base=0.05, cap=0.2, seconds=8)
    seen = [t for t, _ in dep.arrivals() if t >= t0]
    dep.reset()
    gaps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    r.expect(
        box.get("value") == {"price": 42}
        and len(seen) == 3
        and all(g <= 0.05 * 2**i + 0.15 for i, g in enumerate(gaps)),
        f"against the real dependency (503, 503, 200): 3 requests, gaps {[round(g, 3) for g in gaps]} s, "
        "answer returned",
        f"against the real dependency answering 503, 503, 200 the dependency saw {len(seen)} requests "
        f"(gaps {[round(g, 3) for g in gaps]} s) and the call gave {box}; with the default `sleep` it should "
        "really wait, and return the answer",
    )


def _piles(delays) -> list[tuple[int, float, int]]:
    """(retry n, wait, how often) for a wait value that more than 1 in 20 runs drew exactly: random.uniform never
    draws the same float twice, so such a pile is a fixed value mixed into the jitter (a cap applied after it)."""
    piles = []
    for n in range(1, ATTEMPTS):
        counts: dict[float, int] = {}
        for d in delays.get(n - 1, []):
            counts[round(d, 6)] = counts.get(round(d, 6), 0) + 1
        value, k = max(counts.items(), key=lambda kv: kv[1], default=(0.0, 0))
        if k > RUNS // 20:
            piles.append((n, value, k))
    return piles


def _other_settings(r, retry, sleep, delays, calls):
    """attempts, base and cap the notebook never used; TimeoutError and ConnectionError are retryable too,
    a bug in the code (ValueError) is not."""
    attempts, base, cap = 4, 0.25, 0.6
    tries, longest = [], {n: 0.0 for n in range(1, attempts)}

    def down():
        calls["n"] += 1
        raise Unavailable("503", 503)

    for _ in range(60):
        for n in delays:
            delays[n].clear()
        calls.update(n=0, slept=0)
        _call_bounded(r, retry, down, attempts=attempts, base=base, cap=cap, sleep=sleep)
        tries.append(calls["n"])
        for n in range(1, attempts):
            longest[n] = max([longest[n], *delays.get(n - 1, [])])
    bounds = {n: backoff_bound(n, base, cap) for n in range(1, attempts)}
    r.expect(
        set(tries) == {attempts}
        and all(longest[n] <= bounds[n] + 1e-9 and longest[n] >= 0.7 * bounds[n] for n in bounds),
        f"with other settings (attempts={attempts}, base={base}, cap={cap}) it follows them: {attempts} tries, waits "
        f"up to {', '.join(f'{b:.2f}' for b in bounds.values())} s",
        f"with attempts={attempts}, base={base}, cap={cap} it made {sorted(set(tries))} tries and its longest waits "
        f"were {', '.join(f'{longest[n]:.2f}' for n in bounds)} s, expected about "
        f"{', '.join(f'{b:.2f}' for b in bounds.values())} s: use the arguments you were given, not fixed numbers",
    )
    for error in (TimeoutError("timed out"), ConnectionRefusedError("refused")):
        script = iter([error, error])

        def flaky(script=script):
            calls["n"] += 1
            e = next(script, None)
            if e is not None:
                raise e
            return "answer"

        calls.update(n=0, slept=0)
        box = _call_bounded(r, retry, flaky, attempts=4, base=0.01, cap=0.01, sleep=sleep)
        r.expect(
            box.get("value") == "answer" and calls["n"] == 3,
            f"a {type(error).__name__} is retried too (is_retryable says so)",
            f"a call failing with {type(error).__name__} twice then answering gave "
            f"{box.get('value', box.get('error'))!r} after {calls['n']} calls: retry every error for which "
            "is_retryable(e) is True, not only Unavailable",
        )

    def bug():
        calls["n"] += 1
        raise ValueError("a bug in the caller's code")

    calls.update(n=0, slept=0)
    box = _call_bounded(r, retry, bug, attempts=4, base=0.01, cap=0.01, sleep=sleep)
    r.expect(
        calls["n"] == 1 and isinstance(box.get("error"), ValueError),
        "an error is_retryable does not name (a ValueError: a bug) is raised at once",
        f"a ValueError (a bug, not retryable) was tried {calls['n']} times: retry only when is_retryable(e)",
    )


# ======================================================================= 09.2 circuit breaker
@check(
    "09.2",
    "The circuit breaker opens, half-opens and closes at the right moments",
    hints=[
        "Keep three things: the state, the count of failures IN A ROW (a success resets it), and when it opened "
        "(from the clock you were given). `state` turns 'open' into 'half-open' once reset_timeout has passed.",
        "In call(): when open, raise CircuitOpen without calling fn. When half-open, let exactly one call "
        "through: success -> closed (count 0); failure -> open again, with a new opening time.",
        "On failure: count += 1; if state == 'half-open' or count >= fail_max: state = 'open', opened_at = "
        "clock(). Always re-raise the original error. On success: state = 'closed', count = 0.",
    ],
)
def check_breaker(r, ns):
    Breaker = r.need(ns, "Breaker", type, what="class")
    clock = ScriptedClock(1000.0)
    b = r.call(Breaker, fail_max=3, reset_timeout=10, clock=clock)
    calls = {"n": 0}

    def bad():
        calls["n"] += 1
        raise Unavailable("503", 503)

    def good():
        calls["n"] += 1
        return "ok"

    def attempt(fn):
        """('ok', value) | ('raised', exception) | ('open', None); never lets the learner's code crash us."""
        try:
            return "ok", b.call(fn)
        except CircuitOpen:
            return "open", None
        except Unavailable as e:
            return "raised", e
        except NotImplementedError:
            r.fail("`Breaker.call` still raises NotImplementedError: replace the TODO with your code.")
        except Exception as e:
            r.fail(f"Breaker.call raised {type(e).__name__}: {e}")

    def state():
        try:
            return b.state
        except Exception as e:
            r.fail(f"reading Breaker.state raised {type(e).__name__}: {e}")

    r.expect(state() == "closed", "a new breaker is closed", f"a new breaker should be 'closed', not {state()!r}")
    seq = [attempt(f) for f in (bad, bad, good, bad, bad)]
    r.expect(
        state() == "closed" and [s for s, _ in seq] == ["raised", "raised", "ok", "raised", "raised"],
        "failures that are not in a row do not open it, and each failure is raised to the caller",
        f"after fail, fail, success, fail, fail (fail_max=3) the state is {state()!r} and the calls gave "
        f"{[s for s, _ in seq]}: a success resets the count, and the original error is re-raised",
    )
    attempt(bad)
    r.expect(
        state() == "open",
        "the 3rd failure in a row opens it",
        f"after 3 failures in a row (fail_max=3) the state should be 'open', not {state()!r}",
    )
    n0 = calls["n"]
    got = attempt(good)
    clock.now += 5
    got2 = attempt(good)
    r.expect(
        got[0] == "open" and got2[0] == "open" and calls["n"] == n0,
        "while open it fails fast with CircuitOpen and does not call the dependency",
        f"while open (before reset_timeout) calls gave {got[0]!r}, {got2[0]!r} and the dependency was called "
        f"{calls['n'] - n0} times: raise CircuitOpen without calling fn",
    )
    clock.now += 5.5
    r.expect(
        state() == "half-open",
        "after reset_timeout it is half-open",
        f"reset_timeout (10 s) after opening the state should be 'half-open', not {state()!r}",
    )
    n0 = calls["n"]
    probe = attempt(bad)
    r.expect(
        calls["n"] == n0 + 1 and probe[0] == "raised" and state() == "open",
        "one probe goes through when half-open; its failure opens it again at once",
        f"half-open, one failing call should reach the dependency (it reached it {calls['n'] - n0} times) "
        f"and re-open the breaker at once (state now {state()!r})",
    )
    clock.now += 3
    n0 = calls["n"]
    early = attempt(good)
    r.expect(
        early[0] == "open" and calls["n"] == n0,
        "the failed probe restarts the wait",
        "3 s after a failed probe the breaker let a call through: a failed probe must start a new reset_timeout",
    )
    clock.now += 8
    ok = attempt(good)
    r.expect(
        ok == ("ok", "ok") and state() == "closed",
        "a successful probe closes it",
        f"after the wait, a successful probe should return its value and close the breaker; got {ok[0]!r}, "
        f"state {state()!r}",
    )
    attempt(bad)
    attempt(bad)
    r.expect(
        state() == "closed",
        "closed again, it counts failures from zero",
        f"after closing, two failures should not re-open it (fail_max=3), but the state is {state()!r}",
    )
    dep = _dependency(r)
    dep.reset()
    dep.set_fault(error_rate=1.0)
    real = r.call(Breaker, fail_max=2, reset_timeout=0.4)
    t0 = time.time()
    results = []
    for _ in range(12):
        try:
            results.append(real.call(lambda: dep.get(timeout=1)))
        except CircuitOpen:
            results.append("open")
        except Exception as e:
            results.append(type(e).__name__)
    hits = len([t for t, _ in dep.arrivals() if t >= t0])
    dep.set_fault(error_rate=0.0)
    time.sleep(0.45)
    try:
        after = real.call(lambda: dep.get(timeout=1))
    except Exception as e:
        after = f"{type(e).__name__}: {e}"
    dep.reset()
    r.expect(
        hits == 2 and after == {"price": 42},
        "against the real failing dependency: 2 requests reached it, the other 10 failed fast; after the wait "
        "a probe got through and closed it",
        f"against the real dependency failing every call, {hits} of 12 calls reached it (expected 2 with "
        f"fail_max=2), and after the wait the call gave {after!r}",
    )
