"""Lesson 04 (observability): unit tests of its helpers, and every check's wrong-answer suite.

Pure tests run anywhere. Tests that need promtool/amtool skip without them (CI has them: `make setup ALL=1`).
Tests marked ``lab`` need the running lab (`make test` starts one): they start lesson 04's stack (the
service under load, Prometheus, Alertmanager, the receiver) once, write each wrong answer where a learner
would, and assert that the check rejects it with a ``[missing]`` line and a hint, next to the proof that the
solution passes.
"""

from __future__ import annotations

import io
import json
import math
import os
from datetime import UTC

import pytest
from checktest import rejected_in_one_missing_line as rejected

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
    windows = {"5m": ([0, 1, 2], [0.0, 0.5, 0.3]), "1h": ([0, 1, 2], [0.0, 0.1, 0.1])}
    assert obs.plot_windows(windows, {"page": 0.072}, "t", {"incident": 1}).axes
    # a window longer than the history holds the same samples: both lines stay visible, the legend says so
    windows["6h"] = ([1, 2, 3], [0.1, 0.1, 0.2])
    ax = obs.plot_windows(windows).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert "6h (= 1h where they overlap)" in lines and "1h" in lines and "5m" in lines
    widths = [lines[k].get_linewidth() for k in ("5m", "1h", "6h (= 1h where they overlap)")]
    assert widths == sorted(widths, reverse=True) and lines["6h (= 1h where they overlap)"].get_linestyle() == "--"
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


