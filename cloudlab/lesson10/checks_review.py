"""Lesson 10's checks for the review: the incident's times (10.6) and the postmortem (10.7)."""

from __future__ import annotations

import re
from pathlib import Path

from ..checks import check
from . import postmortem, signals, truth
from .checks import drill, number

POSTMORTEM_FILE = "l10_postmortem.md"
TOLERANCE_S = 3.0  # three lab minutes: times copied from the records, not from memory


def _note(t: float, path: str, status: str, name: str, fp: str) -> dict:
    return {
        "received_at": t,
        "path": path,
        "payload": {
            "status": status,
            "alerts": [{"status": status, "fingerprint": fp, "labels": {"alertname": name, "severity": "page"}}],
        },
    }


def synthetic_cases() -> list[tuple[list[dict], list[dict], set[str]]]:
    """Two incidents the notebook never saw: a ticket and a ticket's acknowledgement before the page, a second bad
    release, a page that resolves and fires again; and one whose second page has not resolved yet."""
    t = 1_700_000_000.0
    changes = [
        {"t": t, "kind": "switch", "release": "v9.1.0", "to": "green"},
        {"t": t + 10, "kind": "deploy", "release": "v9.1.1", "colour": "blue"},
        {"t": t + 12, "kind": "switch", "release": "v9.1.1", "to": "blue"},
        {"t": t + 20, "kind": "scaling_policy", "version": 8},
        {"t": t + 25, "kind": "switch", "release": "v9.1.2", "to": "green"},
        {"t": t + 40, "kind": "switch", "release": "v9.1.0", "to": "blue"},
    ]
    pager = [
        _note(t + 5, "/tickets", "firing", "SlowBurn", "fp0"),
        _note(t + 18, "/tickets", "firing", "CostOverBudget", "fpt"),
        {"received_at": t + 19, "path": "/ack", "payload": {"fingerprint": "fpt", "by": "ops"}},
        _note(t + 21, "/pager", "firing", "FastBurn", "fp1"),
        _note(t + 25, "/pager", "firing", "FastBurn", "fp1"),
        {"received_at": t + 30, "path": "/ack", "payload": {"fingerprint": "fp1", "by": "incident commander"}},
        _note(t + 33, "/pager", "firing", "FulfilmentBurn", "fp2"),
        _note(t + 45, "/pager", "resolved", "FastBurn", "fp1"),
        _note(t + 50, "/pager", "firing", "FastBurn", "fp1"),
        _note(t + 55, "/pager", "resolved", "FulfilmentBurn", "fp2"),
        _note(t + 61, "/pager", "resolved", "FastBurn", "fp1"),
        _note(t + 62, "/tickets", "resolved", "CostOverBudget", "fpt"),
    ]
    bad = {"v9.1.1", "v9.1.2"}
    open_ = [
        n
        for n in pager
        if not (
            n["path"] == "/pager"
            and n["payload"]["alerts"][0]["fingerprint"] == "fp2"
            and n["payload"]["status"] == "resolved"
        )
    ]
    return [(pager, changes, bad), (open_, changes, bad)]


# ==================================================================== 10.6 the times
@check(
    "10.6",
    "The incident's times (start, detected, acknowledged, mitigated, resolved) and TTD/TTA/TTM/TTR, from real records",
    hints=[
        "Read them, do not remember them: the change log (lesson10.changes()) has the switches, the pager "
        "(lesson10.pager_log()) has every notification and acknowledgement with `received_at`.",
        "start = the first switch to a bad release; detected = the first firing notification on /pager at or after "
        "it (a ticket does not wake anyone); acknowledged = the first /ack of such a page; mitigated = the first "
        "switch after the start to a release that is not bad.",
        "resolved = once the latest notification of every page that fired since the start says resolved, the time of "
        "the last of those (None while one is open: a page can fire again). TTD = detected - start, TTA = "
        "acknowledged - detected, TTM = mitigated - start, TTR = resolved - start, in lab minutes (seconds).",
    ],
)
def check_times(r, ns):
    st, sc = drill(r)
    fn = r.need(ns, "incident_times", callable)
    for i, (pager, changes, bad) in enumerate(synthetic_cases(), 1):
        want = truth.incident_times(pager, changes, bad)
        got = r.call(fn, [dict(n) for n in pager], [dict(c) for c in changes], set(bad))
        wrong = [k for k in want if not isinstance(got, dict) or not _same(got.get(k), want[k])]
        r.expect(
            not wrong,
            f"incident_times is right on the check's incident #{i}",
            f"on the check's incident #{i}, incident_times got {', '.join(wrong)} wrong: "
            + ", ".join(
                f"{k} {got.get(k) if isinstance(got, dict) else got!r} (expected {want[k]})" for k in wrong[:3]
            ),
        )
    real = truth.now_times()
    r.require(
        real["resolved"] is not None,
        'the incident has resolved (every page got its "resolved")',
        "the incident has not resolved yet: a page is still open (lesson10.wait_resolved() waits for all)",
    )
    times = r.need(ns, "times", dict)
    wrong = [k for k in real if not (number(times.get(k)) and abs(times[k] - real[k]) <= 1.0)]
    r.expect(
        not wrong,
        "times matches the real records (within a second)",
        "times differs from the records in "
        + ", ".join(
            f"{k} ({signals.when(times.get(k)) if number(times.get(k)) else times.get(k)!r} vs {signals.when(real[k])})"
            for k in wrong
        ),
    )
    durations = r.need(ns, "durations", dict)
    want_d = truth.durations(real)
    wrong = [k for k in want_d if not truth.close(durations.get(k), want_d[k], rel=0, floor=1.0)]
    r.expect(
        not wrong,
        f"durations in lab minutes: {want_d}",
        "durations differ: "
        + ", ".join(f"{k} {durations.get(k)!r} (expected {want_d[k]})" for k in wrong)
        + " (lab minutes: one real second each)",
    )
    fig = ns.get("timeline_plot")
    r.expect(
        type(fig).__name__ == "Figure" and fig.axes,
        "timeline_plot is the timeline's figure",
        "timeline_plot should be the figure lesson10.plot_timeline(times, durations) returns",
    )


