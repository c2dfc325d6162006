"""Lesson 10's checks for the response: triage (10.1), the evidence (10.2) and the mitigation (10.3).

Each reads the real records (the pager, the change log, haproxy, Prometheus, Alertmanager) and compares them
with the drill's truth (:mod:`.truth`, :mod:`.scenario`); learner code is called again with times the notebook
never used."""

from __future__ import annotations

import time

from .. import deploy
from ..checks import check
from ..observability import prom
from . import scenario as scenario_mod
from . import signals, system, truth

ROUTE_NAMES = {"POST /orders": ("POST", "/orders"), "GET /orders/{id}": ("GET", "/orders/{id}")}


def drill(r) -> tuple[dict, scenario_mod.Scenario]:
    """The running drill's state and scenario, or a [missing] line saying to start it."""
    try:
        st = system.state()
    except system.DrillError:
        r.fail("no drill runs in this lab: run the setup cell at the top (lesson10.start()) first")
    if "started_at" not in st:
        r.fail("the drill did not finish starting: run the setup cell again")
    return st, system.the_scenario()


def number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


# ==================================================================== 10.1 triage
@check(
    "10.1",
    "Triage: the page acknowledged, the error budget burnt computed from Prometheus",
    hints=[
        "Acknowledge the page you got (lesson10.acknowledge(page, by=...)), then compute, do not estimate: bad "
        'requests / all requests in the window (status=~"5.." over orders_requests_total, job="orders"), times '
        "the window's length. In lab time one real second is one minute.",
        "With a window of `end - start` seconds, ask Prometheus at `end`: "
        'sum(increase(orders_requests_total{job="orders", status=~"5.."}[Ns])) and the same without the status; '
        "minutes = ratio x seconds; percent = 100 x minutes / 216 (30 days x 24 x 60 x 0.5 %).",
        "prom.value(query, at=end) returns one number (None when nothing matches: count it as 0); a window with no "
        "traffic burns nothing (return 0, never divide by zero). impact_window = (drill['started_at'], time.time()).",
    ],
)
def check_triage(r, ns):
    st, sc = drill(r)
    delivered = signals.pages()
    r.require(
        delivered,
        "a page reached the pager",
        "no page has reached the pager yet: wait for it (lesson10.wait_for_page()), then acknowledge it",
    )
    first = delivered[0]
    fps: dict[str, signals.Page] = {}
    for p in delivered:
        fps.setdefault(p.fingerprint, p)  # its first delivery (Alertmanager repeats a firing page)
    acks = signals.acks()
    good = [a for a in acks if a.get("fingerprint") in fps and a["received_at"] >= fps[a["fingerprint"]].received_at]
    r.expect(
        any(a["fingerprint"] == first.fingerprint for a in good),
        f"the first page ({first.alertname}) is acknowledged",
        f"the first page ({first.alertname}, fingerprint {first.fingerprint}) has no acknowledgement: "
        "lesson10.acknowledge(page, by=...) with the page lesson10.wait_for_page() returned",
    )
    budget_burnt = r.need(ns, "budget_burnt", callable)
    window = r.need(ns, "impact_window", (tuple, list), "pair (start, end) of epoch seconds")
    impact = r.need(ns, "impact", dict)
    r.require(
        len(window) == 2 and all(number(x) for x in window) and window[0] < window[1],
        "impact_window is (start, end)",
        f"impact_window should be (start, end) in epoch seconds, not {window!r:.80}",
    )
    start0 = truth.impact_start()
    r.require(
        start0 is not None, "the first bad release went live", "the incident has not started yet: wait for the page"
    )
    r.expect(
        window[0] <= start0 and window[1] >= first.received_at,
        "the window covers the incident from its start to the page",
        f"impact_window ({signals.when(window[0])} to {signals.when(window[1])}) should cover the incident from "
        f"before its start to the page ({signals.when(first.received_at)}): start it at drill['started_at']",
    )
    api = signals.prometheus()
    want = truth.burnt(api, window[0], window[1])
    r.require(
        set(impact) >= {"minutes", "percent"} and number(impact["minutes"]) and number(impact["percent"]),
        "impact has minutes and percent",
        f"impact should be {{'minutes': ..., 'percent': ...}}, not {impact!r:.120}",
    )
    r.expect(
        truth.close(impact["minutes"], want["minutes"]) and truth.close(impact["percent"], want["percent"], floor=0.07),
        f"impact matches Prometheus for that window ({want['minutes']:.2f} minutes, {want['percent']:.2f} % of "
        "the 30-day budget)",
        f"impact says {impact['minutes']} minutes / {impact['percent']} %, Prometheus says {want['minutes']:.2f} "
        f"minutes / {want['percent']:.2f} % of the budget for that window (percent of the 216-minute budget, not "
        "of requests)",
    )
    # the function, on windows the notebook never asked about: before the incident, and its first seconds
    before = (max(st["started_at"] - 6, start0 - 6), start0 - 0.5)
    during = (start0, min(time.time(), start0 + 8))
    for label, (a, b) in (("a healthy window before the incident", before), ("the incident's first seconds", during)):
        got = r.call(budget_burnt, api, a, b)
        ref = truth.burnt(api, a, b)
        ok = (
            isinstance(got, dict)
            and truth.close(got.get("minutes"), ref["minutes"])
            and truth.close(got.get("percent"), ref["percent"], floor=0.07)
        )
        r.expect(
            ok,
            f"budget_burnt agrees with Prometheus on {label}",
            f"budget_burnt(prom, {a:.0f}, {b:.0f}) ({label}) returned {got!r:.100}; Prometheus says "
            f"{ref['minutes']:.2f} minutes / {ref['percent']:.2f} %: compute it from the window you are given",
        )


