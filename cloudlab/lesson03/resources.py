"""Lesson 03's resources in the lab: the fleet, its inventory and bill, lifecycle rules, budgets,
the pretend pager, the exercise's starting point, and the lesson's part of the reset."""

from __future__ import annotations

import secrets

from .. import aws, cleanup, cost, pager

PREFIX = "l03-"
REGIONS = ("us-east-1", "eu-west-1")
AMI = "ami-12345678"  # the emulator accepts any image id; real AWS needs a real one
CPU_NAMESPACE = "AWS/EC2"  # on real AWS, EC2 itself publishes CPUUtilization here
MEM_NAMESPACE = "CWAgent"  # memory needs the CloudWatch agent: EC2 cannot see inside the VM
BILLING_NAMESPACE = "L03/Billing"  # our pretend "EstimatedCharges" metric
DAYS = 7
SERVICES = ("s3", "sqs", "sns", "ec2", "cloudwatch", "elbv2", "budgets")  # what this lesson needs

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
    """Which emulator answers each service this lesson uses: boto3's variable and its value right now."""
    import os

    from ..ready import served_by

    rows = []
    for svc in (*SERVICES, "sts", "ce"):
        var = aws.env_name(svc) if os.environ.get(aws.env_name(svc)) else "AWS_ENDPOINT_URL"
        rows.append((svc, var, aws.endpoint_for(svc) or "-", served_by(svc)))
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


@cleanup.extra("03")
def _reset_extra() -> dict[str, list[str]]:
    """Lesson 03's part of ``cloudlab.reset_lesson("03")``: EC2 (instances, volumes, IPs, snapshots) in
    both regions, load balancers and target groups (moto), budgets (moto)."""
    from ..ready import wait_for_services

    wait_for_services(SERVICES)  # a plain-words EmulatorDown if a part of the lab is missing
    removed: dict[str, list[str]] = {
        "instances": [],
        "volumes": [],
        "addresses": [],
        "snapshots": [],
        "load balancers": [],
        "target groups": [],
        "budgets": [],
    }
    for region in REGIONS:
        ec2 = _ec2(region)
        ids = [
            i["InstanceId"]
            for r in ec2.describe_instances(
                Filters=_name_filter(PREFIX)
                + [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
            )["Reservations"]
            for i in r["Instances"]
        ]
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
    return removed


# ------------------------------------------------------------------ the fleet
def launch_fleet(fleet=FLEET) -> dict[str, str]:
    """Start the lesson's tagged instances (each with a tagged gp3 root volume); name -> instance id."""
    ids = {}
    for name, itype, region, team, env, _ in fleet:
        tags = _tag_list(Name=name, team=team, env=env)
        vtags = _tag_list(Name=f"{name}-root", team=team, env=env)
        r = _ec2(region).run_instances(
            ImageId=AMI,
            InstanceType=itype,
            MinCount=1,
            MaxCount=1,
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "DeleteOnTermination": True}}
            ],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": vtags}],
        )
        ids[name] = r["Instances"][0]["InstanceId"]
    return ids


def add_storage_and_network(ids: dict[str, str]) -> dict[str, str]:
    """What a real team accumulates around its instances; some of it is used, some is forgotten."""
    ec2 = _ec2()
    made = {}

    def volume(name, size, vtype, team, env):
        v = ec2.create_volume(
            AvailabilityZone="us-east-1a",
            Size=size,
            VolumeType=vtype,
            TagSpecifications=[{"ResourceType": "volume", "Tags": _tag_list(Name=name, team=team, env=env)}],
        )
        made[name] = v["VolumeId"]
        return v["VolumeId"]

    data = volume("l03-web-data", 200, "gp3", "web", "prod")
    ec2.attach_volume(VolumeId=data, InstanceId=ids["l03-web-1"], Device="/dev/sdf")
    volume("l03-old-reports", 500, "gp2", "data", "prod")  # its instance was deleted last spring
    volume("l03-scratch", 100, "gp3", "api", "staging")  # someone's experiment
    old = volume("l03-export-tmp", 300, "gp2", "data", "prod")  # snapshotted, then deleted below
    snap = ec2.create_snapshot(
        VolumeId=data,
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": _tag_list(Name="l03-web-data-backup", team="web", env="prod")}
        ],
    )
    made["l03-web-data-backup"] = snap["SnapshotId"]
    snap = ec2.create_snapshot(
        VolumeId=old,
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": _tag_list(Name="l03-export-final", team="data", env="prod")}
        ],
    )
    made["l03-export-final"] = snap["SnapshotId"]
    ec2.delete_volume(VolumeId=old)
    del made["l03-export-tmp"]
    for name, team, env, attach in (
        ("l03-web-ip", "web", "prod", "l03-web-1"),
        ("l03-spare-ip", "api", "staging", None),
    ):
        a = ec2.allocate_address(
            Domain="vpc",
            TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": _tag_list(Name=name, team=team, env=env)}],
        )
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
            elb.create_listener(
                LoadBalancerArn=arn,
                Protocol="HTTP",
                Port=80,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
            )
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
        for r in ec2.describe_instances(
            Filters=_name_filter(prefix) + [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        )["Reservations"]:
            for i in r["Instances"]:
                t = _tags(i)
                out.append(
                    {
                        "kind": "instance",
                        "id": i["InstanceId"],
                        "name": t.get("Name", ""),
                        "region": region,
                        "tags": t,
                        "type": i["InstanceType"],
                        "launched": i.get("LaunchTime"),
                    }
                )
        for v in ec2.describe_volumes(Filters=_name_filter(prefix))["Volumes"]:
            t = _tags(v)
            out.append(
                {
                    "kind": "volume",
                    "id": v["VolumeId"],
                    "name": t.get("Name", ""),
                    "region": region,
                    "tags": t,
                    "type": v["VolumeType"],
                    "size_gb": v["Size"],
                    "state": v["State"],
                    "attached_to": [a["InstanceId"] for a in v.get("Attachments", [])],
                }
            )
        for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=_name_filter(prefix))["Snapshots"]:
            t = _tags(s)
            out.append(
                {
                    "kind": "snapshot",
                    "id": s["SnapshotId"],
                    "name": t.get("Name", ""),
                    "region": region,
                    "tags": t,
                    "size_gb": s.get("VolumeSize", 0),
                    "volume_id": s.get("VolumeId"),
                    "started": s.get("StartTime"),
                }
            )
        for a in ec2.describe_addresses(Filters=_name_filter(prefix))["Addresses"]:
            t = _tags(a)
            out.append(
                {
                    "kind": "public_ip",
                    "id": a["AllocationId"],
                    "name": t.get("Name", ""),
                    "region": region,
                    "tags": t,
                    "ip": a.get("PublicIp"),
                    "association": a.get("AssociationId") or None,
                }
            )
        cw = aws.client("cloudwatch", region_name=region)
        for al in cw.describe_alarms(AlarmNamePrefix=prefix).get("MetricAlarms", []):
            out.append(
                {
                    "kind": "alarm",
                    "id": al["AlarmArn"],
                    "name": al["AlarmName"],
                    "region": region,
                    "tags": {},
                    # a period under a minute (10 or 30 s) makes it a high-resolution alarm, priced 3x
                    "resolution": "high_resolution" if int(al.get("Period") or 60) < 60 else "standard",
                }
            )
    elb = aws.client("elbv2")
    lbs = [lb for lb in elb.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"].startswith(prefix)]
    if lbs:
        tags = {
            d["ResourceArn"]: _tags(d)
            for d in elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"] for lb in lbs])["TagDescriptions"]
        }
        region = elb.meta.region_name
        for lb in lbs:
            t = tags.get(lb["LoadBalancerArn"], {})
            out.append(
                {
                    "kind": "load_balancer",
                    "id": lb["LoadBalancerArn"],
                    "name": lb["LoadBalancerName"],
                    "region": region,
                    "tags": t,
                    "created": lb.get("CreatedTime"),
                }
            )
    return out


def bill(table: cost.PriceTable, regions=REGIONS, hours=None) -> list[cost.LineItem]:
    """The pretend bill: what exists now, priced for a month (or ``hours``)."""
    return cost.price_resources(inventory(regions), table, hours)


# ------------------------------------------------------------------ S3 lifecycle
def put_lifecycle(
    bucket: str, prefix: str, transitions: list[tuple[int, str]], expire_days: int | None, rule_id: str = "age-out"
) -> list[dict]:
    """Apply one lifecycle rule for ``prefix`` and return the rules as S3 now reports them."""
    s3 = aws.client("s3")
    rule = {
        "ID": rule_id,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Transitions": [{"Days": d, "StorageClass": c} for d, c in transitions],
    }
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


# ------------------------------------------------------------------ alarms and the pager
def put_charges(amounts, region: str = "us-east-1") -> None:
    """Publish the pretend month-to-date bill: one amount or several samples at once.

    The real one is AWS/Billing EstimatedCharges (us-east-1), published by AWS every few hours at
    standard resolution. Ours is high-resolution (StorageResolution=1), because the lesson's alarm has a
    10-second period, and an alarm that short only sees data stored at one-second resolution.
    """
    values = [amounts] if isinstance(amounts, (int, float)) else list(amounts)
    aws.client("cloudwatch", region_name=region).put_metric_data(
        Namespace=BILLING_NAMESPACE,
        MetricData=[
            {
                "MetricName": "EstimatedCharges",
                "Dimensions": [{"Name": "Currency", "Value": "USD"}],
                "Value": float(v),
                "Unit": "None",
                "StorageResolution": 1,
            }
            for v in values
        ],
    )


def publish_until_paged(queue_url: str, alarm_name: str, amount: float, timeout: float = 45.0) -> dict | None:
    """Publish the pretend bill every few seconds (as AWS does) until the alarm's page arrives (or None)."""
    page, _ = pager.wait_for_page(
        aws.client("sqs"), queue_url, alarm_name, timeout=timeout, while_waiting=lambda: put_charges(amount)
    )
    return page


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
    limit = budget.get("BudgetLimit") or {}
    try:
        amount = float(limit.get("Amount"))
    except (TypeError, ValueError):
        amount = None  # a budget without a plain limit (planned limits, or none): nothing to compare
    return {
        "name": budget.get("BudgetName"),
        "limit": amount,
        "unit": limit.get("Unit"),
        "time_unit": budget.get("TimeUnit"),
        "type": budget.get("BudgetType"),
        "filters": budget.get("CostFilters") or {},
        "period": ((budget.get("TimePeriod") or {}).get("Start"), (budget.get("TimePeriod") or {}).get("End")),
        "notifications": [
            (
                n.get("NotificationType"),
                n.get("ComparisonOperator"),
                float(n.get("Threshold", 0)),
                n.get("ThresholdType", "PERCENTAGE"),  # the API's default
            )
            for n in notes
        ],
    }
