"""Checks 04.6-04.7: the learner's Alertmanager routing (with grouping and inhibition) and a silence.

They read real state: ``amtool``'s verdict on the learner's file, the configuration the live
Alertmanager runs, its alerts API (inhibited? silenced?) and what the lab's receiver really got.
Every run uses fresh label values, so nothing left by an earlier run can make a check pass.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from .. import net
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


# What the task asks of every route (Alertmanager's own defaults for the three timings are the same values,
# so leaving them out is right too; group_by has no default: without it every alert is a group of its own).
TIMING = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
GROUP_BY = {"alertname", "slo"}


def route_settings(route: dict, inherited: dict | None = None, path: str = "route") -> list[tuple[str, dict]]:
    """``[(where, effective settings)]`` for a route and every child route below it: group_by and the three
    timings, each inherited from the parent route unless the route sets its own (as Alertmanager does)."""
    defaults = {k: prom.format_duration(prom.parse_duration(v)) for k, v in TIMING.items()}
    here = dict(inherited or {"group_by": None, **defaults})
    if not isinstance(route, dict):
        return []
    if isinstance(route.get("group_by"), list):
        here["group_by"] = route["group_by"]
    for key in TIMING:
        if key in route:
            try:
                here[key] = prom.format_duration(prom.parse_duration(str(route[key])))
            except ValueError:
                here[key] = str(route[key])
            here[f"{key} as written"] = str(route[key])
    out = [(path, here)]
    for i, child in enumerate(route.get("routes") or []):
        out += route_settings(child, here, f"{path}.routes[{i}]")
    return out


def timing_problems(route: dict) -> list[str]:
    """What differs from the task's grouping and timing, route by route."""
    want = {k: prom.format_duration(prom.parse_duration(v)) for k, v in TIMING.items()}
    problems = []
    for where, eff in route_settings(route):
        if eff["group_by"] is None:
            problems.append(f"{where} has no group_by: all its alerts, of every SLO, share one notification")
        elif set(map(str, eff["group_by"])) != GROUP_BY and eff["group_by"] != ["..."]:
            problems.append(f"{where} groups by {eff['group_by']}, not [alertname, slo]")
        for key, value in want.items():
            if eff[key] != value:
                written = eff.get(f"{key} as written", eff[key])
                problems.append(f"{where} has {key}: {written}, the task says {TIMING[key]}")
    return problems


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
    problems = timing_problems(routes["route"])
    r.expect(
        not problems,
        "every route groups by alertname and slo and waits 30s / 5m / 4h (read from your file: the live test below "
        "runs in lab time and cannot wait four hours to see a repeat)",
        "; ".join(problems[:3]) + ": a repeat every few minutes wakes the on-call all night for one problem, "
        "a group_wait of minutes delays every page",
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
    # another team's maintenance, already silenced: a function that clears silences first would end it
    theirs = _post_silence(st.alertmanager.url, f"check-{run_id}-theirs", 60, f"check 04.7 {run_id}: theirs")
    made: list[str] = []
    try:
        with west_of_utc():
            sid = r.call(silence_service, st.alertmanager.url, service, 30, f"check 04.7 {run_id}: maintenance")
        r.require(
            isinstance(sid, str) and sid,
            "it returns the silence's id",
            f"silence_service returned {sid!r:.80}; return the silenceID from Alertmanager's answer",
        )
        made.append(sid)
        s = st.alertmanager.silence(sid)
        r.require(
            s is not None, f"Alertmanager holds the silence {sid}", f"Alertmanager has no silence with id {sid!r}"
        )
        _expect_silence(r, s, service, 30, f"check 04.7 {run_id}: maintenance")
        # a second window: another service, another length, another reason
        service2, comment2 = f"check-{run_id}-db", f"check 04.7 {run_id}: database upgrade, ticket {run_id}"
        with west_of_utc():
            sid2 = r.call(silence_service, st.alertmanager.url, service2, 45, comment2)
        s2 = st.alertmanager.silence(sid2) if isinstance(sid2, str) and sid2 and sid2 != sid else None
        if isinstance(sid2, str):
            made.append(sid2)
        r.require(
            s2 is not None,
            "a second call makes a second silence",
            f"a second call (service {service2}, 45 minutes) returned {sid2!r:.60}, not a new silence's id",
        )
        _expect_silence(r, s2, service2, 45, comment2, second=True)
        page = {"alertname": sc.PAGE, "severity": "page", "slo": sc.SLO_NAME, "check": run_id}
        alerts = [synthetic({**page, "service": service}), synthetic({**page, "service": other})]
        st.alertmanager.post_alerts(alerts)

        def states():
            got = {a["labels"]["service"]: a["status"] for a in st.alertmanager.alerts(check=run_id)}
            return got if len(got) == 2 else None

        got = wait_for(states, 5.0) or {}
        resolve(st.alertmanager, alerts)
        still = st.alertmanager.silence(theirs) if theirs else None
    except prom.StackError as e:
        r.fail(str(e))
    finally:
        for x in [*made, theirs]:
            if x:
                with contextlib.suppress(prom.StackError):
                    st.alertmanager.expire(x)
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
    r.expect(
        theirs is None or (still or {}).get("status", {}).get("state") == "active",
        "another team's silence is still active",
        "another team's active silence was expired by your function: create yours, touch nothing else",
    )


def _post_silence(url: str, service: str, minutes: int, comment: str) -> str | None:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "service", "value": service, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
        "createdBy": "check 04.7",
        "comment": comment,
    }
    answer = net.request("POST", f"{url}/api/v2/silences", body)
    return answer.json().get("silenceID") if answer.status == 200 else None


def _expect_silence(r, s: dict, service: str, minutes: int, comment: str, second: bool = False) -> None:
    """One silence, as Alertmanager holds it: active now, ``minutes`` long, one matcher, the reason given."""
    which = f"the second one ({service}, {minutes} min)" if second else "it"
    state = s["status"]["state"]
    starts = datetime.fromisoformat(s["startsAt"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00"))
    r.expect(
        state == "active",
        f"{which} is active now",
        f"{which} is {state}, not active: it "
        + ("starts in the future: give startsAt in UTC, not local time" if state == "pending" else "already ended"),
    )
    length = (ends - starts).total_seconds() / 60
    r.expect(
        minutes - 1 <= length <= minutes + 1,
        f"{which} lasts {minutes} minutes",
        f"{which} lasts {length:.1f} minutes, not {minutes}: "
        + ("use the `minutes` argument" if second and 29 <= length <= 31 else "minutes, not seconds or hours"),
    )
    left = (ends - datetime.now(UTC)).total_seconds() / 60
    r.expect(
        minutes - 2 <= left <= minutes + 1,
        f"{which} ends {minutes} minutes from now",
        f"{which} ends {left:.0f} minutes from now, not {minutes}: were the times in UTC?",
    )
    want = [{"name": "service", "value": service, "isRegex": False, "isEqual": True}]
    got = [{k: m.get(k) for k in ("name", "value", "isRegex", "isEqual")} for m in s.get("matchers", [])]
    r.expect(
        got == want,
        f"{which} matches exactly service={service}",
        f"{which}'s matchers are {got}; it should match exactly service=<the service> (one equality matcher)",
    )
    r.expect(
        bool(str(s.get("createdBy", "")).strip()) and str(s.get("comment", "")).strip() == comment,
        f"{which} says who made it, and why (the comment it was given)",
        f"{which} has createdBy {s.get('createdBy')!r} and comment {s.get('comment')!r}: createdBy must name who "
        f"silenced it, and the comment is the one given ({comment!r})",
    )
