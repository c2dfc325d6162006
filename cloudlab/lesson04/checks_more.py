"""Checks 04.8-04.9: a span around the slow inventory call (read from the service's span export), and the
AWS form of the multi-window page (two CloudWatch alarms joined by a composite alarm, read from the emulator).
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .. import aws, pager
from .. import observability as obs
from ..checks import check
from .checks_rules import learner_file, scratch
from .service import DIMENSIONS, NAMESPACE, SERVICE, find_service, send
from .stack import restart_service

HOOK_FILE = "l04_inventory.py"


# ------------------------------------------------------------------ 04.8 tracing
def _request_trace(spans: list[dict], request_id: str) -> dict | None:
    return next(
        (s for s in spans if s.get("kind") == "SERVER" and s.get("attributes", {}).get("request_id") == request_id),
        None,
    )


def _counting_hook(learner: Path, calls: Path) -> Path:
    """A hook file that loads the learner's ``reserve`` and counts each real call to the inventory (one JSON line
    per call in ``calls``); what the learner's code does with its span is unchanged."""
    hook = calls.with_name("counting_inventory_hook.py")
    hook.write_text(
        "import importlib.util, json\n"
        f"_spec = importlib.util.spec_from_file_location('learner_inventory', {str(learner)!r})\n"
        "_learner = importlib.util.module_from_spec(_spec)\n"
        "_spec.loader.exec_module(_learner)\n\n\n"
        "def reserve(call, item, qty):\n"
        "    def counted(i, q):\n"
        f"        with open({str(calls)!r}, 'a') as fh:\n"
        "            fh.write(json.dumps({'item': i, 'qty': q}) + '\\n')\n"
        "        return call(i, q)\n\n"
        "    return _learner.reserve(counted, item, qty)\n"
    )
    return hook


def _order_spans(r, svc, rid: str) -> tuple[dict, list[dict]]:
    """The request's SERVER span and every span exported so far (waits up to 5 s for the request's)."""
    spans, root = [], None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        spans = obs.read_spans(svc.spans_file, settle=0.2)
        root = _request_trace(spans, rid)
        if root is not None:
            break
    r.require(root is not None, "the request's trace was exported", "the request's SERVER span never arrived")
    return root, spans


@check(
    "04.8",
    "A span with attributes covers the slow inventory call, inside the request's trace",
    hints=[
        "In reserve(), start a span around call(item, qty) and return what call returns. Use the service's own "
        "tracer (trace.get_tracer(...)): its provider exports the spans.",
        'with tracer.start_as_current_span("inventory.reserve", kind=SpanKind.CLIENT, attributes={...}): '
        "return call(item, qty). Inside a request, the current span is the request's SERVER span: yours "
        "becomes its child.",
        'The attributes are the order\'s own values: {"inventory.item": item, "inventory.quantity": qty}.',
    ],
)
def check_span(r, ns):
    path = learner_file(r, HOOK_FILE)
    before = find_service(SERVICE)
    r.require(before is not None, "the service runs", "the service is not running: run the setup cell again")
    slow_ms = before.inventory_ms or 40
    calls = scratch("04.8") / "inventory-calls.jsonl"
    try:
        try:
            svc = restart_service(inventory_hook=str(_counting_hook(path, calls)), inventory_ms=slow_ms)
        except RuntimeError as e:
            r.fail(f"the service did not start with your {path.name}: {str(e)[-700:]}")
        orders = []
        for _ in range(2):  # two orders, each with its own item and quantity
            rid, item, qty = f"check-{uuid.uuid4().hex[:10]}", f"item-{uuid.uuid4().hex[:6]}", random.randint(2, 9)
            resp = send(svc, rid, "/orders", {"item": item, "qty": qty})
            if resp.status != 201:
                err = next((ln for ln in svc.lines() if rid in ln and "request_failed" in ln), "")
                r.fail(f"POST /orders answered {resp.status} with your reserve(): {err[-400:] or resp.body[:200]!r}")
            orders.append((rid, item, qty))
        for n, (rid, item, qty) in enumerate(orders):
            root, spans = _order_spans(r, svc, rid)
            _expect_span(r, root, spans, item, qty, slow_ms, "" if n == 0 else " (second order)")
        items = {item for _, item, _ in orders}  # the load generator's orders are counted too: leave them out
        made = [json.loads(x) for x in calls.read_text().splitlines()] if calls.exists() else []
        made = [m for m in made if m.get("item") in items]
        want = [{"item": item, "qty": qty} for _, item, qty in orders]
        r.expect(
            made == want,
            "the inventory was called once per order, with the order's item and quantity",
            f"for the check's 2 orders the inventory was called {len(made)} times ({made[:4]}): call(item, qty) "
            "exactly once per order, inside the span (each extra call reserves the stock again)",
        )
    finally:
        if r.wrong:  # leave a working service behind; a passing hook stays loaded (counting, as in the check)
            restart_service(inventory_hook=before.inventory_hook, inventory_ms=before.inventory_ms)


