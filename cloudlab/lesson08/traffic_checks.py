"""Lesson 08's checks that drive real traffic through haproxy while the learner's code releases:
the blue-green switch (08.3) and the canary controller (08.4)."""

from __future__ import annotations

import threading
import time
import uuid

from .. import deploy, net, procs
from .. import observability as obs
from ..checks import check
from .release import backing


# ==================================================================== 08.3 blue-green
def _call_with_timeout(r, fn, args, seconds) -> dict:
    """Run the learner's function in a thread, at most ``seconds``: {"value": ...} or {"error": exception}."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args)
        except NotImplementedError:
            box["todo"] = True
        except Exception as e:
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        r.fail(f"`{fn.__name__}` was still running after {seconds:.0f} s")
    if box.get("todo"):
        r.fail(f"`{fn.__name__}` still raises NotImplementedError: replace the TODO with your code.")
    return box


def _versions(url: str, n: int = 8) -> set[str]:
    return {deploy.version_of(url) for _ in range(n)}


@check(
    "08.3",
    "Blue-green: green takes all traffic only once healthy, with zero failed requests, and blue stays up",
    hints=[
        "Ask haproxy, not the process: lb.wait_status('green', 'green', 'UP', timeout=timeout) waits until its "
        "health checks pass, and raises HaproxyError if they do not within `timeout` seconds.",
        "Then one command moves every new request: lb.set_map('active', 'live', 'green'). Do not touch blue: it "
        "is the instant rollback.",
        "If green never becomes healthy, let the HaproxyError propagate (or return) before touching the map.",
    ],
)
def check_blue_green(r, ns):
    switch_to_green = r.need(ns, "switch_to_green", callable)
    tag = uuid.uuid4().hex[:6]
    bk = backing()
    blue = deploy.start_instance("l08-check-blue", f"blue-{tag}", bk, quiet=True)
    green_port = net.free_port()
    lb = deploy.blue_green("l08-check-lb", blue.port, green_port, quiet=True)
    try:
        lb.wait_status("blue", "blue", "UP", timeout=10)
        lb.wait_status("green", "green", "DOWN", timeout=10)
        # 1. green is still booting when the switch is asked for: it must wait for green's health checks
        with deploy.Traffic(lb.url, seconds=25, rate=60, seed=3) as traffic:
            time.sleep(0.3)
            deploy.start_instance("l08-check-green", f"green-{tag}", bk, port=green_port, wait=False, quiet=True)
            box = _call_with_timeout(r, switch_to_green, (lb, 15), 20)
            switched = time.time()
            deadline = time.monotonic() + 10  # traffic goes on after the switch: wait for some of it (a loaded
            while len(traffic.after(switched)) < 10 and time.monotonic() < deadline:  # machine is slow to send)
                time.sleep(0.2)
        if "error" in box:
            r.fail(
                f"`switch_to_green(lb, 15)` raised {type(box['error']).__name__} while green was starting: "
                f"{box['error']}"
            )
        r.expect(
            deploy.live(lb) == "green",
            "haproxy's map sends new requests to green",
            f"haproxy's map still says live={deploy.live(lb)}: switch with lb.set_map('active', 'live', 'green')",
        )
        seen = _versions(lb.url)
        r.expect(
            seen == {f"green-{tag}"},
            "every request now reaches green",
            f"requests through haproxy were answered by {sorted(seen)}, expected only green-{tag}",
        )
        n, failed = len(traffic.results), len(traffic.failed)
        if failed == 0 and not traffic.after(switched):
            r.fail(
                f"the check's own traffic sent nothing after the switch in 10 s ({n} before it): run the check again"
            )
        r.expect(
            n > 0 and failed == 0,
            f"zero failed requests during the switch ({n} sent)",
            f"{failed} of {n} requests failed during the switch: green got traffic before its health checks passed",
        )
        blue_state = lb.status("blue", "blue") if blue.alive() else "stopped"
        r.expect(
            blue_state == "UP",
            "blue still runs and is healthy: an instant rollback is one command away",
            f"blue is {blue_state}: keep it running and ready until green has proven itself",
        )
        # 2. a green that never becomes healthy: the switch must not happen
        procs.stop("l08-check-green")
        lb.set_map("active", "live", "blue")
        lb.wait_status("green", "green", "DOWN", timeout=10)
        _call_with_timeout(r, switch_to_green, (lb, 1.5), 10)
        r.expect(
            deploy.live(lb) == "blue" and _versions(lb.url, 4) == {f"blue-{tag}"},
            "a green that never becomes healthy gets no traffic: blue keeps serving",
            "with a green that never became healthy, traffic was switched to it: wait for UP, and give up if not",
        )
    finally:
        for name in ("l08-check-lb", "l08-check-green", "l08-check-blue"):
            procs.stop(name)


# ==================================================================== 08.4 canary
CANARIES = {  # name: (faults, what it is)
    "good": ({}, "a healthy version"),
    "late": ({"fault_rate": 1.0, "fault_after": 20}, "a version that fails every request after its first 20"),
    "slow": ({"latency_ms": 700}, "a version 700 ms slower per request, without errors"),
}
CANARY_SAMPLE = 15  # requests each observe() sends to the canary: a handful makes one slow request look like a trend
MAX_ERROR_RATIO, MAX_EXTRA_MS = 0.01, 250


def _scenario(r, run_canary, stable, canary) -> dict:
    lb = deploy.canary_balancer("l08-check-lb", stable.port, canary.port, quiet=True)
    lb.wait_status("app", "stable", "UP", timeout=10)
    lb.wait_status("app", "canary", "UP", timeout=10)
    seen: list[dict] = []  # what each observe() showed: the check judges a rollback of a healthy canary by it

    def observe():
        weight = max(deploy.counters(lb, "canary")["weight"], 1)
        n = max(60, -(-CANARY_SAMPLE * 100 // weight))  # haproxy's weighted round robin: ~15 reach the canary
        before = deploy.counters(lb, "canary")
        obs.run_load(lb.url, n=n, concurrency=6, post_share=1.0, max_seconds=12, seed=len(seen) + 1)
        d = deploy.delta(before, deploy.counters(lb, "canary"))
        seen.append({**d, "stable_ms": deploy.counters(lb, "stable")["avg_ms"]})

    s0 = deploy.counters(lb, "stable")
    try:
        box = _call_with_timeout(r, run_canary, (lb, observe), 90)
        if "error" in box:
            r.fail(f"`run_canary(lb, observe)` raised {type(box['error']).__name__}: {box['error']}")
        c, s = deploy.counters(lb, "canary"), deploy.counters(lb, "stable")
        errors = s["errors"] - s0["errors"]
        return {"result": box.get("value"), "observes": len(seen), "seen": seen, "canary": c, "stable_errors": errors}
    finally:
        procs.stop("l08-check-lb")


def _really_bad(step: dict) -> bool:
    """Did this observation of a HEALTHY canary cross the lesson's thresholds (a loaded machine can make it)?"""
    return step["error_ratio"] > MAX_ERROR_RATIO or step["avg_ms"] > step["stable_ms"] + MAX_EXTRA_MS


