"""Target tracking: the autoscaling rule of an Auto Scaling group and of Kubernetes' HPA, run for real.

The formula (the same in both): ``desired = ceil(current * metric / target)``, where ``metric`` is the
average per instance (requests per second per instance here: an ASG's ``ALBRequestCountPerTarget``),
clamped to ``[min, max]``. Like the HPA we ignore changes within a 10 % tolerance, and like both we
scale out at once but scale in only after the lower value held for a cooldown (scale-in protection
against flapping). :func:`run` drives the fleet behind haproxy with a bounded load generator and
adds or removes instances (an instance is started, then put into service; or drained, then
stopped). Serves lesson 09.
"""

from __future__ import annotations

import math
import threading
import time

from .. import procs
from ..observability import run_load
from . import fleet as fleet_mod


def desired(current: int, metric: float, target: float, min_n: int = 1, max_n: int = 10, tolerance: float = 0.1) -> int:
    """How many instances target tracking asks for (HPA's rule: no change within ``tolerance``)."""
    if target <= 0 or current < 1 or min_n < 1 or max_n < min_n:
        raise ValueError("need target > 0, current >= 1 and 1 <= min_n <= max_n")
    ratio = metric / target
    want = current if abs(ratio - 1) <= tolerance else math.ceil(current * ratio)
    return max(min_n, min(max_n, want))


class Scaler:
    """Applies decisions to a started fleet: spares are started and put into service, or drained and stopped."""

    def __init__(self, fl: fleet_mod.Fleet, quiet: bool = False):
        self.fleet, self.quiet = fl, quiet

    def in_service(self) -> list[fleet_mod.Instance]:
        st = self.fleet.statuses()
        return [i for i in self.fleet.instances if st.get(i.server) in ("UP", "DOWN")]

    def _mark(self, inst: fleet_mod.Instance, running: bool) -> None:
        data = fleet_mod.load_state()
        if inst.name in data.get("instances", {}):
            data["instances"][inst.name]["running"] = running
            fleet_mod.save_state(data)

    def scale_to(self, n: int) -> list[str]:
        """Add or remove instances until ``n`` are in service; returns what it did."""
        lb, did = self.fleet.lb, []
        now = self.in_service()
        if n > len(now):
            idle = [i for i in self.fleet.instances if i.spare and i not in now][: n - len(now)]
            started = [(i, fleet_mod.spawn(i, self.fleet.backing)) for i in idle]
            for inst, proc in started:
                fleet_mod.wait_ready(inst, proc)
                self._mark(inst, True)
                lb.set_state(fleet_mod.BACKEND, inst.server, "ready")
                did.append(f"+{inst.server}")
        elif n < len(now):
            for inst in [i for i in now if i.spare][::-1][: len(now) - n]:
                lb.set_state(fleet_mod.BACKEND, inst.server, "drain")  # finish what it has, take nothing new
                self._mark(inst, False)
                procs.stop(inst.name, grace=2)
                lb.set_state(fleet_mod.BACKEND, inst.server, "maint")
                did.append(f"-{inst.server}")
        return did


def run(
    fl: fleet_mod.Fleet,
    phases: list[tuple[float, float]],
    target_rps: float,
    min_n: int = 2,
    max_n: int = 5,
    tick: float = 1.0,
    cooldown: float = 2.0,
    quiet: bool = False,
) -> dict:
    """Send load in ``phases`` [(requests/s, seconds) ...] through the balancer; every ``tick`` read the
    request rate from haproxy, compute the desired count, and scale. Returns the timeline and the load."""
    scaler, lb = Scaler(fl, quiet), fl.lb
    results: list[dict] = []
    done = threading.Event()

    def load():
        for rate, seconds in phases:
            results.extend(
                run_load(
                    lb.url, n=int(rate * seconds) + 1, rate=rate, max_seconds=seconds, concurrency=8, post_share=0.5
                )
            )
        done.set()

    th = threading.Thread(target=load, daemon=True)
    t0 = time.monotonic()
    last_total, last_t = int(lb.frontend()["req_tot"]), t0
    th.start()
    timeline, low_since = [], None
    while not done.is_set():
        time.sleep(tick)
        total, now = int(lb.frontend()["req_tot"]), time.monotonic()
        rps = (total - last_total) / (now - last_t)
        last_total, last_t = total, now
        current = max(1, len(scaler.in_service()))
        want = desired(current, rps / current, target_rps, min_n, max_n)
        if want < current:  # scale in only after the lower value held for the cooldown
            low_since = low_since or now
            want = want if now - low_since >= cooldown else current
        else:
            low_since = None
        did = scaler.scale_to(want) if want != current else []
        row = {"t": round(now - t0, 2), "rps": round(rps, 1), "instances": current, "desired": want, "did": did}
        timeline.append(row)
        if not quiet:
            print(
                f"t={row['t']:5.1f}s  {rps:5.1f} req/s over {current} instances "
                f"({rps / current:4.1f} each, target {target_rps:g}) -> desired {want} {' '.join(did)}"
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
    ax2.step(ts, [r["instances"] for r in tl], where="post", color="tab:green", label="instances")
    ax2.set_ylim(0, max(r["desired"] for r in tl) + 1)
    ax2.set_ylabel("instances")
    ax.set_xlabel("seconds")
    ax.set_ylabel("requests/s")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    return fig
