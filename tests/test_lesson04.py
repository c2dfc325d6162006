"""Unit tests of lesson 04's helpers (pure functions; the `lab` ones need a running emulator)."""

from __future__ import annotations

import io
import json
import math
import os
import urllib.request
from datetime import UTC

import pytest

from app import observed
from app.service import ConfigError
from cloudlab import observability as obs


# ------------------------------------------------------------------ logs
def line(ts="2026-01-02T03:04:05.678+00:00", **kw):
    return json.dumps({"ts": ts, "level": "INFO", "event": "request", **kw})


def test_parse_log_line_gives_epoch_ms():
    rec = obs.parse_log_line(line(request_id="r1"))
    assert rec["request_id"] == "r1"
    assert rec["_ts_ms"] == 1767323045678


@pytest.mark.parametrize(
    "bad, words",
    [
        ("Traceback (most recent call last):", "not JSON"),
        ('["a", "list"]', "not an object"),
        ('{"level": "INFO"}', "no 'ts'"),
        ('{"ts": "yesterday"}', "not an ISO-8601"),
        ('{"ts": "2026-01-02T03:04:05", "msg": "unterminated', "not JSON"),
    ],
)
def test_malformed_log_line_says_what_is_wrong(bad, words):
    with pytest.raises(obs.MalformedLogLine, match=words) as e:
        obs.parse_log_line(bad, lineno=7)
    assert "line 7" in str(e.value)


def test_to_log_events_sorts_and_skips_when_asked():
    lines = [line("2026-01-02T03:04:06+00:00", n=2), "oops", "", line("2026-01-02T03:04:05+00:00", n=1)]
    with pytest.raises(obs.MalformedLogLine):
        obs.to_log_events(lines)
    events, problems = obs.to_log_events(lines, skip_bad=True)
    assert [json.loads(e["message"])["n"] for e in events] == [1, 2]
    assert len(problems) == 1 and "line 2" in problems[0]


def test_batches_respect_count_bytes_and_24h():
    evs = [{"timestamp": i, "message": "x" * 10} for i in range(25)]
    assert [len(b) for b in obs.batches(evs, max_events=10)] == [10, 10, 5]
    assert [len(b) for b in obs.batches(evs, max_bytes=3 * (10 + obs.EVENT_OVERHEAD))] == [3] * 8 + [1]
    day = 24 * 3600 * 1000
    assert [len(b) for b in obs.batches([{"timestamp": 0, "message": "a"}, {"timestamp": day, "message": "b"}])] == [
        1,
        1,
    ]


class FakeLogs:
    """Enough of a CloudWatch Logs client to test shipping and querying without the emulator."""

    class exceptions:
        class ResourceAlreadyExistsException(Exception):
            pass

    def __init__(self, page=2):
        self.events, self.page, self.calls = [], page, []

    def create_log_group(self, **kw):
        pass

    def create_log_stream(self, **kw):
        pass

    def put_log_events(self, logGroupName, logStreamName, logEvents):
        stamps = [e["timestamp"] for e in logEvents]
        assert stamps == sorted(stamps), "CloudWatch rejects unsorted batches"
        self.calls.append(len(logEvents))
        self.events += [dict(e, logStreamName=logStreamName) for e in logEvents]
        return {}

    def filter_log_events(self, logGroupName, nextToken=None, **kw):  # ignores filterPattern, like the emulator
        start = int(nextToken or 0)
        rest = self.events[start : start + self.page]
        more = start + self.page < len(self.events)
        return {"events": rest, **({"nextToken": str(start + self.page)} if more else {})}


def test_ship_and_query_client_side_across_pages():
    fake = FakeLogs(page=2)
    lines = [line(f"2026-01-02T03:04:0{i}+00:00", request_id="a" if i % 2 else "b", i=i) for i in range(6)]
    out = obs.ship_logs(fake, "/l04/t", "s", lines + ["junk"], batch_size=4)
    assert out["sent"] == 6 and fake.calls == [4, 2] and len(out["skipped"]) == 1
    fake.events.append({"timestamp": 1, "message": "not json", "logStreamName": "s"})
    found = obs.query_logs(fake, "/l04/t", {"request_id": "a"})
    assert [r["i"] for r in found] == [1, 3, 5]
    assert obs.query_logs(fake, "/l04/t", lambda r: r.get("i") == 0)[0]["@stream"] == "s"
    with pytest.raises(TypeError):
        obs.query_logs(fake, "/l04/t", "request_id=a")


