"""Lesson 03, cost awareness: the lab side (real resources in the emulators) and the checks.

The pure cost model (price table, bill, right-sizing, purchase options, lifecycle
projection, plots) is in :mod:`cloudlab.cost`; this module creates, reads and deletes
resources in the lab, and holds the exercise checks.

Who serves what here: EC2, CloudWatch, S3, SNS, SQS and STS come from LocalStack;
ELBv2 and Budgets from moto (LocalStack's free tier cannot serve them without Docker).
Every resource is named ``l03-...`` so :func:`reset` removes exactly this lesson's.
"""
from __future__ import annotations

import datetime as dt
import html
import math
import random
import secrets
import time
from dataclasses import dataclass, field

from . import aws, cost, pager
from .checks import check

PREFIX = "l03-"
REGIONS = ("us-east-1", "eu-west-1")
AMI = "ami-12345678"                 # the emulator accepts any image id; real AWS needs a real one
CPU_NAMESPACE = "AWS/EC2"            # on real AWS, EC2 itself publishes CPUUtilization here
MEM_NAMESPACE = "CWAgent"            # memory needs the CloudWatch agent: EC2 cannot see inside the VM
BILLING_NAMESPACE = "L03/Billing"    # our pretend "EstimatedCharges" metric
DAYS = 7
SERVICES = ("s3", "sqs", "sns", "ec2", "cloudwatch", "elbv2", "budgets")   # what this lesson needs

# name, type, region, team, env, utilization profile (CPU base, CPU daily swing, memory %)
FLEET = [
    ("l03-web-1", "m5.2xlarge", "us-east-1", "web", "prod", (9, 14, 28)),
    ("l03-web-2", "m5.2xlarge", "us-east-1", "web", "prod", (8, 15, 30)),
    ("l03-api-1", "c5.xlarge", "us-east-1", "api", "prod", (48, 18, 45)),
    ("l03-api-stg", "m5.xlarge", "us-east-1", "api", "staging", (3, 4, 18)),
    ("l03-etl-1", "r5.xlarge", "eu-west-1", "data", "prod", (10, 12, 72)),
    ("l03-ci-runner", "t3.large", "us-east-1", None, "dev", (6, 30, 14)),
]


# ------------------------------------------------------------------ small helpers
def _ec2(region: str | None = None):
    return aws.client("ec2", region_name=region) if region else aws.client("ec2")


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def _tag_list(**tags) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items() if v]


def _name_filter(prefix: str) -> list[dict]:
    return [{"Name": "tag:Name", "Values": [f"{prefix}*"]}]


def nonce() -> str:
    """A fresh identifier, so a check never finds state left by an earlier run."""
    return secrets.token_hex(3)


def account_id() -> str:
    """The account the lab pretends to be (LocalStack's STS answers 000000000000)."""
    return aws.client("sts").get_caller_identity()["Account"]


def emulators() -> str:
    """Which emulator answers each service this lesson uses, read from boto3's own variables."""
    import os
    default = os.environ.get("AWS_ENDPOINT_URL", "")
    rows = []
    for svc in ("ec2", "cloudwatch", "s3", "sns", "sqs", "sts", "elbv2", "budgets", "ce"):
        url = aws.endpoint_for(svc) or "-"
        who = "LocalStack" if url == default else "moto"
        rows.append((svc, aws.env_name(svc) if url != default else "AWS_ENDPOINT_URL", url, who))
    return cost.format_table(rows, ("service", "variable", "endpoint", "served by"))


# ------------------------------------------------------------------ reset
def _moto_subnets(n: int = 2) -> tuple[str, list[str]]:
    """ELBv2 runs in moto, which has its own VPCs: a load balancer needs moto's subnets.

    On real AWS both are the same account; here we ask EC2 at the ELBv2 endpoint.
    """
    ec2 = aws.client("ec2", endpoint_url=aws.endpoint_for("elbv2"))
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnets = sorted(subnets, key=lambda s: s["AvailabilityZone"])[:n]
    return subnets[0]["VpcId"], [s["SubnetId"] for s in subnets]


