"""Lesson 04's tools: load, logs, metrics, traces, SLO maths and plots.

Everything here works on real data: the results of real HTTP requests, the lines the
service really logged, the text its /metrics endpoint really served, the spans it really
exported. Pure functions (parsing, percentiles, burn rates) are unit-tested without the lab.
"""
from __future__ import annotations

import json
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone


class NoDataPoints(ValueError):
    """A metric (or a window of it) has nothing in it: say which, and the likely reason."""


class MalformedLogLine(ValueError):
    """A log line is not one JSON object with a timestamp."""


# ===================================================================== load
def _request(url: str, method: str, body: dict | None, request_id: str, timeout: float) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"X-Request-Id": request_id, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError):
        return 599, b""  # no answer at all: counted as a server-side failure


def run_load(base_url: str, n: int = 400, concurrency: int = 8, post_share: float = 0.9,
             max_seconds: float = 10.0, rate: float | None = None, seed: int = 0,
             timeout: float = 5.0) -> list[dict]:
    """Send at most ``n`` requests, for at most ``max_seconds``; return one record per request.

    A share ``post_share`` of them create an order (POST /orders); the rest read one back
    (GET /orders/<id>). ``rate`` (requests/s) spaces them out evenly; without it they go as
    fast as ``concurrency`` workers allow. Each request gets its own X-Request-Id.
    """
    if n < 1 or not 0 <= post_share <= 1 or concurrency < 1:
        raise ValueError("need n >= 1, concurrency >= 1 and 0 <= post_share <= 1")
    rng = random.Random(seed)
    plan = ["POST" if rng.random() < post_share else "GET" for _ in range(n)]
    created: list[str] = []
    lock = threading.Lock()
    t0 = time.monotonic()
    deadline = t0 + max_seconds

    def one(i: int):
        if rate:
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        if time.monotonic() > deadline:
            return None
        rid = f"l04-{uuid.uuid4().hex[:16]}"
        with lock:
            known = created[rng.randrange(len(created))] if created else None
        if plan[i] == "POST" or known is None:
            method, route, url, body = "POST", "/orders", f"{base_url}/orders", {"item": "book", "qty": 1 + i % 3}
        else:
            method, route, url, body = "GET", "/orders/{id}", f"{base_url}/orders/{known}", None
        start = time.time()
        p0 = time.perf_counter()
        status, payload = _request(url, method, body, rid, timeout)
        seconds = time.perf_counter() - p0
        if status == 201:
            try:
                with lock:
                    created.append(json.loads(payload)["id"])
            except (ValueError, KeyError):
                pass
        return {"t": start, "seconds": seconds, "status": status, "method": method, "route": route,
                "request_id": rid}

    with ThreadPoolExecutor(concurrency) as ex:
        results = [r for r in ex.map(one, range(n)) if r is not None]
    return sorted(results, key=lambda r: r["t"])


