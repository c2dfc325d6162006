"""The pretend fleet the bill prices, its autoscaling policy and the autoscaler's one step.

The order service's hosts (``l10-web-blue``, ``l10-web-green``) and the fulfilment workers (``l10-worker-N``)
are EC2 instances in the emulator, tagged ``team``/``env``/``role``, priced by lesson 03's cost model
(:mod:`cloudlab.cost`, the pinned price table) from lesson 03's inventory. The worker fleet follows a scaling
policy (versioned JSON documents, the way a config pipeline deploys them); :func:`step` is target tracking with
lesson 09's formula (:func:`cloudlab.reliability.autoscale.desired`). Serves lesson 10.
"""

from __future__ import annotations

import json
import time

from .. import aws, cost
from ..reliability.autoscale import desired
from . import system

PREFIX = "l10-"
REGION = "us-east-1"
AMI = "ami-12345678"  # the emulator accepts any image id
BASE_FLEET = (
    ("l10-web-blue", "m5.large", "web"),
    ("l10-web-green", "m5.large", "web"),
    ("l10-worker-1", "c5.large", "worker"),
    ("l10-worker-2", "c5.large", "worker"),
)
TEAM = {"team": "orders", "env": "prod"}
GOOD_POLICY = {
    "version": 7,
    "metric": "backlog_per_instance",  # messages waiting in the fulfilment queue, per worker
    "target": 50,
    "min": 2,
    "max": 4,
    "scale_in": True,
    "instance_type": "c5.large",
    "cooldown_s": 3,  # lab seconds before a scale-in (3 lab minutes)
    "note": "scale the workers on the fulfilment backlog",
}
METRICS = ("backlog_per_instance", "p95_latency_seconds")
P95 = 'histogram_quantile(0.95, sum by (le) (rate(orders_request_duration_seconds_bucket{job="orders"}[5m])))'


def bad_policy(leak: dict) -> dict:
    return {
        "version": 8,
        "metric": "p95_latency_seconds",
        "target": 0.3,
        "min": 2,
        "max": leak["max"],
        "scale_in": False,
        "instance_type": leak["instance_type"],
        "cooldown_s": 3,
        "note": "scale the workers on the service's p95 latency, bigger workers, never scale in during peaks",
    }


def _tags(**tags) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def ec2():
    return aws.client("ec2", region_name=REGION)


def launch(name: str, itype: str, role: str, count: int = 1, **more) -> list[str]:
    r = ec2().run_instances(
        ImageId=AMI,
        InstanceType=itype,
        MinCount=count,
        MaxCount=count,
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(Name=name, role=role, **TEAM, **more)}],
    )
    return [i["InstanceId"] for i in r["Instances"]]


def launch_base() -> list[str]:
    ids = []
    for name, itype, role in BASE_FLEET:
        ids += launch(name, itype, role, launched_by="terraform")
    return ids