def _steps(seen: list[dict]) -> str:
    return "; ".join(
        f"{s['requests']} requests, {s['errors']} errors, avg {s['avg_ms']} ms (stable {s['stable_ms']} ms)"
        for s in seen
    )


@check(
    "08.4",
    "The canary controller promotes a good version and rolls back a failing or slow one",
    hints=[
        "Steps 5, 25, 100: at each one set the weights (deploy.set_canary(lb, pct)), read the canary's counters "
        "(deploy.counters(lb, 'canary')), call observe() once, read them again, and compare.",
        "Roll back (deploy.set_canary(lb, 0)) and return 'rolled back' as soon as a step shows an error ratio "
        "above 1 %, or an avg_ms more than 250 above the stable version's; check after EVERY step.",
        "deploy.delta(before, after) gives requests, errors and error_ratio between two readings; "
        "deploy.counters(lb, 'stable')['avg_ms'] is the baseline. After the last step return 'promoted'.",
    ],
)
def check_canary(r, ns):
    run_canary = r.need(ns, "run_canary", callable)
    bk = backing()
    tag = uuid.uuid4().hex[:6]
    instances = {"stable": deploy.start_instance("l08-check-stable", f"v1-{tag}", bk, wait=False, quiet=True)}
    for name, (faults, _) in CANARIES.items():
        instances[name] = deploy.start_instance(f"l08-check-{name}", f"v2-{tag}", bk, wait=False, quiet=True, **faults)
    try:
        for inst in instances.values():
            if not net.wait_http(f"{inst.url}/health", timeout=20, alive=inst.alive):
                r.fail(f"the check's own {inst.name} did not start: {procs.log_path(inst.name)}")
            net.answers(f"{inst.url}/orders/warm-up")  # its first S3 call, outside haproxy's counters
        out = {name: _scenario(r, run_canary, instances["stable"], instances[name]) for name in CANARIES}
        for _ in range(2):  # a healthy canary rolled back on data that really crossed a threshold: the machine's
            good = out["good"]  # fault, not the controller's; watch it again (a wrong controller fails every time)
            if good["result"] == "promoted" or not good["seen"] or not _really_bad(good["seen"][-1]):
                break
            out["good"] = _scenario(r, run_canary, instances["stable"], instances["good"])
    finally:
        for name in instances.values():
            procs.stop(name.name)
    good, late, slow = out["good"], out["late"], out["slow"]
    r.expect(
        good["result"] == "promoted" and good["canary"]["weight"] == 100,
        "a healthy canary is promoted to 100 %",
        f"a healthy canary ended as {good['result']!r} with weight {good['canary']['weight']}: "
        f"it should be promoted to 100 % (what observe() showed: {_steps(good['seen']) or 'nothing'})",
    )
    r.expect(
        good["observes"] >= 3,
        f"it watched every step ({good['observes']} observations)",
        f"observe() was called {good['observes']} time(s) for a healthy canary: watch after each of the three steps",
    )
    r.expect(
        late["result"] == "rolled back" and late["canary"]["weight"] == 0,
        "a version that starts failing under more traffic is rolled back",
        f"{CANARIES['late'][1]} ended as {late['result']!r}, weight {late['canary']['weight']}: "
        "a controller that only looks at the first step misses it",
    )
    r.expect(
        late["canary"]["errors"] <= 30,
        f"it was caught early ({late['canary']['errors']} failed requests reached users)",
        f"{late['canary']['errors']} requests failed on the canary before the rollback: check after every step",
    )
    r.expect(
        slow["result"] == "rolled back" and slow["canary"]["weight"] == 0,
        "a slow version (700 ms more per request, no errors) is rolled back",
        f"{CANARIES['slow'][1]} ended as {slow['result']!r}: watch latency (avg_ms), not only errors",
    )
    stable_errors = sum(x["stable_errors"] for x in out.values())
    r.expect(
        stable_errors == 0,
        "zero failed requests on the stable version throughout",
        f"{stable_errors} requests failed on the stable version",
    )
