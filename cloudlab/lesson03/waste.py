"""Lesson 03's waste sweep: find unused volumes, IPs, snapshots and load balancers; delete them safely."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .. import aws, cost
from ..tables import Table
from .resources import PREFIX, REGIONS, _ec2, inventory


# ------------------------------------------------------------------ waste
@dataclass
class Finding:
    kind: str
    id: str
    name: str
    region: str
    reason: str
    monthly: float
    deletable: bool = True


def find_waste(
    table: cost.PriceTable,
    regions=REGIONS,
    prefix: str = PREFIX,
    now: dt.datetime | None = None,
    snapshot_max_age_days: int = 90,
    required_tags=("team", "env"),
) -> list[Finding]:
    """The dry run: list what looks unused, with what it costs per month. Deletes nothing.

    Unattached volumes, Elastic IPs not associated with anything, snapshots of volumes that no longer
    exist or older than ``snapshot_max_age_days``, load balancers with no listener or no registered
    target. Resources without the required tags are reported too, but never marked deletable:
    missing tags say "nobody owns this", not "nobody uses this".
    """
    now = now or dt.datetime.now(dt.UTC)
    res = inventory(regions, prefix)
    priced = {x.id: x.cost for x in cost.price_resources(res, table)}
    live_volumes = {}
    for region in regions:
        live_volumes[region] = {v["VolumeId"] for v in _ec2(region).describe_volumes()["Volumes"]}
    elb = aws.client("elbv2")
    found = []
    for r in res:
        reason = None
        if r["kind"] == "volume" and r["state"] == "available":
            reason = "unattached volume"
        elif r["kind"] == "public_ip" and not r["association"]:
            reason = "Elastic IP not associated with anything"
        elif r["kind"] == "snapshot":
            if r["volume_id"] not in live_volumes[r["region"]]:
                reason = "snapshot of a volume that no longer exists"
            elif r["started"] and (now - r["started"]).days > snapshot_max_age_days:
                reason = f"older than {snapshot_max_age_days} days"
        elif r["kind"] == "load_balancer":
            listeners = elb.describe_listeners(LoadBalancerArn=r["id"])["Listeners"]
            if not listeners:
                reason = "load balancer with no listener"
            else:
                groups = elb.describe_target_groups(LoadBalancerArn=r["id"])["TargetGroups"]
                targets = sum(
                    len(elb.describe_target_health(TargetGroupArn=g["TargetGroupArn"])["TargetHealthDescriptions"])
                    for g in groups
                )
                if targets == 0:
                    reason = "load balancer with no registered target"
        if reason:
            found.append(Finding(r["kind"], r["id"], r["name"], r["region"], reason, priced.get(r["id"], 0.0)))
        elif r["kind"] != "alarm" and any(not r["tags"].get(t) for t in required_tags):
            missing = [t for t in required_tags if not r["tags"].get(t)]
            found.append(
                Finding(
                    r["kind"],
                    r["id"],
                    r["name"],
                    r["region"],
                    f"untagged: no {', '.join(missing)}",
                    priced.get(r["id"], 0.0),
                    deletable=False,
                )
            )
    return found


def waste_text(findings: list[Finding]) -> str:
    rows = [
        (f.name or f.id, f.kind, f.region, f.reason, "delete" if f.deletable else "ask the owner", f.monthly)
        for f in findings
    ]
    rows.append(("TOTAL deletable", "", "", "", "", sum(f.monthly for f in findings if f.deletable)))
    return cost.format_table(rows, ("resource", "kind", "region", "why", "action", "USD/month"), money=(5,))


@dataclass
class Sweep:
    deleted: list[Finding] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)

    def table(self) -> Table:
        title = f"deleted {len(self.deleted)}, saving ${sum(f.monthly for f in self.deleted):,.2f}/month"
        rows = [("deleted", f.kind, f.name or f.id, "") for f in self.deleted]
        rows += [("skipped", f.kind, f.name or f.id, why) for f, why in self.skipped]
        return Table(("done", "kind", "resource", "why skipped"), rows, title=title, indent=2)

    def __repr__(self):
        return str(self.table())

    def _repr_html_(self):
        return self.table()._repr_html_()


def _still_unused(f: Finding) -> str | None:
    """Re-check one finding right before deleting it; a reason to skip, or None."""
    ec2 = _ec2(f.region)
    try:
        if f.kind == "volume":
            v = ec2.describe_volumes(VolumeIds=[f.id])["Volumes"][0]
            return None if v["State"] == "available" else f"now {v['State']}"
        if f.kind == "public_ip":
            a = ec2.describe_addresses(AllocationIds=[f.id])["Addresses"][0]
            return "now associated" if a.get("AssociationId") else None
        if f.kind == "snapshot":
            ec2.describe_snapshots(SnapshotIds=[f.id])
            return None
        if f.kind == "load_balancer":
            elb = aws.client("elbv2")
            elb.describe_load_balancers(LoadBalancerArns=[f.id])
            listeners = elb.describe_listeners(LoadBalancerArn=f.id)["Listeners"]
            if listeners and f.reason == "load balancer with no listener":
                return "it has a listener now"
            return None
    except Exception as e:  # gone already, or the call failed: do not delete blind
        code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
        return f"could not re-check it ({code})"
    return f"no delete rule for {f.kind}"


def delete_waste(findings: list[Finding]) -> Sweep:
    """Delete exactly what the dry run listed (nothing else), re-checking each item first."""
    out = Sweep()
    for f in findings:
        if not f.deletable:
            out.skipped.append((f, "not deletable: " + f.reason))
            continue
        why = _still_unused(f)
        if why:
            out.skipped.append((f, why))
            continue
        ec2 = _ec2(f.region)
        if f.kind == "volume":
            ec2.delete_volume(VolumeId=f.id)
        elif f.kind == "public_ip":
            ec2.release_address(AllocationId=f.id)
        elif f.kind == "snapshot":
            ec2.delete_snapshot(SnapshotId=f.id)
        elif f.kind == "load_balancer":
            aws.client("elbv2").delete_load_balancer(LoadBalancerArn=f.id)
        out.deleted.append(f)
    return out