def reset(quiet: bool = False) -> dict[str, list[str]]:
    """Remove everything of lesson 03: EC2 (instances, volumes, IPs, snapshots) in both regions,
    load balancers and target groups (moto), budgets (moto), then buckets/queues/topics/alarms."""
    from .cleanup import reset_lesson
    from .ready import wait_for_services
    wait_for_services(SERVICES)  # a plain-words EmulatorDown if a part of the lab is missing
    removed: dict[str, list[str]] = {"instances": [], "volumes": [], "addresses": [], "snapshots": [],
                                     "load balancers": [], "target groups": [], "budgets": []}
    for region in REGIONS:
        ec2 = _ec2(region)
        ids = [i["InstanceId"] for r in ec2.describe_instances(Filters=_name_filter(PREFIX) + [
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
            for i in r["Instances"]]
        for a in ec2.describe_addresses(Filters=_name_filter(PREFIX))["Addresses"]:
            if a.get("AssociationId"):
                ec2.disassociate_address(AssociationId=a["AssociationId"])
            ec2.release_address(AllocationId=a["AllocationId"])
            removed["addresses"].append(a.get("PublicIp", a["AllocationId"]))
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            removed["instances"] += ids
        for v in ec2.describe_volumes(Filters=_name_filter(PREFIX))["Volumes"]:
            if v["State"] == "in-use":
                ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
            ec2.delete_volume(VolumeId=v["VolumeId"])
            removed["volumes"].append(v["VolumeId"])
        for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=_name_filter(PREFIX))["Snapshots"]:
            ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
            removed["snapshots"].append(s["SnapshotId"])
    elb = aws.client("elbv2")
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        if lb["LoadBalancerName"].startswith(PREFIX):
            elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
            removed["load balancers"].append(lb["LoadBalancerName"])
    for tg in elb.describe_target_groups()["TargetGroups"]:
        if tg["TargetGroupName"].startswith(PREFIX):
            elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
            removed["target groups"].append(tg["TargetGroupName"])
    budgets = aws.client("budgets")
    acct = account_id()
    for b in budgets.describe_budgets(AccountId=acct).get("Budgets", []):
        if b["BudgetName"].startswith(PREFIX):
            budgets.delete_budget(AccountId=acct, BudgetName=b["BudgetName"])
            removed["budgets"].append(b["BudgetName"])
    removed.update(reset_lesson("03", quiet=True))
    if not quiet:
        gone = ", ".join(f"{len(v)} {k}" for k, v in removed.items() if v) or "nothing left over"
        print(f"Lesson 03 reset: {gone}.")
    return removed


# ------------------------------------------------------------------ the fleet
def launch_fleet(fleet=FLEET) -> dict[str, str]:
    """Start the lesson's tagged instances (each with a tagged gp3 root volume); name -> instance id."""
    ids = {}
    for name, itype, region, team, env, _ in fleet:
        tags = _tag_list(Name=name, team=team, env=env)
        vtags = _tag_list(Name=f"{name}-root", team=team, env=env)
        r = _ec2(region).run_instances(
            ImageId=AMI, InstanceType=itype, MinCount=1, MaxCount=1,
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                  "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "DeleteOnTermination": True}}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags},
                               {"ResourceType": "volume", "Tags": vtags}])
        ids[name] = r["Instances"][0]["InstanceId"]
    return ids


def add_storage_and_network(ids: dict[str, str]) -> dict[str, str]:
    """What a real team accumulates around its instances; some of it is used, some is forgotten."""
    ec2 = _ec2()
    made = {}

    def volume(name, size, vtype, team, env):
        v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=size, VolumeType=vtype,
                              TagSpecifications=[{"ResourceType": "volume",
                                                  "Tags": _tag_list(Name=name, team=team, env=env)}])
        made[name] = v["VolumeId"]
        return v["VolumeId"]

    data = volume("l03-web-data", 200, "gp3", "web", "prod")
    ec2.attach_volume(VolumeId=data, InstanceId=ids["l03-web-1"], Device="/dev/sdf")
    volume("l03-old-reports", 500, "gp2", "data", "prod")        # its instance was deleted last spring
    volume("l03-scratch", 100, "gp3", "api", "staging")           # someone's experiment
    old = volume("l03-export-tmp", 300, "gp2", "data", "prod")    # snapshotted, then deleted below
    snap = ec2.create_snapshot(VolumeId=data, TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(
        Name="l03-web-data-backup", team="web", env="prod")}])
    made["l03-web-data-backup"] = snap["SnapshotId"]
    snap = ec2.create_snapshot(VolumeId=old, TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(
        Name="l03-export-final", team="data", env="prod")}])
    made["l03-export-final"] = snap["SnapshotId"]
    ec2.delete_volume(VolumeId=old)
    del made["l03-export-tmp"]
    for name, team, env, attach in (("l03-web-ip", "web", "prod", "l03-web-1"), ("l03-spare-ip", "api", "staging", None)):
        a = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": _tag_list(
            Name=name, team=team, env=env)}])
        if attach:
            ec2.associate_address(AllocationId=a["AllocationId"], InstanceId=ids[attach])
        made[name] = a["AllocationId"]
    # Load balancers live in moto (ELBv2): one serving targets, one left behind by a finished project.
    elb = aws.client("elbv2")
    vpc, subnets = _moto_subnets()
    for name, team, env, busy in (("l03-web-alb", "web", "prod", True), ("l03-promo-alb", "web", "prod", False)):
        lb = elb.create_load_balancer(Name=name, Subnets=subnets, Tags=_tag_list(team=team, env=env))
        arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        made[name] = arn
        if busy:
            tg = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
            tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
            elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": "10.0.1.10"}, {"Id": "10.0.2.10"}])
            elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80,
                                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    return made


