"""Lesson 03's exercise checks: they read the real resources, metrics, alarms and budgets in the lab, with
fresh names of their own. The wrong answers each must reject are in tests/test_lesson03.py."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from .. import aws, cleanup, cost
from ..checks import check
from .cases import HOURS, OLDER_GAP_HOURS, alternatives, expected, hourly_samples, make_cases, older_hours
from .metrics import publish_utilization
from .resources import (
    AMI,
    _ec2,
    _name_filter,
    _tag_list,
    lifecycle_rules,
    nonce,
)


# ------------------------------------------------------------------ exercise setup
def exercise_setup() -> dict[str, str]:
    """What the exercise notebook practises on: an instance with two days of metrics (the profile of
    check 03.1's web server), a data volume attached to it and a forgotten one."""
    ec2 = _ec2()
    inst = ec2.run_instances(
        ImageId=AMI,
        InstanceType="m5.2xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list(Name="l03-example", team="web", env="dev")}],
    )["Instances"][0]
    web = make_cases("l03-example")[0]
    publish_utilization(inst["InstanceId"], hourly_samples(web.cpu), hourly_samples(web.mem))
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


def _prices() -> cost.PriceTable:
    return cost.load_prices()


def _aws_error(e: Exception) -> str:
    code = getattr(e, "response", {}).get("Error", {}).get("Code")
    return f"{code}: {e}" if code else f"{type(e).__name__}: {e}"


# ------------------------------------------------------------------ 03.1
@check(
    "03.1",
    "Right-size from CloudWatch",
    hints=[
        "Hourly averages: get_metric_statistics (or get_metric_data) with Period=3600 and Statistic 'Average', for "
        "CPUUtilization (AWS/EC2) and mem_used_percent (CWAgent), dimension InstanceId, in the instance's region.",
        "p95 = stats.percentile(values, 95) of each series; no memory points at all means None (not 0). Then "
        "cost.recommend_size(instance_type, cpu_p95, mem_p95, PRICES, region) does the projection.",
        "cloudlab.client('cloudwatch', region_name=region); StartTime two days back, EndTime now; return "
        "rec.recommended (a string such as 'm5.large').",
    ],
)
def check_rightsizing(r, ns):
    recommend_for = r.need(ns, "recommend_for", callable)
    table = _prices()
    tag = nonce()
    made: list[tuple[str, str]] = []
    try:
        for case in make_cases(f"l03-chk-{tag}"):
            iid = _ec2(case.region).run_instances(
                ImageId=AMI,
                InstanceType=case.instance_type,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list(Name=f"l03-chk-{tag}-{case.key}")}],
            )["Instances"][0]["InstanceId"]
            made.append((case.region, iid))
            if len(made) == 1:  # a blank or crashing function fails here, before the check writes two days of data
                r.call(recommend_for, iid, case.instance_type, case.region)
            mem = None if case.mem is None else hourly_samples(case.mem)
            publish_utilization(iid, hourly_samples(case.cpu), mem, case.region)
            old_cpu, old_mem = older_hours(case)  # before the two days: a migration the policy leaves out
            before = datetime.now(UTC) - timedelta(hours=HOURS + OLDER_GAP_HOURS)
            publish_utilization(iid, old_cpu, old_mem, case.region, end=before)
            want = expected(case, table)
            got = r.call(recommend_for, iid, case.instance_type, case.region)
            if isinstance(got, cost.Recommendation):
                r.fail(f"recommend_for returned a whole Recommendation: return its .recommended ({got.recommended!r})")
            if not isinstance(got, str):
                r.fail(f"recommend_for should return a string like 'm5.large', not {type(got).__name__}: {got!r:.60}")
            same = [m for m, size in alternatives(case, table).items() if size == got and got != want]
            r.expect(
                got == want,
                f"{case.what}: {got}",
                f"{case.what} should become {want}, got {got!r}: {case.mistake}"
                + (f" (your answer is what {' or '.join(same[:2])} gives)" if same else ""),
            )
    finally:
        for region, iid in made:
            with contextlib.suppress(Exception):
                _ec2(region).terminate_instances(InstanceIds=[iid])


# ------------------------------------------------------------------ 03.2
THEIR_RULE = {"ID": "tmp-cleanup", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 7}}