# --------------------------------------------------- the observed service: counted before it answers
def _serve_observed(registry_metrics, **kw):
    """app.observed's handler in a thread, with a fake store: (base URL, server)."""
    import threading
    from http.server import ThreadingHTTPServer

    from app.service import Config, JsonLog, make_handler

    class Store:
        def save(self, order):
            return "k"

        def load(self, order_id):
            return None

    provider, tracer = observed.make_tracer(os.devnull)
    cfg = Config("b", "q", 0)
    handler = observed.observed_handler(
        make_handler(cfg, Store(), JsonLog(stream=io.StringIO())),
        tracer,
        registry_metrics["in_flight"],
        record=observed.metrics_hook(registry_metrics),
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def test_a_request_is_counted_before_its_answer_is_written():
    """The cause of the old flaky 04.3: the answer went out before the latency was recorded."""
    from prometheus_client import generate_latest

    from cloudlab import net

    registry, m = observed.make_metrics(observed.DEFAULT_BUCKETS)
    url, server = _serve_observed(m)
    try:
        for i in range(1, 101):
            assert net.request("GET", url + "/health").status == 200
            s = obs.parse_exposition(generate_latest(registry).decode())
            assert obs.sample_sum(s, f"{obs.LATENCY}_count", route="/health") == i  # at once, every time
            assert obs.sample_sum(s, "orders_requests_total", route="/health") == i
    finally:
        server.shutdown()


def test_inventory_hook_is_loaded_and_called(tmp_path, monkeypatch):
    hook = tmp_path / "hook.py"
    hook.write_text("def reserve(call, item, qty):\n    r = call(item, qty)\n    r['seen'] = True\n    return r\n")
    store = observed.InventoryStore.__new__(observed.InventoryStore)
    store.call, store.hook = observed.inventory_call(0), observed.load_hook(str(hook))
    saved = []
    monkeypatch.setattr(observed.OrderStore, "save", lambda self, order: saved.append(order) or "k")
    assert store.save({"item": "book", "qty": 2}) == "k"
    assert saved[0]["reservation"] and saved[0]["item"] == "book"


@pytest.mark.parametrize(
    "text, words",
    [
        ("def reserve(call, item, qty)\n    pass\n", "SyntaxError"),
        ("import no_such_module_here\n", "ModuleNotFoundError"),
        ("def other():\n    pass\n", "defines no function reserve"),
    ],
)
def test_a_broken_inventory_hook_is_a_config_error(tmp_path, text, words):
    hook = tmp_path / "hook.py"
    hook.write_text(text)
    with pytest.raises(ConfigError, match=words):
        observed.load_hook(str(hook))


def test_a_hook_that_returns_nothing_fails_the_order():
    store = observed.InventoryStore.__new__(observed.InventoryStore)
    store.call, store.hook = observed.inventory_call(0), lambda call, item, qty: None
    with pytest.raises(TypeError, match="reserve\\(\\) should return what call\\(\\) returns"):
        store.save({"item": "book", "qty": 1})


# --------------------------------------------------- lab time, configs, the receiver
from cloudlab.observability import prom, promtool  # noqa: E402
from cloudlab.observability import receiver as rcv  # noqa: E402


@pytest.mark.parametrize(
    "text, ms", [("5m", 300_000), ("1h30m", 5_400_000), ("500ms", 500), ("6h", 21_600_000), ("2d", 172_800_000)]
)
def test_durations(text, ms):
    assert prom.parse_duration(text) == ms
    assert prom.parse_duration(prom.format_duration(ms)) == ms


@pytest.mark.parametrize("bad", ["", "5", "5 m", "m5", "1.5h", "-5m", "5min"])
def test_not_a_duration(bad):
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        prom.parse_duration(bad)


def test_lab_time_divides_every_duration_by_60():
    assert [prom.lab_duration(d) for d in ("5m", "30m", "1h", "6h", "2m", "30s", "4h")] == [
        "5s",
        "30s",
        "1m",
        "6m",
        "2s",
        "500ms",
        "4m",
    ]
    expr = 'sum(rate(x{a="[5m]"}[5m])) / sum(rate(x[1h])) + max_over_time(y[1h:5m]) - z offset 30m'
    out = prom.compress_expr(expr)
    assert "rate(x[1m])" in out and "[1m:5s]" in out and "offset 30s" in out and "[5s]" in out
    rules = {"groups": [{"name": "g", "interval": "1m", "rules": [{"alert": "A", "expr": "r[6h] > 1", "for": "15m"}]}]}
    lab = prom.compress_rules(rules)
    assert lab["groups"][0]["rules"][0] == {"alert": "A", "expr": "r[6m] > 1", "for": "15s"}
    assert lab["groups"][0]["interval"] == "1s" and rules["groups"][0]["rules"][0]["for"] == "15m"  # a copy
    route = {"group_wait": "30s", "group_interval": "5m", "routes": [{"repeat_interval": "4h", "receiver": "p"}]}
    assert prom.compress_routes(route) == {
        "group_wait": "500ms",
        "group_interval": "5s",
        "routes": [{"repeat_interval": "4m", "receiver": "p"}],
    }


def test_servers_listen_on_loopback_only():
    args = prom.prometheus_args("prometheus", "c.yml", "d", 9090) + prom.alertmanager_args("am", "c.yml", "d", 9093)
    joined = " ".join(args)
    assert "--web.listen-address=127.0.0.1:9090" in args and "--web.listen-address=127.0.0.1:9093" in args
    assert "--cluster.listen-address=" in args and "0.0.0.0" not in joined
    cfg = prom.prometheus_config("/r/*.yml", "/t/*.json", "127.0.0.1:9093")
    assert cfg["global"]["scrape_interval"] == cfg["global"]["evaluation_interval"] == "1s"


def test_config_hash_is_alertmanagers():
    import hashlib
    import struct

    data = b"route:\n  receiver: x\n"
    want = float(struct.unpack("<Q", hashlib.md5(data).digest()[:6] + b"\0\0")[0])
    assert prom.config_hash(data) == want and prom.config_hash(b"other") != want


def test_receiver_records_each_notification(tmp_path, free_port):
    import threading
    from http.server import ThreadingHTTPServer

    from cloudlab import net

    path = tmp_path / "r.jsonl"
    server = ThreadingHTTPServer(("127.0.0.1", free_port), rcv.make_handler(path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{free_port}"
    try:
        note = {"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "A", "slo": "s"}}]}
        assert net.request("POST", url + "/pager", note).status == 200
        assert net.request("POST", url + "/pager", b"not json").status == 400
        assert "alertname=A" in net.request("GET", url + "/").body.decode()
    finally:
        server.shutdown()
    got = rcv.read(path)
    assert len(got) == 1 and got[0]["path"] == "/pager"
    assert rcv.delivered(got, slo="s") == [("/pager", "firing", {"alertname": "A", "slo": "s"})]
    assert rcv.delivered(got, slo="other") == [] and rcv.read(tmp_path / "nope") == []


# --------------------------------------------------- promtool output
FAILED = """Unit Testing:  t.yml
  FAILED:
    alertname: OrdersErrorBudgetFastBurn, time: 1h30m,\x20
        exp:[],\x20
        got:[]
    expr: "job:x:ratio_rate5m{a=\\"b\\"}", time: 6h50m,
        exp: nil
        got: {__name__="job:x:ratio_rate5m", route="/orders/{id}", job="orders"} 5.999999999999999E-02, \
{job="pay"} 5E-01
"""


def test_promtool_failures_and_samples_are_parsed():
    fails = promtool.parse_failures(FAILED)
    assert [(f["kind"], f["name"], f["minute"]) for f in fails] == [
        ("alertname", "OrdersErrorBudgetFastBurn", 90),
        ("expr", 'job:x:ratio_rate5m{a="b"}', 410),
    ]
    samples = promtool.parse_samples(fails[1]["detail"].split("got:", 1)[1])
    assert samples == [
        ({"__name__": "job:x:ratio_rate5m", "route": "/orders/{id}", "job": "orders"}, 0.05999999999999999),
        ({"job": "pay"}, 0.5),
    ]
    assert promtool.counter_values([2, 3, 0]) == "0 2 5 5" and promtool.go_minutes("2m30s") == 2.5


needs_promtool = pytest.mark.skipif(
    __import__("shutil").which("promtool") is None or __import__("shutil").which("amtool") is None,
    reason="promtool/amtool not installed (make setup ALL=1 installs them)",
)


@needs_promtool
def test_the_lessons_rules_give_exactly_the_scenarios_answers(tmp_path):
    """The check's expectations are the lesson's own rules' results: no check can disagree with the lesson."""
    from cloudlab.lesson04 import scenarios as sc
    from cloudlab.lesson04.stack import LESSON_DIR

    got, run = promtool.evaluate([LESSON_DIR / "slo-recording.yml"], sc.recording_groups(), tmp_path, "rec")
    for (window, t), want in sc.recording_expected().items():
        orders = [v for labels, v in got[(sc.RECORDS[window], float(t))] if labels.get("job") == "orders"]
        assert orders == [pytest.approx(want, abs=1e-9)], (window, t)
        payments = [v for labels, v in got[(sc.RECORDS[window], float(t))] if labels.get("job") == "payments"]
        assert payments == [pytest.approx(sc.PAYMENTS_RATIO, abs=1e-9)], (window, t)
    ratios = {round(v, 6) for v in sc.recording_expected().values()}
    assert len(ratios) == 8, "every window and time gives its own ratio, so a wrong window cannot pass"
    got, run = promtool.evaluate([LESSON_DIR / "slo-alerts.yml"], sc.alert_groups(), tmp_path, "alerts")
    for case in sc.alert_cases():
        for p in case.probes:
            sev = {labels["severity"] for labels, _ in got[(case.expr(), float(p.minute))]}
            assert ("page" in sev, "ticket" in sev) == (p.page, p.ticket), (case.name, p.minute - sc.H)
    assert promtool.test_rules(LESSON_DIR / "slo-alerts-test.yml").ok
    assert promtool.check_am_config(tmp_path / "none.yml").ok is False


@needs_promtool
@pytest.mark.parametrize("mutant", sorted(__import__("cloudlab.lesson04.scenarios", fromlist=["x"]).MUTANTS))
def test_each_mutant_really_is_wrong(tmp_path, mutant):
    """A broken page rule gives a different answer than the lesson's in at least one replayed story."""
    import yaml

    from cloudlab.lesson04 import checks_rules
    from cloudlab.lesson04 import scenarios as sc

    broken = checks_rules.mutant(
        yaml.safe_load(checks_rules.reference_rules()[1].read_text()), sc.MUTANTS[mutant], sc.MUTANT_HOLD.get(mutant)
    )
    (tmp_path / "m.yml").write_text(yaml.safe_dump(broken))
    got, _ = promtool.evaluate([tmp_path / "m.yml"], sc.alert_groups(), tmp_path, "m")
    wrong = [
        (c.name, p.minute)
        for c in sc.alert_cases()
        for p in c.probes
        if any(labels.get("severity") == "page" for labels, _ in got[(c.expr(), float(p.minute))]) != p.page
    ]
    assert wrong, f"the mutant {mutant!r} passes every story: the stories cannot tell it apart"


def test_route_settings_are_inherited_as_alertmanager_does():
    import yaml

    from cloudlab.lesson04.checks_alerting import route_settings, timing_problems

    route = yaml.safe_load(SOLUTION_ROUTES)["route"]
    assert timing_problems(route) == []
    assert [w for w, _ in route_settings(route)] == ["route", "route.routes[0]"]
    assert route_settings(route)[1][1]["repeat_interval"] == "4h"  # inherited from the parent route
    bare = {"receiver": "tickets", "routes": [{"receiver": "pager", "group_by": ["alertname", "slo"]}]}
    assert timing_problems(bare) == ["route has no group_by: all its alerts, of every SLO, share one notification"]
    child = dict(route, routes=[{"receiver": "pager", "repeat_interval": "5m", "group_wait": "0s"}])
    assert timing_problems(child) == [
        "route.routes[0] has group_wait: 0s, the task says 30s",
        "route.routes[0] has repeat_interval: 5m, the task says 4h",
    ]


def test_composite_rules_are_read_like_aws():
    from cloudlab.lesson04.checks_more import parse_rule

    arn = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:"
    assert parse_rule('ALARM("a") AND ALARM("b")') == ("AND", {"a", "b"})
    assert parse_rule(f'ALARM("{arn}a") AND ALARM({arn}b)') == ("AND", {"a", "b"})
    assert parse_rule("ALARM(a) OR ALARM(b)") == ("OR", {"a", "b"})
    assert parse_rule("ALARM(a) AND NOT ALARM(b)")[0] == "other"
    assert parse_rule("")[0] == "other"


def test_composite_verdict_is_the_and_of_the_children():
    from cloudlab.lesson04 import cloudwatch as cwa

    class CW:
        def __init__(self, rule, states):
            self.rule, self.states = rule, states

        def describe_alarms(self, AlarmNames, AlarmTypes=None):  # noqa: N803 (boto3's names)
            if AlarmTypes == ["CompositeAlarm"]:
                return {"CompositeAlarms": [{"AlarmRule": self.rule}]}
            return {"MetricAlarms": [{"AlarmName": n, "StateValue": self.states[n]} for n in AlarmNames]}

    rule = 'ALARM("arn:aws:cloudwatch:us-east-1:0:alarm:l") AND ALARM("s")'
    assert cwa.composite_verdict(CW(rule, {"l": "OK", "s": "ALARM"}), "c") == "OK"
    assert cwa.composite_verdict(CW(rule, {"l": "ALARM", "s": "ALARM"}), "c") == "ALARM"
    assert cwa.composite_verdict(CW(rule.replace("AND", "OR"), {"l": "OK", "s": "ALARM"}), "c") == "ALARM"
    with pytest.raises(ValueError):
        cwa.composite_verdict(CW('ALARM("s") AND __import__("os")', {"s": "OK"}), "c")


# --------------------------------------------------- against the emulator
@pytest.mark.lab
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


# ===================================================================================================
# The wrong-answer suite: every check of lesson 04 rejects plausible wrong answers with a hint, and
# passes the worked solution. Each answer is written where a learner's would be (the notebook's folder).
# ===================================================================================================

RATIO = "job:slo_errors_per_request:ratio_rate"
SOLUTION_RECORDING = "groups:\n  - name: orders-slo-recording\n    rules:\n" + "".join(
    f"      - record: {RATIO}{w}\n"
    f'        expr: sum by (job) (rate(orders_requests_total{{status=~"5.."}}[{w}]))'
    f" / sum by (job) (rate(orders_requests_total[{w}]))\n"
    for w in ("5m", "30m", "1h", "6h")
)
PAGE_EXPR = f"{RATIO}1h > (14.4 * 0.005) and {RATIO}5m > (14.4 * 0.005)"
TICKET_EXPR = f"{RATIO}6h > (6 * 0.005) and {RATIO}30m > (6 * 0.005)"
SOLUTION_ALERTS = f"""
groups:
  - name: orders-slo-alerts
    rules:
      - alert: OrdersErrorBudgetFastBurn
        expr: {PAGE_EXPR}
        for: 2m
        labels: {{severity: page, slo: orders-availability, service: orders}}
        annotations: {{summary: fast burn, runbook_url: lessons/04_observability/runbook.md}}
      - alert: OrdersErrorBudgetSlowBurn
        expr: {TICKET_EXPR}
        for: 5m
        labels: {{severity: ticket, slo: orders-availability, service: orders}}
        annotations: {{summary: slow burn, runbook_url: lessons/04_observability/runbook.md}}
"""
LABELS = "{severity: page, slo: orders-availability, service: orders, job: orders}"
NOTES = "{summary: fast burn, runbook_url: lessons/04_observability/runbook.md}"
T_INCIDENT = f"""
  - interval: 1m
    input_series:
      - {{series: 'orders_requests_total{{job="orders", status="201"}}', values: '0+100x360 36090+90x59'}}
      - {{series: 'orders_requests_total{{job="orders", status="500"}}', values: '0+0x360 10+10x59'}}
    alert_rule_test:
      - eval_time: 7h
        alertname: OrdersErrorBudgetFastBurn
        exp_alerts: [{{exp_labels: {LABELS}, exp_annotations: {NOTES}}}]
"""
T_BLIP = """
  - interval: 1m
    input_series:
      - {series: 'orders_requests_total{job="orders", status="201"}', values: '0+100x360 36000 36100+100x19'}
      - {series: 'orders_requests_total{job="orders", status="500"}', values: '0+0x360 100+0x20'}
    alert_rule_test:
      - {eval_time: 6h3m, alertname: OrdersErrorBudgetFastBurn, exp_alerts: []}
      - {eval_time: 6h5m, alertname: OrdersErrorBudgetFastBurn, exp_alerts: []}
"""
T_RECOVERY = f"""
  - interval: 1m
    input_series:
      - {{series: 'orders_requests_total{{job="orders", status="201"}}', values: '0+100x360 36080+80x59 40900+100x14'}}
      - {{series: 'orders_requests_total{{job="orders", status="500"}}', values: '0+0x360 20+20x59 1200+0x14'}}
    alert_rule_test:
      - eval_time: 7h
        alertname: OrdersErrorBudgetFastBurn
        exp_alerts: [{{exp_labels: {LABELS}, exp_annotations: {NOTES}}}]
      - {{eval_time: 7h12m, alertname: OrdersErrorBudgetFastBurn, exp_alerts: []}}
"""
T_LONG_LATE = f"""
  - interval: 1m
    input_series:
      - {{series: 'orders_requests_total{{job="orders", status="201"}}', values: '0+100x360 36090+90x119'}}
      - {{series: 'orders_requests_total{{job="orders", status="500"}}', values: '0+0x360 10+10x119'}}
    alert_rule_test:
      - eval_time: 8h
        alertname: OrdersErrorBudgetFastBurn
        exp_alerts: [{{exp_labels: {LABELS}, exp_annotations: {NOTES}}}]
"""
T_RESOLVED_ONLY = T_RECOVERY.split("    alert_rule_test:")[0] + (
    "    alert_rule_test:\n      - {eval_time: 7h12m, alertname: OrdersErrorBudgetFastBurn, exp_alerts: []}\n"
)
TESTS_HEAD = "rule_files: [l04_recording.yml, l04_alerts.yml]\nevaluation_interval: 1m\ntests:\n"
SOLUTION_TESTS = TESTS_HEAD + T_INCIDENT + T_BLIP + T_RECOVERY
SOLUTION_ROUTES = """
route:
  receiver: tickets
  group_by: [alertname, slo]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="page"']
      receiver: pager
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="ticket"']
    equal: [slo]
"""
HOOK_HEAD = """
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

tracer = trace.get_tracer("orders.inventory")
_first = {}


def reserve(call, item, qty):
"""
SOLUTION_HOOK = (
    HOOK_HEAD
    + """
    attrs = {"inventory.item": item, "inventory.quantity": qty}
    with tracer.start_as_current_span("inventory.reserve", kind=SpanKind.CLIENT, attributes=attrs):
        return call(item, qty)
"""
)


def passes(check, ns=None) -> None:
    check(ns or {})  # raises CheckFailed (with the reasons) if not


@pytest.fixture(scope="module")
def stack():
    """Lesson 04's stack in the test lab: the service under load, Prometheus, Alertmanager, the receiver."""
    import cloudlab
    from cloudlab import lesson04

    cloudlab.connect(quiet=True)
    cloudlab.reset_lesson("04", quiet=True)
    st = lesson04.start_stack(fault_rate=0.005, seed=6, quiet=True)
    yield st
    lesson04.stop_stack()


@pytest.fixture
def here(tmp_path, monkeypatch):
    """The notebook's folder, where %%writefile and lesson04.write_file put the learner's files."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------ 04.1 logs
def _ship(
    ts_ms=lambda ts: int(ts.timestamp() * 1000),
    batch=500,
    keep_bad=False,
    count=None,
    message=None,
    parse=None,
    group_of=None,
    fresh_group=False,
    strict_create=False,
    also=None,
):
    """A learner's ship_lines, with one thing done the way a learner might get it wrong."""
    from datetime import datetime

    def ship_lines(logs, group, stream, lines):
        group = group_of(group) if group_of else group
        events = []
        for ln in lines:
            try:
                rec = json.loads(ln)
            except ValueError:
                rec = None
            if not (isinstance(rec, dict) and "ts" in rec):
                if keep_bad:
                    events.append({"timestamp": events[-1]["timestamp"] if events else 0, "message": ln})
                continue
            ts = parse(rec["ts"]) if parse else datetime.fromisoformat(rec["ts"])
            events.append({"timestamp": ts_ms(ts), "message": message(rec) if message else ln})
        events.sort(key=lambda e: e["timestamp"])
        if fresh_group:  # "start clean": deletes every other stream of the group too
            try:
                logs.delete_log_group(logGroupName=group)
            except logs.exceptions.ResourceNotFoundException:
                pass
        for fn, kw in (
            (logs.create_log_group, {"logGroupName": group}),
            (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            try:
                fn(**kw)
            except logs.exceptions.ResourceAlreadyExistsException:
                if strict_create:
                    raise
        for i in range(0, len(events), batch):
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i : i + batch])
        if also:
            also(logs, group, stream, events)
        return count(lines, events) if count else len(events)

    return ship_lines


@pytest.mark.lab
@pytest.mark.parametrize(
    "wrong, words",
    [
        (dict(ts_ms=lambda ts: int(ts.timestamp())), "epoch SECONDS"),  # seconds, not milliseconds
        (dict(batch=1000), "at most 500"),
        (dict(keep_bad=True), "not a JSON object was sent"),
        (dict(count=lambda lines, events: len(lines)), "ship_lines returned"),
        (dict(message=lambda rec: rec["event"]), "request_id"),  # only the event name as the message
        # hard-coded: the notebook's group, whatever group it is given
        (dict(group_of=lambda g: "/l04-exercise"), "the group '/l04-exercise-check-"),
        # doing more widely: "start clean" deletes the whole group, another service's stream with it
        (dict(fresh_group=True), "another service's stream in the group was deleted"),
        # doing more: a copy of every event in a stream of its own
        (dict(also=lambda logs, g, s, ev: _copy_stream(logs, g, ev)), "also wrote to the stream(s) ['all-events']"),
        # the precise property: the line's own UTC offset cut off (read as UTC)
        (dict(parse=lambda ts: __import__("datetime").datetime.fromisoformat(ts[:23]).replace(tzinfo=UTC)), "-5 h"),
        # lifecycle: a second run into a group that exists now crashes
        (dict(strict_create=True), "raised ResourceAlreadyExistsException"),
    ],
    ids=[
        "seconds",
        "batches-of-1000",
        "non-json-sent",
        "counts-all-lines",
        "message-without-fields",
        "hard-coded-group",
        "deletes-the-group",
        "extra-stream",
        "offset-cut-off",
        "not-idempotent",
    ],
)
def test_04_1_rejects(stack, wrong, words):
    from cloudlab import lesson04

    rejected(lesson04.check_ship_lines, {"ship_lines": _ship(**wrong)}, words)


def _copy_stream(logs, group, events):
    try:
        logs.create_log_stream(logGroupName=group, logStreamName="all-events")
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=group, logStreamName="all-events", logEvents=events[:500])


@pytest.mark.lab
def test_04_1_rejects_a_copy_on_the_local_disk(stack, here):
    from cloudlab import lesson04

    def to_disk(logs, group, stream, events):
        (here / "shipped.jsonl").write_text("".join(e["message"] + "\n" for e in events))

    rejected(lesson04.check_ship_lines, {"ship_lines": _ship(also=to_disk)}, "shipped.jsonl")


@pytest.mark.lab
def test_04_1_solution_passes(stack, here):
    from cloudlab import lesson04

    passes(lesson04.check_ship_lines, {"ship_lines": _ship()})
    import cloudlab

    groups = cloudlab.client("logs").describe_log_groups(logGroupNamePrefix="/l04-exercise-check-")["logGroups"]
    assert not groups, "the check deletes the group it made"


# ------------------------------------------------------------------ 04.2 buckets
GOOD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@pytest.mark.lab
@pytest.mark.parametrize(
    "buckets, restart, words",
    [
        ((0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5), True, "0.25 s is not a bucket boundary"),
        ((0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), False, "your BUCKETS are"),  # never restarted the service
        ((0.1, 0.25, 2.5), True, "only 3 finite buckets"),
        ((5, 10, 25, 50, 100, 250, 500, 1000, 2500), True, "0.25 s is not a bucket boundary"),  # milliseconds
        (("fast", "slow"), False, "should hold numbers"),
        ((0.25, 0.5, 1.0, 1.5, 2.0, 2.5), True, "only 0 bound(s) below 0.25 s"),  # nothing below the threshold
        (tuple(round(0.01 * k, 2) for k in range(1, 26)) + (0.5, 1.0, 2.5), True, "28 finite buckets"),  # too many
    ],
    ids=["no-slo-bound", "not-restarted", "too-few", "milliseconds", "not-numbers", "none-below-slo", "too-many"],
)
def test_04_2_rejects(stack, buckets, restart, words):
    from cloudlab import lesson04

    if restart:
        lesson04.restart_service(buckets=buckets)
    rejected(lesson04.check_buckets, {"BUCKETS": buckets}, words)


@pytest.mark.lab
def test_04_2_solution_passes(stack):
    from cloudlab import lesson04

    lesson04.restart_service(buckets=GOOD_BUCKETS)
    passes(lesson04.check_buckets, {"BUCKETS": GOOD_BUCKETS})


# ------------------------------------------------------------------ 04.3 recording rules
def _recording(**change) -> str:
    text = SOLUTION_RECORDING
    for old, new in change.values():
        text = text.replace(old, new)
    return text


@needs_promtool
@pytest.mark.lab
@pytest.mark.parametrize(
    "text, words",
    [
        (
            _recording(
                w=(
                    "[30m])) / sum by (job) (rate(orders_requests_total[30m]",
                    "[1h])) / sum by (job) (rate(orders_requests_total[1h]",
                )
            ),
            "that is the 1h ratio",
        ),
        (_recording(w=('status=~"5.."', 'status!~"5.."')), "success ratio"),
        (_recording(w=('status=~"5.."', 'status=~"[45].."')), "counts the 404s"),
        (_recording(w=("sum by (job) (", "sum(")), "aggregate with sum by (job)"),
        (_recording(w=("rate(", "irate(")), "last minute only"),
        (_recording(a=("[5m]", "[5s]"), b=("[30m]", "[30s]"), c=("[1h]", "[1m]"), d=("[6h]", "[6m]")), "lab time"),
        (
            _recording(
                w=(
                    "sum by (job) (rate(orders_requests_total[5m]))",
                    "sum by (job, status) (rate(orders_requests_total[5m]))",
                )
            ),
            "ratio_rate5m",
        ),
        (
            _recording(w=("ratio_rate6h\n", "ratio_rate_6h\n")),
            "no rule records job:slo_errors_per_request:ratio_rate6h",
        ),
        (_recording(w=("[5m]))\n", "[5m])\n")), "refuses it"),  # unbalanced parenthesis: a syntax error
        (_recording(w=('status=~"5.."', 'status="500"')), "counts only the 500s"),  # one 5xx status only
        (
            _recording(w=("rate(orders_requests_total[", 'rate(orders_requests_total{job="orders"}[')).replace(
                'status=~"5.."', 'job="orders", status=~"5.."'
            ),
            "the second job in the traffic (payments",
        ),  # hard-coded: the job of today's notebook instead of per job
    ],
    ids=[
        "window-swapped",
        "success-ratio",
        "404s-count",
        "no-by-job",
        "irate",
        "lab-seconds",
        "status-kept",
        "name-typo",
        "syntax-error",
        "only-500",
        "orders-job-only",
    ],
)
def test_04_3_rejects(stack, here, text, words):
    from cloudlab import lesson04

    (here / "l04_recording.yml").write_text(text)
    rejected(lesson04.check_recording_rules, {}, words)


@needs_promtool
@pytest.mark.lab
def test_04_3_rejects_rules_never_loaded_and_passes_the_solution(stack, here):
    from cloudlab import lesson04

    lesson04.unload_rules("l04_recording")
    lesson04.write_file("l04_recording.yml", SOLUTION_RECORDING)
    rejected(lesson04.check_recording_rules, {}, "has not loaded")
    lesson04.load_rules("l04_recording.yml", quiet=True)
    passes(lesson04.check_recording_rules)
    # edited (still right) after loading: the live Prometheus runs the old version
    lesson04.write_file("l04_recording.yml", SOLUTION_RECORDING.replace("[6h]))\n", "[6h])) * 1\n"))
    rejected(lesson04.check_recording_rules, {}, "changed after you loaded it")


# ------------------------------------------------------------------ 04.4 alerting rules
def _alerts(**change) -> str:
    text = SOLUTION_ALERTS
    for old, new in change.values():
        text = text.replace(old, new)
    return text


@needs_promtool
@pytest.mark.lab
@pytest.mark.parametrize(
    "text, words",
    [
        (_alerts(w=(PAGE_EXPR, "job:slo_errors_per_request:ratio_rate1h > (14.4 * 0.005)")), "after recovery"),
        (_alerts(w=(PAGE_EXPR, "job:slo_errors_per_request:ratio_rate5m > (14.4 * 0.005)")), "blip"),
        (_alerts(w=("(14.4 * 0.005)", "14.4")), "10 % incident both page windows"),
        (_alerts(w=("(14.4 * 0.005)", "0.144")), "10 % incident both page windows"),
        (_alerts(w=("(14.4 * 0.005)", "(6 * 0.005)")), "30 min into a 10 % incident"),
        (
            _alerts(w=(TICKET_EXPR, TICKET_EXPR.replace("rate6h", "rate1h").replace("rate30m", "rate5m"))),
            "the ticket fires there",
        ),
        (_alerts(w=("        for: 2m\n", "")), "has `for: (none)`"),
        (_alerts(w=("        for: 2m\n", "        for: 10m\n")), "the task says for: 2m"),  # pages in time, late
        (_alerts(w=("1h > (14.4 * 0.005)", "1h >= (14.4 * 0.005)")), "FASTER than"),  # >= where > was asked
        (_alerts(w=("severity: page", "severity: critical")), "it needs severity: page"),
        (
            _alerts(w=("{summary: fast burn, runbook_url: lessons/04_observability/runbook.md}", "{summary: fast}")),
            "runbook_url",
        ),
        (_alerts(w=("alert: OrdersErrorBudgetSlowBurn", "alert: OrdersSlowBurn")), "no alerting rule named"),
    ],
    ids=[
        "long-window-only",
        "short-window-only",
        "no-budget-factor",
        "percent-as-ratio",
        "ticket-factor-pages",
        "ticket-with-page-windows",
        "no-for",
        "for-too-long",
        "greater-or-equal",
        "wrong-severity",
        "no-runbook",
        "wrong-name",
    ],
)
def test_04_4_rejects(stack, here, text, words):
    from cloudlab import lesson04

    (here / "l04_alerts.yml").write_text(text)
    rejected(lesson04.check_alert_rules, {}, words)


@needs_promtool
@pytest.mark.lab
def test_04_4_solution_passes(stack, here):
    from cloudlab import lesson04

    lesson04.load_rules(lesson04.write_file("l04_alerts.yml", SOLUTION_ALERTS), quiet=True)
    passes(lesson04.check_alert_rules)


# ------------------------------------------------------------------ 04.5 the learner's promtool tests
@needs_promtool
@pytest.mark.parametrize(
    "tests, words",
    [
        (TESTS_HEAD + T_INCIDENT, "short window only"),  # one story only: a blip-paging rule passes
        (TESTS_HEAD + T_BLIP, "no error-budget factor"),  # only "nothing fires": a rule that never fires passes
        (TESTS_HEAD + T_INCIDENT + T_BLIP, "long window only"),  # no recovery: a rule that never stops passes
        (TESTS_HEAD + T_INCIDENT.replace(", job: orders}", "}") + T_BLIP + T_RECOVERY, "FAIL on the lesson's correct"),
        (TESTS_HEAD + T_INCIDENT.replace("eval_time: 7h", "eval_time: 6h20m") + T_BLIP + T_RECOVERY, "FAIL on the"),
        ("rule_files: [l04_alerts.yml]\n", "has no `tests:`"),
        # time: the page is only looked at two hours into an incident, so a page that waits an hour passes
        (TESTS_HEAD + T_LONG_LATE + T_BLIP + T_RESOLVED_ONLY, "comes an hour late"),
    ],
    ids=[
        "incident-only",
        "blip-only",
        "no-recovery",
        "labels-without-job",
        "fires-too-early",
        "no-tests",
        "looks-too-late",
    ],
)
def test_04_5_rejects(here, tests, words):
    from cloudlab import lesson04

    (here / "l04_alerts.yml").write_text(SOLUTION_ALERTS)
    (here / "l04_alerts_test.yml").write_text(tests)
    rejected(lesson04.check_alert_tests, {}, words)


@needs_promtool
def test_04_5_solution_passes(here):
    from cloudlab import lesson04

    (here / "l04_recording.yml").write_text(SOLUTION_RECORDING)
    (here / "l04_alerts.yml").write_text(SOLUTION_ALERTS)
    assert promtool.test_rules(lesson04.write_file("l04_alerts_test.yml", SOLUTION_TESTS)).ok  # on their own rules
    passes(lesson04.check_alert_tests)


# ------------------------------------------------------------------ 04.6 routing, grouping, inhibition
def _routes(**change) -> str:
    text = SOLUTION_ROUTES
    for old, new in change.values():
        text = text.replace(old, new)
    return text


@needs_promtool
@pytest.mark.lab
@pytest.mark.parametrize(
    "text, words",
    [
        (
            _routes(
                w=('severity="page"\']\n      receiver: pager', 'severity=~"page|ticket"\']\n      receiver: pager')
            ),
            "a ticket",
        ),
        (_routes(w=("  receiver: tickets\n  group_by", "  receiver: pager\n  group_by")), "no known severity"),
        (_routes(w=("equal: [slo]", "equal: [severity]")), "is NOT inhibited"),
        (_routes(w=("    equal: [slo]\n", "")), "does NOT page is inhibited too"),
        (_routes(w=("equal: [slo]", "equal: [alertname]")), "is NOT inhibited"),
        (
            _routes(a=("source_matchers", "X"), b=("target_matchers", "source_matchers"), c=("X", "target_matchers")),
            "a page is inhibited",
        ),
        (_routes(w=("group_by: [alertname, slo]", "group_by: [alertname]")), "same notification"),
        (_routes(w=("group_by: [alertname, slo]", "group_by: ['...']")), "arrived as 2 notifications"),
        (_routes(w=("repeat_interval: 4h", "repeat_interval: 4m")), "repeat_interval: 4m, the task says 4h"),
        (
            _routes(w=("      receiver: pager\n", "      receiver: pager\n      group_interval: 30m\n")),
            "route.routes[0] has group_interval: 30m",
        ),
    ],
    ids=[
        "pages-tickets",
        "default-pages",
        "equal-severity",
        "no-equal",
        "equal-alertname",
        "swapped",
        "group-by-alertname",
        "no-grouping",
        "repeats-every-4-minutes",
        "child-route-timing",
    ],
)
def test_04_6_rejects(stack, here, text, words):
    from cloudlab import lesson04

    lesson04.apply_routes(lesson04.write_file("l04_alertmanager.yml", text), quiet=True)
    rejected(lesson04.check_routes, {}, words)


@needs_promtool
@pytest.mark.lab
def test_04_6_solution_passes_and_must_be_applied(stack, here):
    from cloudlab import lesson04

    lesson04.apply_routes(lesson04.write_file("l04_alertmanager.yml", SOLUTION_ROUTES), quiet=True)
    passes(lesson04.check_routes)
    lesson04.write_file("l04_alertmanager.yml", SOLUTION_ROUTES.replace("group_wait: 30s", "group_wait: 10s"))
    rejected(lesson04.check_routes, {}, "does not run your current")
    lesson04.write_file("l04_alertmanager.yml", SOLUTION_ROUTES + "receivers: [{name: pager}]\n")
    rejected(lesson04.check_routes, {}, "should hold only")


# ------------------------------------------------------------------ 04.7 a silence
def _silencer(
    start=lambda: None, length=lambda m: None, matchers=None, answer=lambda a: a["silenceID"], why=None, first=None
):
    from datetime import UTC, datetime, timedelta

    from cloudlab import net

    def silence_service(am_url, service, minutes, comment):
        if first:
            first(am_url)
        comment = why or comment
        t0 = start() or datetime.now(UTC)
        body = {
            "matchers": matchers(service)
            if matchers
            else [{"name": "service", "value": service, "isRegex": False, "isEqual": True}],
            "startsAt": t0.isoformat(),
            "endsAt": (t0 + (length(minutes) or timedelta(minutes=minutes))).isoformat(),
            "createdBy": "me",
            "comment": comment,
        }
        got = net.request("POST", f"{am_url}/api/v2/silences", body)
        if got.status != 200:
            raise RuntimeError(f"{got.status} {got.body[:120]!r}")
        return answer(got.json())

    return silence_service


def _expire_all(am_url):
    from cloudlab.observability import prom

    am = prom.Alertmanager(am_url)
    for x in am.silences():
        if x["status"]["state"] == "active":
            am.expire(x["id"])


@pytest.mark.lab
@pytest.mark.parametrize(
    "wrong, words",
    [
        (dict(start=lambda: __import__("datetime").datetime.now()), "raised RuntimeError"),  # local time, no zone
        (dict(length=lambda m: __import__("datetime").timedelta(seconds=m)), "lasts 0.5 minutes"),
        (
            dict(matchers=lambda s: [{"name": "service", "value": "check-.*", "isRegex": True, "isEqual": True}]),
            "ANOTHER service",
        ),
        (
            dict(matchers=lambda s: [{"name": "severity", "value": "page", "isRegex": False, "isEqual": True}]),
            "ANOTHER service",
        ),
        (dict(answer=lambda a: a), "return the silenceID"),
        (
            dict(
                start=lambda: (
                    __import__("datetime").datetime.now(__import__("datetime").UTC)
                    + __import__("datetime").timedelta(hours=1)
                )
            ),
            "starts in the future",
        ),
        # hard-coded: today's 30 minutes and today's reason, whatever it is given
        (dict(length=lambda m: __import__("datetime").timedelta(minutes=30)), "use the `minutes` argument"),
        (dict(why="restarting the orders database"), "the comment is the one given"),
        # doing more widely: "a clean slate" expires every active silence first
        (dict(first=_expire_all), "another team's active silence was expired"),
    ],
    ids=[
        "naive-local-time",
        "seconds",
        "regex-everything",
        "all-pages",
        "returns-dict",
        "starts-later",
        "always-30-minutes",
        "always-the-same-reason",
        "expires-the-others",
    ],
)
def test_04_7_rejects(stack, wrong, words):
    from cloudlab import lesson04

    rejected(lesson04.check_silence, {"silence_service": _silencer(**wrong)}, words)


@pytest.mark.lab
def test_04_7_solution_passes(stack):
    from cloudlab import lesson04

    passes(lesson04.check_silence, {"silence_service": _silencer()})


# ------------------------------------------------------------------ 04.8 a span
WRONG_HOOKS = {
    "new-root": (
        """
    with tracer.start_as_current_span("inventory.reserve", context=Context(), kind=SpanKind.CLIENT,
                                      attributes={"inventory.item": item, "inventory.quantity": qty}):
        return call(item, qty)
""",
        "another trace",
    ),
    "ends-before-the-call": (
        """
    with tracer.start_as_current_span("inventory.reserve", kind=SpanKind.CLIENT,
                                      attributes={"inventory.item": item, "inventory.quantity": qty}):
        pass
    return call(item, qty)
""",
        "must run INSIDE the span",
    ),
    "hard-coded-attributes": (
        """
    with tracer.start_as_current_span("inventory.reserve", kind=SpanKind.CLIENT,
                                      attributes={"inventory.item": "book", "inventory.quantity": 1}):
        return call(item, qty)
""",
        "inventory.item is 'book'",
    ),
    "own-provider": (
        """
    mine = TracerProvider().get_tracer("mine")
    with mine.start_as_current_span("inventory.reserve", kind=SpanKind.CLIENT,
                                    attributes={"inventory.item": item, "inventory.quantity": qty}):
        return call(item, qty)
""",
        "no span named inventory.reserve",
    ),
    "internal-kind": (  # the precise property: a call to another service is a CLIENT span, not the default INTERNAL
        """
    with tracer.start_as_current_span("inventory.reserve",
                                      attributes={"inventory.item": item, "inventory.quantity": qty}):
        return call(item, qty)
""",
        "its kind is INTERNAL",
    ),
    "reserves-twice": (  # doing more: the result is read once for the span and once to return it
        """
    with tracer.start_as_current_span("inventory.reserve", kind=SpanKind.CLIENT,
                                      attributes={"inventory.item": item, "inventory.quantity": qty}) as span:
        span.set_attribute("inventory.reservation", call(item, qty)["id"])
    return call(item, qty)
""",
        "the inventory was called 4 times",
    ),
    "first-order-cached": (  # module-level state: the attributes of the first order, kept for every later one
        """
    _first.setdefault("attrs", {"inventory.item": item, "inventory.quantity": qty})
    with tracer.start_as_current_span("inventory.reserve", kind=SpanKind.CLIENT, attributes=_first["attrs"]):
        return call(item, qty)
""",
        "(second order)",
    ),
}  # a reserve() that returns nothing: test_a_hook_that_returns_nothing_fails_the_order


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(WRONG_HOOKS))
def test_04_8_rejects(stack, here, name):
    from cloudlab import lesson04

    body, words = WRONG_HOOKS[name]
    (here / "l04_inventory.py").write_text(HOOK_HEAD + body)
    rejected(lesson04.check_span, {}, words)
    assert lesson04.find_service().inventory_hook in (None, ""), "a failing hook is unloaded again"


@pytest.mark.lab
def test_04_8_solution_passes(stack, here):
    from cloudlab import lesson04

    (here / "l04_inventory.py").write_text(SOLUTION_HOOK)
    passes(lesson04.check_span)


# ------------------------------------------------------------------ 04.9 two alarms and a composite
def _aws_page(
    rule="AND",
    child_actions=False,
    threshold=14.4 * 0.005,
    periods=(3600, 300),
    dims=None,
    policy=True,
    enabled=True,
    child_ok=False,
    operator="GreaterThanThreshold",
):
    import cloudlab
    from cloudlab.pager import wire_pager

    cw, sns, sqs = cloudlab.client("cloudwatch"), cloudlab.client("sns"), cloudlab.client("sqs")
    cw.delete_alarms(AlarmNames=["l04-ex-burn-page"])
    cw.delete_alarms(AlarmNames=["l04-ex-burn-1h", "l04-ex-burn-5m"])
    if policy:
        topic = wire_pager(sns, sqs, "l04-ex-alerts", "l04-ex-pager")["topic_arn"]
    else:  # subscribed by hand, without the queue policy
        for url in sqs.list_queues(QueueNamePrefix="l04-ex-pager").get("QueueUrls", []):
            sqs.delete_queue(QueueUrl=url)
        topic = sns.create_topic(Name="l04-ex-alerts")["TopicArn"]
        url = sqs.create_queue(QueueName="l04-ex-pager")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    for name, period in zip(("l04-ex-burn-1h", "l04-ex-burn-5m"), periods, strict=True):
        cw.put_metric_alarm(
            AlarmName=name,
            Namespace="l04/orders",
            MetricName="ErrorRatio",
            Dimensions=[{"Name": "Service", "Value": v} for v in [dims or "orders"]],
            Statistic="Average",
            Period=period,
            EvaluationPeriods=1,
            Threshold=threshold,
            ComparisonOperator=operator,
            TreatMissingData="notBreaching",
            AlarmActions=[topic] if child_actions else [],
            OKActions=[topic] if child_ok else [],
        )
    cw.put_composite_alarm(
        AlarmName="l04-ex-burn-page",
        AlarmRule=f'ALARM("l04-ex-burn-1h") {rule} ALARM("l04-ex-burn-5m")',
        AlarmActions=[topic],
        ActionsEnabled=enabled,
    )


@pytest.mark.lab
@pytest.mark.parametrize(
    "wrong, words",
    [
        (dict(rule="OR"), "with OR, a one-minute blip pages"),
        (dict(child_actions=True), "one window alone pages"),
        (dict(threshold=14.4), "the page threshold is"),
        (dict(periods=(300, 300)), "Period=300"),
        (dict(dims="order"), "watches a metric nothing publishes"),
        (dict(policy=False), "no policy allowing"),
        (dict(enabled=False), "ActionsEnabled=False"),  # the composite alarms and tells nobody
        (dict(child_ok=True), "(OKActions) notify the pager topic"),  # a window alone pages when it recovers
        (dict(operator="GreaterThanOrEqualToThreshold"), "GreaterThanOrEqualToThreshold"),  # >= where > was asked
        (dict(periods=(60, 5 * 60)), "Period=60 s"),  # the hour written in minutes
    ],
    ids=[
        "or",
        "children-page",
        "no-budget-factor",
        "same-window",
        "wrong-dimension",
        "no-queue-policy",
        "actions-disabled",
        "child-ok-pages",
        "greater-or-equal",
        "hour-in-minutes",
    ],
)
def test_04_9_rejects(stack, wrong, words):
    from cloudlab import lesson04

    _aws_page(**wrong)
    rejected(lesson04.check_composite, {}, words)


@pytest.mark.lab
def test_04_9_solution_passes(stack):
    from cloudlab import lesson04

    _aws_page()
    passes(lesson04.check_composite)


# ------------------------------------------------------------------ the Docker path
def test_docker_configs_are_what_the_lab_writes():
    """The compose services start with the committed files; they must be what the lab itself would write."""
    import yaml

    from cloudlab.lab import PORTS
    from cloudlab.lesson04 import stack as stk

    for name, data in stk.docker_configs().items():
        assert yaml.safe_load((stk.LESSON_DIR / "docker" / name).read_text()) == data, name
    assert (PORTS["prometheus"], PORTS["alertmanager"], PORTS["pager"]) == (9090, 9093, 9097)


@needs_promtool
def test_the_routing_file_the_lesson_shows_is_a_complete_config_with_the_labs_receivers():
    """lessons/04_observability/alertmanager.yml passes amtool on its own; its receivers are the lab's (by name,
    at the default lab's port), which the lab replaces with its own addresses."""
    from pathlib import Path

    import yaml

    from cloudlab.lab import PORTS
    from cloudlab.lesson04 import stack as stk

    path = stk.LESSON_DIR / "alertmanager.yml"
    assert promtool.check_am_config(path).ok
    receivers = yaml.safe_load(path.read_text())["receivers"]
    st = stk.Stack(Path("/nowhere"), None, None, f"http://127.0.0.1:{PORTS['pager']}", False)
    lab = stk.lab_receivers(st, "arn:aws:sns:us-east-1:000000000000:t", "http://x")
    assert [r["name"] for r in receivers] == [r["name"] for r in lab]
    for r in receivers:
        assert r["webhook_configs"][0]["url"] == f"http://127.0.0.1:{PORTS['pager']}/{r['name']}"


def test_compose_runs_the_same_versions_as_debian_on_loopback():
    import yaml

    from cloudlab.authoring.static_checks.common import ROOT

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert compose["prometheus"]["image"] == "prom/prometheus:v2.42.0"
    assert compose["alertmanager"]["image"] == "prom/alertmanager:v0.25.0"
    for name in ("prometheus", "alertmanager"):
        svc = compose[name]
        assert svc["network_mode"] == "service:jupyter" and "ports" not in svc
        assert svc["depends_on"]["jupyter"]["condition"] == "service_healthy"
        assert "127.0.0.1:" in " ".join(svc["command"]) and "0.0.0.0" not in " ".join(svc["command"])
    assert "--cluster.listen-address=" in compose["alertmanager"]["command"][0]
    env = compose["jupyter"]["environment"]
    assert env["CLOUDLAB_PROMETHEUS_URL"].endswith(":9090") and env["CLOUDLAB_ALERTMANAGER_URL"].endswith(":9093")


# ------------------------------------------------------------------ bad input
def test_a_taken_port_is_a_clear_error(monkeypatch, tmp_path):
    import socket

    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(prom.StackError, match=f"port {port} .* already taken") as e:
            prom.start_server("l04-test-server", ["true"], f"http://127.0.0.1:{port}", "Prometheus")
    assert "CLOUDLAB_PROMETHEUS_PORT" in str(e.value) and "systemctl" in str(e.value)
    assert e.value._render_traceback_()[0].startswith("\x1b[31mStackError")


def test_a_server_that_does_not_answer_is_a_clear_error():
    with pytest.raises(prom.StackDown, match="does not answer .* setup cell"):
        prom.Prometheus("http://127.0.0.1:9").alerts()
    assert prom.Alertmanager("http://127.0.0.1:9").ready() is False


@needs_promtool
def test_a_rule_file_with_a_syntax_error_is_never_loaded(tmp_path, monkeypatch):
    from cloudlab import lesson04 as stk

    monkeypatch.chdir(tmp_path)
    bad = stk.write_file(
        "l04_bad.yml", "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: rate(y[5m]\n"
    )
    with pytest.raises(stk.RuleFileError, match="refused l04_bad.yml, so Prometheus was not reloaded"):
        stk.load_rules(bad, quiet=True)
    with pytest.raises(stk.RuleFileError, match="does not exist next to this notebook"):
        stk.read_yaml(tmp_path / "nope.yml")
    with pytest.raises(stk.RuleFileError, match="nothing to write"):
        stk.write_file("l04_empty.yml", "  ")
    (tmp_path / "routes.yml").write_text("route: {receiver: tickets}\nreceivers: []\n")
    with pytest.raises(stk.RuleFileError, match="only `route` and `inhibit_rules`"):
        stk.candidate_config(tmp_path / "routes.yml", tmp_path)
    with pytest.raises(TypeError, match="restart_service\\(\\) knows"):
        stk.restart_service(faults=1)


def test_a_reset_removes_the_exercise_files_an_earlier_run_left(here):
    """A tests file left by a solved run would let the blank exercise's check 04.5 read an old answer."""
    from cloudlab.lesson04 import files

    for name in files.EXERCISE_FILES:
        (here / name).write_text("left by an earlier run\n")
    (here / "mine.txt").write_text("not the lesson's")
    assert sorted(files._reset_exercise_files()["exercise files next to this notebook"]) == sorted(files.EXERCISE_FILES)
    assert [p.name for p in here.iterdir()] == ["mine.txt"]


@pytest.mark.lab
def test_alertmanager_down_while_an_alert_fires_says_so(stack):
    """The last lab test: it stops Alertmanager (the fixture stops the rest)."""
    import time

    from cloudlab import lesson04, procs

    procs.stop(lesson04.ALERTMANAGER)
    with pytest.raises(prom.StackDown, match="Alertmanager is not running .* run the setup cell again"):
        lesson04.wait_for_delivery(time.time(), "/pager", timeout=0.5)
    with pytest.raises(prom.StackDown, match="Alertmanager does not answer"):
        stack.alertmanager.alerts()


def test_the_fault_flag_is_read_while_the_service_runs(tmp_path):
    from app.service import Config

    flag, logged = tmp_path / "fault_rate", []
    live = observed.LiveConfig(Config("b", "q", fault_rate=0.1), str(flag), lambda event, **kw: logged.append(kw))
    assert live.fault_rate == 0.1 and live.bucket == "b"  # no flag file yet: FAULT_RATE, and the rest of Config
    for text, want in (("1.0\n", 1.0), ("0.25", 0.25), ("not a number", 0.25), ("7", 0.25), ("0", 0.0)):
        tmp = tmp_path / "new"
        tmp.write_text(text)
        tmp.replace(flag)
        assert live.fault_rate == want, text
    assert [x["value"] for x in logged] == [1.0, 0.25, 0.0]
    assert observed.LiveConfig(Config("b", "q", fault_rate=0.3), None).fault_rate == 0.3