def _same(a, b) -> bool:
    if b is None:
        return a is None
    return number(a) and abs(a - b) <= 0.01


# ==================================================================== 10.7 the postmortem
def cause_matchers(sc) -> list[tuple[str, re.Pattern]]:
    """(what, a pattern a root cause naming it matches), one per fault of this drill."""
    out = [(f"the release {sc.first_bad.id}", re.compile(re.escape(sc.first_bad.id)))]
    if sc.drift:
        out.append(
            (
                "the hand-changed bucket notification",
                re.compile(rf"notification|{re.escape(sc.drift['setting'])}|aws_s3_bucket_notification", re.I),
            )
        )
    if sc.leak:
        out.append(("the scaling policy", re.compile(r"scaling polic|autoscal|polic\w* v?8\b|scale[- ]in", re.I)))
    return out


@check(
    "10.7",
    "The postmortem: blameless, its timeline and impact true to the records, an owned action per root cause",
    hints=[
        "Start from lessons/10_capstone-incident-response/postmortem-template.md and write l10_postmortem.md next "
        "to this notebook; fill every section (replace each <placeholder>).",
        "Timeline lines read `2026-12-06 04:14:31 detected: ...` (UTC, from `times`, see lesson10.when()); the Impact "
        "line gives the budget burnt over the whole incident (minutes and % of the 30-day budget, from "
        "budget_burnt over the whole incident, not the triage's early figure). Severity: SEV1 or SEV2 for a page.",
        "One numbered root cause per fault (the release, the notification changed by hand, the scaling policy), each "
        "with an action item whose `root cause` column names its number and whose owner is a team or role. Name "
        "systems and conditions, not people: no one's name, no 'human error'.",
    ],
)
def check_postmortem(r, ns):
    st, sc = drill(r)
    path = Path.cwd() / POSTMORTEM_FILE
    r.require(path.exists(), f"{POSTMORTEM_FILE} exists", f"{POSTMORTEM_FILE} does not exist next to this notebook")
    pm = postmortem.read(path)
    for p in pm.problems:
        r.expect(False, "", p)
    r.expect(
        pm.severity in ("SEV1", "SEV2"),
        f"severity {pm.severity}: a page that burns budget this fast",
        f"severity is {pm.severity or 'missing'}: a fast-burn page is SEV2 at least (the lesson's table)",
    )
    real = truth.now_times()
    r.require(real["resolved"] is not None, "the incident has resolved", "the incident has not resolved yet")
    for event in postmortem.EVENTS:
        got = pm.timeline.get(event)
        r.expect(
            got is not None and abs(got - real[event]) <= TOLERANCE_S,
            f"timeline: {event} at {signals.when(real[event])}",
            f"timeline: {event} is "
            + (f"{signals.when(got)}" if got else "missing")
            + f"; the records say {signals.when(real[event])} (UTC, within {TOLERANCE_S:g} s): copy from `times`",
        )
    want = truth.burnt(signals.prometheus(), st["started_at"] - 5, real["resolved"] + 1)
    r.expect(
        truth.close(pm.budget_minutes, want["minutes"]) and truth.close(pm.budget_percent, want["percent"], floor=0.07),
        f"impact: {want['minutes']:.1f} minutes, {want['percent']:.2f} % of the budget, as Prometheus says",
        f"impact says {pm.budget_minutes} minutes / {pm.budget_percent} %; over the whole incident Prometheus "
        f"says {want['minutes']:.2f} minutes / {want['percent']:.2f} % of the 30-day budget",
    )
    owned = [a for a in pm.actions if postmortem.owned(a)]
    for what, pattern in cause_matchers(sc):
        nums = [n for n, text in pm.root_causes.items() if pattern.search(text)]
        r.expect(nums, f"a root cause names {what}", f"no root cause names {what}")
        if nums:
            r.expect(
                any(set(a["causes"]) & set(nums) for a in owned),
                f"an owned action item addresses {what}",
                f"no action item with an owner names root cause {nums[0]} ({what})",
            )
    orphans = [n for n in pm.root_causes if not any(n in a["causes"] for a in owned)]
    r.expect(
        pm.root_causes and not orphans,
        "every root cause has an owned action item",
        f"root cause(s) {orphans or 'none listed'} have no action item with an owner",
    )
    found = postmortem.blame(pm, list(sc.approvers))
    r.expect(
        not found,
        "blameless: no one is named or blamed",
        f"not blameless: {', '.join(sorted(set(found)))} (name the system's conditions, not people)",
    )
