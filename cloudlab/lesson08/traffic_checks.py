"""Lesson 08's checks that drive real traffic through haproxy while the learner's code releases:
the blue-green switch (08.3) and the canary controller (08.4)."""

from __future__ import annotations

import inspect
import re
import signal
import threading
import time
import uuid

from .. import deploy, net, procs
from .. import observability as obs
from ..checks import check
from .release import backing


def _call_with_timeout(r, fn, args, seconds, shown: str = "") -> dict:
    """Run the learner's function in a thread, at most ``seconds``: {"value": ...} or {"error": exception}.
    ``shown``: the call as the message names it."""
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
        r.fail(
            f"`{shown or fn.__name__}` was still running after {seconds:.0f} s: wait at most the time it is "
            "given, then give up"
        )
    if box.get("todo"):
        r.fail(f"`{fn.__name__}` still raises NotImplementedError: replace the TODO with your code.")
    return box


def _still_todo(r, fn) -> None:
    """A function whose body is still the exercise's TODO fails at once (before the check starts any process)."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return
    if re.search(r"^\s*raise NotImplementedError\b", source, re.M):
        r.fail(f"`{fn.__name__}` still raises NotImplementedError: replace the TODO with your code.")


def _versions(url: str, n: int = 8) -> set[str]:
    return {deploy.version_of(url) for _ in range(n)}


# ==================================================================== 08.3 blue-green
GREEN = "l08-check-green"


def _kill_green_while_haproxy_says_up(lb, bk, tag, port) -> str:
    """Start green, wait until it serves, then kill it: haproxy still says UP for up to fall x inter.
    Returns haproxy's status right after the kill (UP, unless this machine is very slow)."""
    for _ in range(3):
        deploy.start_instance(GREEN, f"green-{tag}", bk, port=port, quiet=True)
        lb.wait_status("green", "green", "UP", timeout=10)
        procs.stop(GREEN, grace=0, sig=signal.SIGKILL)
        said = lb.status("green", "green")
        if said == "UP":
            return said
    return said


@check(
    "08.3",
    "Blue-green: green takes all traffic only once healthy, with zero failed requests, and blue stays up",
    hints=[
        "Healthy means both: haproxy's checks say UP (lb.status('green', 'green')), and green answers /health when "
        "you ask it yourself (deploy.healthy(lb.server_url('green', 'green'))). haproxy's UP lags: a server that "
        "died a moment ago stays UP there until its checks have failed `fall` times.",
        "Loop until both are true or `timeout` seconds have passed; only then move every new request with one "
        "command: lb.set_map('active', 'live', 'green'). Do not touch blue: it is the instant rollback.",
        "If green is not healthy within `timeout`, raise (or return) before touching the map: the traffic stays on "
        "blue. Use the `timeout` you are given, not one of your own.",
    ],
)
def check_blue_green(r, ns):
    switch_to_green = r.need(ns, "switch_to_green", callable)
    _still_todo(r, switch_to_green)
    tag = uuid.uuid4().hex[:6]
    bk = backing()
    blue = deploy.start_instance("l08-check-blue", f"blue-{tag}", bk, quiet=True)
    green_port = net.free_port()
    # fall 3 x inter 300 ms: haproxy needs about a second to notice that a server died
    lb = deploy.blue_green("l08-check-lb", blue.port, green_port, quiet=True, fall=3)
    try:
        lb.wait_status("blue", "blue", "UP", timeout=10)
        lb.wait_status("green", "green", "DOWN", timeout=10)
        # 1. green is still booting when the switch is asked for: it must wait for green's health checks
        with deploy.Traffic(lb.url, seconds=25, rate=60, seed=3) as traffic:
            time.sleep(0.3)
            deploy.start_instance(GREEN, f"green-{tag}", bk, port=green_port, wait=False, quiet=True)
            box = _call_with_timeout(r, switch_to_green, (lb, 15), 20, "switch_to_green(lb, 15)")
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
        row = lb.server("blue", "blue") if blue.alive() else {"status": "stopped", "weight": "0"}
        state, weight = row["status"].split()[0], int(row.get("weight") or 0)
        r.expect(
            state == "UP" and weight > 0,
            "blue still runs, healthy and ready: an instant rollback is one command away",
            f"blue is {state} with weight {weight}: keep it running and ready (untouched) until green has proven "
            "itself",
        )
        # 2. green dies a moment before the switch is asked for: haproxy still says UP, and must not be trusted
        lb.set_map("active", "live", "blue")
        said = _kill_green_while_haproxy_says_up(lb, bk, tag, green_port)
        _call_with_timeout(r, switch_to_green, (lb, 1.5), 10, "switch_to_green(lb, 1.5)")  # raising is fine
        r.expect(
            deploy.live(lb) == "blue" and _versions(lb.url, 4) == {f"blue-{tag}"},
            f"a green that had just died (haproxy still said {said}) got no traffic: blue keeps serving",
            f"a green that had just died got the traffic: it was killed a moment before `switch_to_green(lb, 1.5)` "
            f"(haproxy still said {said}: its checks notice a dead server only after `fall` failures) and it never "
            "became healthy again. Ask green's /health yourself (deploy.healthy(lb.server_url('green', 'green'))) "
            "before switching",
        )
    finally:
        for name in ("l08-check-lb", GREEN, "l08-check-blue"):
            procs.stop(name)


