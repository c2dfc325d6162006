"""Checks 04.1-04.2: the service's logs in CloudWatch Logs, and histogram buckets that fit the latency SLO.

They read the real log stream in the emulator, the service's live /metrics and what Prometheus scraped."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from .. import aws
from .. import observability as obs
from ..checks import check
from ..observability import prom
from .service import EXERCISE_GROUP, SERVICE, SLO_LATENCY_S, Service, find_service, send, wait_for_line
from .stack import current

MIN_BOUNDS, MAX_BOUNDS, MIN_BELOW_SLO = 6, 15, 3


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


def _replayed_lines(base: float) -> list[str]:
    """600 lines a log agent replays from an hour ago, newest first: more than one batch, out of order."""
    return [
        json.dumps(
            {
                "ts": datetime.fromtimestamp(base + i, UTC).isoformat(timespec="milliseconds"),
                "level": "INFO",
                "event": "replayed",
                "request_id": f"old-{uuid.uuid4().hex[:8]}",
            }
        )
        for i in range(600)
    ][::-1]


def _zoned_lines(now: float) -> list[str]:
    """A second input: lines of a service whose clock writes its own UTC offset (New York, Tokyo), and JSON
    that is not an object. Read as naive local times, the first two land hours away from when they happened."""
    out = []
    for minutes, zone in ((20, timezone(timedelta(hours=-5))), (10, timezone(timedelta(hours=9))), (5, UTC)):
        ts = datetime.fromtimestamp(now - minutes * 60, zone).isoformat(timespec="milliseconds")
        out.append(json.dumps({"ts": ts, "level": "WARNING", "event": "zoned", "request_id": uuid.uuid4().hex}))
    return out[::-1] + ["", "42", "null", json.dumps("a string")]


def _files(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir() if p.is_file()}
    except OSError:
        return set()


def _stream_events(logs, group: str, stream: str) -> list[dict] | None:
    try:
        return logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=10000)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return None


def _delete_group(logs, group: str) -> None:
    try:
        logs.delete_log_group(logGroupName=group)
    except Exception:  # noqa: BLE001 (already gone, or never made)
        pass


@check(
    "04.1",
    "The service's log lines reach CloudWatch Logs with their request ID",
    hints=[
        "Parse each line with json.loads; skip lines that raise ValueError and JSON that is not a dict. The event's "
        "timestamp is the line's `ts` in epoch milliseconds: int(datetime.fromisoformat(ts).timestamp() * 1000) "
        "(fromisoformat keeps the line's own UTC offset).",
        "Sort the events by timestamp, then send them with logs.put_log_events(logGroupName=..., "
        "logStreamName=..., logEvents=batch) in slices of at most 500; create the group and the stream "
        "first, ignoring only ResourceAlreadyExistsException (never delete a group: other streams live in it).",
        "Use the group and stream names you are given. The message of each event is the original line. Return the "
        "number of events you sent.",
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
    now = datetime.now(UTC).timestamp()
    lines = (
        lines
        + ["Traceback (most recent call last):  <- not JSON"]
        + _replayed_lines(now - 3600)
        + [json.dumps(["not", "an object"])]
    )
    good = obs.to_log_events(lines, skip_bad=True)[0]
    logs = aws.client("logs")
    rec = _Recorder(logs)
    group = f"{EXERCISE_GROUP}-check-{uuid.uuid4().hex[:8]}"  # a group that does not exist yet
    stream = f"check-{uuid.uuid4().hex[:8]}"
    folder = Path.cwd()
    before = _files(folder)
    try:
        n = r.call(ship_lines, rec, group, stream, list(lines))
        got = _stream_events(logs, group, stream)
        if got is None:
            r.fail(
                f"there is no log stream {stream!r} in the group {group!r} the check passed in: create the group "
                "and the stream, using the names you are given (not the notebook's)"
            )
        _first_call(r, n, got, good, lines, rid, svc, rec)
        # A second call, as the next batch of a log agent: the group exists now and holds another service's
        # stream; other lines (with their own UTC offsets), another stream.
        theirs = f"theirs-{uuid.uuid4().hex[:6]}"
        logs.create_log_stream(logGroupName=group, logStreamName=theirs)
        logs.put_log_events(
            logGroupName=group, logStreamName=theirs, logEvents=[{"timestamp": int(now * 1000), "message": "theirs"}]
        )
        stream2 = f"check-{uuid.uuid4().hex[:8]}"
        lines2 = _zoned_lines(now)
        good2 = obs.to_log_events(lines2, skip_bad=True)[0]
        n2 = r.call(ship_lines, logs, group, stream2, list(lines2))
        got2 = _stream_events(logs, group, stream2) or []
        r.expect(
            n2 == len(good2) and sorted(e["message"] for e in got2) == sorted(e["message"] for e in good2),
            f"a second call (into the now existing group, with other lines) ships exactly its {len(good2)} events",
            f"a second call into the existing group with {len(good2)} JSON object lines (and JSON that is not an "
            f"object) returned {n2!r} and left {len(got2)} events in its stream: create only what does not exist "
            "yet, and send every JSON object line, nothing else",
        )
        real = {e["message"]: e["timestamp"] for e in good2}
        off = [round((e["timestamp"] - real[e["message"]]) / 3_600_000, 2) for e in got2 if e["message"] in real]
        r.expect(
            len(off) == len(good2) and not any(off),
            "lines written with another UTC offset (New York, Tokyo) keep their real time",
            f"lines written in New York (-05:00) and Tokyo (+09:00) time landed {[f'{h:+g} h' for h in off]} "
            "away from when they happened: keep each line's own UTC offset (datetime.fromisoformat does; "
            "cutting the offset off reads the time as UTC)",
        )
        kept = _stream_events(logs, group, theirs)
        r.expect(
            bool(kept) and kept[0]["message"] == "theirs",
            "another service's stream in the same group is untouched",
            "another service's stream in the group was deleted or emptied: never delete or re-create a group "
            "(ignore ResourceAlreadyExistsException instead)",
        )
        streams = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group).get("logStreams", [])}
        extra = sorted(streams - {stream, stream2, theirs})
        r.expect(
            not extra,
            "nothing was written to other streams",
            f"ship_lines also wrote to the stream(s) {extra}: only the stream it is given",
        )
    finally:
        _delete_group(logs, group)
    new = sorted(_files(folder) - before)
    r.expect(
        not new,
        "nothing was written to the local disk",
        f"files appeared next to the notebook: {', '.join(new)}; CloudWatch is the copy that outlives the instance",
    )


def _first_call(r, n, got, good, lines, rid, svc, rec) -> None:
    r.expect(
        n == len(good),
        f"ship_lines returned {n}, the number of JSON lines",
        f"ship_lines returned {n!r}, but {len(good)} of the {len(lines)} lines are JSON log events",
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
        f"Cover the range you care about: {MIN_BOUNDS} to {MAX_BOUNDS} bounds, at least {MIN_BELOW_SLO} of them below "
        f"{SLO_LATENCY_S} s (most requests are fast), the largest at least 2.5 s. Then restart "
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
    below = [b for b in bounds if b < SLO_LATENCY_S]
    r.expect(
        len(below) >= MIN_BELOW_SLO,
        f"{len(below)} bounds below the SLO threshold, where most requests land",
        f"only {len(below)} bound(s) below {SLO_LATENCY_S} s: nearly every request of this service takes well under "
        f"{SLO_LATENCY_S} s, so its p50 and p90 would be straight-line guesses inside one bucket; put at least "
        f"{MIN_BELOW_SLO} bounds below the threshold",
    )
    r.expect(
        MIN_BOUNDS <= len(bounds) <= MAX_BOUNDS,
        f"{len(bounds)} buckets (enough resolution, and not a series per millisecond)",
        f"only {len(bounds)} finite buckets: use at least {MIN_BOUNDS} so percentiles are more than a guess"
        if len(bounds) < MIN_BOUNDS
        else f"{len(bounds)} finite buckets: each bound is one more time series per route, method and instance; "
        f"keep it to {MAX_BOUNDS} or fewer (the Python client's default has 14)",
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