def summarize(results: list[dict]) -> dict:
    """Requests, 5xx errors, error ratio, p50/p95/p99 latency (exact, from the client's clock)."""
    if not results:
        raise NoDataPoints("no requests in these results: did the load generator reach the service?")
    lat = sorted(r["seconds"] for r in results)
    errors = sum(1 for r in results if r["status"] >= 500)
    span = max(r["t"] + r["seconds"] for r in results) - min(r["t"] for r in results)
    return {"requests": len(results), "errors": errors, "error_ratio": errors / len(results),
            "rps": len(results) / span if span > 0 else float("nan"),
            "p50": percentile(lat, 0.5), "p95": percentile(lat, 0.95), "p99": percentile(lat, 0.99)}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..1)."""
    if not sorted_values:
        raise NoDataPoints("no values to take a percentile of")
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, not {q}")
    k = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[k]


# ===================================================================== logs
def parse_log_line(line: str, lineno: int | None = None) -> dict:
    """One JSON log line -> its dict, with ``_ts_ms`` (epoch milliseconds from its ``ts`` field)."""
    where = f"line {lineno}" if lineno is not None else "log line"
    text = line.strip()
    try:
        rec = json.loads(text)
    except ValueError as e:
        raise MalformedLogLine(f"{where} is not JSON ({e.msg} at column {e.colno}): {text[:80]!r}") from None
    if not isinstance(rec, dict):
        raise MalformedLogLine(f"{where} is JSON but not an object: {text[:80]!r}")
    if "ts" not in rec:
        raise MalformedLogLine(f"{where} has no 'ts' timestamp field: {text[:80]!r}")
    try:
        ts = datetime.fromisoformat(str(rec["ts"]).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedLogLine(f"{where}: 'ts' is not an ISO-8601 time: {rec['ts']!r}") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    rec["_ts_ms"] = int(ts.timestamp() * 1000)
    return rec


def to_log_events(lines, skip_bad: bool = False) -> tuple[list[dict], list[str]]:
    """Lines -> (CloudWatch log events sorted by time, problems). Bad lines raise unless ``skip_bad``."""
    events, problems = [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = parse_log_line(line, i)
        except MalformedLogLine as e:
            if not skip_bad:
                raise
            problems.append(str(e))
            continue
        events.append({"timestamp": rec["_ts_ms"], "message": line.strip()})
    events.sort(key=lambda e: e["timestamp"])  # stable: equal timestamps keep their order
    return events, problems


MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26  # bytes CloudWatch Logs adds to each message when it counts a batch


def batches(events: list[dict], max_events: int = MAX_BATCH_EVENTS, max_bytes: int = MAX_BATCH_BYTES):
    """Split sorted events into PutLogEvents-sized batches (count, bytes, and a 24 h span)."""
    batch, size = [], 0
    for e in events:
        n = len(e["message"].encode()) + EVENT_OVERHEAD
        too_long = batch and e["timestamp"] - batch[0]["timestamp"] >= 24 * 3600 * 1000
        if batch and (len(batch) >= max_events or size + n > max_bytes or too_long):
            yield batch
            batch, size = [], 0
        batch.append(e)
        size += n
    if batch:
        yield batch


def ship_logs(logs, group: str, stream: str, lines, skip_bad: bool = True, batch_size: int = MAX_BATCH_EVENTS) -> dict:
    """Create the group/stream if needed, send the lines in sorted batches; say what happened."""
    events, problems = to_log_events(lines, skip_bad=skip_bad)
    for create, kw in ((logs.create_log_group, {"logGroupName": group}),
                       (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
        try:
            create(**kw)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
    sent, calls, rejected = 0, 0, []
    for batch in batches(events, max_events=batch_size):
        resp = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        calls += 1
        sent += len(batch)
        if resp.get("rejectedLogEventsInfo"):
            rejected.append(resp["rejectedLogEventsInfo"])
    return {"sent": sent, "calls": calls, "skipped": problems, "rejected": rejected}


def read_events(logs, group: str, start_ms: int | None = None, end_ms: int | None = None,
                streams: list[str] | None = None) -> list[dict]:
    """Every raw event of a log group (all pages), optionally limited by time and streams."""
    kw: dict = {"logGroupName": group}
    if start_ms is not None:
        kw["startTime"] = start_ms
    if end_ms is not None:
        kw["endTime"] = end_ms
    if streams:
        kw["logStreamNames"] = streams
    out, seen_tokens = [], set()
    while True:
        resp = logs.filter_log_events(**kw)
        out.extend(resp.get("events", []))
        token = resp.get("nextToken")
        if not token or token in seen_tokens:
            return out
        seen_tokens.add(token)
        kw["nextToken"] = token


def query_logs(logs, group: str, where=None, **read_kw) -> list[dict]:
    """Client-side query: read the events back, parse each JSON message, keep those that match.

    ``where`` is a dict of field -> value (all must match) or a function(record) -> bool.
    Messages that are not JSON objects are skipped, never matched. Each record gets
    ``@timestamp`` and ``@stream`` from CloudWatch.
    """
    if where is None:
        match = lambda rec: True  # noqa: E731
    elif callable(where):
        match = where
    elif isinstance(where, dict):
        match = lambda rec: all(rec.get(k) == v for k, v in where.items())  # noqa: E731
    else:
        raise TypeError("where must be a dict of field -> value, or a function(record) -> bool")
    found = []
    for ev in read_events(logs, group, **read_kw):
        try:
            rec = json.loads(ev["message"])
        except ValueError:
            continue
        if isinstance(rec, dict) and match(rec):
            rec["@timestamp"] = ev["timestamp"]
            rec["@stream"] = ev.get("logStreamName")
            found.append(rec)
    return found


def server_filter_works(logs, group: str) -> bool:
    """Does the emulator honour filterPattern? Ask for a term no event contains; all events back = ignored."""
    impossible = f"no-such-term-{uuid.uuid4().hex}"
    resp = logs.filter_log_events(logGroupName=group, filterPattern=f'"{impossible}"', limit=5)
    return not resp.get("events")


# ================================================================== metrics
@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float


def parse_exposition(text: str) -> list[Sample]:
    """Prometheus text exposition -> samples (prometheus_client's own parser)."""
    from prometheus_client.parser import text_string_to_metric_families
    try:
        return [Sample(s.name, dict(s.labels), float(s.value))
                for fam in text_string_to_metric_families(text) for s in fam.samples]
    except ValueError as e:
        raise ValueError(f"not Prometheus text exposition format: {e}") from None


def scrape(url: str, timeout: float = 2.0) -> list[Sample]:
    """GET the /metrics endpoint and parse it."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return parse_exposition(r.read().decode())


def _matches(s: Sample, filters: dict) -> bool:
    for k, v in filters.items():
        got = s.labels.get(k)
        if callable(v):
            if got is None or not v(got):
                return False
        elif got != v:
            return False
    return True


def total(samples: list[Sample], name: str, **filters) -> float:
    """Sum of every series of ``name`` whose labels match (a value, or a predicate on the value)."""
    return sum(s.value for s in samples if s.name == name and _matches(s, filters))


def histogram(samples: list[Sample], name: str, **filters) -> list[tuple[float, float]]:
    """Cumulative buckets [(le, count)] of histogram ``name``, summed over the matching series."""
    acc: dict[float, float] = {}
    for s in samples:
        if s.name == f"{name}_bucket" and _matches(s, filters):
            le = float(s.labels["le"])
            acc[le] = acc.get(le, 0.0) + s.value
    if not acc:
        raise NoDataPoints(f"no histogram {name!r} with labels {filters or '{}'} in this scrape: "
                           "is the name right, and has the service answered a request yet?")
    return sorted(acc.items())


def bucket_bounds(samples: list[Sample], name: str) -> list[float]:
    """The finite upper bounds (le) of histogram ``name``, as the endpoint exposes them."""
    return sorted({float(s.labels["le"]) for s in samples if s.name == f"{name}_bucket"} - {math.inf})


def delta_buckets(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """What happened between two scrapes (a counter only grows; a restart would make it shrink)."""
    b = dict(before)
    out = [(le, c - b.get(le, 0.0)) for le, c in after]
    if any(c < 0 for _, c in out):
        raise ValueError("a bucket count went down between scrapes: the service restarted in between")
    return out


def quantile_from_buckets(buckets: list[tuple[float, float]], q: float) -> float:
    """Estimate the q-quantile from cumulative buckets, interpolating linearly inside a bucket.

    This is how Prometheus' histogram_quantile works: the answer can only be as precise as the
    buckets around it, and above the last finite bucket it can only say "more than that".
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, not {q}")
    buckets = sorted(buckets)
    if not buckets or buckets[-1][0] != math.inf:
        raise ValueError("a histogram needs its +Inf bucket (the total count)")
    count = buckets[-1][1]
    if count <= 0:
        raise NoDataPoints("the histogram has no observations in this window: no requests, so no percentile")
    rank = q * count
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == math.inf:
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


class Scraper:
    """A tiny Prometheus: scrape ``url`` every ``interval`` seconds in a thread, keep (time, samples)."""

    def __init__(self, url: str, interval: float = 0.5):
        self.url, self.interval = url, interval
        self.scrapes: list[tuple[float, list[Sample]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _once(self):
        try:
            self.scrapes.append((time.time(), scrape(self.url)))
        except (OSError, ValueError) as e:
            self.errors.append(f"{type(e).__name__}: {e}")

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._once()

    def __enter__(self):
        self._once()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._once()
        return False


LATENCY = "orders_request_duration_seconds"
REQUESTS = "orders_requests_total"


def is_5xx(status: str) -> bool:
    return status.startswith("5")


def golden_series(scrapes: list[tuple[float, list[Sample]]]) -> dict[str, list[float]]:
    """The four golden signals per scrape interval: latency percentiles, traffic, errors, saturation."""
    if len(scrapes) < 2:
        raise NoDataPoints("need at least two scrapes to compute a rate")
    out = {k: [] for k in ("t", "rps", "error_pct", "p50", "p95", "p99", "in_flight", "cpu_pct")}
    for (t0, a), (t1, b) in zip(scrapes, scrapes[1:]):
        dt = t1 - t0
        if dt <= 0:
            continue
        req = total(b, REQUESTS) - total(a, REQUESTS)
        err = total(b, REQUESTS, status=is_5xx) - total(a, REQUESTS, status=is_5xx)
        out["t"].append(t1)
        out["rps"].append(req / dt)
        out["error_pct"].append(100 * err / req if req else float("nan"))
        try:
            d = delta_buckets(histogram(a, LATENCY), histogram(b, LATENCY))
            qs = [quantile_from_buckets(d, q) for q in (0.5, 0.95, 0.99)]
        except NoDataPoints:
            qs = [float("nan")] * 3
        for k, v in zip(("p50", "p95", "p99"), qs):
            out[k].append(v)
        out["in_flight"].append(total(b, "orders_requests_in_flight"))
        cpu = total(b, "process_cpu_seconds_total") - total(a, "process_cpu_seconds_total")
        out["cpu_pct"].append(100 * cpu / dt)
    return out


# --------------------------------------------------------------- CloudWatch
def cloudwatch_datums(before: list[Sample], after: list[Sample], dimensions: dict | None = None) -> list[dict]:
    """What a metrics agent would send for one interval: Requests, Errors, ErrorRatio, LatencyP95."""
    dims = [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()]
    req = total(after, REQUESTS) - total(before, REQUESTS)
    err = total(after, REQUESTS, status=is_5xx) - total(before, REQUESTS, status=is_5xx)
    data = [{"MetricName": "Requests", "Dimensions": dims, "Value": req, "Unit": "Count"},
            {"MetricName": "Errors", "Dimensions": dims, "Value": err, "Unit": "Count"}]
    if req > 0:  # no traffic: no ratio (a 0 would claim "perfectly healthy")
        data.append({"MetricName": "ErrorRatio", "Dimensions": dims, "Value": err / req, "Unit": "None"})
        try:
            d = delta_buckets(histogram(before, LATENCY), histogram(after, LATENCY))
            data.append({"MetricName": "LatencyP95", "Dimensions": dims,
                         "Value": quantile_from_buckets(d, 0.95), "Unit": "Seconds"})
        except NoDataPoints:
            pass
    return data


def push_scrapes(cw, namespace: str, scrapes: list[tuple[float, list[Sample]]], every: float = 1.0,
                 dimensions: dict | None = None) -> int:
    """Send one interval of datums per ``every`` seconds of scrapes, time-stamped when scraped; return data points sent.

    High-resolution (StorageResolution=1): alarms with a period under 60 s need it on real AWS.
    """
    picked, last = [], None
    for t, s in scrapes:
        if last is None or t - last[0] >= every:
            if last is not None:
                picked.append((last[1], s, t))
            last = (t, s)
    sent = 0
    for before, after, t in picked:
        data = cloudwatch_datums(before, after, dimensions)
        for d in data:
            d["Timestamp"] = datetime.fromtimestamp(t, timezone.utc)
            d["StorageResolution"] = 1
        cw.put_metric_data(Namespace=namespace, MetricData=data)
        sent += len(data)
    return sent


def get_series(cw, namespace: str, metric: str, start: datetime, end: datetime, period: int = 10,
               stat: str = "Average", dimensions: dict | None = None) -> tuple[list[datetime], list[float]]:
    """A CloudWatch metric as (times, values), oldest first; NoDataPoints if there is none."""
    q = {"Id": "m", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric,
                                              "Dimensions": [{"Name": k, "Value": v}
                                                             for k, v in (dimensions or {}).items()]},
                                   "Period": period, "Stat": stat}}
    resp = cw.get_metric_data(MetricDataQueries=[q], StartTime=start, EndTime=end, ScanBy="TimestampAscending")
    res = resp["MetricDataResults"][0]
    if not res.get("Values"):
        dims = f" with dimensions {dimensions}" if dimensions else " without dimensions"
        raise NoDataPoints(
            f"CloudWatch has no data points for {namespace}/{metric}{dims} between "
            f"{start:%H:%M:%S} and {end:%H:%M:%S}. A metric is identified by namespace + name + ALL its "
            "dimensions: check the spelling, the dimensions, and that something published it in that window.")
    pairs = sorted(zip(res["Timestamps"], res["Values"]))
    return [p[0] for p in pairs], [p[1] for p in pairs]


# ==================================================================== pager
# The pager (SNS topic -> SQS queue) is shared with lesson 03: it lives in cloudlab/pager.py.
from .pager import alarm_message, read_pages, wait_for_page, wire_pager  # noqa: E402,F401


# ===================================================================== SLOs
@dataclass(frozen=True)
class SLO:
    """A service level objective: ``target`` share of good events over ``window_days``."""
    name: str
    target: float
    window_days: float = 30.0
    threshold_s: float | None = None  # for a latency SLO: "good" means answered within this

    def __post_init__(self):
        t = self.target
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1 or math.isnan(t):
            hint = f" (did you mean {t / 100:g}?)" if isinstance(t, (int, float)) and 1 < t < 100 else ""
            raise ValueError(f"SLO {self.name!r}: the target must be a fraction strictly between 0 and 1, "
                             f"e.g. 0.995 for 99.5 %; got {t!r}{hint}")
        if self.window_days <= 0:
            raise ValueError(f"SLO {self.name!r}: window_days must be positive, not {self.window_days}")
        if self.threshold_s is not None and self.threshold_s <= 0:
            raise ValueError(f"SLO {self.name!r}: threshold_s must be positive seconds, not {self.threshold_s}")

    @property
    def error_budget(self) -> float:
        """The share of events allowed to be bad."""
        return 1 - self.target

    def budget_minutes(self) -> float:
        """The budget as minutes of total outage in the window."""
        return self.window_days * 24 * 60 * self.error_budget

    def is_good(self, result: dict) -> bool:
        """Availability SLO: not a 5xx. Latency SLO: answered within the threshold (failures count
        against availability, so each SLO measures one thing)."""
        if self.threshold_s is None:
            return result["status"] < 500
        return result["seconds"] <= self.threshold_s


def burn_rate(bad: float, total_: float, target: float) -> float:
    """How fast the budget burns: 1 = exactly used up at the end of the window, 10 = in a tenth of it."""
    if not 0 < target < 1:
        raise ValueError(f"target must be strictly between 0 and 1, not {target}")
    if total_ <= 0:
        return 0.0
    return (bad / total_) / (1 - target)


def budget_left(bad: float, total_: float, target: float) -> float:
    """Share of the error budget still unspent (negative: overspent)."""
    if total_ <= 0:
        return 1.0
    return 1 - (bad / total_) / (1 - target)


@dataclass(frozen=True)
class Rule:
    """Multi-window, multi-burn-rate: alert when BOTH windows burn faster than ``burn``."""
    severity: str
    long_s: float
    short_s: float
    burn: float

    def describe(self, speedup: float = 1) -> str:
        def human(s):
            s *= speedup
            return f"{s / 86400:g} d" if s >= 86400 else f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min"
        return f"{self.severity}: burn > {self.burn:g} over {human(self.long_s)} and {human(self.short_s)}"


def workbook_rules(speedup: float = 1.0) -> list[Rule]:
    """The usual three rules for a 30-day window, time compressed by ``speedup`` (lab seconds).

    page   2 % of the budget in 1 h  (burn 14.4; short window 5 min)
    page   5 % of the budget in 6 h  (burn 6;    short window 30 min)
    ticket 10 % of the budget in 3 d (burn 1;    short window 6 h)
    """
    if speedup <= 0:
        raise ValueError("speedup must be positive")
    h = 3600 / speedup
    return [Rule("page", 1 * h, h / 12, 14.4), Rule("page", 6 * h, h / 2, 6.0), Rule("ticket", 72 * h, 6 * h, 1.0)]


def window_counts(events: list[tuple[float, bool]], end: float, seconds: float) -> tuple[int, int]:
    """(bad, total) among events with end - seconds < t <= end. ``events`` are (time, good)."""
    bad = tot = 0
    for t, good in events:
        if end - seconds < t <= end:
            tot += 1
            bad += not good
    return bad, tot


def rule_fires(events: list[tuple[float, bool]], target: float, rule: Rule, at: float) -> tuple[bool, float, float]:
    """(firing, long-window burn, short-window burn) of ``rule`` at time ``at``."""
    long_b = burn_rate(*window_counts(events, at, rule.long_s), target)
    short_b = burn_rate(*window_counts(events, at, rule.short_s), target)
    return long_b > rule.burn and short_b > rule.burn, long_b, short_b


def good_events(results: list[dict], slo: SLO) -> list[tuple[float, bool]]:
    """Request results -> (completion time, good?) as the SLO defines good."""
    return sorted((r["t"] + r["seconds"], slo.is_good(r)) for r in results)


def burn_timeline(events: list[tuple[float, bool]], target: float, rule: Rule, step: float = 0.25) -> dict:
    """Evaluate ``rule`` every ``step`` seconds over the events: times, both burns, firing."""
    if not events:
        raise NoDataPoints("no events to evaluate: an SLO with no traffic has nothing to say")
    t0, t1 = events[0][0], events[-1][0]
    out = {"t": [], "long": [], "short": [], "firing": []}
    n = max(1, int(math.ceil((t1 - t0) / step)))
    for i in range(n + 1):
        at = t0 + i * step
        f, lb, sb = rule_fires(events, target, rule, at)
        for k, v in zip(("t", "long", "short", "firing"), (at - t0, lb, sb, f)):
            out[k].append(v)
    return out


# =================================================================== traces
def read_spans(path: str, settle: float = 1.0) -> list[dict]:
    """Finished spans from the JSON-lines file; waits up to ``settle`` s for the last writes to land."""
    deadline, last = time.monotonic() + settle, -1
    while True:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if size == last or time.monotonic() > deadline:
            break
        last = size
        time.sleep(0.1)
    spans = []
    with open(path) as fh:
        for line in fh:
            if line.strip():
                try:
                    spans.append(json.loads(line))
                except ValueError:
                    continue  # a half-written last line
    return spans


def duration_ms(span: dict) -> float:
    return (span["end_ns"] - span["start_ns"]) / 1e6


def traces(spans: list[dict]) -> dict[str, list[dict]]:
    """trace_id -> its spans, oldest first."""
    out: dict[str, list[dict]] = {}
    for s in spans:
        out.setdefault(s["trace_id"], []).append(s)
    for v in out.values():
        v.sort(key=lambda s: s["start_ns"])
    return out


def span_tree(spans: list[dict]) -> list[tuple[int, dict]]:
    """One trace's spans in tree order: (depth, span), children after their parent."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict]] = {}
    for s in spans:
        parent = s["parent_id"] if s["parent_id"] in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[int, dict]] = []

    def walk(parent, depth):
        for s in sorted(children.get(parent, []), key=lambda x: x["start_ns"]):
            out.append((depth, s))
            walk(s["span_id"], depth + 1)
    walk(None, 0)
    return out


def root_span(spans: list[dict]) -> dict:
    tree = span_tree(spans)
    if not tree:
        raise NoDataPoints("this trace has no spans")
    return tree[0][1]


def slowest_traces(spans: list[dict], n: int = 5, name: str | None = None) -> list[list[dict]]:
    """The ``n`` traces whose root span took longest (optionally only roots called ``name``)."""
    ts = [t for t in traces(spans).values() if name is None or root_span(t)["name"] == name]
    return sorted(ts, key=lambda t: duration_ms(root_span(t)), reverse=True)[:n]


def slow_span(trace_spans: list[dict]) -> dict:
    """The child span that took the biggest part of the trace (the root itself if it has no children)."""
    tree = span_tree(trace_spans)
    kids = [s for depth, s in tree if depth > 0]
    return max(kids, key=duration_ms) if kids else tree[0][1]


def print_tree(trace_spans: list[dict]) -> None:
    root = root_span(trace_spans)
    for depth, s in span_tree(trace_spans):
        off = (s["start_ns"] - root["start_ns"]) / 1e6
        flag = "  ERROR" if s.get("status") == "ERROR" else ""
        print(f"{'  ' * depth}{s['name']:<{28 - 2 * depth}} +{off:7.1f} ms  {duration_ms(s):7.1f} ms{flag}")


# ==================================================================== plots
def plot_latency(results: list[dict], buckets: list[tuple[float, float]] | None = None, slo_s: float | None = None):
    """Latency distribution (log x) with p50/p95/p99 marked; optional histogram estimates and SLO line."""
    import matplotlib.pyplot as plt
    import numpy as np
    lat = np.array([r["seconds"] for r in results])
    fig, ax = plt.subplots(figsize=(8, 3.4))
    bins = np.logspace(np.log10(max(lat.min(), 1e-4)), np.log10(lat.max() * 1.01), 40)
    ax.hist(lat, bins=bins, color="#8aa9c9")
    ax.set_xscale("log")
    for q, c in ((50, "green"), (95, "orange"), (99, "red")):
        v = np.percentile(lat, q)
        ax.axvline(v, color=c, lw=1.5, label=f"p{q} (exact) {v * 1000:.0f} ms")
        if buckets:
            est = quantile_from_buckets(buckets, q / 100)
            ax.axvline(est, color=c, lw=1.5, ls=":", label=f"p{q} (from buckets) {est * 1000:.0f} ms")
    if slo_s:
        ax.axvline(slo_s, color="black", ls="--", lw=1, label=f"SLO threshold {slo_s * 1000:.0f} ms")
    ax.set_xlabel("latency (s, log scale)")
    ax.set_ylabel("requests")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{len(lat)} requests")
    fig.tight_layout()
    return fig


def plot_waterfall(trace_spans: list[dict], title: str = ""):
    """A trace as a waterfall: one bar per span, indented by depth, the slow span highlighted."""
    import matplotlib.pyplot as plt
    tree = span_tree(trace_spans)
    root = tree[0][1]
    slow = slow_span(trace_spans)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(tree) + 1))
    for i, (depth, s) in enumerate(tree):
        start = (s["start_ns"] - root["start_ns"]) / 1e6
        color = "#d62728" if s is slow and depth else ("#ff9896" if s.get("status") == "ERROR" else "#1f77b4")
        ax.barh(i, duration_ms(s), left=start, color=color)
        ax.text(start + duration_ms(s), i, f" {duration_ms(s):.1f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(tree)), ["  " * d + s["name"] for d, s in tree])
    ax.invert_yaxis()
    ax.set_xlabel("ms since the request arrived")
    ax.set_title(title or f"trace {root['trace_id'][:12]}...")
    fig.tight_layout()
    return fig


def plot_burn(timeline: dict, rule: Rule, title: str = ""):
    """Long- and short-window burn rates against the rule's threshold; shaded where the rule fires."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3))
    t = timeline["t"]
    ax.plot(t, timeline["long"], label="long window")
    ax.plot(t, timeline["short"], label="short window", alpha=0.7)
    ax.axhline(rule.burn, color="red", ls="--", label=f"threshold {rule.burn:g}")
    for x, f in zip(t, timeline["firing"]):
        if f:
            ax.axvspan(x - 0.125, x + 0.125, color="red", alpha=0.12, lw=0)
    ax.set_xlabel("lab seconds")
    ax.set_ylabel("burn rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_dashboard(series: dict, slo_latency_s: float | None = None, error_budget_pct: float | None = None,
                   title: str = "orders: golden signals"):
    """One figure, four panels: latency, traffic, errors, saturation."""
    import matplotlib.pyplot as plt
    t0 = series["t"][0] if series["t"] else 0
    t = [x - t0 for x in series["t"]]
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.5), sharex=True)
    (a, b), (c, d) = axes
    for k, col in (("p50", "green"), ("p95", "orange"), ("p99", "red")):
        a.plot(t, [v * 1000 for v in series[k]], color=col, label=k)
    if slo_latency_s:
        a.axhline(slo_latency_s * 1000, color="black", ls="--", lw=1, label="SLO")
    a.set_title("Latency (ms)")
    a.legend(fontsize=7)
    b.plot(t, series["rps"])
    b.set_title("Traffic (requests/s)")
    c.plot(t, series["error_pct"], color="red")
    if error_budget_pct is not None:
        c.axhline(error_budget_pct, color="black", ls="--", lw=1, label="error budget")
        c.legend(fontsize=7)
    c.set_title("Errors (% 5xx)")
    d.plot(t, series["cpu_pct"], label="CPU % of one core")
    d.plot(t, [v * 10 for v in series["in_flight"]], label="in-flight x10")
    d.set_title("Saturation")
    d.legend(fontsize=7)
    for ax in (c, d):
        ax.set_xlabel("seconds")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