# ------------------------------------------------------------------ inventory
def inventory(regions=REGIONS, prefix: str = PREFIX) -> list[dict]:
    """Every billable resource of this lesson that exists right now, as plain dicts for :mod:`cost`.

    In a real account you would list everything; here other lessons share the lab, so we
    keep to our prefix.
    """
    out: list[dict] = []
    for region in regions:
        ec2 = _ec2(region)
        for r in ec2.describe_instances(Filters=_name_filter(prefix) + [
                {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]:
            for i in r["Instances"]:
                t = _tags(i)
                out.append({"kind": "instance", "id": i["InstanceId"], "name": t.get("Name", ""), "region": region,
                            "tags": t, "type": i["InstanceType"], "launched": i.get("LaunchTime")})
        for v in ec2.describe_volumes(Filters=_name_filter(prefix))["Volumes"]:
            t = _tags(v)
            out.append({"kind": "volume", "id": v["VolumeId"], "name": t.get("Name", ""), "region": region, "tags": t,
                        "type": v["VolumeType"], "size_gb": v["Size"], "state": v["State"],
                        "attached_to": [a["InstanceId"] for a in v.get("Attachments", [])]})
        for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=_name_filter(prefix))["Snapshots"]:
            t = _tags(s)
            out.append({"kind": "snapshot", "id": s["SnapshotId"], "name": t.get("Name", ""), "region": region,
                        "tags": t, "size_gb": s.get("VolumeSize", 0), "volume_id": s.get("VolumeId"),
                        "started": s.get("StartTime")})
        for a in ec2.describe_addresses(Filters=_name_filter(prefix))["Addresses"]:
            t = _tags(a)
            out.append({"kind": "public_ip", "id": a["AllocationId"], "name": t.get("Name", ""), "region": region,
                        "tags": t, "ip": a.get("PublicIp"), "association": a.get("AssociationId") or None})
        cw = aws.client("cloudwatch", region_name=region)
        for al in cw.describe_alarms(AlarmNamePrefix=prefix).get("MetricAlarms", []):
            out.append({"kind": "alarm", "id": al["AlarmArn"], "name": al["AlarmName"], "region": region, "tags": {}})
    elb = aws.client("elbv2")
    lbs = [lb for lb in elb.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"].startswith(prefix)]
    if lbs:
        tags = {d["ResourceArn"]: _tags(d) for d in
                elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"] for lb in lbs])["TagDescriptions"]}
        region = elb.meta.region_name
        for lb in lbs:
            t = tags.get(lb["LoadBalancerArn"], {})
            out.append({"kind": "load_balancer", "id": lb["LoadBalancerArn"], "name": lb["LoadBalancerName"],
                        "region": region, "tags": t, "created": lb.get("CreatedTime")})
    return out


def bill(table: cost.PriceTable, regions=REGIONS, hours=None) -> list[cost.LineItem]:
    """The pretend bill: what exists now, priced for a month (or ``hours``)."""
    return cost.price_resources(inventory(regions), table, hours)


# ------------------------------------------------------------------ utilization metrics
def utilization_series(profile: tuple[float, float, float], seed: str, hours: int = DAYS * 24):
    """Hourly CPU and memory % for ``hours`` hours (oldest first): a daily rhythm, noise, a few spikes."""
    base, swing, mem = profile
    rnd = random.Random(seed)
    cpu, memory = [], []
    for h in range(hours):
        day = max(0.0, math.sin(2 * math.pi * ((h % 24) - 7) / 24))  # busy in the (UTC) working day
        c = base + swing * day + rnd.gauss(0, max(1.0, swing / 8))
        if rnd.random() < 0.01:
            c += swing
        cpu.append(round(min(100.0, max(0.5, c)), 2))
        memory.append(round(min(100.0, max(1.0, mem + 3 * day + rnd.gauss(0, 1.5))), 2))
    return cpu, memory


def publish_utilization(instance_id: str, cpu: list[float], mem: list[float] | None, region: str = "us-east-1",
                        end: dt.datetime | None = None) -> int:
    """Write hourly CPU (and memory) points for one instance into CloudWatch; returns how many.

    Only in the lab: on real AWS, EC2 publishes CPUUtilization itself (and the AWS/ namespaces are
    reserved); memory comes from the CloudWatch agent. Here nothing runs inside the instances, so we
    play both parts.
    """
    cw = aws.client("cloudwatch", region_name=region)
    end = (end or dt.datetime.now(dt.timezone.utc)).replace(minute=0, second=0, microsecond=0)
    dims = [{"Name": "InstanceId", "Value": instance_id}]
    n = len(cpu)
    points = [(CPU_NAMESPACE, {"MetricName": "CPUUtilization", "Dimensions": dims, "Unit": "Percent",
                               "Timestamp": end - dt.timedelta(hours=n - 1 - h), "Value": v}) for h, v in enumerate(cpu)]
    if mem is not None:
        points += [(MEM_NAMESPACE, {"MetricName": "mem_used_percent", "Dimensions": dims, "Unit": "Percent",
                                    "Timestamp": end - dt.timedelta(hours=n - 1 - h), "Value": v}) for h, v in enumerate(mem)]
    for ns in (CPU_NAMESPACE, MEM_NAMESPACE):
        batch = [p for s, p in points if s == ns]
        for i in range(0, len(batch), 500):
            cw.put_metric_data(Namespace=ns, MetricData=batch[i:i + 500])
    return len(points)


def fetch_utilization(instance_ids: list[str], region: str = "us-east-1", days: int = DAYS) -> dict[str, dict]:
    """Hourly average CPU and memory % per instance, oldest first, in one GetMetricData call."""
    cw = aws.client("cloudwatch", region_name=region)
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    queries = []
    for k, iid in enumerate(instance_ids):
        dims = [{"Name": "InstanceId", "Value": iid}]
        for code, ns, metric in (("c", CPU_NAMESPACE, "CPUUtilization"), ("m", MEM_NAMESPACE, "mem_used_percent")):
            queries.append({"Id": f"{code}{k}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": ns, "MetricName": metric, "Dimensions": dims},
                "Period": 3600, "Stat": "Average"}})
    out = {iid: {"cpu": [], "mem": []} for iid in instance_ids}
    for i in range(0, len(queries), 500):
        kwargs = dict(MetricDataQueries=queries[i:i + 500], StartTime=end - dt.timedelta(days=days, hours=1),
                      EndTime=end, ScanBy="TimestampAscending")
        while True:
            page = cw.get_metric_data(**kwargs)
            for res in page["MetricDataResults"]:
                iid = instance_ids[int(res["Id"][1:])]
                out[iid]["cpu" if res["Id"][0] == "c" else "mem"] += list(res["Values"])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return out


def rightsize(table: cost.PriceTable, regions=REGIONS, target: float = 70.0) -> list[cost.Recommendation]:
    """Read each running l03 instance's week of metrics back from CloudWatch and recommend a size."""
    recs = []
    for region in regions:
        insts = [r for r in inventory((region,)) if r["kind"] == "instance"]
        if not insts:
            continue
        data = fetch_utilization([i["id"] for i in insts], region)
        for inst in insts:
            d = data[inst["id"]]
            rec = cost.recommend_size(inst["type"], cost.percentile(d["cpu"]), cost.percentile(d["mem"]),
                                      table, region, target)
            rec.id, rec.name = inst["id"], inst["name"]
            recs.append(rec)
    return recs


# ------------------------------------------------------------------ S3 lifecycle
def put_lifecycle(bucket: str, prefix: str, transitions: list[tuple[int, str]], expire_days: int | None,
                  rule_id: str = "age-out") -> list[dict]:
    """Apply one lifecycle rule for ``prefix`` and return the rules as S3 now reports them."""
    s3 = aws.client("s3")
    rule = {"ID": rule_id, "Filter": {"Prefix": prefix}, "Status": "Enabled",
            "Transitions": [{"Days": d, "StorageClass": c} for d, c in transitions]}
    if expire_days:
        rule["Expiration"] = {"Days": expire_days}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


def lifecycle_rules(bucket: str) -> list[dict]:
    """The bucket's lifecycle rules, read from S3 ([] when it has none)."""
    s3 = aws.client("s3")
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
            return []
        raise


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


def find_waste(table: cost.PriceTable, regions=REGIONS, prefix: str = PREFIX, now: dt.datetime | None = None,
               snapshot_max_age_days: int = 90, required_tags=("team", "env")) -> list[Finding]:
    """The dry run: list what looks unused, with what it costs per month. Deletes nothing.

    Unattached volumes, Elastic IPs not associated with anything, snapshots of volumes that no longer
    exist or older than ``snapshot_max_age_days``, load balancers with no listener or no registered
    target. Resources without the required tags are reported too, but never marked deletable:
    missing tags say "nobody owns this", not "nobody uses this".
    """
    now = now or dt.datetime.now(dt.timezone.utc)
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
                targets = sum(len(elb.describe_target_health(TargetGroupArn=g["TargetGroupArn"])
                                  ["TargetHealthDescriptions"]) for g in groups)
                if targets == 0:
                    reason = "load balancer with no registered target"
        if reason:
            found.append(Finding(r["kind"], r["id"], r["name"], r["region"], reason, priced.get(r["id"], 0.0)))
        elif r["kind"] != "alarm" and any(not r["tags"].get(t) for t in required_tags):
            missing = [t for t in required_tags if not r["tags"].get(t)]
            found.append(Finding(r["kind"], r["id"], r["name"], r["region"], f"untagged: no {', '.join(missing)}",
                                 priced.get(r["id"], 0.0), deletable=False))
    return found


def waste_text(findings: list[Finding]) -> str:
    rows = [(f.name or f.id, f.kind, f.region, f.reason, "delete" if f.deletable else "ask the owner", f.monthly)
            for f in findings]
    rows.append(("TOTAL deletable", "", "", "", "", sum(f.monthly for f in findings if f.deletable)))
    return cost.format_table(rows, ("resource", "kind", "region", "why", "action", "USD/month"), money=(5,))


@dataclass
class Sweep:
    deleted: list[Finding] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)

    def __repr__(self):
        lines = [f"deleted {len(self.deleted)}, saving ${sum(f.monthly for f in self.deleted):,.2f}/month"]
        lines += [f"  deleted  {f.kind:<13} {f.name or f.id}" for f in self.deleted]
        lines += [f"  skipped  {f.kind:<13} {f.name or f.id}: {why}" for f, why in self.skipped]
        return "\n".join(lines)


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


