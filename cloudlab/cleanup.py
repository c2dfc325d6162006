"""Put a lesson back at its start: ``cloudlab.reset_lesson("NN")``, the one reset of every lesson.

Convention: every resource a lesson creates is named ``lNN-...`` (bucket ``l01-orders``, process
``l04-service``), so a reset finds it without touching anything else. The generic sweep stops the
lesson's processes and deletes its buckets, queues, topics, alarms and log groups. What only one
lesson makes (EC2 instances, Terraform working directories, containers ...) its module cleans in a
hook registered with :func:`extra`; ``reset_lesson`` imports the lesson module and runs its hooks
first. One return shape: ``{"what": [names removed]}``. Serves every lesson.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from . import aws, procs

Removed = dict[str, list[str]]
_EXTRAS: dict[str, list[Callable[[], Removed]]] = {}
_KEEP: dict[str, set[str]] = {}


def prefix(lesson: str) -> str:
    return f"l{int(lesson):02d}-"


def extra(lesson: str):
    """Decorator for a lesson module's own cleanup, a function returning ``{"what": [names]}``."""

    def deco(fn: Callable[[], Removed]):
        hooks = _EXTRAS.setdefault(f"{int(lesson):02d}", [])
        if all(h.__qualname__ != fn.__qualname__ or h.__module__ != fn.__module__ for h in hooks):
            hooks.append(fn)
        return fn

    return deco


def keep_running(lesson: str, *names: str) -> None:
    """Processes a reset of ``lesson`` leaves running: emulators that are slow to start and that the lesson's
    notebooks share (lesson 11's Java emulators). Its ``@extra`` hook wipes their data instead; `make stop`
    still stops them."""
    _KEEP.setdefault(f"{int(lesson):02d}", set()).update(names)


def empty_and_delete_bucket(s3, name: str) -> None:
    """Delete every object version and delete marker, then the bucket.

    A bucket that is already gone counts as deleted: under load the emulator can answer a DeleteBucket
    late, and the client's retry then meets NoSuchBucket (seen in `make test` on a busy machine)."""
    try:
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=name):
            objs = [
                {"Key": o["Key"], "VersionId": o["VersionId"]}
                for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objs:
                s3.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass


def _merge(into: Removed, more: Removed) -> None:
    for k, v in (more or {}).items():
        into.setdefault(k, []).extend(v)


def _sweep(p: str, lesson: str) -> Removed:
    removed: Removed = {}
    s3 = aws.client("s3")
    removed["buckets"] = []
    for b in s3.list_buckets().get("Buckets", []):
        if b["Name"].startswith(p):
            empty_and_delete_bucket(s3, b["Name"])
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
    alarms = cw.describe_alarms(AlarmNamePrefix=p, AlarmTypes=["CompositeAlarm", "MetricAlarm"])
    removed["alarms"] = []
    for kind in ("CompositeAlarms", "MetricAlarms"):  # a composite goes before the alarms it names
        names = [a["AlarmName"] for a in alarms.get(kind, [])]
        if names:
            cw.delete_alarms(AlarmNames=names)
        removed["alarms"] += names
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
    return removed


def reset_lesson(lesson: str, quiet: bool = False) -> Removed:
    """Delete what lesson ``NN`` created and stop what it started; safe to run any number of times.

    Raises :class:`cloudlab.ready.EmulatorDown` (with the fix) when the local cloud does not answer.
    """
    from .ready import wait_for_services

    nn = f"{int(lesson):02d}"
    try:
        importlib.import_module(f"{__package__}.lesson{nn}")  # registers the lesson's own hooks
    except ModuleNotFoundError:
        pass
    p = prefix(nn)
    removed: Removed = {"processes": procs.stop_all(p, keep=_KEEP.get(nn, set()))}
    wait_for_services(("s3", "sqs"), timeout=5)
    for hook in _EXTRAS.get(nn, []):
        _merge(removed, hook())
    _merge(removed, _sweep(p, nn))
    if not quiet:
        gone = ", ".join(f"{len(v)} {k}" for k, v in removed.items() if v) or "nothing left over"
        print(f"Lesson {nn} reset: {gone}.")
    return removed