# --------------------------------------------------------------- metrics
EXPO = """# HELP orders_request_duration_seconds Time.
# TYPE orders_request_duration_seconds histogram
orders_request_duration_seconds_bucket{le="0.1",method="POST",route="/orders"} 50.0
orders_request_duration_seconds_bucket{le="0.25",method="POST",route="/orders"} 90.0
orders_request_duration_seconds_bucket{le="1.0",method="POST",route="/orders"} 100.0
orders_request_duration_seconds_bucket{le="+Inf",method="POST",route="/orders"} 100.0
orders_request_duration_seconds_count{method="POST",route="/orders"} 100.0
orders_request_duration_seconds_sum{method="POST",route="/orders"} 9.0
# TYPE orders_requests_total counter
orders_requests_total{method="POST",route="/orders",status="201"} 92.0
orders_requests_total{method="POST",route="/orders",status="500"} 8.0
"""


def test_parse_exposition_and_totals():
    s = obs.parse_exposition(EXPO)
    assert obs.sample_sum(s, "orders_requests_total") == 100
    assert obs.sample_sum(s, "orders_requests_total", status=obs.is_5xx) == 8
    assert obs.bucket_bounds(s, obs.LATENCY) == [0.1, 0.25, 1.0]
    assert obs.histogram(s, obs.LATENCY)[-1] == (math.inf, 100.0)


def test_histogram_with_no_data_points_is_a_clear_error():
    with pytest.raises(obs.NoDataPoints, match="no histogram"):
        obs.histogram(obs.parse_exposition(EXPO), "nope_seconds")
    with pytest.raises(obs.NoDataPoints, match="no observations"):
        obs.quantile_from_buckets([(0.1, 0.0), (math.inf, 0.0)], 0.5)


def test_quantile_interpolates_like_prometheus():
    b = [(0.1, 50.0), (0.25, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert obs.quantile_from_buckets(b, 0.5) == pytest.approx(0.1)
    assert obs.quantile_from_buckets(b, 0.7) == pytest.approx(0.175)
    assert obs.quantile_from_buckets([(0.1, 1.0), (math.inf, 10.0)], 0.99) == 0.1  # beyond the last bucket
    with pytest.raises(ValueError, match="\\+Inf"):
        obs.quantile_from_buckets([(0.1, 1.0)], 0.5)


def test_delta_buckets_detects_a_restart():
    assert obs.delta_buckets([(1.0, 2.0)], [(1.0, 5.0)]) == [(1.0, 3.0)]
    with pytest.raises(ValueError, match="restarted"):
        obs.delta_buckets([(1.0, 5.0)], [(1.0, 2.0)])


def test_cloudwatch_datums_skip_the_ratio_without_traffic():
    s = obs.parse_exposition(EXPO)
    names = [d["MetricName"] for d in obs.cloudwatch_datums(s, s)]
    assert names == ["Requests", "Errors"]
    empty = obs.parse_exposition(EXPO.replace("92.0", "0.0").replace(" 8.0", " 0.0"))
    d = {x["MetricName"]: x["Value"] for x in obs.cloudwatch_datums(empty, s, {"Service": "orders"})}
    assert d["Requests"] == 100 and d["ErrorRatio"] == pytest.approx(0.08)


def test_get_series_without_data_points_says_why():
    class CW:
        def get_metric_data(self, **kw):
            return {"MetricDataResults": [{"Id": "m", "Timestamps": [], "Values": []}]}

    from datetime import datetime

    now = datetime.now(UTC)
    with pytest.raises(obs.NoDataPoints, match="dimensions"):
        obs.get_series(CW(), "l04/orders", "ErrorRatio", now, now)


def test_summary():
    res = [{"t": i, "seconds": 0.01, "status": 500 if i == 0 else 201} for i in range(10)]
    assert obs.summarize(res)["error_ratio"] == 0.1
    with pytest.raises(obs.NoDataPoints):
        obs.summarize([])


# ------------------------------------------------------------------ SLOs
@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, 99.9, float("nan"), "0.99", True])
def test_slo_target_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        obs.SLO("availability", bad)


def test_slo_percent_gets_a_hint():
    with pytest.raises(ValueError, match="did you mean 0.995"):
        obs.SLO("availability", 99.5)


