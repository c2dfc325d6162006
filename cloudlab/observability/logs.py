"""Structured JSON log lines: parse them, ship them to CloudWatch Logs in valid batches, read them back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from .errors import MalformedLogLine


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
        ts = ts.replace(tzinfo=UTC)
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
    for create, kw in (
        (logs.create_log_group, {"logGroupName": group}),
        (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
    ):
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


def read_events(
    logs, group: str, start_ms: int | None = None, end_ms: int | None = None, streams: list[str] | None = None
) -> list[dict]:
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
