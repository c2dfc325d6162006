"""Start the drill: bring the whole system up healthy under steady traffic, then let the incident begin.

:func:`start` is the setup cell of the exercise (and, at ``difficulty=1`` with a known seed, the lesson's demo).
It draws a fresh seed (``CLOUDLAB_DRILL_SEED`` pins one), starts everything in parallel where it can (the
Terraform apply runs while Prometheus and Alertmanager start), waits until an order has gone all the way
(stored, announced, shipped) and the watchers see both the service and the worker, then starts the platform,
whose clock starts the incident a few seconds later. Serves lesson 10.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time

from .. import cleanup, net, procs
from ..lab import ROOT
from ..observability import prom
from . import fleet, stack, system
from . import scenario as scenario_mod
from .system import BUCKET, LOAD, PLATFORM, WORKER, DrillError


def difficulty_setting(value=None) -> int:
    raw = value if value is not None else os.environ.get("CLOUDLAB_DRILL_DIFFICULTY") or 3
    try:
        level = int(raw)
    except (TypeError, ValueError):
        level = 0
    if level not in (1, 2, 3):
        raise DrillError(f"difficulty is 1 (a bad release), 2 (+ a drift) or 3 (+ a cost leak), not {raw!r}")
    return level


def _stop_all() -> None:
    procs.stop_all(cleanup.prefix(system.LESSON))


def start(difficulty=None, seed: int | None = None, quiet: bool = False) -> dict:
    """Start a fresh drill (stopping an earlier one); returns the drill's state (ports, start time, difficulty)."""
    t0 = time.monotonic()
    level = difficulty_setting(difficulty)
    if seed is None:
        seed = int(os.environ.get("CLOUDLAB_DRILL_SEED") or secrets.randbits(31))
    sc = scenario_mod.draw(int(seed), level)
    _stop_all()
    from .checks_fix import install_audit  # the record of hand changes starts with the drill, not at import

    install_audit()
    d = system.drill_dir()
    for sub in ("watch", "spans", "logs"):
        shutil.rmtree(d / sub, ignore_errors=True)
        (d / sub).mkdir()
    for f in (
        "events.jsonl",
        "pager.jsonl",
        "load.jsonl",
        "colours.json",
        "happened.json",
        "policy.json",
        "policies.json",
        "audit.jsonl",
    ):
        (d / f).unlink(missing_ok=True)
    names = (
        "blue",
        "green",
        "blue_metrics",
        "green_metrics",
        "lb",
        "worker_metrics",
        "platform",
        "prometheus",
        "alertmanager",
        "pager",
    )
    ports = dict(zip(names, system.free_ports(len(names)), strict=True))
    system.write_json("drill.json", {"seed": sc.seed, "difficulty": level, "ports": ports})

    system.platform_queues()
    system.bootstrap_state_bucket()
    box: dict = {}

    def apply():
        try:
            shutil.rmtree(system.tf_dir(), ignore_errors=True)  # a fresh working copy, no state of an old drill
            tf = system.terraform(quiet=True)
            tf.apply()
            box["tf"] = tf
        except Exception as e:  # shown below, in the notebook's thread
            box["error"] = e

    worker = threading.Thread(target=apply, daemon=True)
    worker.start()
    system.write_targets()  # before Prometheus starts: it watches the folder from then on
    prometheus, alertmanager, pager_url = stack.start(d / "watch", ports, d / "pager.jsonl")
    fleet.launch_base()
    fleet.deploy_policy(fleet.GOOD_POLICY, by="config-pipeline", approved_by="platform team")
    worker.join(180)
    if "error" in box or "tf" not in box:
        _stop_all()
        raise DrillError(f"the orders stack could not be applied: {box.get('error', 'terraform took over 3 minutes')}")

    procs.start(
        WORKER,
        [
            "-m",
            "cloudlab.lesson10.worker",
            "--queue-url",
            system.queue_url(system.FULFILMENT_QUEUE),
            "--bucket",
            BUCKET,
            "--metrics-port",
            ports["worker_metrics"],
        ],
        cwd=str(ROOT),
    )
    system.deploy_release(sc.baseline.id, "blue", by="release-pipeline", quiet=True)
    lb = system.balancer(start=True)
    lb.wait_status("blue", "blue", "UP", timeout=20)
    procs.start(
        LOAD,
        [
            "-m",
            "cloudlab.observability.load",
            lb.url,
            "--rate",
            system.RATE,
            "--post-share",
            system.POST_SHARE,
            "--results",
            d / "load.jsonl",
        ],
        cwd=str(ROOT),
    )
    procs.start(
        PLATFORM,
        ["-m", "cloudlab.lesson10.platform"],
        cwd=str(ROOT),
        ready_url=f"http://127.0.0.1:{ports['platform']}/metrics",
    )  # the meter; the incident waits for the start
    _wait_healthy(prometheus)
    st = system.state()
    st["serial_at_start"] = system.state_serial() or 0
    st["started_at"] = time.time()
    system.write_json("drill.json", st)
    system.record("drill_started", difficulty=level)
    if not quiet:
        took = time.monotonic() - t0
        print(f"the orders system is up and healthy in {took:.0f} s (difficulty {level}; lab time: 1 s = 1 min):")
        print(f"  order service  {lb.url} (haproxy: blue runs {sc.baseline.id}, green is idle)")
        print(f"  Prometheus     {prometheus.url}    Alertmanager {alertmanager.url}    pager {pager_url}")
        print(f"  Terraform      {tf_line(box['tf'])}")
        print(f"  traffic        {system.RATE:g} requests/s, half of them new orders; the worker ships each order")
    return st


def tf_line(tf) -> str:
    return tf.command_line(["apply"]) + " (done: the bucket and its event notification)"


def _wait_healthy(prometheus: prom.Prometheus, timeout: float = 45.0) -> None:
    """Until the watchers see the service, the worker and the meter, an order has been shipped, and no alert is
    pending or firing (a healthy start)."""
    deadline = time.monotonic() + timeout
    want = {"orders", "fulfilment", "platform"}
    while time.monotonic() < deadline:
        try:
            up = {t["labels"].get("job") for t in prometheus.targets() if t.get("health") == "up"}
            shipped = prometheus.value('sum(fulfilment_shipped_total{on_time="true"})') or 0
            metered = prometheus.value('sum(lab_cost_usd_per_month{team="orders"})') or 0
            quiet = not [a for a in prometheus.alerts() if a.get("state") in ("pending", "firing")]
        except prom.StackError:
            up, shipped, metered, quiet = set(), 0, 0, False
        if want <= up and shipped >= 1 and metered > 0 and quiet:
            return
        time.sleep(0.2)
    raise DrillError(
        "the system did not become healthy within 45 s (Prometheus sees: "
        f"{sorted(up) or 'no target'}; orders shipped: {shipped:g}). `make status` shows what runs; run the cell again."
    )


def stop() -> list[str]:
    """Stop every process of the drill (its records stay until a reset)."""
    running = [p.stem for p in sorted(procs._dir().glob("l10-*.pid"))]
    _stop_all()
    return running


def answers(url: str) -> bool:
    return net.answers(url, timeout=1)
