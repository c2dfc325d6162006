"""Checks 04.1-04.2: the service's logs in CloudWatch Logs, and histogram buckets that fit the latency SLO.

They read the real log stream in the emulator, the service's live /metrics and what Prometheus scraped."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

from .. import aws
from .. import observability as obs
from ..checks import check
from ..observability import prom
from .service import EXERCISE_GROUP, SERVICE, SLO_LATENCY_S, Service, find_service, send, wait_for_line
from .stack import current


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
    """Passes every call to the real Logs client; remembers the PutLogEvents batch sizes and timestamps."""

    def __init__(self, client):
        self._client, self.batches, self.stamps = client, [], []

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name != "put_log_events":
            return attr

        def put(**kw):
            events = kw.get("logEvents") or []
            self.batches.append(len(events))
            self.stamps += [e.get("timestamp") for e in events if isinstance(e, dict)]
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
    # lines a log agent replays from an hour ago, newest first: more than one batch, out of order
    late = [
        json.dumps(
            {
                "ts": datetime.fromtimestamp(base + i, UTC).isoformat(timespec="milliseconds"),
                "level": "INFO",
                "event": "replayed",
                "request_id": f"old-{uuid.uuid4().hex[:8]}",
            }
        )
        for i in range(600)
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
    numbers = [t for t in rec.stamps if isinstance(t, (int, float))]
    r.expect(
        bool(numbers) and min(numbers) > 1e11,
        "timestamps are epoch milliseconds",
        f"the timestamps sent look like {min(numbers) if numbers else 'nothing'}: epoch SECONDS are about 1.7e9, "
        "milliseconds 1.7e12 (CloudWatch drops events that look 55 years old)",
    )
    r.expect(
        rec.batches and max(rec.batches) <= 500,
        f"batches of at most 500 events ({rec.batches})",
        f"PutLogEvents was called with batches of {rec.batches}: send at most 500 events per call",
    )


@check(
    "04.2",
    "The live histogram has buckets that fit the latency SLO",
    hints=[
        "BUCKETS is a tuple of increasing upper bounds in seconds, e.g. starting at 0.005. The SLO "
        f"threshold {SLO_LATENCY_S} must be one of them, exactly.",
        "Cover the range you care about: at least 6 bounds, the largest at least 2.5 s. Then restart "
        "the service with them: svc = lesson04.restart_service(buckets=BUCKETS).",
        'The check scrapes the running service\'s /metrics: if it still shows le="0.01","0.1","1.0", '
        "the restart with your buckets did not happen.",
    ],
)
def check_buckets(r, ns):
    buckets = r.need(ns, "BUCKETS", (tuple, list))
    try:
        mine = [float(b) for b in buckets]
    except (TypeError, ValueError):
        r.fail(f"BUCKETS should hold numbers (seconds), but it is {buckets!r:.100}")
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
        mine == bounds,
        f"the live histogram has your buckets {bounds}",
        f"the live histogram has buckets {bounds}, your BUCKETS are {list(buckets)}: restart the service "
        "with lesson04.restart_service(buckets=BUCKETS)",
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
    prometheus = current().prometheus
    le = prom.format_le(SLO_LATENCY_S)
    seen = None
    deadline = time.monotonic() + 8
    while not seen and time.monotonic() < deadline:
        seen = prometheus.value(f'count({obs.LATENCY}_bucket{{job="orders", le="{le}"}})')
        if not seen:
            time.sleep(0.25)
    r.expect(
        bool(seen),
        f'Prometheus scrapes the new bucket le="{le}"',
        f'Prometheus has no bucket le="{le}" of the running service yet: is it scraped? (Status > Targets)',
    )
