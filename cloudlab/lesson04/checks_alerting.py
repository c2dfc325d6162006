"""Checks 04.6-04.7: the learner's Alertmanager routing (with grouping and inhibition) and a silence.

They read real state: ``amtool``'s verdict on the learner's file, the configuration the live
Alertmanager runs, its alerts API (inhibited? silenced?) and what the lab's receiver really got.
Every run uses fresh label values, so nothing left by an earlier run can make a check pass.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from ..checks import check
from ..observability import prom, receiver
from ..observability.promtool import route_receivers
from . import scenarios as sc
from .checks_rules import learner_file, learner_yaml, scratch
from .files import candidate_config
from .stack import RuleFileError, current, wait_for

ROUTES_FILE = "l04_alertmanager.yml"
ROUTE_CASES = [
    ({"alertname": sc.PAGE, "severity": "page", "slo": sc.SLO_NAME, "service": "orders"}, ["pager"], "a page"),
    ({"alertname": sc.TICKET, "severity": "ticket", "slo": sc.SLO_NAME, "service": "orders"}, ["tickets"], "a ticket"),
    ({"alertname": sc.PAGE, "severity": "page", "slo": "payments-latency"}, ["pager"], "a page of another SLO"),
    ({"alertname": "DiskWillFillIn4h", "severity": "info"}, ["tickets"], "an alert of no known severity"),
]


def _stamp(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def synthetic(labels: dict, seconds: float = 120) -> dict:
    """An alert as Prometheus sends it, firing for ``seconds`` from now."""
    return {"labels": labels, "startsAt": _stamp(0), "endsAt": _stamp(seconds), "generatorURL": "http://check"}


def resolve(am, alerts: list[dict]) -> None:
    try:
        am.post_alerts([dict(a, endsAt=_stamp(0)) for a in alerts])
    except prom.StackError:
        pass


# ------------------------------------------------------------------ 04.6 routing, grouping, inhibition
@check(
    "04.6",
    "Alertmanager pages for pages only, one notification per SLO, and holds tickets back during a page",
    hints=[
        'route: a default receiver `tickets`, and one child route that sends severity="page" to `pager`. '
        "group_by the alert name and the SLO. inhibit_rules: a page holds back the ticket.",
        "Grouping and timing go on the route: group_by: [alertname, slo], group_wait: 30s, group_interval: 5m, "
        "repeat_interval: 4h. The inhibition needs source_matchers, target_matchers and `equal`.",
        "inhibit_rules: [{source_matchers: ['severity=\"page\"'], target_matchers: ['severity=\"ticket\"'], "
        "equal: [slo]}]: only the ticket of the SAME SLO is held back. Then lesson04.apply_routes(...).",
    ],
)
def check_routes(r, ns):
    path = learner_file(r, ROUTES_FILE)
    routes = learner_yaml(r, path)
    r.require(isinstance(routes.get("route"), dict), "it has a route tree", f"{path.name} has no `route:` mapping")
    try:
        candidate, run = candidate_config(path, scratch("04.6"))
    except RuleFileError as e:
        r.fail(str(e))
    r.require(
        run.ok, f"`{run.command}` accepts it (with the lab's receivers)", f"`{run.command}`:\n{run.output[-600:]}"
    )
    for labels, want, what in ROUTE_CASES:
        got, tool = route_receivers(candidate, labels)
        r.expect(
            got == want,
            f"{what} goes to {want[0]} only",
            f"{what} ({', '.join(f'{k}={v}' for k, v in labels.items())}) goes to {got or tool.output[-200:]}, "
            f"not just {want[0]}",
        )
    st = current()
    try:
        live = st.alertmanager.config_hash()
    except (prom.StackError, ValueError) as e:
        r.fail(str(e))
    r.require(
        live == prom.config_hash(candidate.read_bytes()),
        "the live Alertmanager runs your routes (in lab time)",
        f"the live Alertmanager does not run your current {path.name}: run lesson04.apply_routes({path.name!r})",
    )
    group_wait = (routes["route"] or {}).get("group_wait", "30s")
    run_id = uuid.uuid4().hex[:8]
    slo_a, slo_c, slo_b = (f"check-{run_id}-{x}" for x in "acb")
    base = {"check": run_id, "service": "orders"}
    p1 = synthetic({**base, "alertname": sc.PAGE, "severity": "page", "slo": slo_a, "instance": "a"})
    p2 = synthetic({**base, "alertname": sc.PAGE, "severity": "page", "slo": slo_a, "instance": "b"})
    p3 = synthetic({**base, "alertname": sc.PAGE, "severity": "page", "slo": slo_c})
    t_a = synthetic({**base, "alertname": sc.TICKET, "severity": "ticket", "slo": slo_a})
    t_b = synthetic({**base, "alertname": sc.TICKET, "severity": "ticket", "slo": slo_b})
    sent = [p1, p2, p3, t_a, t_b]
    since = time.time()
    st.alertmanager.post_alerts(sent)
    try:
        wait = min(12.0, 6.0 + prom.parse_duration(prom.lab_duration(group_wait)) / 1000)
    except ValueError:
        wait = 4.0

    def mine():
        return receiver.delivered(st.delivered(since), check=run_id)

    wait_for(lambda: len({x[2]["slo"] + x[2].get("instance", "") + x[0] for x in mine()}) >= 4, wait)
    time.sleep(0.3)  # anything that should NOT arrive has had its chance too
    held = {a["labels"]["slo"] + a["labels"]["severity"]: a["status"] for a in st.alertmanager.alerts(check=run_id)}
    resolve(st.alertmanager, sent)
    r.expect(
        held.get(slo_a + "ticket", {}).get("inhibitedBy"),
        "the ticket of the paging SLO is inhibited",
        "the ticket of an SLO that pages right now is NOT inhibited: the inhibition does not match it "
        "(source: the page, target: the ticket, equal: the label they share)",
    )
    r.expect(
        not held.get(slo_b + "ticket", {}).get("inhibitedBy"),
        "the ticket of an SLO that does not page still goes out",
        "the ticket of an SLO that does NOT page is inhibited too: `equal` must name the SLO label",
    )
    r.expect(
        not any(held.get(k, {}).get("inhibitedBy") for k in (slo_a + "page", slo_c + "page")),
        "pages are never inhibited",
        "a page is inhibited: source and target are the wrong way round",
    )
    notes = [n for n in st.delivered(since) if receiver.delivered([n], check=run_id)]
    pager = [n for n in notes if n["path"] == "/pager"]
    tickets = [n for n in notes if n["path"] == "/tickets"]
    page_a = [n for n in pager if {a["labels"]["slo"] for a in n["payload"]["alerts"]} & {slo_a}]
    r.expect(
        len(page_a) == 1 and len(page_a[0]["payload"]["alerts"]) == 2,
        "the two pages of one SLO arrive as ONE notification",
        f"the two pages of one SLO (differing only by instance) arrived as {len(page_a)} notifications "
        f"({[len(n['payload']['alerts']) for n in page_a]} alerts each): group by alertname and slo",
    )
    r.expect(
        page_a and all({a["labels"]["slo"] for a in n["payload"]["alerts"]} == {slo_a} for n in page_a),
        "pages of different SLOs arrive separately",
        "pages of two different SLOs arrived in the same notification: add slo to group_by",
    )
    got_tickets = {a["labels"]["slo"] for n in tickets for a in n["payload"]["alerts"]}
    r.expect(
        got_tickets == {slo_b},
        "the tickets receiver got only the ticket that was not held back",
        f"the tickets receiver got tickets of {sorted(got_tickets) or 'no SLO'}; "
        "expected only the SLO that does not page",
    )


# ------------------------------------------------------------------ 04.7 a silence
@contextmanager
def west_of_utc():
    """Run code as a learner in New York would: a naive local time is then five hours behind UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "EST5EDT,M3.2.0,M11.1.0"  # POSIX rule: works without the tz database
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


