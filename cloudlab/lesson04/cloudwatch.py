"""The AWS form of the multi-window page: two CloudWatch metric alarms (one per window) joined by a
composite alarm (AND), replayed on real data points in the emulator.

What the emulator does and does not do (LocalStack 4.14, measured): it evaluates a metric alarm on the
data points it holds, once when the alarm is created and then once per period; it stores composite
alarms, but evaluates every rule as OR of its ALARM(...) terms (its documented limitation), whatever
the rule says. :func:`composite_verdict` therefore computes the AND from the children's real states,
the way AWS evaluates the rule, and the lesson shows both.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .service import NAMESPACE

BUDGET = 1 - 0.995
WINDOWS = (("1h", 3600), ("5m", 300))


def alarm_names(prefix: str) -> dict[str, str]:
    return {"1h": f"{prefix}-1h", "5m": f"{prefix}-5m", "page": f"{prefix}-page"}


def put_page_alarms(cw, prefix: str, topic_arn: str, dimensions: dict, burn: float = 14.4) -> dict[str, str]:
    """Two metric alarms (1 h and 5 min windows, no actions) and the composite that pages when both alarm.

    Each metric alarm is evaluated by the emulator at once, on the data points already there.
    """
    names = alarm_names(prefix)
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    for window, period in WINDOWS:
        cw.put_metric_alarm(
            AlarmName=names[window],
            AlarmDescription=f"orders: the {window} error ratio burns the budget {burn}x too fast",
            Namespace=NAMESPACE,
            MetricName="ErrorRatio",
            Dimensions=dims,
            Statistic="Average",
            Period=period,
            EvaluationPeriods=1,
            Threshold=burn * BUDGET,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
    arns = {
        a["AlarmName"]: a["AlarmArn"] for a in cw.describe_alarms(AlarmNames=[names["1h"], names["5m"]])["MetricAlarms"]
    }
    cw.put_composite_alarm(
        AlarmName=names["page"],
        AlarmDescription="orders: fast burn in the 1 h AND the 5 min window. Runbook: "
        + "lessons/04_observability/runbook.md",
        # names or ARNs both work on AWS; the emulator evaluates a rule only when it names ARNs
        AlarmRule=f'ALARM("{arns[names["1h"]]}") AND ALARM("{arns[names["5m"]]}")',
        AlarmActions=[topic_arn],
    )
    return names


def replay_hour(cw, dimensions: dict, ratios: list[float], now: datetime | None = None) -> int:
    """Publish one ErrorRatio data point per minute for the last ``len(ratios)`` minutes (oldest first),
    back-dated as a metrics agent catching up would. Standard resolution (one per minute)."""
    now = now or datetime.now(UTC)
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    data = [
        {
            "MetricName": "ErrorRatio",
            "Dimensions": dims,
            "Value": float(v),
            "Unit": "None",
            "Timestamp": now - timedelta(minutes=len(ratios) - 1 - i, seconds=5),
        }
        for i, v in enumerate(ratios)
    ]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace=NAMESPACE, MetricData=data[i : i + 500])
    return len(data)


def states(cw, names: dict[str, str]) -> dict[str, str]:
    resp = cw.describe_alarms(AlarmNames=list(names.values()), AlarmTypes=["CompositeAlarm", "MetricAlarm"])
    got = {a["AlarmName"]: a["StateValue"] for a in resp.get("MetricAlarms", []) + resp.get("CompositeAlarms", [])}
    return {k: got.get(v, "missing") for k, v in names.items()}


def composite_verdict(cw, name: str) -> str:
    """ALARM or OK: the composite's rule evaluated as AWS does (AND/OR/NOT of its children's real states)."""
    comp = cw.describe_alarms(AlarmNames=[name], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"][0]
    rule = comp["AlarmRule"]
    children = {n.rsplit(":", 1)[-1] for n in re.findall(r'ALARM\(\s*"?([^")]+?)"?\s*\)', rule)}
    current = cw.describe_alarms(AlarmNames=sorted(children))["MetricAlarms"]
    state = {a["AlarmName"]: a["StateValue"] == "ALARM" for a in current}
    expr = re.sub(r'ALARM\(\s*"?([^")]+?)"?\s*\)', lambda m: str(state.get(m.group(1).rsplit(":", 1)[-1], False)), rule)
    expr = expr.replace("AND", "and").replace("OR", "or").replace("NOT", "not")
    if not re.fullmatch(r"[\sA-Za-z()]*", expr) or set(re.findall(r"[A-Za-z]+", expr)) - {
        "True",
        "False",
        "and",
        "or",
        "not",
    }:
        raise ValueError(f"cannot evaluate the rule {rule!r} here")
    return "ALARM" if eval(expr, {"__builtins__": {}}) else "OK"  # noqa: S307 (only True/False/and/or/not)


def evaluate_now(cw, names: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
    """Ask the emulator to evaluate the two window alarms now (it evaluates an alarm when it is (re)created),
    wait until they have a verdict, and return every state. The real call: put_metric_alarm with the
    alarm's own settings; on AWS the alarms evaluate once per period by themselves."""
    import time

    keys = (
        "AlarmName",
        "AlarmDescription",
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "Period",
        "EvaluationPeriods",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "AlarmActions",
    )
    before = {
        a["AlarmName"]: a.get("StateUpdatedTimestamp")
        for a in cw.describe_alarms(AlarmNames=[names["1h"], names["5m"]])["MetricAlarms"]
    }
    for a in cw.describe_alarms(AlarmNames=[names["1h"], names["5m"]])["MetricAlarms"]:
        cw.put_metric_alarm(**{k: a[k] for k in keys if k in a})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = cw.describe_alarms(AlarmNames=[names["1h"], names["5m"]])["MetricAlarms"]
        if all(a["StateValue"] != "INSUFFICIENT_DATA" for a in now) and any(
            a.get("StateUpdatedTimestamp") != before.get(a["AlarmName"]) for a in now
        ):
            break
        time.sleep(0.2)
    time.sleep(0.3)
    return states(cw, names)
