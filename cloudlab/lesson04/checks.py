"""Lesson 04's exercise checks: they read the real log group, the service's metrics and the pager queue."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime

from .. import aws, pager
from .. import observability as obs
from ..checks import check
from .service import (
    DIMENSIONS,
    EXERCISE_GROUP,
    NAMESPACE,
    SERVICE,
    SLO_LATENCY_S,
    Service,
    find_service,
    load_results,
    send,
    wait_for_line,
)


# ==================================================================== checks
def _service(r) -> Service:
    svc = find_service(SERVICE)
    r.require(
        svc is not None,
        f"the service {SERVICE} runs",
        f"the service {SERVICE} is not running: run the setup cell at the top of the notebook again",
    )
    return svc


class _Recorder:
    """Passes every call to the real Logs client and remembers the PutLogEvents batch sizes."""

    def __init__(self, client):
        self._client, self.batches = client, []

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name != "put_log_events":
            return attr

        def put(**kw):
            self.batches.append(len(kw.get("logEvents", [])))
            return attr(**kw)

        return put


@check(
    "04.1",
    "The service's log lines reach CloudWatch Logs with their request ID",
    hints=[
        "Parse each line with json.loads; skip lines that raise ValueError. The event's timestamp is "
        "the line's `ts` in epoch milliseconds: int(datetime.fromisoformat(ts).timestamp() * 1000).",
        "Sort the events by timestamp, then send them with logs.put_log_events(logGroupName=..., "
        "logStreamName=..., logEvents=batch) in slices of at most 500; create the group and the stream "
        "first (ignore ResourceAlreadyExistsException).",
        "The message of each event is the original line. Return the number of events you sent.",
    ],
)
def check_ship_lines(r, ns):
    ship_lines = r.need(ns, "ship_lines", callable)
    svc = _service(r)
    rid = f"check-{uuid.uuid4().hex[:12]}"
    send(svc, rid)
    r.require(
        wait_for_line(svc, rid) is not None,
        "the service logged a fresh request",
        "the service did not log the check's request within a second; restart it with the setup cell",
    )
    lines = [x for x in svc.lines() if x.strip()][-300:]
    base = datetime.now(UTC).timestamp() - 3600
    late = [
        json.dumps(
            {
                "ts": datetime.fromtimestamp(base + i, UTC).isoformat(timespec="milliseconds"),
                "level": "INFO",
                "event": "replayed",
                "request_id": f"old-{uuid.uuid4().hex[:8]}",
            }
        )
        for i in range(3)
    ]
    lines = (
        lines + ["Traceback (most recent call last):  <- not JSON"] + late[::-1] + [json.dumps(["not", "an object"])]
    )
    good = obs.to_log_events(lines, skip_bad=True)[0]
    logs = aws.client("logs")
    rec = _Recorder(logs)
    stream = f"check-{uuid.uuid4().hex[:8]}"
    n = r.call(ship_lines, rec, EXERCISE_GROUP, stream, list(lines))
    r.expect(
        n == len(good),
        f"ship_lines returned {n}, the number of JSON lines",
        f"ship_lines returned {n!r}, but {len(good)} of the {len(lines)} lines are JSON log events",
    )
    try:
        got = logs.get_log_events(logGroupName=EXERCISE_GROUP, logStreamName=stream, startFromHead=True, limit=10000)[
            "events"
        ]
    except logs.exceptions.ResourceNotFoundException:
        r.fail(
            f"there is no log stream {stream!r} in {EXERCISE_GROUP}: create the group and the stream, "
            "using the names you are given"
        )
    r.expect(
        len(got) == len(good),
        f"CloudWatch holds all {len(good)} events",
        f"CloudWatch holds {len(got)} events in the stream, expected {len(good)} (one per JSON line)",
    )
    mine = [e for e in got if f'"request_id": "{rid}"' in e["message"]]
    want_ts = obs.parse_log_line(wait_for_line(svc, rid))["_ts_ms"]
    r.expect(
        bool(mine) and json.loads(mine[0]["message"]).get("request_id") == rid,
        f"the event of request {rid} is there, with its request_id field",
        f"no event in CloudWatch carries the check's request_id {rid}: send each line as the message",
    )
    if mine:
        r.expect(
            mine[0]["timestamp"] == want_ts,
            "its timestamp is the line's own `ts` (epoch ms)",
            f"its timestamp is {mine[0]['timestamp']}, but the line says {want_ts}: use the `ts` field, in ms",
        )
    stamps = [e["timestamp"] for e in got]
    r.expect(
        stamps == sorted(stamps),
        "events are in time order",
        "events are not in time order: sort them by timestamp before sending",
    )
    r.expect(
        not any("Traceback" in e["message"] or e["message"].startswith("[") for e in got),
        "lines that are not JSON objects were skipped",
        "a line that is not a JSON object was sent",
    )
    r.expect(
        rec.batches and max(rec.batches) <= 500,
        f"batches of at most 500 events ({rec.batches})",
        f"PutLogEvents was called with batches of {rec.batches}: send at most 500 events per call",
    )


@check(
    "04.2",
    "A client-side log query finds exactly one request's lines",
    hints=[
        "Read the events back with logs.filter_log_events(logGroupName=group) and follow nextToken "
        "until there is none; do not pass filterPattern: the emulator ignores it and returns everything.",
        "json.loads each event's message (skip those that fail or are not dicts) and keep the records "
        "whose request_id equals the one you are asked for.",
        "Return a list of dicts, oldest first (sort by the event's timestamp).",
    ],
)
def check_find_request(r, ns):
    find_request = r.need(ns, "find_request", callable)
    logs = aws.client("logs")
    rid, other = f"find-{uuid.uuid4().hex[:10]}", f"find-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC).timestamp()

    def line(i, req, event):
        return json.dumps(
            {
                "ts": datetime.fromtimestamp(now - 60 + i, UTC).isoformat(),
                "level": "INFO",
                "event": event,
                "request_id": req,
            }
        )

    lines = [
        line(0, other, "request"),
        line(1, rid, "request_received"),
        line(2, other, "order_stored"),
        line(3, rid, "fault_injected"),
        "not json",
        line(4, rid, "request"),
        line(5, other, "request"),
    ]
    group = f"{EXERCISE_GROUP}-find"
    obs.ship_logs(logs, group, f"check-{uuid.uuid4().hex[:8]}", lines)
    got = r.call(find_request, logs, group, rid)
    r.require(
        isinstance(got, list),
        "find_request returns a list",
        f"find_request should return a list of dicts, not a {type(got).__name__}",
    )
    ids = [g.get("request_id") if isinstance(g, dict) else None for g in got]
    r.expect(
        len(got) == 3 and set(ids) == {rid},
        f"it returned exactly the 3 lines of request {rid}",
        f"it returned {len(got)} records with request ids {sorted(set(map(str, ids)))[:4]}; expected the 3 "
        f"lines of {rid} only"
        + (" (does it filter client-side? a filterPattern is ignored here)" if len(got) > 3 else ""),
    )
    events = [g.get("event") for g in got if isinstance(g, dict)]
    r.expect(
        events == ["request_received", "fault_injected", "request"],
        "oldest first",
        f"the events come back as {events}; return them oldest first",
    )
    none = r.call(find_request, logs, group, f"absent-{uuid.uuid4().hex[:8]}")
    r.expect(
        none == [],
        "an unknown request id gives an empty list",
        f"an unknown request id gave {len(none) if isinstance(none, list) else none!r} records; expected []",
    )


@check(
    "04.3",
    "The live histogram has buckets that fit the latency SLO",
    hints=[
        "BUCKETS is a tuple of increasing upper bounds in seconds, e.g. starting at 0.005. The SLO "
        f"threshold {SLO_LATENCY_S} must be one of them, exactly.",
        "Cover the range you care about: at least 6 bounds, the largest at least 2.5 s. Then restart "
        "the service: svc = lesson04.start_service(fault_rate=0.1, buckets=BUCKETS).",
        'The check scrapes the running service\'s /metrics: if it still shows le="0.01","0.1","1.0", '
        "the restart with your buckets did not happen.",
    ],
)
def check_buckets(r, ns):
    buckets = r.need(ns, "BUCKETS", (tuple, list))
    svc = _service(r)
    try:
        before = obs.scrape(svc.metrics_url)
    except OSError as e:
        r.fail(f"the service's /metrics endpoint ({svc.metrics_url}) does not answer: {e}")
    bounds = obs.bucket_bounds(before, obs.LATENCY)
    r.require(
        bool(bounds),
        f"the live endpoint serves the histogram {obs.LATENCY}",
        f"the live endpoint serves no histogram {obs.LATENCY} yet",
    )
    r.expect(
        [float(b) for b in buckets] == bounds,
        f"the live histogram has your buckets {bounds}",
        f"the live histogram has buckets {bounds}, your BUCKETS are {list(buckets)}: restart the service "
        "with buckets=BUCKETS",
    )
    r.expect(
        SLO_LATENCY_S in bounds,
        f"{SLO_LATENCY_S} s (the SLO threshold) is a bucket boundary",
        f"{SLO_LATENCY_S} s is not a bucket boundary: the SLO's good/bad split would be a guess",
    )
    r.expect(
        len(bounds) >= 6,
        f"{len(bounds)} buckets (enough resolution)",
        f"only {len(bounds)} finite buckets: use at least 6 so percentiles are more than a guess",
    )
    r.expect(
        bounds and bounds[-1] >= 2.5,
        "the last bucket reaches at least 2.5 s",
        "the largest bucket is below 2.5 s: slow requests would all land in +Inf",
    )
    rid = f"check-{uuid.uuid4().hex[:12]}"
    n0 = obs.sample_sum(before, f"{obs.LATENCY}_count", route="/health")
    send(svc, rid)
    n1 = obs.sample_sum(obs.scrape(svc.metrics_url), f"{obs.LATENCY}_count", route="/health")
    r.expect(
        n1 == n0 + 1,
        "a fresh request shows up in the live histogram at once",
        f"a fresh request did not show up in the histogram ({n0} -> {n1})",
    )


def _timeline(rng: random.Random, shape: str, start: float) -> list[tuple[float, bool]]:
    """Synthetic request outcomes, 20 per lab second for 40 s, shaped like an incident.

    The bad events are spaced evenly (every k-th), from a random phase: fresh data every time,
    the same verdict every time.
    """
    phase = rng.randrange(100)
    out = []
    for i in range(800):
        t = start + i / 20
        age = t - start
        every = {"healthy": 500, "sustained": 4, "blip": 2 if 38 < age <= 39 else 0, "recovered": 2 if age < 30 else 0}[
            shape
        ]
        out.append((t, not (every and (i + phase) % every == 0)))
    return out


@check(
    "04.4",
    "The burn-rate rule pages for the injected fault and stays quiet without it",
    hints=[
        "burn_rate(bad, total, target) = (bad / total) / (1 - target), and 0 when total is 0.",
        "should_page(events, target, at, long_s, short_s, burn): count the (time, good) events with "
        "at - window < time <= at, for each of the two windows.",
        "Page only when BOTH windows burn faster than `burn`: the long one proves it matters, "
        "the short one proves it is still happening.",
    ],
)
def check_burn_rule(r, ns):
    burn_rate = r.need(ns, "burn_rate", callable)
    should_page = r.need(ns, "should_page", callable)
    rng = random.Random()
    bad, tot, target = rng.randint(1, 9), rng.randint(100, 300), rng.choice([0.99, 0.995, 0.999])
    got = r.call(burn_rate, bad, tot, target)
    want = (bad / tot) / (1 - target)
    r.expect(
        isinstance(got, (int, float)) and abs(got - want) < 1e-6 * max(1, want),
        f"burn_rate({bad}, {tot}, {target}) = {want:.2f}",
        f"burn_rate({bad}, {tot}, {target}) returned {got!r}, expected {want:.4f}",
    )
    r.expect(
        r.call(burn_rate, 0, 0, target) == 0,
        "no traffic burns nothing",
        "burn_rate(0, 0, target) should be 0 (no traffic, no burn), not an error",
    )
    rule = obs.workbook_rules(speedup=900)[0]  # page: 1 h -> 4 s, 5 min -> 0.33 s, burn 14.4
    slo = obs.SLO("availability", 0.995)
    for name, want_page in (("faulty", True), ("healthy", False)):
        try:
            events = obs.good_events(load_results(name), slo)
        except OSError:
            r.fail(f"the {name} run's results are missing: run the setup cell at the top again")
        times = [events[0][0] + 0.25 * i for i in range(int((events[-1][0] - events[0][0]) / 0.25) + 2)]
        ref = [obs.rule_fires(events, slo.target, rule, at)[0] for at in times]
        got = [r.call(should_page, events, slo.target, at, rule.long_s, rule.short_s, rule.burn) for at in times]
        wrong = [round(at - times[0], 2) for at, g, w in zip(times, got, ref, strict=False) if g != w]
        r.expect(
            not wrong and any(got) == want_page,
            f"on the real {name} run it {'pages' if want_page else 'stays quiet'} "
            f"({sum(map(bool, got))} of {len(times)} evaluations fire)",
            f"on the real {name} run should_page disagrees with the rule at {len(wrong)} of {len(times)} "
            f"evaluations (first at +{wrong[0] if wrong else '?'} s); it fired {sum(map(bool, got))} times, "
            f"the rule fires {sum(ref)} times",
        )
    start = time.time() - 40
    for shape, want_page, why in (
        ("sustained", True, "a sustained 10 % error ratio pages"),
        ("healthy", False, "a healthy service (0.2 % errors) stays quiet"),
        ("blip", False, "a one-second blip does not page (the long window is calm)"),
        ("recovered", False, "a recovered incident stops paging (the short window is calm)"),
    ):
        events = _timeline(rng, shape, start)
        at = events[-1][0]
        expect = obs.rule_fires(events, 0.995, obs.Rule("page", 20, 2, 14.4), at)[0]
        page = r.call(should_page, events, 0.995, at, 20, 2, 14.4)
        r.expect(page == expect == want_page, why, f"{why}, but should_page returned {page!r}")


@check(
    "04.5",
    "The alarm reaches the pager queue",
    hints=[
        "Wire the pager first: an SNS topic l04-ex-alerts, an SQS queue l04-ex-pager, and a subscription "
        "of the queue to the topic (cloudlab.pager.wire_pager does all three).",
        "Then cw.put_metric_alarm(AlarmName='l04-ex-error-ratio', Namespace='l04/orders', "
        "MetricName='ErrorRatio', Dimensions=[{'Name': 'Service', 'Value': 'orders'}], Statistic='Average', "
        "Period=10, EvaluationPeriods=1, Threshold=..., ComparisonOperator='GreaterThanThreshold', "
        "TreatMissingData='notBreaching', AlarmActions=[topic_arn]).",
        "The threshold is the page rule's burn rate times the error budget: 14.4 * (1 - 0.995) = 0.072.",
    ],
)
def check_pager(r, ns):
    cw, sns, sqs = aws.client("cloudwatch"), aws.client("sns"), aws.client("sqs")
    alarms = cw.describe_alarms(AlarmNames=["l04-ex-error-ratio"]).get("MetricAlarms", [])
    r.require(
        bool(alarms),
        "the alarm l04-ex-error-ratio exists",
        "there is no alarm called l04-ex-error-ratio in CloudWatch yet",
    )
    a = alarms[0]
    dims = {d["Name"]: d["Value"] for d in a.get("Dimensions", [])}
    r.expect(
        a.get("Namespace") == NAMESPACE and a.get("MetricName") == "ErrorRatio" and dims == DIMENSIONS,
        "it watches l04/orders ErrorRatio for Service=orders",
        f"it watches {a.get('Namespace')}/{a.get('MetricName')} {dims}; expected l04/orders ErrorRatio "
        "with the dimension Service=orders (a metric is name + namespace + all dimensions)",
    )
    r.expect(
        abs(a.get("Threshold", 0) - 0.072) < 1e-9 and a.get("ComparisonOperator") == "GreaterThanThreshold",
        "threshold 0.072 (burn 14.4 of a 99.5 % SLO), GreaterThanThreshold",
        f"threshold {a.get('Threshold')} {a.get('ComparisonOperator')}: use 14.4 * (1 - 0.995) and "
        "GreaterThanThreshold",
    )
    r.expect(
        a.get("Period") == 10 and a.get("EvaluationPeriods") == 1,
        "period 10 s, 1 evaluation period",
        f"period {a.get('Period')} s over {a.get('EvaluationPeriods')} periods; use 10 and 1",
    )
    r.expect(
        a.get("TreatMissingData") == "notBreaching",
        "no data is not an outage (notBreaching)",
        f"TreatMissingData is {a.get('TreatMissingData')!r}: with no traffic, use 'notBreaching'",
    )
    topics = [x for x in a.get("AlarmActions", []) if x.split(":")[-1] == "l04-ex-alerts"]
    r.require(
        bool(topics),
        "its alarm action is the topic l04-ex-alerts",
        f"its alarm actions are {a.get('AlarmActions')}; add the ARN of the topic l04-ex-alerts",
    )
    urls = sqs.list_queues(QueueNamePrefix="l04-ex-pager").get("QueueUrls", [])
    url = next((u for u in urls if u.rsplit("/", 1)[-1] == "l04-ex-pager"), None)
    r.require(url is not None, "the pager queue l04-ex-pager exists", "there is no SQS queue l04-ex-pager")
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subs = sns.list_subscriptions_by_topic(TopicArn=topics[0]).get("Subscriptions", [])
    r.require(
        any(s.get("Endpoint") == qarn and s.get("Protocol") == "sqs" for s in subs),
        "the pager queue is subscribed to the topic",
        "the queue l04-ex-pager is not subscribed to the topic l04-ex-alerts",
    )
    # A drill: force OK, then ALARM with a fresh reason (an alarm already in ALARM would send nothing).
    # The emulator's own evaluation can switch the state in between: then try again (bounded).
    pager.read_pages(sqs, url)  # drop old notifications: only this check's own count
    deadline, got, reasons = time.monotonic() + 3, None, set()
    while got is None and time.monotonic() < deadline:
        cw.set_alarm_state(AlarmName="l04-ex-error-ratio", StateValue="OK", StateReason="check 04.5: reset")
        reason = f"check 04.5 drill {uuid.uuid4().hex[:10]}"
        reasons.add(reason)
        cw.set_alarm_state(AlarmName="l04-ex-error-ratio", StateValue="ALARM", StateReason=reason)
        for _ in range(10):
            got = next((p for p in pager.read_pages(sqs, url) if p.get("NewStateReason") in reasons), None)
            if got is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    r.expect(
        got is not None,
        "a drill alarm really arrived in the pager queue",
        "the drill alarm did not arrive in l04-ex-pager within 3 s: check the subscription",
    )