@check(
    "04.7",
    "A maintenance silence through the API mutes exactly one service",
    hints=[
        "POST a JSON object to {am_url}/api/v2/silences with matchers, startsAt, endsAt, createdBy and comment; "
        'the answer is {"silenceID": ...}: return that id.',
        'One matcher: {"name": "service", "value": service, "isRegex": False, "isEqual": True}. '
        "Times are RFC 3339 in UTC: datetime.now(UTC).isoformat(), not datetime.now() (that is local time).",
        "endsAt = startsAt + timedelta(minutes=minutes). cloudlab.net.request('POST', url, body) sends JSON "
        "and .json() reads the answer.",
    ],
)
def check_silence(r, ns):
    silence_service = r.need(ns, "silence_service", callable)
    st = current()
    run_id = uuid.uuid4().hex[:8]
    service, other = f"check-{run_id}", f"check-{run_id}-other"
    with west_of_utc():
        sid = r.call(silence_service, st.alertmanager.url, service, 30, f"check 04.7 {run_id}: maintenance")
    r.require(
        isinstance(sid, str) and sid,
        "it returns the silence's id",
        f"silence_service returned {sid!r:.80}; return the silenceID from Alertmanager's answer",
    )
    s = st.alertmanager.silence(sid)
    r.require(s is not None, f"Alertmanager holds the silence {sid}", f"Alertmanager has no silence with id {sid!r}")
    try:
        state = s["status"]["state"]
        starts = datetime.fromisoformat(s["startsAt"].replace("Z", "+00:00"))
        ends = datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00"))
        r.expect(
            state == "active",
            "it is active now",
            f"it is {state}, not active: it "
            + ("starts in the future: give startsAt in UTC, not local time" if state == "pending" else "already ended"),
        )
        minutes = (ends - starts).total_seconds() / 60
        r.expect(
            29 <= minutes <= 31,
            "it lasts 30 minutes",
            f"it lasts {minutes:.1f} minutes, not 30 (minutes, not seconds or hours)",
        )
        left = (ends - datetime.now(UTC)).total_seconds() / 60
        r.expect(
            28 <= left <= 31,
            "it ends 30 minutes from now",
            f"it ends {left:.0f} minutes from now, not 30: were the times in UTC?",
        )
        want = [{"name": "service", "value": service, "isRegex": False, "isEqual": True}]
        got = [{k: m.get(k) for k in ("name", "value", "isRegex", "isEqual")} for m in s.get("matchers", [])]
        r.expect(
            got == want,
            f"it matches exactly service={service}",
            f"its matchers are {got}; it should match exactly service=<the service> (one equality matcher)",
        )
        r.expect(
            bool(str(s.get("createdBy", "")).strip()) and bool(str(s.get("comment", "")).strip()),
            "it says who made it and why",
            "createdBy and comment must say who silenced what, and why",
        )
    finally:
        try:
            page = {"alertname": sc.PAGE, "severity": "page", "slo": sc.SLO_NAME, "check": run_id}
            alerts = [synthetic({**page, "service": service}), synthetic({**page, "service": other})]
            st.alertmanager.post_alerts(alerts)

            def states():
                got = {a["labels"]["service"]: a["status"] for a in st.alertmanager.alerts(check=run_id)}
                return got if len(got) == 2 else None

            got = wait_for(states, 5.0) or {}
            resolve(st.alertmanager, alerts)
            st.alertmanager.expire(sid)
        except prom.StackError as e:
            r.fail(str(e))
    r.expect(
        sid in (got.get(service) or {}).get("silencedBy", []),
        "an alert of that service is silenced by it",
        f"an alert with service={service} is not silenced by it (state {(got.get(service) or {}).get('state')})",
    )
    r.expect(
        not (got.get(other) or {}).get("silencedBy"),
        "an alert of another service still goes out",
        "an alert of ANOTHER service is silenced too: match only the service you maintain",
    )
