"""Put a lesson back at its start: delete what it created, stop what it started.

Convention: every resource a lesson creates is named ``lNN-...`` (``l01-orders``),
so a reset can find it without touching anything else.
"""
from __future__ import annotations

from . import aws, procs


def prefix(lesson: str) -> str:
    return f"l{int(lesson):02d}-"


def _empty_and_delete_bucket(s3, name: str) -> None:
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name):
        objs = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objs:
            s3.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
    s3.delete_bucket(Bucket=name)


def reset_lesson(lesson: str, quiet: bool = False) -> dict[str, list[str]]:
    """Delete the lesson's buckets, queues, topics, alarms, log groups, tables, secrets, parameters."""
    from .ready import EmulatorDown, wait_for_services
    p = prefix(lesson)
    removed: dict[str, list[str]] = {"processes": procs.stop_all(p)}
    try:
        wait_for_services(("s3", "sqs"), timeout=5)
    except EmulatorDown:
        raise
    s3 = aws.client("s3")
    removed["buckets"] = []
    for b in s3.list_buckets().get("Buckets", []):
        if b["Name"].startswith(p):
            _empty_and_delete_bucket(s3, b["Name"])
            removed["buckets"].append(b["Name"])
    sqs = aws.client("sqs")
    removed["queues"] = []
    for url in sqs.list_queues(QueueNamePrefix=p).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
        removed["queues"].append(url.rsplit("/", 1)[-1])
    sns = aws.client("sns")
    removed["topics"] = []
    for t in sns.list_topics().get("Topics", []):
        if t["TopicArn"].rsplit(":", 1)[-1].startswith(p):
            sns.delete_topic(TopicArn=t["TopicArn"])
            removed["topics"].append(t["TopicArn"].rsplit(":", 1)[-1])
    cw = aws.client("cloudwatch")
    names = [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=p).get("MetricAlarms", [])]
    if names:
        cw.delete_alarms(AlarmNames=names)
    removed["alarms"] = names
    logs = aws.client("logs")
    removed["log groups"] = []
    groups = {}
    for pre in (p, f"/{p}", f"/l{int(lesson):02d}/"):
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=pre):
            groups.update({g["logGroupName"]: g for g in page.get("logGroups", [])})
    for name in sorted(groups):
        # LocalStack keeps a metric filter alive after its group is deleted: delete filters first.
        for mf in logs.describe_metric_filters(logGroupName=name).get("metricFilters", []):
            logs.delete_metric_filter(logGroupName=name, filterName=mf["filterName"])
        logs.delete_log_group(logGroupName=name)
        removed["log groups"].append(name)
    if not quiet:
        gone = ", ".join(f"{len(v)} {k}" for k, v in removed.items() if v) or "nothing left over"
        print(f"Lesson {int(lesson):02d} reset: {gone}.")
    return removed
