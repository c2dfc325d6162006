"""Lesson 03's utilization data: hourly CPU and memory in CloudWatch, read back for right-sizing."""

from __future__ import annotations

import datetime as dt
import math
import random

from .. import aws, cost, stats
from .resources import CPU_NAMESPACE, DAYS, MEM_NAMESPACE, REGIONS, inventory


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


def publish_utilization(
    instance_id: str,
    cpu: list,
    mem: list | None,
    region: str = "us-east-1",
    end: dt.datetime | None = None,
) -> int:
    """Write hourly CPU (and memory) data for one instance into CloudWatch (oldest first, the last hour
    starting at the current hour); returns how many data points were written.

    Each item is one hour: a number, or the list of that hour's samples (sent as a statistic set: count,
    sum, minimum, maximum; so CloudWatch can tell an hour's average from its maximum, with one row per hour).
    Only in the lab: on real AWS, EC2 publishes CPUUtilization itself (every 5 minutes, and the AWS/
    namespaces are reserved); memory comes from the CloudWatch agent. Here nothing runs inside the
    instances, so we play both parts.
    """
    cw = aws.client("cloudwatch", region_name=region)
    end = (end or dt.datetime.now(dt.UTC)).replace(minute=0, second=0, microsecond=0)
    dims = [{"Name": "InstanceId", "Value": instance_id}]
    n = len(cpu)

    def datum(metric: str, i: int, v) -> dict:
        d = {
            "MetricName": metric,
            "Dimensions": dims,
            "Unit": "Percent",
            "Timestamp": end - dt.timedelta(hours=n - 1 - i),
        }
        if isinstance(v, (list, tuple)):  # one hour's samples, as a statistic set (what an agent aggregates)
            vals = [float(x) for x in v]
            d["StatisticValues"] = {
                "SampleCount": len(vals),
                "Sum": sum(vals),
                "Minimum": min(vals),
                "Maximum": max(vals),
            }
        else:
            d["Value"] = float(v)
        return d

    points = [(CPU_NAMESPACE, datum("CPUUtilization", i, v)) for i, v in enumerate(cpu)]
    if mem is not None:
        points += [(MEM_NAMESPACE, datum("mem_used_percent", i, v)) for i, v in enumerate(mem)]
    for ns in (CPU_NAMESPACE, MEM_NAMESPACE):
        batch = [p for s, p in points if s == ns]
        for i in range(0, len(batch), 500):
            cw.put_metric_data(Namespace=ns, MetricData=batch[i : i + 500])
    return len(points)


def fetch_utilization(instance_ids: list[str], region: str = "us-east-1", days: int = DAYS) -> dict[str, dict]:
    """Hourly average CPU and memory % per instance, oldest first, in one GetMetricData call."""
    cw = aws.client("cloudwatch", region_name=region)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    queries = []
    for k, iid in enumerate(instance_ids):
        dims = [{"Name": "InstanceId", "Value": iid}]
        for code, ns, metric in (("c", CPU_NAMESPACE, "CPUUtilization"), ("m", MEM_NAMESPACE, "mem_used_percent")):
            queries.append(
                {
                    "Id": f"{code}{k}",
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {"Namespace": ns, "MetricName": metric, "Dimensions": dims},
                        "Period": 3600,
                        "Stat": "Average",
                    },
                }
            )
    out = {iid: {"cpu": [], "mem": []} for iid in instance_ids}
    for i in range(0, len(queries), 500):
        kwargs = dict(
            MetricDataQueries=queries[i : i + 500],
            StartTime=end - dt.timedelta(days=days, hours=1),
            EndTime=end,
            ScanBy="TimestampAscending",
        )
        while True:
            page = cw.get_metric_data(**kwargs)
            for res in page["MetricDataResults"]:
                iid = instance_ids[int(res["Id"][1:])]
                out[iid]["cpu" if res["Id"][0] == "c" else "mem"] += list(res["Values"])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return out


def rightsize(
    table: cost.PriceTable, regions=REGIONS, target: float = 70.0, data: dict[str, dict] | None = None
) -> list[cost.Recommendation]:
    """Read each running l03 instance's week of metrics back from CloudWatch and recommend a size.

    ``data`` (from :func:`fetch_utilization`) saves fetching again what a cell already fetched.
    """
    recs = []
    for region in regions:
        insts = [r for r in inventory((region,)) if r["kind"] == "instance"]
        if not insts:
            continue
        known = dict(data or {})
        missing = [i["id"] for i in insts if i["id"] not in known]
        if missing:
            known.update(fetch_utilization(missing, region))
        for inst in insts:
            d = known[inst["id"]]
            rec = cost.recommend_size(
                inst["type"], stats.percentile(d["cpu"]), stats.percentile(d["mem"]), table, region, target
            )
            rec.id, rec.name, rec.region = inst["id"], inst["name"], region
            recs.append(rec)
    return recs