# ------------------------------------------------------------------ alarms and the pager
def make_pager(name: str) -> tuple[str, str]:
    """An SNS topic whose messages land in an SQS queue (our pretend pager): (topic ARN, queue URL)."""
    p = pager.wire_pager(aws.client("sns"), aws.client("sqs"), name, name)
    return p["topic_arn"], p["queue_url"]


def put_charges(amount: float, region: str = "us-east-1") -> None:
    """Publish the pretend month-to-date bill (the real one is AWS/Billing EstimatedCharges, in us-east-1)."""
    aws.client("cloudwatch", region_name=region).put_metric_data(Namespace=BILLING_NAMESPACE, MetricData=[{
        "MetricName": "EstimatedCharges", "Dimensions": [{"Name": "Currency", "Value": "USD"}],
        "Value": float(amount), "Unit": "None"}])


def pages(queue_url: str, wait: float = 1.0) -> list[dict]:
    """Read (and remove) alarm notifications from the pager queue, as parsed alarm messages."""
    return pager.read_pages(aws.client("sqs"), queue_url, wait=wait)


def publish_until_paged(queue_url: str, alarm_name: str, amount: float, timeout: float = 45.0) -> dict | None:
    """Publish the pretend bill every few seconds (as AWS does) until the alarm's page arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        put_charges(amount)
        for msg in pages(queue_url, wait=min(3.0, max(0.0, deadline - time.monotonic()))):
            if msg.get("AlarmName") == alarm_name:
                return msg
    return None


def wait_for_page(queue_url: str, alarm_name: str, timeout: float = 45.0) -> dict | None:
    """Wait until a notification for ``alarm_name`` arrives in the pager queue (or ``timeout`` s pass)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for msg in pages(queue_url, wait=min(2.0, max(0.0, deadline - time.monotonic()))):
            if msg.get("AlarmName") == alarm_name:
                return msg
    return None


