"""Metrics: Prometheus exposition text, histograms and their quantiles, the golden signals, CloudWatch."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import net
from .errors import NoDataPoints


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
        return [
            Sample(s.name, dict(s.labels), float(s.value))
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        ]
    except ValueError as e:
        raise ValueError(f"not Prometheus text exposition format: {e}") from None


def scrape(url: str, timeout: float = 2.0) -> list[Sample]:
    """GET the /metrics endpoint and parse it."""
    r = net.request("GET", url, timeout=timeout)
    if r.status != 200:
        raise OSError(f"{url} answered HTTP {r.status}, not metrics")
    return parse_exposition(r.body.decode())


def _matches(s: Sample, filters: dict) -> bool:
    for k, v in filters.items():
        got = s.labels.get(k)
        if callable(v):
            if got is None or not v(got):
                return False
        elif got != v:
            return False
    return True


def sample_sum(samples: list[Sample], name: str, **filters) -> float:
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
        raise NoDataPoints(
            f"no histogram {name!r} with labels {filters or '{}'} in this scrape: "
            "is the name right, and has the service answered a request yet?"
        )
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
    for (t0, a), (t1, b) in zip(scrapes, scrapes[1:], strict=False):
        dt = t1 - t0
        if dt <= 0:
            continue
        req = sample_sum(b, REQUESTS) - sample_sum(a, REQUESTS)
        err = sample_sum(b, REQUESTS, status=is_5xx) - sample_sum(a, REQUESTS, status=is_5xx)
        out["t"].append(t1)
        out["rps"].append(req / dt)
        out["error_pct"].append(100 * err / req if req else float("nan"))
        try:
            d = delta_buckets(histogram(a, LATENCY), histogram(b, LATENCY))
            qs = [quantile_from_buckets(d, q) for q in (0.5, 0.95, 0.99)]
        except NoDataPoints:
            qs = [float("nan")] * 3
        for k, v in zip(("p50", "p95", "p99"), qs, strict=False):
            out[k].append(v)
        out["in_flight"].append(sample_sum(b, "orders_requests_in_flight"))
        cpu = sample_sum(b, "process_cpu_seconds_total") - sample_sum(a, "process_cpu_seconds_total")
        out["cpu_pct"].append(100 * cpu / dt)
    return out


# --------------------------------------------------------------- CloudWatch
def cloudwatch_datums(before: list[Sample], after: list[Sample], dimensions: dict | None = None) -> list[dict]:
    """What a metrics agent would send for one interval: Requests, Errors, ErrorRatio, LatencyP95."""
    dims = [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()]
    req = sample_sum(after, REQUESTS) - sample_sum(before, REQUESTS)
    err = sample_sum(after, REQUESTS, status=is_5xx) - sample_sum(before, REQUESTS, status=is_5xx)
    data = [
        {"MetricName": "Requests", "Dimensions": dims, "Value": req, "Unit": "Count"},
        {"MetricName": "Errors", "Dimensions": dims, "Value": err, "Unit": "Count"},
    ]
    if req > 0:  # no traffic: no ratio (a 0 would claim "perfectly healthy")
        data.append({"MetricName": "ErrorRatio", "Dimensions": dims, "Value": err / req, "Unit": "None"})
        try:
            d = delta_buckets(histogram(before, LATENCY), histogram(after, LATENCY))
            data.append(
                {
                    "MetricName": "LatencyP95",
                    "Dimensions": dims,
                    "Value": quantile_from_buckets(d, 0.95),
                    "Unit": "Seconds",
                }
            )
        except NoDataPoints:
            pass
    return data


def push_scrapes(
    cw, namespace: str, scrapes: list[tuple[float, list[Sample]]], every: float = 1.0, dimensions: dict | None = None
) -> int:
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
            d["Timestamp"] = datetime.fromtimestamp(t, UTC)
            d["StorageResolution"] = 1
        cw.put_metric_data(Namespace=namespace, MetricData=data)
        sent += len(data)
    return sent


def get_series(
    cw,
    namespace: str,
    metric: str,
    start: datetime,
    end: datetime,
    period: int = 10,
    stat: str = "Average",
    dimensions: dict | None = None,
) -> tuple[list[datetime], list[float]]:
    """A CloudWatch metric as (times, values), oldest first; NoDataPoints if there is none."""
    q = {
        "Id": "m",
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()],
            },
            "Period": period,
            "Stat": stat,
        },
    }
    resp = cw.get_metric_data(MetricDataQueries=[q], StartTime=start, EndTime=end, ScanBy="TimestampAscending")
    res = resp["MetricDataResults"][0]
    if not res.get("Values"):
        dims = f" with dimensions {dimensions}" if dimensions else " without dimensions"
        raise NoDataPoints(
            f"CloudWatch has no data points for {namespace}/{metric}{dims} between "
            f"{start:%H:%M:%S} and {end:%H:%M:%S}. A metric is identified by namespace + name + ALL its "
            "dimensions: check the spelling, the dimensions, and that something published it in that window."
        )
    pairs = sorted(zip(res["Timestamps"], res["Values"], strict=False))
    return [p[0] for p in pairs], [p[1] for p in pairs]
