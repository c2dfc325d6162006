"""OpenTelemetry spans exported as JSON lines: read them, build trees, find the slow span."""

from __future__ import annotations

import json
import os
import time

from .errors import NoDataPoints


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