def _expect_span(r, root: dict, spans: list[dict], item: str, qty: int, slow_ms: float, which: str) -> None:
    mine = [s for s in spans if s["name"] == "inventory.reserve"]
    r.require(
        bool(mine),
        "a span inventory.reserve was exported",
        "no span named inventory.reserve was exported: start it with trace.get_tracer(...) (the service's "
        "provider), not with a TracerProvider of your own (nobody exports that one)",
    )
    inside = [s for s in mine if s["trace_id"] == root["trace_id"]]
    r.require(
        bool(inside),
        f"it belongs to the request's trace{which}",
        f"inventory.reserve is in another trace than the request{which}: start it inside the current context "
        "(no context=..., no new root), so it joins the request's trace",
    )
    r.expect(
        len(inside) == 1,
        f"one inventory.reserve span per order{which}",
        f"the request{which} has {len(inside)} inventory.reserve spans: one call, one span",
    )
    span = inside[-1]
    by_id = {s["span_id"]: s for s in spans}
    parent = by_id.get(span["parent_id"], {}).get("name", span["parent_id"])
    r.expect(
        span["parent_id"] == root["span_id"],
        f"its parent is the request's span {root['name']}{which}",
        f"its parent is {parent!r}, not the request's span {root['name']!r}{which}",
    )
    r.expect(
        span["kind"] == "CLIENT",
        f"its kind is CLIENT (a call to another service){which}",
        f"its kind is {span['kind']}{which}: a call out to another service is SpanKind.CLIENT",
    )
    attrs = span.get("attributes", {})
    r.expect(
        attrs.get("inventory.item") == item,
        f"inventory.item is the order's item{which}",
        f"inventory.item is {attrs.get('inventory.item')!r}, the order's item was {item!r}{which}",
    )
    r.expect(
        attrs.get("inventory.quantity") == qty and isinstance(attrs.get("inventory.quantity"), int),
        f"inventory.quantity is the order's quantity (a number){which}",
        f"inventory.quantity is {attrs.get('inventory.quantity')!r}, the order's qty was {qty}{which}",
    )
    took = obs.duration_ms(span)
    r.expect(
        took >= slow_ms * 0.9,
        f"it covers the slow call ({took:.0f} ms){which}",
        f"it lasts {took:.1f} ms, the call takes {slow_ms:g} ms: call() must run INSIDE the span{which}",
    )


# ------------------------------------------------------------------ 04.9 CloudWatch: two alarms and a composite
LONG, SHORT, COMPOSITE = "l04-ex-burn-1h", "l04-ex-burn-5m", "l04-ex-burn-page"
TOPIC, QUEUE = "l04-ex-alerts", "l04-ex-pager"
THRESHOLD = 14.4 * (1 - 0.995)
_ALARM = r'ALARM\(\s*"?([^")]+?)"?\s*\)'


def parse_rule(rule: str) -> tuple[str, set[str]]:
    """('AND'|'OR'|'other', alarm names) of a composite alarm rule (ARNs reduced to names)."""
    names = {n.rsplit(":", 1)[-1] for n in re.findall(_ALARM, rule or "")}
    rest = re.sub(_ALARM, "X", rule or "").strip()
    op = "AND" if re.fullmatch(r"X(\s+AND\s+X)+", rest) else "OR" if re.fullmatch(r"X(\s+OR\s+X)+", rest) else "other"
    return op, names