@check(
    "03.2",
    "Lifecycle rules on the log bucket",
    hints=[
        "put_bucket_lifecycle_configuration on the bucket you are given, with one enabled rule whose Filter is "
        "the prefix 'logs/' (with the slash: 'logs' would also match 'logs-archive/').",
        "That call replaces ALL the bucket's rules: read them first (get_bucket_lifecycle_configuration; the error "
        "code NoSuchLifecycleConfiguration means none), drop your own rule (by its ID) and add it again, keep the "
        "others. Transitions at 30 days (STANDARD_IA) and 90 days (GLACIER), Expiration at 365 days, all in Days.",
        "Filter={'Prefix': 'logs/'}, Status='Enabled', Transitions=[{'Days': 30, 'StorageClass': 'STANDARD_IA'}, "
        "{'Days': 90, 'StorageClass': 'GLACIER'}], Expiration={'Days': 365}; then run add_log_rules(LOG_BUCKET).",
    ],
)
def check_lifecycle(r, ns):
    add_log_rules = r.need(ns, "add_log_rules", callable)
    bucket_name = r.need(ns, "LOG_BUCKET", str)
    s3 = aws.client("s3")
    fresh = f"l03-chk-{nonce()}"
    s3.create_bucket(Bucket=fresh)
    try:
        # the bucket already has another team's rule: temporary files expire after a week
        s3.put_bucket_lifecycle_configuration(Bucket=fresh, LifecycleConfiguration={"Rules": [THEIR_RULE]})
        r.call(add_log_rules, fresh)
        first = lifecycle_rules(fresh)
        r.call(add_log_rules, fresh)  # the cell run a second time
        rules = lifecycle_rules(fresh)
    finally:
        with contextlib.suppress(Exception):
            cleanup.empty_and_delete_bucket(s3, fresh)
    mine = [x for x in rules if x.get("ID") != THEIR_RULE["ID"]]
    r.require(
        mine,
        f"add_log_rules put rules on a new bucket ({len(mine)} rule(s))",
        "after add_log_rules(bucket) the bucket it was given has no lifecycle rules of yours (use the `bucket` "
        "argument)",
    )
    r.expect(
        cost.plan_from_rules(rules, THEIR_RULE["Filter"]["Prefix"]).expire_days == THEIR_RULE["Expiration"]["Days"],
        "another team's rule on the bucket (tmp/ expires after 7 days) is still there",
        "another team's rule on the bucket (tmp/ expires after 7 days) is gone: put_bucket_lifecycle_configuration "
        "replaces the WHOLE configuration. Read the rules first (get_bucket_lifecycle_configuration), add yours, "
        "put them all back",
    )
    ids = [x.get("ID") for x in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    r.expect(
        len(rules) == len(first) and not dupes,
        "running it twice leaves the same rules (no duplicate)",
        f"after a second run the bucket has {len(rules)} rules instead of {len(first)}"
        + (
            f", and the ID {dupes[0]!r} twice (LocalStack accepts that, real S3 refuses it: IDs are unique)"
            if dupes
            else ""
        )
        + ": replace your own rule (same ID) instead of adding another",
    )
    plan = cost.plan_from_rules(rules, "logs/")
    r.expect(
        (30, "STANDARD_IA") in plan.transitions,
        "logs/ move to STANDARD_IA after 30 days",
        f"logs/ should move to STANDARD_IA after 30 days; the enabled rules for logs/ say {plan.transitions or 'none'}",
    )
    r.expect(
        (90, "GLACIER") in plan.transitions,
        "logs/ move to GLACIER after 90 days",
        f"logs/ should move to GLACIER after 90 days; the enabled rules for logs/ say {plan.transitions or 'none'}",
    )
    r.expect(
        plan.expire_days == 365,
        "logs/ expire after 365 days",
        f"logs/ should expire after 365 days; the enabled rules for logs/ say {plan.expire_days}",
    )
    outside = [
        p for p in ("invoices/", "logs-archive/") if cost.plan_from_rules(rules, p) != cost.LifecyclePlan([], None)
    ]
    r.expect(
        not outside,
        "objects outside logs/ are left alone",
        f"the rules also move or expire objects under {', '.join(outside)}: filter on the prefix 'logs/' "
        "(with the slash)",
    )
    narrowed = [
        x.get("ID", "?")
        for x in rules
        if "Tag" in (x.get("Filter") or {})
        or set((x.get("Filter") or {}).get("And", {})) - {"Prefix"}
        or {"ObjectSizeGreaterThan", "ObjectSizeLessThan"} & set(x.get("Filter") or {})
    ]
    r.expect(
        not narrowed,
        "the rules apply to every object under logs/",
        f"rule(s) {narrowed} only apply to some objects (a tag or size filter): logs are not tagged, so they "
        "would never move",
    )
    existing = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    on_bucket = cost.plan_from_rules(lifecycle_rules(bucket_name) if bucket_name in existing else [], "logs/")
    r.expect(
        on_bucket.transitions == plan.transitions and on_bucket.expire_days == plan.expire_days,
        f"{bucket_name} has the same rules",
        f"{bucket_name} does not have these rules yet: run add_log_rules(LOG_BUCKET)",
    )


# ------------------------------------------------------------------ 03.3
def _ids(value) -> tuple[list[str] | None, str]:
    """The volume ids in what sweep_volumes returned, or (None, what is wrong with it)."""
    if not isinstance(value, (list, tuple, set)):
        return None, f"should return a list of volume ids, not {type(value).__name__}: {value!r:.60}"
    out = []
    for v in value:
        if isinstance(v, dict) and "VolumeId" in v:
            return None, "should return the ids (strings like 'vol-0abc...'), not the volume descriptions"
        if not isinstance(v, str):
            return None, f"should return volume ids (strings), but holds a {type(v).__name__}: {v!r:.40}"
        out.append(v)
    return out, ""


@check(
    "03.3",
    "Sweep unattached volumes, dry run first",
    hints=[
        "describe_volumes(Filters=[{'Name': 'tag:Name', 'Values': [prefix + '*']}]); a volume is unattached "
        "when its State is 'available'. Look only at volumes of the prefix: others belong to someone else.",
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
    for k, name in (
        ("attached", f"{prefix}attached"),
        ("orphan-a", f"{prefix}orphan-a"),
        ("orphan-b", f"{prefix}orphan-b"),
        ("decoy", f"l03-chk-{tag}x-keep"),  # unattached too, but another team's prefix
        ("inside", f"l03-chk-{tag}x-team-b-{prefix}keep"),  # holds the prefix, but does not start with it
    ):
        vols[k] = ec2.create_volume(
            AvailabilityZone="us-east-1a",
            Size=8,
            VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": _tag_list(Name=name)}],
        )["VolumeId"]
    ec2.attach_volume(VolumeId=vols["attached"], InstanceId=inst, Device="/dev/sdf")
    orphans = {vols["orphan-a"], vols["orphan-b"]}

    def existing():
        return {v["VolumeId"] for v in ec2.describe_volumes(Filters=_name_filter(f"l03-chk-{tag}"))["Volumes"]}

    try:
        r.call(sweep_volumes, ec2, prefix)  # no dry_run given: the default must be the safe one
        r.require(
            existing() == set(vols.values()),
            "called without dry_run, it deletes nothing (dry_run=True is the default)",
            "called as sweep_volumes(ec2, prefix), without dry_run, it deleted volumes: the default must be "
            "dry_run=True, so a forgotten argument never deletes anything",
        )
        listed, why = _ids(r.call(sweep_volumes, ec2, prefix, dry_run=True))
        r.require(
            listed is not None, "the dry run returns a list of volume ids", f"sweep_volumes(..., dry_run=True) {why}"
        )
        r.expect(
            vols["decoy"] not in listed,
            "it looks only at volumes named with the prefix",
            f"the dry run listed {vols['decoy']}, an unattached volume whose name does not start with the prefix: "
            "filter on tag:Name = prefix*",
        )
        r.expect(
            vols["inside"] not in listed,
            "a name that only contains the prefix is not one of them (starts with, not contains)",
            f"the dry run listed {vols['inside']}, named ...team-b-{prefix}keep: it contains the prefix but does not "
            "start with it, so it is another team's. Match the start: tag:Name = prefix* (or str.startswith)",
        )
        r.expect(
            set(listed) == orphans,
            "the dry run lists exactly the 2 unattached volumes of the prefix",
            f"the dry run should list the 2 unattached volumes {sorted(orphans)}, it listed {sorted(listed)}",
        )
        r.require(
            existing() == set(vols.values()),
            "the dry run deleted nothing",
            "the dry run deleted volumes: with dry_run=True nothing may be deleted",
        )
        deleted, why = _ids(r.call(sweep_volumes, ec2, prefix, dry_run=False))
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
            vols["decoy"] in left and vols["inside"] in left,
            "the other teams' volumes are still there",
            "another team's volume was deleted (one of another prefix, or one that only contains yours)",
        )
        r.expect(
            deleted is not None and set(deleted) == orphans,
            "the real run returns what it deleted",
            "sweep_volumes(..., dry_run=False) should return the ids it deleted, "
            + (why if deleted is None else f"got {sorted(deleted)}"),
        )
    finally:
        with contextlib.suppress(Exception):
            ec2.terminate_instances(InstanceIds=[inst])
        for v in ec2.describe_volumes(Filters=_name_filter(f"l03-chk-{tag}"))["Volumes"]:
            with contextlib.suppress(Exception):
                if v["State"] == "in-use":
                    ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
                ec2.delete_volume(VolumeId=v["VolumeId"])


from .alerts import check_alarm, check_budget, delete_budget  # noqa: E402,F401  (03.4, 03.5)