# ==================================================================== 10.2 the evidence
@check(
    "10.2",
    "The evidence: the failing route, the first bad release, what drifted, and a query that shows it",
    hints=[
        "Break the 5xx ratio down by route and by release (Prometheus: sum by (route) / sum by (route), and the "
        "target label `release`), read the change log (lesson10.changes_table()) for when each release went live, "
        "and run `terraform plan` (tf = lesson10.terraform(); tf.plan()) to see what changed outside Terraform.",
        "The first bad release is the earliest one whose traffic fails, not the latest deploy; the route is the one "
        "whose ratio is high while the other stays near 0. If the plan shows a change, name the resource address "
        "(aws_s3_bucket_notification.orders) and the attribute it shows (filter_prefix, events or queue_arn).",
        "error_query must return one series per route with a `route` label and values between 0 and 1, e.g. "
        'sum by (route) (rate(orders_requests_total{job="orders", status=~"5.."}[1m])) / '
        'sum by (route) (rate(orders_requests_total{job="orders"}[1m])).',
    ],
)
def check_evidence(r, ns):
    st, sc = drill(r)
    ev = r.need(ns, "evidence", dict)
    route = str(ev.get("route", "")).strip()
    norm = " ".join(route.split()).replace("/orders/<id>", "/orders/{id}").upper().replace("{ID}", "{id}")
    r.expect(
        norm == sc.route.upper().replace("{ID}", "{id}"),
        f"the failing route is {sc.route}",
        f"evidence['route'] is {route!r}: that is not the route whose requests fail (one of "
        f"{', '.join(scenario_mod.ROUTES)})",
    )
    fb = str(ev.get("first_bad_release", "")).strip()
    latest = sc.releases[-1].id
    r.expect(
        fb == sc.first_bad.id,
        f"the first bad release is {sc.first_bad.id}",
        f"evidence['first_bad_release'] is {fb!r}"
        + (
            ": the latest deploy is not always the first bad one; when did the errors start?"
            if fb == latest
            else ": it should be a release id from the change log"
        ),
    )
    resource, setting = ev.get("drifted_resource"), ev.get("drifted_setting")
    if sc.drift is None:
        r.expect(
            not resource,
            "nothing drifted in this drill (difficulty 1), and the evidence says so",
            f"evidence names a drift ({resource!r}) but this drill's plan shows no change",
        )
    else:
        r.expect(
            str(resource or "").strip() == scenario_mod.DRIFT_RESOURCE,
            f"the drifted resource is {scenario_mod.DRIFT_RESOURCE}",
            f"evidence['drifted_resource'] is {resource!r}: the release is not the whole story; what does "
            "`terraform plan` say changed outside Terraform?"
            if not resource
            else f"evidence['drifted_resource'] is {resource!r}: not the address the plan shows",
        )
        want = sc.drift["setting"]
        r.expect(
            str(setting or "").strip().split(".")[-1] == want,
            f"the drifted setting is {want}",
            f"evidence['drifted_setting'] is {setting!r}: which attribute does the plan mark with ~ ?",
        )
    query = r.need(ns, "error_query", str)
    api = signals.prometheus()
    start0 = truth.impact_start()
    r.require(start0 is not None, "the incident started", "the incident has not started yet")
    _check_query(r, api, query, sc, healthy_at=start0 - 0.5, bad_at=min(time.time(), start0 + 12))