def test_error_budget_and_burn_rate():
    slo = obs.SLO("availability", 0.999)
    assert slo.error_budget == pytest.approx(0.001)
    assert slo.budget_minutes() == pytest.approx(43.2)
    assert obs.burn_rate(1, 100, 0.99) == pytest.approx(1.0)
    assert obs.burn_rate(0, 0, 0.99) == 0.0
    assert obs.budget_left(1, 200, 0.99) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        obs.burn_rate(1, 10, 1.0)


def test_each_slo_measures_one_thing():
    slo = obs.SLO("latency", 0.99, threshold_s=0.25)
    assert slo.is_good({"status": 201, "seconds": 0.25})
    assert not slo.is_good({"status": 201, "seconds": 0.3})
    assert slo.is_good({"status": 503, "seconds": 0.01})  # a fast failure is availability's business
    avail = obs.SLO("availability", 0.99)
    assert avail.is_good({"status": 404, "seconds": 9}) and not avail.is_good({"status": 503, "seconds": 0})


def test_workbook_rules_scale():
    page, page6, ticket = obs.workbook_rules(speedup=1)
    assert (page.long_s, page.short_s, page.burn) == (3600, 300, 14.4)
    assert (page6.long_s, page6.short_s, page6.burn) == (21600, 1800, 6.0)
    assert ticket.severity == "ticket" and ticket.long_s == 3 * 86400
    assert obs.workbook_rules(speedup=900)[0].long_s == 4
    assert "1 h" in page.describe()


def events(p_bad_at, seconds=40, per_s=20):
    import random

    rng = random.Random(1)
    return [(i / per_s, rng.random() >= p_bad_at(i / per_s)) for i in range(seconds * per_s)]


def test_multiwindow_rule_fires_only_when_both_windows_burn():
    rule = obs.Rule("page", 20, 2, 14.4)
    sustained = events(lambda t: 0.1)
    assert obs.rule_fires(sustained, 0.995, rule, 39.95)[0]
    assert not obs.rule_fires(events(lambda t: 0.001), 0.995, rule, 39.95)[0]
    blip = events(lambda t: 0.6 if 38 < t <= 39 else 0.0)
    assert not obs.rule_fires(blip, 0.995, rule, 39.95)[0]  # long window calm
    over = events(lambda t: 0.5 if t < 30 else 0.0)
    fires, long_b, short_b = obs.rule_fires(over, 0.995, rule, 39.95)
    assert not fires and long_b > 14.4 and short_b == 0  # short window calm: recovered
    tl = obs.burn_timeline(over, 0.995, rule, step=1)
    assert any(tl["firing"]) and not tl["firing"][-1]


def test_good_events_use_completion_time():
    slo = obs.SLO("availability", 0.99)
    ev = obs.good_events([{"t": 1.0, "seconds": 0.5, "status": 500}, {"t": 0.0, "seconds": 0.1, "status": 200}], slo)
    assert ev == [(0.1, True), (1.5, False)]


# ---------------------------------------------------------------- traces
def span(name, sid, parent, start, end, trace="t1", status="UNSET"):
    return {
        "name": name,
        "trace_id": trace,
        "span_id": sid,
        "parent_id": parent,
        "start_ns": start * 10**6,
        "end_ns": end * 10**6,
        "status": status,
        "kind": "SERVER" if parent is None else "CLIENT",
    }


SPANS = [
    span("SQS.SendMessage", "c", "a", 12, 200),
    span("POST /orders", "a", None, 0, 205),
    span("S3.PutObject", "b", "a", 1, 11),
    span("GET /health", "z", None, 0, 1, trace="t2"),
]


def test_span_tree_and_slow_span():
    t1 = obs.traces(SPANS)["t1"]
    assert [(d, s["name"]) for d, s in obs.span_tree(t1)] == [
        (0, "POST /orders"),
        (1, "S3.PutObject"),
        (1, "SQS.SendMessage"),
    ]
    assert obs.slow_span(t1)["name"] == "SQS.SendMessage"
    assert obs.slowest_traces(SPANS, 1)[0][0]["trace_id"] == "t1"
    assert obs.slowest_traces(SPANS, 5, name="GET /health")[0][0]["trace_id"] == "t2"


def test_read_spans_skips_a_half_written_line(tmp_path):
    p = tmp_path / "spans.jsonl"
    p.write_text(json.dumps(SPANS[0]) + "\n" + '{"name": "half')
    assert len(obs.read_spans(str(p), settle=0)) == 1