# ==================================================================== 08.4 canary
CANARIES = {  # name: (canary's faults, stable's faults, what it is)
    "late": ({"fault_rate": 1.0, "fault_after": 12}, {}, "a version that fails every request after its first 12"),
    "slow": ({"latency_ms": 700}, {}, "a version 700 ms slower per request, without errors"),
    # stable itself takes 150 ms today (a slow dependency); the new version is 130 ms slower: within the budget
    "slow-day": (
        {"latency_ms": 280},
        {"latency_ms": 150},
        "a healthy version 130 ms slower than stable on a day stable itself takes 150 ms (within 250 ms of stable)",
    ),
}
HEALTHY = ("slow-day",)  # canaries that must be promoted
CANARY_SAMPLE = 8  # requests each observe() sends to the canary: a handful makes one slow request look like a trend
MAX_ERROR_RATIO, MAX_EXTRA_MS = 0.01, 250


def _scenario(r, run_canary, stable, canary, slow: bool = False) -> dict:
    lb = deploy.canary_balancer("l08-check-lb", stable.port, canary.port, quiet=True)
    lb.wait_status("app", "stable", "UP", timeout=10)
    lb.wait_status("app", "canary", "UP", timeout=10)
    seen: list[dict] = []  # what each observe() showed: the check judges a rollback of a healthy canary by it
    conc = 16 if slow else 8  # on a slow day requests mostly sleep: more at once, or the check takes many seconds

    def observe():
        weight = max(deploy.counters(lb, "canary")["weight"], 1)
        n = max(40, -(-CANARY_SAMPLE * 100 // weight))  # haproxy's weighted round robin: ~8 reach the canary
        before = deploy.counters(lb, "canary")
        obs.run_load(lb.url, n=n, concurrency=conc, post_share=1.0, max_seconds=12, seed=len(seen) + 1)
        d = deploy.delta(before, deploy.counters(lb, "canary"))
        seen.append({**d, "stable_ms": deploy.counters(lb, "stable")["avg_ms"]})

    s0 = deploy.counters(lb, "stable")
    try:
        box = _call_with_timeout(r, run_canary, (lb, observe), 90, "run_canary(lb, observe)")
        if "error" in box:
            r.fail(f"`run_canary(lb, observe)` raised {type(box['error']).__name__}: {box['error']}")
        c, s = deploy.counters(lb, "canary"), deploy.counters(lb, "stable")
        # what users get now, asked through the balancer (a controller that only says "rolled back" moves nothing)
        answered = {deploy.version_of(lb.url) for _ in range(10)}
        return {
            "result": box.get("value"),
            "observes": len(seen),
            "seen": seen,
            "canary": c,
            "stable_errors": s["errors"] - s0["errors"],
            "answered": answered,
        }
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
        "above 1 %, or an avg_ms more than 250 above the stable version's (read stable's avg_ms each time: on a "
        "slow day both are slow); check after EVERY step.",
        "deploy.delta(before, after) gives requests, errors and error_ratio between two readings; "
        "deploy.counters(lb, 'stable')['avg_ms'] is the baseline. After the last step return 'promoted'.",
    ],
)
def check_canary(r, ns):
    run_canary = r.need(ns, "run_canary", callable)
    _still_todo(r, run_canary)
    bk = backing()
    tag = uuid.uuid4().hex[:6]
    stables = {
        "stable": deploy.start_instance("l08-check-stable", f"v1-{tag}", bk, wait=False, quiet=True),
        "stable-slow": deploy.start_instance(
            "l08-check-stable-slow", f"v1-{tag}", bk, wait=False, quiet=True, **CANARIES["slow-day"][1]
        ),
    }
    canaries = {
        name: deploy.start_instance(f"l08-check-{name}", f"v2-{tag}", bk, wait=False, quiet=True, **faults)
        for name, (faults, _, _) in CANARIES.items()
    }
    everyone = [*stables.values(), *canaries.values()]
    try:
        for inst in everyone:
            if not net.wait_http(f"{inst.url}/health", timeout=20, alive=inst.alive):
                r.fail(f"the check's own {inst.name} did not start: {procs.log_path(inst.name)}")
            net.answers(f"{inst.url}/orders/warm-up")  # its first S3 call, outside haproxy's counters

        def stable_for(name):
            return stables["stable-slow" if CANARIES[name][1] else "stable"]

        def scenario(name):
            return _scenario(r, run_canary, stable_for(name), canaries[name], slow=bool(CANARIES[name][1]))

        out = {name: scenario(name) for name in CANARIES}
        for name in HEALTHY:
            for _ in range(2):  # a healthy canary rolled back on data that really crossed a threshold: the machine's
                got = out[name]  # fault, not the controller's; watch it again (a wrong controller fails every time)
                if got["result"] == "promoted" or not got["seen"] or not _really_bad(got["seen"][-1]):
                    break
                out[name] = scenario(name)
    finally:
        for inst in everyone:
            procs.stop(inst.name)
    good, late, slow = out["slow-day"], out["late"], out["slow"]
    r.expect(
        good["result"] == "promoted" and good["canary"]["weight"] == 100,
        "a healthy canary on a slow day (stable 150 ms, canary 130 ms more) is promoted to 100 %: latency is judged "
        "against stable's",
        f"{CANARIES['slow-day'][2]} ended as {good['result']!r} with weight {good['canary']['weight']}: it should be "
        "promoted to 100 %. Compare the canary's avg_ms with the stable version's (deploy.counters(lb, 'stable')"
        f"['avg_ms']) plus 250, not with a fixed number (what observe() showed: {_steps(good['seen']) or 'nothing'})",
    )
    r.expect(
        good["observes"] >= 3,
        f"it watched every step ({good['observes']} observations)",
        f"observe() was called {good['observes']} time(s) for a healthy canary: watch after each of the three steps",
    )
    r.expect(
        late["result"] == "rolled back" and late["canary"]["weight"] == 0,
        "a version that starts failing under more traffic is rolled back",
        f"{CANARIES['late'][2]} ended as {late['result']!r}, weight {late['canary']['weight']}: "
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
        f"{CANARIES['slow'][2]} ended as {slow['result']!r}: watch latency (avg_ms), not only errors",
    )
    stable_version = f"v1-{tag}"
    wrong = {n: sorted(o["answered"]) for n, o in out.items() if o["result"] == "rolled back"}
    wrong = {n: a for n, a in wrong.items() if set(a) != {stable_version}}
    r.expect(
        not wrong,
        "after every roll back, requests through haproxy reach only the stable version",
        f"the controller said 'rolled back' but users still reach the canary: {wrong} (set its weight to 0 with "
        "deploy.set_canary(lb, 0), do not only report it)",
    )
    stable_errors = sum(x["stable_errors"] for x in out.values())
    r.expect(
        stable_errors == 0,
        "zero failed requests on the stable version throughout",
        f"{stable_errors} requests failed on the stable version",
    )