def _check_query(r, api, query: str, sc, healthy_at: float, bad_at: float) -> None:
    def run(at):
        try:
            return api.query(query, at=at)
        except prom.StackError as e:
            r.fail(f"Prometheus refused error_query: {str(e)[:200]}")

    bad = run(bad_at)
    method, path = ROUTE_NAMES[sc.route]
    rows = {(s["metric"].get("method"), s["metric"].get("route")): s["value"] for s in bad}
    by_route = {k[1]: v for k, v in rows.items()}
    r.require(
        bad and all("route" in s["metric"] for s in bad),
        "error_query returns series labelled by route",
        f"error_query returned {[s['metric'] for s in bad][:3] or 'nothing'}: it needs one series per route, "
        "with the `route` label (sum by (route) ...)",
    )
    values = [v for v in by_route.values() if v == v]
    r.expect(
        values and all(0 <= v <= 1 for v in values),
        "its values are ratios (0 to 1)",
        f"error_query's values {sorted(round(v, 2) for v in values)} are not all between 0 and 1: divide the 5xx "
        "rate by the rate of all requests",
    )
    worst = max(by_route, key=lambda k: by_route[k] if by_route[k] == by_route[k] else -1) if by_route else None
    others = [v for k, v in by_route.items() if k != path and v == v]
    r.expect(
        worst == path and by_route.get(path, 0) >= 0.1 and all(v < by_route[path] / 2 for v in others),
        f"during the incident it shows {path} failing ({by_route.get(path, 0):.0%}) and no other route",
        f"during the incident ({signals.when(bad_at)}) error_query shows "
        f"{ ({k: round(v, 2) for k, v in by_route.items()}) }: the failing route should stand out",
    )
    healthy = {s["metric"].get("route"): s["value"] for s in run(healthy_at)}
    r.expect(
        all(v != v or v < 0.05 for v in healthy.values()),
        "before the incident it shows no route failing",
        f"before the incident ({signals.when(healthy_at)}) error_query shows {healthy}: it should be near 0 for "
        "every route (is it a constant, or a count instead of a ratio?)",
    )


# ==================================================================== 10.3 the mitigation
@check(
    "10.3",
    "Mitigation: a good release takes the traffic, the availability page resolved, nothing failed at the switch",
    hints=[
        "Roll back with lesson 08's blue-green: start the last good release on the idle colour "
        "(lesson10.deploy_release(release, colour)), then lesson10.switch(colour). Silencing the alert hides it; it "
        "does not stop users' errors.",
        "The last good release is the one before the first bad one in the change log. If it still runs on the idle "
        "colour, a switch is enough. Never restart the live colour: its in-flight requests fail.",
        "Then wait for the page to resolve: lesson10.wait_resolved('OrdersErrorBudgetFastBurn'). If you created a "
        "silence, expire it (lesson10.alertmanager().expire(silence_id)).",
    ],
)
def check_mitigation(r, ns):
    st, sc = drill(r)
    start0 = truth.impact_start()
    r.require(start0 is not None, "the incident started", "the incident has not started yet: wait for the page")
    silences = [
        s
        for s in signals.alertmanager().silences()
        if s.get("status", {}).get("state") == "active"
        and any(
            m.get("value") in ("OrdersErrorBudgetFastBurn", "orders-availability", "page")
            for m in s.get("matchers", [])
        )
    ]
    r.expect(
        not silences,
        "no silence hides the availability alert",
        f"{len(silences)} active silence(s) hide the alert instead of resolving it: expire them "
        f"({', '.join(s['id'] for s in silences)})",
    )
    lb = system.balancer()
    served = {deploy.version_of(lb.url) for _ in range(4)}
    bad = {x.id for x in sc.releases if x.bad}
    r.expect(
        served and not served & bad and not any(s.startswith(("HTTP", "no answer")) for s in served),
        f"haproxy sends the traffic to {', '.join(sorted(served))}, a good release",
        f"haproxy's traffic is answered by {', '.join(sorted(served))}"
        + (": a bad release still serves" if served & bad else ""),
    )
    mine = [e for e in system.events("switch") if e["t"] > start0 and e.get("release") not in bad]
    r.expect(
        mine,
        "the change log records the switch to it",
        "the change log has no switch to a good release since the incident began: switch with "
        "lesson10.switch(colour), which records it (a pipeline would)",
    )
    firing = signals.firing()
    r.expect(
        "OrdersErrorBudgetFastBurn" not in firing,
        "Prometheus no longer fires the availability page",
        "Prometheus still fires OrdersErrorBudgetFastBurn: the burn has not stopped (or give it a few seconds: "
        "lesson10.wait_resolved('OrdersErrorBudgetFastBurn'))",
    )
    notes = [
        p
        for p in signals.alerts_delivered()
        if p.alertname == "OrdersErrorBudgetFastBurn" and p.path == "/pager" and p.received_at >= start0
    ]
    r.expect(
        notes and notes[-1].status == "resolved",
        'the pager\'s last word on the page is "resolved"',
        'the pager has not had "resolved" for OrdersErrorBudgetFastBurn after its last "firing": wait for it '
        "(Alertmanager sends it within its group_interval, 5 lab minutes)",
    )
    if mine:
        last = mine[-1]  # the mitigation in force: the latest switch to a good release, and its colour's last deploy
        prepared = [
            e["t"] for e in system.events("deploy") if e.get("colour") == last["to"] and start0 < e["t"] < last["t"]
        ]
        a = (prepared[-1] if prepared else last["t"]) - 0.5
        failed, total = truth.balancer_failures(a, last["t"] + 3)
        bound = max(2, round(0.01 * total))
        r.expect(
            failed <= bound,
            f"{failed} of {total} requests failed at the balancer during the mitigation (bound: {bound})",
            f"{failed} of {total} requests failed at the balancer (502/503/504 or no answer) between the deploy of "
            f"{last['release']} on {last['to']} and 3 s after the switch (bound: {bound}): that colour was serving "
            "while it restarted. Deploy the good release on the idle colour, then switch to it.",
        )
