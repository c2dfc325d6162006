"""The platform under the order service, as one lesson process (``l10-platform``):

* the **autoscaler** of the worker fleet: one :func:`.fleet.step` per lab minute (one second), logged;
* the **cost meter**: the fleet's run rate from the pretend bill, as Prometheus metrics
  (``lab_cost_usd_per_month{team,env}``, ``lab_instances{role}``, ``autoscaler_desired_workers``);
* the **incident** of the drill's seed: at its times the release pipeline ships the release train (blue-green,
  through the same :func:`.system.deploy_release` and :func:`.system.switch` a learner uses, so the change log
  records them), the config pipeline deploys a scaling policy, and someone changes the bucket's notification
  by hand (the one change no log records: Terraform finds it).

    python -m cloudlab.lesson10.platform     (started by lesson10.start(); needs the lab's environment)

Serves lesson 10.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from datetime import UTC, datetime

from .. import aws
from . import fleet, system

_LOG = threading.Lock()


def log(event: str, **fields) -> None:
    rec = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, "service": "platform", **fields}
    line = json.dumps(rec, default=str)
    with _LOG:  # the incident's thread and the autoscaler's log side by side
        print(line, flush=True)


# ------------------------------------------------------------------ the incident
def hand_change(setting: str, hand: str) -> None:
    """What a person did in the console: one field of the bucket's event notification, outside Terraform."""
    s3 = aws.client("s3")
    cfg = s3.get_bucket_notification_configuration(Bucket=system.BUCKET)
    cfg.pop("ResponseMetadata", None)
    q = cfg["QueueConfigurations"][0]
    if setting == "filter_prefix":
        q["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": hand}]}}
    elif setting == "events":
        q["Events"] = [hand]
    elif setting == "queue_arn":
        q["QueueArn"] = system.queue_arn(hand)
    s3.put_bucket_notification_configuration(
        Bucket=system.BUCKET, NotificationConfiguration=cfg, SkipDestinationValidation=True
    )


def wait_for_first_page(timeout: float = 25.0) -> None:
    """Until the availability page reached the pager (at most ``timeout`` s): the hand change comes after it."""
    from .signals import pages

    deadline = time.time() + timeout
    while time.time() < deadline and not any(p.alertname == "OrdersErrorBudgetFastBurn" for p in pages()):
        time.sleep(0.25)


def ship_release(release_id: str, approver: str) -> None:
    """The release pipeline: deploy on the idle colour, then switch to it."""
    idle = next(c for c in system.COLOURS if c != system.live_colour())
    system.deploy_release(release_id, idle, by="release-pipeline", quiet=True, approved_by=approver)
    system.switch(idle, by="release-pipeline", quiet=True, approved_by=approver)


def plan() -> list[dict]:
    """The incident's steps: {"what", "at": seconds after "after" happened (None: after the drill started), "do"}."""
    sc = system.the_scenario()
    steps, previous = [], None
    for i, r in enumerate(sc.releases):
        if r.at is None:
            continue
        who = sc.approvers[i - 1]
        steps.append(
            {
                "what": f"release {r.id}",
                "at": r.at,
                "after": previous,
                "do": lambda r=r, who=who: ship_release(r.id, who),
            }
        )
        previous = f"release {r.id}"
    if sc.drift:
        steps.append({"what": "page", "at": 0.0, "after": f"release {sc.first_bad.id}", "do": wait_for_first_page})
        steps.append(
            {
                "what": "drift",
                "at": sc.drift["at"],
                "after": "page",
                "do": lambda: hand_change(sc.drift["setting"], sc.drift["hand"]),
            }
        )
    if sc.leak:
        steps.append(
            {
                "what": "scaling policy",
                "at": sc.leak["at"],
                "after": None,
                "do": lambda: fleet.deploy_policy(
                    fleet.bad_policy(sc.leak), by="config-pipeline", approved_by=sc.approvers[2]
                ),
            }
        )
    return steps


def conduct(stop: threading.Event) -> None:
    while "started_at" not in system.state():  # the drill starts once the system is healthy
        if stop.wait(0.2):
            return
    started = system.state()["started_at"]
    happened = system.read_json("happened.json", {})
    todo = [s for s in plan() if s["what"] not in happened]  # after a restart, what happened stays done
    while todo and not stop.is_set():
        ready = [
            (happened[s["after"]] if s["after"] else started) + s["at"]
            for s in todo
            if s["after"] is None or s["after"] in happened
        ]
        if not ready:
            return  # a step waits for one that failed: nothing more happens
        due = min(ready)
        step = next(
            s
            for s in todo
            if (s["after"] is None or s["after"] in happened)
            and (happened[s["after"]] if s["after"] else started) + s["at"] == due
        )
        if stop.wait(max(0.0, due - time.time())):
            return
        todo.remove(step)
        try:
            step["do"]()
        except Exception as e:  # say so in the platform's log; the drill goes on
            log("step_failed", step=step["what"], error=repr(e)[:300], trace=traceback.format_exc()[-800:])
            continue
        happened[step["what"]] = time.time()
        system.write_json("happened.json", happened)


# ------------------------------------------------------------------ the autoscaler and the cost meter
def make_metrics():
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    return registry, {
        "cost": Gauge(
            "lab_cost_usd_per_month",
            "The run rate of the pretend bill, USD per month.",
            ["team", "env"],
            registry=registry,
        ),
        "instances": Gauge("lab_instances", "Running instances, by role.", ["role"], registry=registry),
        "desired": Gauge("autoscaler_desired_workers", "Workers the scaling policy asks for.", registry=registry),
        "policy": Gauge("autoscaler_policy_version", "The scaling policy in force.", registry=registry),
    }


def meter(m: dict) -> None:
    lines = fleet.bill()
    by = cost_by_team(lines)
    for (team, env), usd in by.items():
        m["cost"].labels(team, env).set(usd)
    roles: dict[str, int] = {}
    for i in fleet.instances():
        roles[i["role"]] = roles.get(i["role"], 0) + 1
    for role in ("web", "worker"):
        m["instances"].labels(role).set(roles.get(role, 0))


def cost_by_team(lines) -> dict[tuple[str, str], float]:
    from .. import cost

    got = cost.allocate(lines, by=("team", "env"))
    got.setdefault(("orders", "prod"), 0.0)
    return got


def scale_and_meter(stop: threading.Event, m: dict, prometheus) -> None:
    state: dict = {}
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            did = fleet.step(state, prometheus)
            if did:
                log("scaled", **did)
            m["desired"].set(state.get("desired", 0))
            m["policy"].set(fleet.policy()["version"])
            meter(m)
        except Exception as e:
            log("platform_error", error=repr(e)[:300])
        stop.wait(max(0.1, 1.0 - (time.monotonic() - t0)))


def main() -> int:
    from prometheus_client import start_http_server

    from ..observability import prom

    st = system.state()
    registry, m = make_metrics()
    server, _ = start_http_server(st["ports"]["platform"], addr="127.0.0.1", registry=registry)
    prometheus = prom.Prometheus(f"http://127.0.0.1:{st['ports']['prometheus']}")
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log("started", port=st["ports"]["platform"], policy=fleet.policy()["version"])
    incident = threading.Thread(target=conduct, args=(stop,), daemon=True)
    incident.start()
    scale_and_meter(stop, m, prometheus)
    server.shutdown()
    log("shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