def test_plots_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    res = [{"t": i / 10, "seconds": 0.01 + i / 1000, "status": 201} for i in range(50)]
    b = [(0.025, 20.0), (0.1, 50.0), (math.inf, 50.0)]
    assert obs.plot_latency(res, b, slo_s=0.05).axes
    assert obs.plot_waterfall(obs.traces(SPANS)["t1"]).axes
    rule = obs.Rule("page", 2, 0.5, 14.4)
    assert obs.plot_burn(obs.burn_timeline(obs.good_events(res, obs.SLO("a", 0.99)), 0.99, rule), rule).axes
    series = {k: [1.0, 2.0] for k in ("t", "rps", "error_pct", "p50", "p95", "p99", "in_flight", "cpu_pct")}
    assert len(obs.plot_dashboard(series, 0.25, 0.5).axes) == 4


# --------------------------------------------------- the observed service
def test_parse_buckets():
    assert observed.parse_buckets(None) == observed.DEFAULT_BUCKETS
    assert observed.parse_buckets("0.1, 0.25,1") == (0.1, 0.25, 1.0)
    for bad in ("0.25,0.1", "a,b", "0,1", "inf"):
        with pytest.raises(ConfigError):
            observed.parse_buckets(bad)


def test_route_label_is_bounded():
    assert observed.route_label("/orders/abc123") == "/orders/{id}"
    assert observed.route_label("/orders?x=1") == "/orders"
    assert observed.route_label("/wp-admin.php") == "other"


def test_metrics_hook_feeds_the_registry():
    from prometheus_client import generate_latest

    registry, m = observed.make_metrics((0.1, 0.25))
    observed.metrics_hook(m)(method="POST", route="/orders", status=500, seconds=0.2, request_id="r")
    s = obs.parse_exposition(generate_latest(registry).decode())
    assert obs.sample_sum(s, "orders_requests_total", status="500") == 1
    assert obs.bucket_bounds(s, obs.LATENCY) == [0.1, 0.25]
    assert obs.histogram(s, obs.LATENCY) == [(0.1, 0.0), (0.25, 1.0), (math.inf, 1.0)]


def test_tracing_log_adds_trace_ids_and_spans_go_to_the_file(tmp_path):
    provider, tracer = observed.make_tracer(str(tmp_path / "s.jsonl"))
    out = io.StringIO()
    log = observed.TracingJsonLog(stream=out)

    class Client:
        def put_object(self, **kw):
            return "ok"

    traced = observed.TracedClient(Client(), "S3", tracer)
    with tracer.start_as_current_span("POST /orders"):
        log("request", request_id="r1")
        assert traced.put_object(Bucket="b") == "ok"
    log("outside")
    provider.shutdown()
    assert isinstance(observed._id_generator().generate_span_id(), int)
    first, second = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(first["trace_id"]) == 32 and "trace_id" not in second
    spans = obs.read_spans(str(tmp_path / "s.jsonl"), settle=0)
    assert {s["name"] for s in spans} == {"POST /orders", "S3.PutObject"}
    child = next(s for s in spans if s["name"] == "S3.PutObject")
    assert child["attributes"]["aws.s3.bucket"] == "b" and child["trace_id"] == first["trace_id"]


# --------------------------------------------------- against the emulator
def _emulator_up() -> bool:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        return False
    try:
        urllib.request.urlopen(url + "/_localstack/health", timeout=1)
        return True
    except OSError:
        return False


lab = pytest.mark.skipif(not _emulator_up(), reason="AWS_ENDPOINT_URL does not answer (start the lab)")


@pytest.mark.lab
@lab
def test_emulator_ignores_filter_patterns_and_client_side_query_works():
    import uuid

    import cloudlab

    logs = cloudlab.client("logs")
    group, rid = f"/l04-unit-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    try:
        from datetime import datetime

        now = datetime.now(UTC).isoformat()
        out = obs.ship_logs(logs, group, "s", [line(now, request_id=rid), line(now, request_id="other")])
        assert out["sent"] == 2 and not out["rejected"]
        assert [r["request_id"] for r in obs.query_logs(logs, group, {"request_id": rid})] == [rid]
        obs.server_filter_works(logs, group)  # answers either way; the lesson prints which
    finally:
        logs.delete_log_group(logGroupName=group)
