"""Target tracking, run for real: a controller that keeps requests per instance near a target, driving the fleet.

The formula is the Kubernetes HPA's, as its documentation states it (Horizontal Pod Autoscaling, "Algorithm
details"): ``desired = ceil(current * metric / target)``, no change while ``metric / target`` is within a
tolerance (10 %), clamped to ``[min, max]``. Scaling in uses the HPA's **stabilization window**: the
controller scales down only to the highest recommendation of the last ``stabilization_s`` seconds (the HPA's
default window is 300 s), so a dip does not remove instances that the next second needs again; scaling out
happens at once. AWS documents its target tracking policies by behaviour, not by a formula: they calculate the
adjustment from the metric and the target, add capacity more aggressively than they remove it (Application Auto
Scaling User Guide, "How target tracking scaling works"), and wait for an instance's warm-up before its metrics
count.

:func:`run` drives the fleet behind haproxy with a bounded load generator. Scaling out takes a spare from the
warm pool (started in advance, out of service: an ASG's warm pool does the same, because a new instance takes
minutes) and puts it into service once ``/health`` answers; a cold spare is started without stopping the
controller's ticks. Scaling in drains an instance (haproxy ``set server ... state drain``: finish what it has,
take nothing new), then takes it out of service, back to the pool. Serves lesson 09.
"""

from __future__ import annotations

import math
import threading
import time

from .. import net, procs
from ..observability import run_load
from . import fleet as fleet_mod


def desired(current: int, metric: float, target: float, min_n: int = 1, max_n: int = 10, tolerance: float = 0.1) -> int:
    """How many instances target tracking asks for (the HPA's rule: no change within ``tolerance``)."""
    if target <= 0 or current < 1 or min_n < 1 or max_n < min_n:
        raise ValueError("need target > 0, current >= 1 and 1 <= min_n <= max_n")
    ratio = metric / target
    want = current if abs(ratio - 1) <= tolerance else math.ceil(current * ratio)
    return max(min_n, min(max_n, want))


def stabilized(current: int, recent: list[int]) -> int:
    """The HPA's scale-down stabilization: up at once to the newest recommendation, down only to the highest
    recommendation of the window (``recent``, oldest first, the newest last)."""
    newest = recent[-1]
    return newest if newest >= current else min(current, max(recent))


class Scaler:
    """Applies decisions to a started fleet: spares are started (then put into service once they answer), or
    drained and stopped. Never blocks for an instance to start."""

    def __init__(self, fl: fleet_mod.Fleet):
        self.fleet = fl
        self.starting: dict[str, tuple[fleet_mod.Instance, float]] = {}  # name: (instance, when started)

    def in_service(self) -> list[fleet_mod.Instance]:
        st = self.fleet.statuses()
        return [i for i in self.fleet.instances if st.get(i.server) in ("UP", "DOWN")]

    def _mark(self, inst: fleet_mod.Instance, running: bool) -> None:
        data = fleet_mod.load_state()
        if inst.name in data.get("instances", {}):
            data["instances"][inst.name]["running"] = running
            fleet_mod.save_state(data)

    def poll(self) -> list[str]:
        """Put every started instance that answers ``/health`` into service."""
        did = []
        for name, (inst, _) in list(self.starting.items()):
            if net.answers(inst.url + "/health", timeout=0.3):
                self._mark(inst, True)
                self.fleet.lb.set_state(fleet_mod.BACKEND, inst.server, "ready")
                del self.starting[name]
                did.append(f"+{inst.server}")
        return did

    def scale_to(self, n: int) -> list[str]:
        """Start or remove instances so that ``n`` are in service or starting; returns what it did."""
        lb, did = self.fleet.lb, []
        now = self.in_service()
        have = len(now) + len(self.starting)
        if n > have:
            idle = [i for i in self.fleet.instances if i.spare and i not in now and i.name not in self.starting]
            for inst in idle[: n - have]:
                if procs.running(inst.name) is None:  # not in the warm pool: a cold start
                    fleet_mod.spawn(inst, self.fleet.backing)
                    did.append(f"start {inst.server}")
                self.starting[inst.name] = (inst, time.monotonic())
            did += self.poll()  # a warm instance that answers goes into service now
        elif n < len(now) and not self.starting:
            for inst in [i for i in now if i.spare][::-1][: len(now) - n]:
                lb.set_state(fleet_mod.BACKEND, inst.server, "drain")  # finish what it has, take nothing new
                self._mark(inst, False)
                _drained(lb, inst.server)
                lb.set_state(fleet_mod.BACKEND, inst.server, "maint")  # back to the warm pool
                did.append(f"-{inst.server}")
        return did