def _metric_alarm(r, cw, name: str, period: int, window: str) -> dict:
    found = cw.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
    r.require(bool(found), f"the alarm {name} exists", f"there is no metric alarm {name}")
    a = found[0]
    dims = {d["Name"]: d["Value"] for d in a.get("Dimensions", [])}
    r.expect(
        (a.get("Namespace"), a.get("MetricName"), dims, a.get("Statistic"))
        == (NAMESPACE, "ErrorRatio", DIMENSIONS, "Average"),
        f"{name} watches the Average of {NAMESPACE} ErrorRatio for Service=orders",
        f"{name} watches {a.get('Statistic')} of {a.get('Namespace')}/{a.get('MetricName')} {dims}; expected "
        f"Average of {NAMESPACE}/ErrorRatio with exactly the dimension Service=orders",
    )
    r.expect(
        a.get("Period") == period and a.get("EvaluationPeriods") == 1,
        f"{name} looks at one period of {window} ({period} s)",
        f"{name} has Period={a.get('Period')} s x {a.get('EvaluationPeriods')} evaluation periods; the {window} "
        f"window is one period of {period} s",
    )
    r.expect(
        abs((a.get("Threshold") or 0) - THRESHOLD) < 1e-9 and a.get("ComparisonOperator") == "GreaterThanThreshold",
        f"{name} alarms above {THRESHOLD:.3f} (burn 14.4 x budget 0.5 %)",
        f"{name}: {a.get('ComparisonOperator')} {a.get('Threshold')}; the page threshold is 14.4 x (1 - 0.995) = "
        f"{THRESHOLD:.3f}, GreaterThanThreshold",
    )
    r.expect(
        a.get("TreatMissingData") == "notBreaching",
        f"{name}: no traffic is no outage (notBreaching)",
        f"{name}: TreatMissingData is {a.get('TreatMissingData')!r}; with no requests there is no error ratio: "
        "notBreaching",
    )
    return a