# ------------------------------------------------------------------ budgets
def describe_budget(name: str) -> dict | None:
    """A budget and its notifications, or None if it does not exist (Budgets is served by moto)."""
    b = aws.client("budgets")
    acct = account_id()
    try:
        budget = b.describe_budget(AccountId=acct, BudgetName=name)["Budget"]
    except b.exceptions.NotFoundException:
        return None
    notes = b.describe_notifications_for_budget(AccountId=acct, BudgetName=name).get("Notifications", [])
    return {"name": budget["BudgetName"], "limit": float(budget["BudgetLimit"]["Amount"]),
            "unit": budget["BudgetLimit"]["Unit"], "time_unit": budget["TimeUnit"], "type": budget["BudgetType"],
            "notifications": [(n["NotificationType"], n["ComparisonOperator"], float(n["Threshold"]),
                               n.get("ThresholdType", "PERCENTAGE")) for n in notes]}


# ------------------------------------------------------------------ the calculator widget
class Calculator:
    """Purchase options, interactively: a type, hours per month, how many, spot re-work.

    Built on :func:`cost.compare_options` (the plain path CI runs). Bad input shows a message in the
    widget instead of raising. ``draw=False`` skips the plot (tests).
    """

    def __init__(self, table: cost.PriceTable, region: str = "us-east-1", draw: bool = True):
        import ipywidgets as w
        self.table, self.region, self.draw = table, region, draw
        types = [t for t, _ in table.rows("ec2.on_demand", region)]
        style = {"description_width": "120px"}
        self.type = w.Dropdown(options=types, value="m5.large" if "m5.large" in types else types[0],
                               description="instance type", style=style)
        self.hours = w.Text(value="730", description="hours / month", style=style)
        self.count = w.Text(value="1", description="instances", style=style)
        self.rework = w.Text(value="10", description="spot re-work %", style=style)
        self.message = w.HTML()
        self.out = w.Output()
        self.result: cost.OptionsResult | None = None
        for x in (self.type, self.hours, self.count, self.rework):
            x.observe(self.update, names="value")
        self.widget = w.VBox([w.HBox([self.type, self.hours]), w.HBox([self.count, self.rework]),
                              self.message, self.out])
        self.update()

    def update(self, change=None) -> None:
        try:
            rework = cost.as_number("spot re-work %", self.rework.value, 0, 100) / 100
            res = cost.compare_options(self.type.value, self.hours.value, self.table, self.region,
                                       self.count.value, rework)
        except (cost.InputError, cost.MissingPrice) as e:
            self.result = None
            self.message.value = f"<p style='color:#b00020'><b>Cannot compute:</b> {html.escape(str(e))}</p>"
            self.out.clear_output()
            return
        self.result = res
        self.message.value = ""
        if not self.draw:
            return
        from IPython.display import display
        self.out.clear_output(wait=True)
        with self.out:
            display(cost.plot_options(res, self.table))
            print(res.text())

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def calculator(table: cost.PriceTable, region: str = "us-east-1"):
    """The interactive calculator, or a plain note when ipywidgets is not installed."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        print("ipywidgets is not installed: use cost.compare_options(...) (the cell above) instead.")
        return None
    return Calculator(table, region)


# ------------------------------------------------------------------ exercise setup
def exercise_setup() -> dict[str, str]:
    """What the exercise notebook practises on: an instance with a day of metrics, a data volume
    attached to it and a forgotten one."""
    ec2 = _ec2()
    inst = ec2.run_instances(ImageId=AMI, InstanceType="m5.2xlarge", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": _tag_list(Name="l03-example", team="web", env="dev")}])["Instances"][0]
    cpu, mem = utilization_series((5, 8, 12), "l03-example", hours=24)
    publish_utilization(inst["InstanceId"], cpu, mem)
    made = {"instance_id": inst["InstanceId"]}
    for name in ("l03-example-data", "l03-example-old"):
        made[name] = ec2.create_volume(AvailabilityZone="us-east-1a", Size=20, VolumeType="gp3", TagSpecifications=[
            {"ResourceType": "volume", "Tags": _tag_list(Name=name, team="web", env="dev")}])["VolumeId"]
    ec2.attach_volume(VolumeId=made["l03-example-data"], InstanceId=inst["InstanceId"], Device="/dev/sdf")
    return made


# ------------------------------------------------------------------ checks
def _prices() -> cost.PriceTable:
    return cost.load_prices()


@check("03.1", "Right-size from CloudWatch", hints=[
    "Fetch the last 24 hours of hourly averages (Period=3600, Average) of CPUUtilization (AWS/EC2) and "
    "mem_used_percent (CWAgent) for the instance, with get_metric_data or get_metric_statistics.",
    "Turn each series into its 95th percentile with cost.percentile(values), then ask "
    "cost.recommend_size(instance_type, cpu_p95, mem_p95, PRICES, region).",
    "Return rec.recommended (a string like 'm5.large'); pass region_name=region to cloudlab.client.",
])
def check_rightsizing(r, ns):
    recommend_for = r.need(ns, "recommend_for", callable)
    table = _prices()
    tag = nonce()
    cases = [("m5.2xlarge", (4, 6, 9)), ("r5.xlarge", (6, 5, 74))]   # idle; memory-bound
    ec2 = _ec2()
    ids = []
    try:
        for k, (itype, profile) in enumerate(cases):
            i = ec2.run_instances(ImageId=AMI, InstanceType=itype, MinCount=1, MaxCount=1, TagSpecifications=[
                {"ResourceType": "instance", "Tags": _tag_list(Name=f"l03-chk-{tag}-{k}")}])["Instances"][0]
            ids.append(i["InstanceId"])
            cpu, mem = utilization_series(profile, f"{tag}-{k}", hours=24)   # a day keeps the check fast
            publish_utilization(i["InstanceId"], cpu, mem)
            want = cost.recommend_size(itype, cost.percentile(cpu), cost.percentile(mem), table).recommended
            got = r.call(recommend_for, i["InstanceId"], itype, "us-east-1")
            if not isinstance(got, str):
                r.fail(f"recommend_for should return a string like 'm5.large', not {type(got).__name__}: {got!r:.60}")
            what = ("an idle m5.2xlarge", "a memory-bound r5.xlarge")[k]
            r.expect(got == want, f"{what} (fresh metrics in CloudWatch): {got}",
                     f"{what} should become {want}, got {got!r}" +
                     (" (its memory is high: did you read mem_used_percent too?)" if k else
                      " (is the answer computed from the metrics in CloudWatch?)"))
    finally:
        if ids:
            ec2.terminate_instances(InstanceIds=ids)


@check("03.2", "Lifecycle rules on the log bucket", hints=[
    "put_bucket_lifecycle_configuration with one rule: Filter={'Prefix': 'logs/'}, Status='Enabled'.",
    "Transitions=[{'Days': 30, 'StorageClass': 'STANDARD_IA'}, {'Days': 90, 'StorageClass': 'GLACIER'}], "
    "Expiration={'Days': 365}.",
    "add_log_rules(bucket) must use its argument, and run it once on LOG_BUCKET too.",
])
def check_lifecycle(r, ns):
    add_log_rules = r.need(ns, "add_log_rules", callable)
    bucket_name = r.need(ns, "LOG_BUCKET", str)
    s3 = aws.client("s3")
    fresh = f"l03-chk-{nonce()}"
    s3.create_bucket(Bucket=fresh)
    try:
        r.call(add_log_rules, fresh)
        rules = lifecycle_rules(fresh)
    finally:
        s3.delete_bucket(Bucket=fresh)
    r.require(rules, f"add_log_rules put rules on a new bucket ({len(rules)} rule(s))",
              "after add_log_rules(bucket) the bucket has no lifecycle rules")
    plan = cost.plan_from_rules(rules, "logs/")
    r.expect((30, "STANDARD_IA") in plan.transitions, "logs/ move to STANDARD_IA after 30 days",
             f"logs/ should move to STANDARD_IA after 30 days; the rules say {plan.transitions}")
    r.expect((90, "GLACIER") in plan.transitions, "logs/ move to GLACIER after 90 days",
             f"logs/ should move to GLACIER after 90 days; the rules say {plan.transitions}")
    r.expect(plan.expire_days == 365, "logs/ expire after 365 days",
             f"logs/ should expire after 365 days; the rules say {plan.expire_days}")
    other = cost.plan_from_rules(rules, "invoices/")
    r.expect(other.transitions == [] and other.expire_days is None, "other prefixes (invoices/) are left alone",
             "the rule also touches objects outside logs/ (use Filter={'Prefix': 'logs/'})")
    on_bucket = cost.plan_from_rules(lifecycle_rules(bucket_name) if bucket_name in
                                     [b["Name"] for b in s3.list_buckets()["Buckets"]] else [], "logs/")
    r.expect(on_bucket.transitions == plan.transitions and on_bucket.expire_days == plan.expire_days,
             f"{bucket_name} has the same rules", f"{bucket_name} does not have these rules yet: "
             "run add_log_rules(LOG_BUCKET)")
    proj = cost.project_storage(500, plan, _prices())
    r.expect(proj.saving > 0, f"a year of 500 GB/month costs ${proj.saving:,.0f} less with them",
             "the rules do not make a year of storage cheaper")


@check("03.3", "Sweep unattached volumes, dry run first", hints=[
    "describe_volumes(Filters=[{'Name': 'tag:Name', 'Values': [prefix + '*']}]); a volume is unattached "
    "when its State is 'available'.",
    "Collect those ids first; only when dry_run is False, call delete_volume on each id you collected.",
    "Return the list of ids in both cases (the dry run says what a real run would delete).",
])
def check_sweep(r, ns):
    sweep_volumes = r.need(ns, "sweep_volumes", callable)
    tag = nonce()
    prefix = f"l03-chk-{tag}-"
    ec2 = _ec2()
    inst = ec2.run_instances(ImageId=AMI, InstanceType="t3.micro", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": _tag_list(Name=f"{prefix}host")}])["Instances"][0]["InstanceId"]
    vols = {}
    for k in ("attached", "orphan-a", "orphan-b"):
        vols[k] = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, VolumeType="gp3", TagSpecifications=[
            {"ResourceType": "volume", "Tags": _tag_list(Name=f"{prefix}{k}")}])["VolumeId"]
    ec2.attach_volume(VolumeId=vols["attached"], InstanceId=inst, Device="/dev/sdf")
    orphans = {vols["orphan-a"], vols["orphan-b"]}

    def existing():
        return {v["VolumeId"] for v in ec2.describe_volumes(Filters=_name_filter(prefix))["Volumes"]}
    try:
        listed = r.call(sweep_volumes, ec2, prefix, dry_run=True)
        r.require(isinstance(listed, (list, tuple, set)), "the dry run returns a list of volume ids",
                  f"sweep_volumes(..., dry_run=True) should return a list of volume ids, not {listed!r:.60}")
        r.expect(set(listed) == orphans, "the dry run lists exactly the 2 unattached volumes",
                 f"the dry run should list the 2 unattached volumes {sorted(orphans)}, it listed {sorted(listed)}")
        r.require(existing() == set(vols.values()), "the dry run deleted nothing",
                  "the dry run deleted volumes: with dry_run=True nothing may be deleted")
        deleted = r.call(sweep_volumes, ec2, prefix, dry_run=False)
        left = existing()
        r.expect(not (orphans & left), "the real run deleted both unattached volumes",
                 f"these unattached volumes still exist: {sorted(orphans & left)}")
        r.expect(vols["attached"] in left, "the attached volume is still there",
                 "the attached (in-use) volume was deleted: only delete volumes whose State is 'available'")
        r.expect(set(deleted or []) == orphans, "the real run returns what it deleted",
                 f"sweep_volumes(..., dry_run=False) should return the ids it deleted, got {deleted!r:.80}")
    finally:
        ec2.terminate_instances(InstanceIds=[inst])
        for v in ec2.describe_volumes(Filters=_name_filter(prefix))["Volumes"]:
            if v["State"] == "in-use":
                ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
            ec2.delete_volume(VolumeId=v["VolumeId"])


@check("03.4", "A cost alarm that pages", hints=[
    "create_pager: sns.create_topic, sqs.create_queue, then sns.subscribe(TopicArn=..., Protocol='sqs', "
    "Endpoint=<the queue's QueueArn>); return (topic_arn, queue_url).",
    "cost_alarm: cloudwatch.put_metric_alarm on Namespace='L03/Billing', MetricName='EstimatedCharges', "
    "Dimensions=[{'Name': 'Currency', 'Value': 'USD'}], Statistic='Maximum'.",
    "Period=10, EvaluationPeriods=1, ComparisonOperator='GreaterThanThreshold', Threshold=threshold, "
    "AlarmActions=[topic_arn].",
])
def check_alarm(r, ns):
    create_pager = r.need(ns, "create_pager", callable)
    cost_alarm = r.need(ns, "cost_alarm", callable)
    tag = nonce()
    name = f"l03-chk-{tag}"
    threshold = float(100 + int(tag, 16) % 400)
    sns, sqs, cw = aws.client("sns"), aws.client("sqs"), aws.client("cloudwatch")
    pair = r.call(create_pager, name)
    try:
        r.require(isinstance(pair, tuple) and len(pair) == 2, "create_pager returns (topic_arn, queue_url)",
                  f"create_pager(name) should return (topic_arn, queue_url), not {pair!r:.80}")
        topic, url = pair
        qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        r.require(any(s["Protocol"] == "sqs" and s["Endpoint"] == qarn for s in subs),
                  "the queue is subscribed to the topic", "the topic has no sqs subscription to the queue")
        r.call(cost_alarm, name, topic, threshold)
        alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        r.require(alarms, "cost_alarm created the alarm", f"no alarm named {name} after cost_alarm({name!r}, ...)")
        a = alarms[0]
        r.expect((a.get("Namespace"), a.get("MetricName")) == (BILLING_NAMESPACE, "EstimatedCharges"),
                 "it watches L03/Billing EstimatedCharges",
                 f"it watches {a.get('Namespace')} {a.get('MetricName')}, not L03/Billing EstimatedCharges")
        r.expect(a["Threshold"] == threshold and a["ComparisonOperator"] == "GreaterThanThreshold",
                 f"it fires above ${threshold:g}",
                 f"it should fire when > {threshold:g} (it has {a['ComparisonOperator']} {a['Threshold']:g})")
        r.require(topic in a.get("AlarmActions", []), "its alarm action is the pager topic",
                  "its AlarmActions do not include the pager topic")
        # Force a fresh OK -> ALARM transition (the emulator may already have evaluated real data).
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason=f"check {tag}: reset")
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=f"check {tag}: bill above budget")
        got = None
        deadline = time.monotonic() + 3
        while got is None and time.monotonic() < deadline:
            got = next((m for m in pages(url, wait=1)
                        if m.get("AlarmName") == name and m.get("NewStateValue") == "ALARM"), None)
        r.expect(got is not None and got.get("NewStateValue") == "ALARM",
                 "an ALARM notification arrived in the pager queue",
                 "the alarm went to ALARM but no message arrived in the queue (topic -> queue wiring?)")
    finally:
        cw.delete_alarms(AlarmNames=[name])
        for t in sns.list_topics()["Topics"]:
            if t["TopicArn"].endswith(":" + name):
                sns.delete_topic(TopicArn=t["TopicArn"])
        for q in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []):
            sqs.delete_queue(QueueUrl=q)


@check("03.5", "A monthly budget with alerts", hints=[
    "budgets.create_budget(AccountId=lesson03.account_id(), Budget={...}, NotificationsWithSubscribers=[...]).",
    "Budget: BudgetName=name, BudgetLimit={'Amount': str(limit_usd), 'Unit': 'USD'}, TimeUnit='MONTHLY', "
    "BudgetType='COST'.",
    "Two notifications, ThresholdType='PERCENTAGE', ComparisonOperator='GREATER_THAN': ACTUAL at 80 and "
    "FORECASTED at 100, each with an EMAIL subscriber.",
])
def check_budget(r, ns):
    create_monthly_budget = r.need(ns, "create_monthly_budget", callable)
    limit = r.need(ns, "BUDGET_USD", (int, float))
    tag = nonce()
    name = f"l03-chk-{tag}"
    amount = float(50 + int(tag, 16) % 900)
    b = aws.client("budgets")
    try:
        r.call(create_monthly_budget, name, amount)
        got = describe_budget(name)
        r.require(got is not None, "create_monthly_budget created the budget",
                  f"no budget named {name} after create_monthly_budget({name!r}, {amount:g})")
        r.expect(got["limit"] == amount and got["unit"] == "USD", f"its limit is ${amount:g}",
                 f"its limit should be {amount:g} USD, it is {got['limit']:g} {got['unit']}")
        r.expect((got["time_unit"], got["type"]) == ("MONTHLY", "COST"), "it is a MONTHLY COST budget",
                 f"it should be MONTHLY / COST, it is {got['time_unit']} / {got['type']}")
        notes = {(n[0], n[1], n[2]) for n in got["notifications"]}
        r.expect(("ACTUAL", "GREATER_THAN", 80.0) in notes, "it alerts when actual spend passes 80%",
                 f"missing a notification ACTUAL GREATER_THAN 80 (PERCENTAGE); it has {sorted(notes)}")
        r.expect(("FORECASTED", "GREATER_THAN", 100.0) in notes, "it alerts when the forecast passes 100%",
                 f"missing a notification FORECASTED GREATER_THAN 100 (PERCENTAGE); it has {sorted(notes)}")
    finally:
        try:
            b.delete_budget(AccountId=account_id(), BudgetName=name)
        except b.exceptions.NotFoundException:
            pass
    mine = describe_budget("l03-monthly")
    r.expect(mine is not None and mine["limit"] == float(limit), f"l03-monthly exists with ${float(limit):g}",
             f"run create_monthly_budget('l03-monthly', BUDGET_USD) once: "
             f"{'it does not exist' if mine is None else 'its limit is ' + format(mine['limit'], 'g')}")