def instances(role: str | None = None) -> list[dict]:
    """The drill's running instances (name, id, type, role, launched, tags), oldest first."""
    flt = [
        {"Name": "tag:Name", "Values": [f"{PREFIX}*"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ]
    if role:
        flt.append({"Name": "tag:role", "Values": [role]})
    out = []
    for page in ec2().get_paginator("describe_instances").paginate(Filters=flt):
        for r in page["Reservations"]:
            for i in r["Instances"]:
                tags = {t["Key"]: t["Value"] for t in i.get("Tags") or []}
                out.append(
                    {
                        "id": i["InstanceId"],
                        "name": tags.get("Name", ""),
                        "type": i["InstanceType"],
                        "role": tags.get("role", ""),
                        "launched": i["LaunchTime"].timestamp(),
                        "tags": tags,
                    }
                )
    return sorted(out, key=lambda x: (x["launched"], x["name"]))


def terminate(ids: list[str]) -> None:
    if ids:
        ec2().terminate_instances(InstanceIds=list(ids))


def bill(table: cost.PriceTable | None = None) -> list[cost.LineItem]:
    """The drill's pretend bill right now (lesson 03's inventory and cost model), priced for a month."""
    from ..lesson03.resources import inventory

    return cost.price_resources(inventory((REGION,), PREFIX), table or cost.load_prices())


def run_rate(lines: list[cost.LineItem]) -> float:
    """USD per month of what runs now."""
    return round(cost.total(lines), 2)


# ------------------------------------------------------------------ the scaling policy
def policy() -> dict:
    """The policy in force (the config pipeline's last deploy)."""
    return system.read_json("policy.json") or dict(GOOD_POLICY)


def policy_versions() -> dict[int, dict]:
    """Every version the config pipeline deployed, by number."""
    return {int(k): v for k, v in (system.read_json("policies.json") or {}).items()}


class PolicyError(system.DrillError, ValueError):
    """A scaling policy the autoscaler cannot follow; the message says which field and why."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mPolicyError\x1b[0m: {self}"]


def check_policy(p: dict) -> dict:
    """A policy with all its fields, of the right types; PolicyError saying what is wrong."""
    missing = sorted(set(GOOD_POLICY) - set(p) - {"note", "version"})
    if missing:
        raise PolicyError(f"a scaling policy needs {', '.join(missing)}")
    if p["metric"] not in METRICS:
        raise PolicyError(f"metric is one of {', '.join(METRICS)}, not {p['metric']!r}")
    if not (isinstance(p["min"], int) and isinstance(p["max"], int) and 1 <= p["min"] <= p["max"]):
        raise PolicyError(f"need whole numbers 1 <= min <= max, not min={p['min']!r} max={p['max']!r}")
    if not (isinstance(p["target"], (int, float)) and p["target"] > 0):
        raise PolicyError(f"target must be a positive number, not {p['target']!r}")
    cost.load_prices().price("ec2.on_demand", REGION, p["instance_type"])  # MissingPrice for an unknown type
    return p


def deploy_policy(p: dict, by: str = "you", **note) -> dict:
    """Deploy a scaling policy (a version of its own): the autoscaler follows it from its next step."""
    p = check_policy(dict(p))
    with system._locked():
        versions = policy_versions()
        p["version"] = max(versions, default=6) + 1 if p.get("version") in (None, *versions) else p["version"]
        versions[p["version"]] = p
        system.write_json("policies.json", {str(k): v for k, v in versions.items()})
        system.write_json("policy.json", p)
    system.record(
        "scaling_policy",
        version=p["version"],
        by=by,
        settings={k: v for k, v in p.items() if k != "note"},
        note=p.get("note", ""),
        **note,
    )
    return p


# ------------------------------------------------------------------ one step of the autoscaler
def metric_value(p: dict, workers: int, prometheus=None) -> float | None:
    if p["metric"] == "backlog_per_instance":
        sqs = aws.client("sqs")
        got = sqs.get_queue_attributes(
            QueueUrl=system.queue_url(system.FULFILMENT_QUEUE), AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(got["Attributes"]["ApproximateNumberOfMessages"]) / max(1, workers)
    from ..observability import prom

    return prometheus.value(prom.compress_expr(P95)) if prometheus is not None else None


def step(state: dict, prometheus=None, now: float | None = None) -> dict | None:
    """Compare the fleet with the policy once; launch or terminate workers. ``state`` keeps the time of the last
    scale-out (for the cooldown). Returns what it did (logged by the platform), or None."""
    now = now or time.time()
    p = policy()
    workers = instances("worker")
    n = len(workers)
    value = metric_value(p, n, prometheus)
    if value is None or value != value:  # no data yet (NaN): do nothing
        want = max(p["min"], min(p["max"], n))
    else:
        want = desired(max(1, n), value, p["target"], p["min"], p["max"])
    did = None
    if want > n:
        ids = launch(
            f"l10-worker-v{p['version']}",
            p["instance_type"],
            "worker",
            want - n,
            launched_by="autoscaler",
            policy=str(p["version"]),
        )
        state["last_out"] = now
        did = {"action": "scale_out", "from": n, "to": want, "launched": ids}
    elif want < n and p["scale_in"] and now - state.get("last_out", 0) >= p["cooldown_s"]:
        newest = sorted(workers, key=lambda w: w["launched"], reverse=True)[: n - want]
        terminate([w["id"] for w in newest])
        did = {"action": "scale_in", "from": n, "to": want, "terminated": [w["id"] for w in newest]}
    if did:
        did.update(
            policy=p["version"],
            metric=p["metric"],
            value=None if value is None else round(value, 3),
            target=p["target"],
        )
    state["desired"], state["workers"] = want, n
    return did


def dumps(p: dict) -> str:
    return json.dumps(p, indent=1)