def _drained(lb, server: str, timeout: float = 2.0) -> None:
    """Wait until haproxy has no request in flight on ``server`` (its ``scur``), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = next((r for r in lb.stats() if r["pxname"] == fleet_mod.BACKEND and r["svname"] == server), {})
        if int(row.get("scur") or 0) == 0:
            return
        time.sleep(0.05)


def run(
    fl: fleet_mod.Fleet,
    phases: list[tuple[float, float]],
    target_rps: float,
    min_n: int = 2,
    max_n: int = 5,
    tick: float = 0.5,
    stabilization_s: float = 1.0,
    quiet: bool = False,
) -> dict:
    """Send load in ``phases`` [(requests/s, seconds) ...] through the balancer; every ``tick`` read the request
    rate from haproxy, compute the recommendation and the stabilized decision, and scale. Returns the timeline
    (one row per tick) and the load's results."""
    scaler, lb = Scaler(fl), fl.lb
    results: list[dict] = []
    done = threading.Event()

    def load():
        for rate, seconds in phases:
            results.extend(
                run_load(  # enough workers to keep the rate while a busy machine answers slowly (8 gave 44/s of 70)
                    lb.url, n=int(rate * seconds) + 1, rate=rate, max_seconds=seconds, concurrency=32, post_share=0.5
                )
            )
        done.set()

    th = threading.Thread(target=load, daemon=True)
    t0 = time.monotonic()
    last_total, last_t = int(lb.frontend()["req_tot"]), t0
    th.start()
    timeline: list[dict] = []
    window: list[tuple[float, int]] = []
    next_tick = t0 + tick
    if not quiet:
        print(f"desired = ceil(instances x requests/s per instance / {target_rps:g}), within [{min_n}, {max_n}]")
    while not done.is_set():
        time.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick += tick
        did = scaler.poll()
        total, now = int(lb.frontend()["req_tot"]), time.monotonic()
        rps = (total - last_total) / max(now - last_t, 1e-6)
        last_total, last_t = total, now
        current = max(1, len(scaler.in_service()))
        raw = desired(current, rps / current, target_rps, 1, 10**6)  # the formula alone, before the clamp
        rec = max(min_n, min(max_n, raw))
        window = [(t, r) for t, r in window if t > now - stabilization_s] + [(now, rec)]
        want = stabilized(current, [r for _, r in window])
        did += scaler.scale_to(want)
        row = {
            "t": round(now - t0, 2),
            "rps": round(rps, 1),
            "instances": current,
            "starting": len(scaler.starting),
            "formula": raw,
            "recommended": rec,
            "desired": want,
            "did": did,
        }
        timeline.append(row)
        if not quiet:
            why = (
                f" (scale-in waits: {max(r for _, r in window)} within the last {stabilization_s:g} s)"
                if want > rec
                else ""
            )
            print(
                f"t={row['t']:4.1f}s {rps:5.1f} req/s on {current} in service ({rps / current:4.1f} each): "
                f"formula {raw}"
                + (f", clamped {rec}" if rec != raw else "")
                + f" -> desired {want}{why} {' '.join(did)}"
            )
    th.join(timeout=5)
    return {"timeline": timeline, "results": results}


def plot(outcome: dict, target_rps: float, title: str = "target tracking under load"):
    import matplotlib.pyplot as plt

    tl = outcome["timeline"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ts = [r["t"] for r in tl]
    ax.step(ts, [r["rps"] for r in tl], where="post", label="requests/s (haproxy)")
    ax.step(ts, [r["instances"] * target_rps for r in tl], where="post", label=f"capacity (instances x {target_rps:g})")
    ax2 = ax.twinx()
    ax2.step(ts, [r["instances"] for r in tl], where="post", color="tab:green", label="in service")
    ax2.step(ts, [r["desired"] for r in tl], where="post", color="tab:green", ls=":", label="desired")
    ax2.set_ylim(0, max(r["desired"] for r in tl) + 1)
    ax2.set_ylabel("instances")
    ax.set_xlabel("seconds")
    ax.set_ylabel("requests/s")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig
