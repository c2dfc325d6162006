"""Lesson 03's exercise checks: they read the real resources, alarms and budgets in the lab."""

from __future__ import annotations

import time

from .. import aws, cost, pager, stats
from ..checks import check
from .metrics import publish_utilization, utilization_series
from .resources import (
    AMI,
    BILLING_NAMESPACE,
    _ec2,
    _name_filter,
    _tag_list,
    account_id,
    describe_budget,
    lifecycle_rules,
    nonce,
)


# ------------------------------------------------------------------ exercise setup
def exercise_setup() -> dict[str, str]:
    """What the exercise notebook practises on: an instance with a day of metrics, a data volume
    attached to it and a forgotten one."""
    ec2 = _ec2()
    inst = ec2.run_instances(
        ImageId=AMI,
        InstanceType="m5.2xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list(Name="l03-example", team="web", env="dev")}],
    )["Instances"][0]
    cpu, mem = utilization_series((5, 8, 12), "l03-example", hours=24)
    publish_utilization(inst["InstanceId"], cpu, mem)
    made = {"instance_id": inst["InstanceId"]}
    for name in ("l03-example-data", "l03-example-old"):
        made[name] = ec2.create_volume(
            AvailabilityZone="us-east-1a",
            Size=20,
            VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": _tag_list(Name=name, team="web", env="dev")}],
        )["VolumeId"]
    ec2.attach_volume(VolumeId=made["l03-example-data"], InstanceId=inst["InstanceId"], Device="/dev/sdf")
    return made


# ------------------------------------------------------------------ checks
def _prices() -> cost.PriceTable:
    return cost.load_prices()


@check(
    "03.1",
    "Right-size from CloudWatch",
    hints=[
        "Fetch the last 24 hours of hourly averages (Period=3600, Average) of CPUUtilization (AWS/EC2) and "
        "mem_used_percent (CWAgent) for the instance, with get_metric_data or get_metric_statistics.",
        "Turn each series into its 95th percentile with stats.percentile(values), then ask "
        "cost.recommend_size(instance_type, cpu_p95, mem_p95, PRICES, region).",
        "Return rec.recommended (a string like 'm5.large'); pass region_name=region to cloudlab.client.",
    ],
)
def check_rightsizing(r, ns):
    recommend_for = r.need(ns, "recommend_for", callable)
    table = _prices()
    tag = nonce()
    cases = [("m5.2xlarge", (4, 6, 9)), ("r5.xlarge", (6, 5, 74))]  # idle; memory-bound
    ec2 = _ec2()
    ids = []
    try:
        for k, (itype, profile) in enumerate(cases):
            i = ec2.run_instances(
                ImageId=AMI,
                InstanceType=itype,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list(Name=f"l03-chk-{tag}-{k}")}],
            )["Instances"][0]
            ids.append(i["InstanceId"])
            cpu, mem = utilization_series(profile, f"{tag}-{k}", hours=24)  # a day keeps the check fast
            publish_utilization(i["InstanceId"], cpu, mem)
            want = cost.recommend_size(itype, stats.percentile(cpu), stats.percentile(mem), table).recommended
            got = r.call(recommend_for, i["InstanceId"], itype, "us-east-1")
            if not isinstance(got, str):
                r.fail(f"recommend_for should return a string like 'm5.large', not {type(got).__name__}: {got!r:.60}")
            what = ("an idle m5.2xlarge", "a memory-bound r5.xlarge")[k]
            r.expect(
                got == want,
                f"{what} (fresh metrics in CloudWatch): {got}",
                f"{what} should become {want}, got {got!r}"
                + (
                    " (its memory is high: did you read mem_used_percent too?)"
                    if k
                    else " (is the answer computed from the metrics in CloudWatch?)"
                ),
            )
    finally:
        if ids:
            ec2.terminate_instances(InstanceIds=ids)


@check(
    "03.2",
    "Lifecycle rules on the log bucket",
    hints=[
        "put_bucket_lifecycle_configuration with one rule: Filter={'Prefix': 'logs/'}, Status='Enabled'.",
        "Transitions=[{'Days': 30, 'StorageClass': 'STANDARD_IA'}, {'Days': 90, 'StorageClass': 'GLACIER'}], "
        "Expiration={'Days': 365}.",
        "add_log_rules(bucket) must use its argument, and run it once on LOG_BUCKET too.",
    ],
)
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
    r.require(
        rules,
        f"add_log_rules put rules on a new bucket ({len(rules)} rule(s))",
        "after add_log_rules(bucket) the bucket has no lifecycle rules",
    )
    plan = cost.plan_from_rules(rules, "logs/")
    r.expect(
        (30, "STANDARD_IA") in plan.transitions,
        "logs/ move to STANDARD_IA after 30 days",
        f"logs/ should move to STANDARD_IA after 30 days; the rules say {plan.transitions}",
    )
    r.expect(
        (90, "GLACIER") in plan.transitions,
        "logs/ move to GLACIER after 90 days",
        f"logs/ should move to GLACIER after 90 days; the rules say {plan.transitions}",
    )
    r.expect(
        plan.expire_days == 365,
        "logs/ expire after 365 days",
        f"logs/ should expire after 365 days; the rules say {plan.expire_days}",
    )
    other = cost.plan_from_rules(rules, "invoices/")
    r.expect(
        other.transitions == [] and other.expire_days is None,
        "other prefixes (invoices/) are left alone",
        "the rule also touches objects outside logs/ (use Filter={'Prefix': 'logs/'})",
    )
    on_bucket = cost.plan_from_rules(
        lifecycle_rules(bucket_name) if bucket_name in [b["Name"] for b in s3.list_buckets()["Buckets"]] else [],
        "logs/",
    )
    r.expect(
        on_bucket.transitions == plan.transitions and on_bucket.expire_days == plan.expire_days,
        f"{bucket_name} has the same rules",
        f"{bucket_name} does not have these rules yet: run add_log_rules(LOG_BUCKET)",
    )
    proj = cost.project_storage(500, plan, _prices())
    r.expect(
        proj.saving > 0,
        f"a year of 500 GB/month costs ${proj.saving:,.0f} less with them",
        "the rules do not make a year of storage cheaper",
    )


@check(
    "03.3",
    "Sweep unattached volumes, dry run first",
    hints=[
        "describe_volumes(Filters=[{'Name': 'tag:Name', 'Values': [prefix + '*']}]); a volume is unattached "
        "when its State is 'available'.",
        "Collect those ids first; only when dry_run is False, call delete_volume on each id you collected.",
        "Return the list of ids in both cases (the dry run says what a real run would delete).",
    ],
)
def check_sweep(r, ns):
    sweep_volumes = r.need(ns, "sweep_volumes", callable)
    tag = nonce()
    prefix = f"l03-chk-{tag}-"
    ec2 = _ec2()
    inst = ec2.run_instances(
        ImageId=AMI,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list(Name=f"{prefix}host")}],
    )["Instances"][0]["InstanceId"]
    vols = {}
    for k in ("attached", "orphan-a", "orphan-b"):
        vols[k] = ec2.create_volume(
            AvailabilityZone="us-east-1a",
            Size=8,
            VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": _tag_list(Name=f"{prefix}{k}")}],
        )["VolumeId"]
    ec2.attach_volume(VolumeId=vols["attached"], InstanceId=inst, Device="/dev/sdf")
    orphans = {vols["orphan-a"], vols["orphan-b"]}

    def existing():
        return {v["VolumeId"] for v in ec2.describe_volumes(Filters=_name_filter(prefix))["Volumes"]}

    try:
        listed = r.call(sweep_volumes, ec2, prefix, dry_run=True)
        r.require(
            isinstance(listed, (list, tuple, set)),
            "the dry run returns a list of volume ids",
            f"sweep_volumes(..., dry_run=True) should return a list of volume ids, not {listed!r:.60}",
        )
        r.expect(
            set(listed) == orphans,
            "the dry run lists exactly the 2 unattached volumes",
            f"the dry run should list the 2 unattached volumes {sorted(orphans)}, it listed {sorted(listed)}",
        )
        r.require(
            existing() == set(vols.values()),
            "the dry run deleted nothing",
            "the dry run deleted volumes: with dry_run=True nothing may be deleted",
        )
        deleted = r.call(sweep_volumes, ec2, prefix, dry_run=False)
        left = existing()
        r.expect(
            not (orphans & left),
            "the real run deleted both unattached volumes",
            f"these unattached volumes still exist: {sorted(orphans & left)}",
        )
        r.expect(
            vols["attached"] in left,
            "the attached volume is still there",
            "the attached (in-use) volume was deleted: only delete volumes whose State is 'available'",
        )
        r.expect(
            set(deleted or []) == orphans,
            "the real run returns what it deleted",
            f"sweep_volumes(..., dry_run=False) should return the ids it deleted, got {deleted!r:.80}",
        )
    finally:
        ec2.terminate_instances(InstanceIds=[inst])
        for v in ec2.describe_volumes(Filters=_name_filter(prefix))["Volumes"]:
            if v["State"] == "in-use":
                ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
            ec2.delete_volume(VolumeId=v["VolumeId"])


@check(
    "03.4",
    "A cost alarm that pages",
    hints=[
        "create_pager: sns.create_topic, sqs.create_queue, then sns.subscribe(TopicArn=..., Protocol='sqs', "
        "Endpoint=<the queue's QueueArn>); return (topic_arn, queue_url).",
        "cost_alarm: cloudwatch.put_metric_alarm on Namespace='L03/Billing', MetricName='EstimatedCharges', "
        "Dimensions=[{'Name': 'Currency', 'Value': 'USD'}], Statistic='Maximum'.",
        "Period=10, EvaluationPeriods=1, ComparisonOperator='GreaterThanThreshold', Threshold=threshold, "
        "AlarmActions=[topic_arn].",
    ],
)
def check_alarm(r, ns):
    create_pager = r.need(ns, "create_pager", callable)
    cost_alarm = r.need(ns, "cost_alarm", callable)
    tag = nonce()
    name = f"l03-chk-{tag}"
    threshold = float(100 + int(tag, 16) % 400)
    sns, sqs, cw = aws.client("sns"), aws.client("sqs"), aws.client("cloudwatch")
    pair = r.call(create_pager, name)
    try:
        r.require(
            isinstance(pair, tuple) and len(pair) == 2,
            "create_pager returns (topic_arn, queue_url)",
            f"create_pager(name) should return (topic_arn, queue_url), not {pair!r:.80}",
        )
        topic, url = pair
        qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        r.require(
            any(s["Protocol"] == "sqs" and s["Endpoint"] == qarn for s in subs),
            "the queue is subscribed to the topic",
            "the topic has no sqs subscription to the queue",
        )
        r.call(cost_alarm, name, topic, threshold)
        alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        r.require(alarms, "cost_alarm created the alarm", f"no alarm named {name} after cost_alarm({name!r}, ...)")
        a = alarms[0]
        r.expect(
            (a.get("Namespace"), a.get("MetricName")) == (BILLING_NAMESPACE, "EstimatedCharges"),
            "it watches L03/Billing EstimatedCharges",
            f"it watches {a.get('Namespace')} {a.get('MetricName')}, not L03/Billing EstimatedCharges",
        )
        r.expect(
            a["Threshold"] == threshold and a["ComparisonOperator"] == "GreaterThanThreshold",
            f"it fires above ${threshold:g}",
            f"it should fire when > {threshold:g} (it has {a['ComparisonOperator']} {a['Threshold']:g})",
        )
        r.require(
            topic in a.get("AlarmActions", []),
            "its alarm action is the pager topic",
            "its AlarmActions do not include the pager topic",
        )
        # Force a fresh OK -> ALARM transition (the emulator may already have evaluated real data).
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason=f"check {tag}: reset")
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=f"check {tag}: bill above budget")
        got = None
        deadline = time.monotonic() + 3
        while got is None and time.monotonic() < deadline:
            got = next(
                (
                    m
                    for m in pager.read_pages(aws.client("sqs"), url, wait=1)
                    if m.get("AlarmName") == name and m.get("NewStateValue") == "ALARM"
                ),
                None,
            )
        r.expect(
            got is not None and got.get("NewStateValue") == "ALARM",
            "an ALARM notification arrived in the pager queue",
            "the alarm went to ALARM but no message arrived in the queue (topic -> queue wiring?)",
        )
    finally:
        cw.delete_alarms(AlarmNames=[name])
        for t in sns.list_topics()["Topics"]:
            if t["TopicArn"].endswith(":" + name):
                sns.delete_topic(TopicArn=t["TopicArn"])
        for q in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []):
            sqs.delete_queue(QueueUrl=q)


@check(
    "03.5",
    "A monthly budget with alerts",
    hints=[
        "budgets.create_budget(AccountId=lesson03.account_id(), Budget={...}, NotificationsWithSubscribers=[...]).",
        "Budget: BudgetName=name, BudgetLimit={'Amount': str(limit_usd), 'Unit': 'USD'}, TimeUnit='MONTHLY', "
        "BudgetType='COST'.",
        "Two notifications, ThresholdType='PERCENTAGE', ComparisonOperator='GREATER_THAN': ACTUAL at 80 and "
        "FORECASTED at 100, each with an EMAIL subscriber.",
    ],
)
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
        r.require(
            got is not None,
            "create_monthly_budget created the budget",
            f"no budget named {name} after create_monthly_budget({name!r}, {amount:g})",
        )
        r.expect(
            got["limit"] == amount and got["unit"] == "USD",
            f"its limit is ${amount:g}",
            f"its limit should be {amount:g} USD, it is {got['limit']:g} {got['unit']}",
        )
        r.expect(
            (got["time_unit"], got["type"]) == ("MONTHLY", "COST"),
            "it is a MONTHLY COST budget",
            f"it should be MONTHLY / COST, it is {got['time_unit']} / {got['type']}",
        )
        notes = {(n[0], n[1], n[2]) for n in got["notifications"]}
        r.expect(
            ("ACTUAL", "GREATER_THAN", 80.0) in notes,
            "it alerts when actual spend passes 80%",
            f"missing a notification ACTUAL GREATER_THAN 80 (PERCENTAGE); it has {sorted(notes)}",
        )
        r.expect(
            ("FORECASTED", "GREATER_THAN", 100.0) in notes,
            "it alerts when the forecast passes 100%",
            f"missing a notification FORECASTED GREATER_THAN 100 (PERCENTAGE); it has {sorted(notes)}",
        )
    finally:
        try:
            b.delete_budget(AccountId=account_id(), BudgetName=name)
        except b.exceptions.NotFoundException:
            pass
    mine = describe_budget("l03-monthly")
    r.expect(
        mine is not None and mine["limit"] == float(limit),
        f"l03-monthly exists with ${float(limit):g}",
        f"run create_monthly_budget('l03-monthly', BUDGET_USD) once: "
        f"{'it does not exist' if mine is None else 'its limit is ' + format(mine['limit'], 'g')}",
    )