@check(
    "04.9",
    "On AWS: two alarms joined by a composite alarm page through SNS",
    hints=[
        "A metric alarm evaluates ONE window. Make two on ErrorRatio (1 h: Period 3600, 5 min: Period 300), "
        "then a composite alarm whose rule needs both, with the pager topic as its action.",
        "put_composite_alarm(AlarmName='l04-ex-burn-page', AlarmRule='ALARM(\"l04-ex-burn-1h\") AND "
        'ALARM("l04-ex-burn-5m")\', AlarmActions=[topic_arn]); the two metric alarms get NO actions.',
        "Threshold=14.4 * (1 - 0.995), Statistic='Average', EvaluationPeriods=1, TreatMissingData='notBreaching', "
        "Dimensions=[{'Name': 'Service', 'Value': 'orders'}]; wire_pager(sns, sqs, 'l04-ex-alerts', 'l04-ex-pager').",
    ],
)
def check_composite(r, ns):
    cw, sns, sqs = aws.client("cloudwatch"), aws.client("sns"), aws.client("sqs")
    long_a = _metric_alarm(r, cw, LONG, 3600, "1 h")
    short_a = _metric_alarm(r, cw, SHORT, 300, "5 min")
    found = cw.describe_alarms(AlarmNames=[COMPOSITE], AlarmTypes=["CompositeAlarm"]).get("CompositeAlarms", [])
    r.require(bool(found), f"the composite alarm {COMPOSITE} exists", f"there is no composite alarm {COMPOSITE}")
    comp = found[0]
    op, names = parse_rule(comp.get("AlarmRule", ""))
    r.expect(
        op == "AND" and names == {LONG, SHORT},
        "its rule is ALARM(1 h) AND ALARM(5 min)",
        f"its rule is {comp.get('AlarmRule')!r}: it must need BOTH {LONG} and {SHORT} (AND)"
        + (": with OR, a one-minute blip pages" if op == "OR" else ""),
    )
    topic = next((t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{TOPIC}")), None)
    r.require(topic is not None, f"the topic {TOPIC} exists", f"there is no SNS topic {TOPIC}")
    r.expect(
        topic in comp.get("AlarmActions", []),
        "the composite alarm notifies the pager topic",
        f"the composite alarm's actions are {comp.get('AlarmActions')}: add the topic {TOPIC}",
    )
    r.expect(
        comp.get("ActionsEnabled", True) is True,
        "its actions are enabled",
        "the composite alarm has ActionsEnabled=False: it goes into ALARM and tells nobody (leave ActionsEnabled "
        "out, or True)",
    )
    noisy = sorted(
        f"{a['AlarmName']} ({kind})"
        for a in (long_a, short_a)
        for kind in ("AlarmActions", "OKActions", "InsufficientDataActions")
        if topic in a.get(kind, [])
    )
    r.expect(
        not noisy,
        "the two window alarms page nobody by themselves",
        f"{', '.join(noisy)} notify the pager topic themselves, so one window alone pages: only the composite may",
    )
    urls = sqs.list_queues(QueueNamePrefix=QUEUE).get("QueueUrls", [])
    url = next((u for u in urls if u.rsplit("/", 1)[-1] == QUEUE), None)
    r.require(url is not None, f"the queue {QUEUE} exists", f"there is no SQS queue {QUEUE}")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "Policy"])["Attributes"]
    subs = sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", [])
    r.expect(
        any(s.get("Protocol") == "sqs" and s.get("Endpoint") == attrs["QueueArn"] for s in subs),
        "the pager queue is subscribed to the topic",
        f"the queue {QUEUE} is not subscribed to the topic {TOPIC}",
    )
    policy = json.loads(attrs.get("Policy") or "{}")
    allows = [
        s
        for s in policy.get("Statement", [])
        if s.get("Effect") == "Allow"
        and "sns.amazonaws.com" in json.dumps(s.get("Principal"))
        and "sqs:SendMessage" in json.dumps(s.get("Action"))
        and topic in json.dumps(s.get("Condition", {}))
    ]
    r.expect(
        bool(allows),
        "the queue policy lets this topic (and only it) send messages, as real AWS requires",
        "the queue has no policy allowing sns.amazonaws.com to sqs:SendMessage with aws:SourceArn = the topic: "
        "the emulator delivers anyway, real AWS would drop every page",
    )
    # Real data: one tick of the lab's metrics agent (two scrapes of the running service), then the
    # alarms' own metric queries must see it.
    svc = find_service(SERVICE)
    r.require(svc is not None, "the service runs", "the service is not running: run the setup cell again")
    before = obs.scrape(svc.metrics_url)
    time.sleep(1.0)
    data = obs.cloudwatch_datums(before, obs.scrape(svc.metrics_url), DIMENSIONS)
    now = datetime.now(UTC)
    for d in data:
        d["Timestamp"] = now
    cw.put_metric_data(Namespace=NAMESPACE, MetricData=data)
    published = cw.list_metrics(Namespace=NAMESPACE, MetricName="ErrorRatio").get("Metrics", [])
    for a in (long_a, short_a):
        # exact match in Python: the emulator matches dimension values by prefix ("order" finds "orders")
        want = sorted((d["Name"], d["Value"]) for d in a.get("Dimensions", []))
        exact = [m for m in published if sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", [])) == want]
        q = {
            "Id": "m",
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": "ErrorRatio", "Dimensions": a.get("Dimensions", [])},
                "Period": a.get("Period") or 60,
                "Stat": a.get("Statistic") or "Average",
            },
        }
        span = timedelta(seconds=a.get("Period") or 60)
        values = cw.get_metric_data(MetricDataQueries=[q], StartTime=now - span, EndTime=now + timedelta(seconds=5))[
            "MetricDataResults"
        ][0]["Values"]
        r.expect(
            bool(exact) and bool(values),
            f"{a['AlarmName']} watches the metric the service really publishes ({values[0]:.3f} now)" if values else "",
            f"{a['AlarmName']} watches a metric nothing publishes: a metric is its namespace, name and ALL its "
            f"dimensions, exactly ({dict(want)})",
        )
    drill = f"check 04.9 drill {uuid.uuid4().hex[:8]}"
    pager.read_pages(sqs, url)
    sns.publish(
        TopicArn=topic, Message=json.dumps({"AlarmName": COMPOSITE, "NewStateValue": "ALARM", "NewStateReason": drill})
    )
    got = None
    for _ in range(20):
        got = next((p for p in pager.read_pages(sqs, url) if p.get("NewStateReason") == drill), None)
        if got:
            break
        time.sleep(0.1)
    r.expect(
        got is not None,
        "a message on the topic reaches the pager queue",
        "a drill message on the topic never reached the queue",
    )
