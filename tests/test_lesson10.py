"""Lesson 10 (the incident drill): unit tests of its parts, and the wrong-answer suite of its seven checks.

The unit tests need no lab. The wrong-answer suite (marked ``lab``) runs ONE drill with a pinned seed and walks the
incident in order, feeding each check the mistakes a responder is likely to make (through ``checktest.rejected``)
before the right answer, as a learner re-running a cell would. Run it in a test lab:

    CLOUDLAB_PORT_OFFSET=<yours> .venv/bin/python -m cloudlab.lab --profile test run -- \\
        .venv/bin/python -m pytest tests/test_lesson10.py -q
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from checktest import rejected

from cloudlab.lesson10 import checks_fix, checks_review, fleet, postmortem, release, scenario, stack, truth, worker


# ==================================================================== the scenario
def test_the_same_seed_gives_the_same_incident_and_seeds_vary_it():
    assert scenario.draw(7) == scenario.draw(7)
    many = [scenario.draw(s) for s in range(60)]
    assert {sc.route for sc in many} == set(scenario.ROUTES)
    assert {sc.first_bad.id.rsplit(".", 1)[1] for sc in many} == {"1", "2"}
    assert {sc.drift["setting"] for sc in many} == set(scenario.DRIFTS)
    assert {sc.leak["instance_type"] for sc in many} == set(scenario.LEAK_TYPES)
    assert len({sc.baseline.id for sc in many}) > 10  # release ids differ too: nothing to learn by heart


@pytest.mark.parametrize("level", [1, 2, 3])
def test_difficulty_adds_faults(level):
    sc = scenario.draw(11, level)
    assert (sc.drift is not None) == (level >= 2) and (sc.leak is not None) == (level >= 3)
    assert sc.first_bad.bad and not sc.last_good.bad
    ids = [r.id for r in sc.releases]
    assert ids.index(sc.last_good.id) == ids.index(sc.first_bad.id) - 1
    assert all(r.bad for r in sc.releases[ids.index(sc.first_bad.id) :])  # later releases carry the change


def test_a_bad_difficulty_is_refused():
    with pytest.raises(ValueError, match="difficulty"):
        scenario.draw(1, 4)


def test_the_scenario_round_trips_through_json():
    sc = scenario.draw(5)
    assert scenario.Scenario.from_dict(json.loads(json.dumps(sc.to_dict()))) == sc


def test_a_release_change_names_a_route_and_an_error():
    sc = scenario.draw(3)
    change = release.parse_change(json.dumps(sc.change))
    assert change["route"] == sc.route and change["span"] in ("inventory.Reserve", "cache.Get")
    assert release.parse_change("") is None
    with pytest.raises(ValueError, match="route"):
        release.parse_change(json.dumps({"route": "DELETE /orders"}))
    err = release.make_error("TimeoutError('inventory reservation timed out')")
    assert isinstance(err, TimeoutError) and str(err) == "inventory reservation timed out"


# ==================================================================== the worker and the watchers
def test_the_worker_reads_s3_events_and_skips_the_rest():
    body = json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2026-12-06T04:14:31.000Z",
                    "s3": {"object": {"key": "orders/abc.json"}},
                }
            ]
        }
    )
    ((key, event, when),) = worker.order_keys(body)
    assert (key, event) == ("orders/abc.json", "ObjectCreated:Put") and when == pytest.approx(1796530471.0)
    assert worker.order_keys(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    assert worker.order_keys("not json") == []


def test_the_watchers_use_lesson_04s_routing_in_lab_time():
    cfg = stack.alertmanager_config("http://127.0.0.1:1")
    assert cfg["route"]["group_wait"] == "500ms" and cfg["route"]["group_interval"] == "5s"
    assert {r["name"] for r in cfg["receivers"]} == {"pager", "tickets"}
    assert cfg["inhibit_rules"]
    ports = {"worker_metrics": 2, "platform": 3}
    jobs = [c["job_name"] for c in stack.prometheus_config(stack.LESSON_DIR, "127.0.0.1:4", ports)["scrape_configs"]]
    assert jobs == ["orders", "fulfilment", "platform"]


def test_a_scaling_policy_is_checked():
    assert fleet.check_policy(dict(fleet.GOOD_POLICY))
    for bad, words in (
        ({"min": 0}, "min"),
        ({"max": 1, "min": 2}, "min"),
        ({"metric": "cpu"}, "metric"),
        ({"target": 0}, "target"),
    ):
        with pytest.raises(ValueError, match=words):
            fleet.check_policy({**fleet.GOOD_POLICY, **bad})
    leaky = fleet.bad_policy({"max": 40, "instance_type": "c5.2xlarge"})
    assert leaky["scale_in"] is False and leaky["metric"] == "p95_latency_seconds"


# ==================================================================== the truth, and the reference answers
def test_incident_times_from_the_records():
    (pager, changes, bad), (open_, _, _) = checks_review.synthetic_cases()
    t = 1_700_000_000.0
    assert truth.incident_times(pager, changes, bad) == {
        "start": t + 12,
        "detected": t + 21,
        "acknowledged": t + 30,
        "mitigated": t + 40,
        "resolved": t + 61,
    }
    assert truth.incident_times(open_, changes, bad)["resolved"] is None
    assert truth.durations(truth.incident_times(pager, changes, bad)) == {"TTD": 9, "TTA": 9, "TTM": 28, "TTR": 49}
    assert truth.incident_times(pager, changes, set())["start"] is None


def test_close_and_phases():
    assert truth.close(10.0, 11.0) and not truth.close(5.0, 11.0) and not truth.close(True, 1.0)
    assert truth.close(0.1, 0.0) and not truth.close(float("nan"), 0.0)
    assert checks_fix.reference_phases(checks_fix.SYNTHETIC, 101.5, 106.5) == {
        "before": 280.0,
        "during": 9800.0,
        "after": 290.0,
    }
    assert checks_fix.reference_phases([], 0, 1) == {"before": None, "during": None, "after": None}


def test_the_budget_is_216_minutes():
    assert truth.BUDGET_MINUTES == pytest.approx(216.0)


# ==================================================================== the postmortem's parser
GOOD_PM = """# Postmortem: orders failed

**Severity:** SEV2 · **Status:** final

## Summary

Release v3.2.1 made POST /orders fail; a rollback stopped it.

## Impact

- Availability SLO (99.5 % over 30 days): 6.4 minutes of error budget burnt, 2.96 % of the 30-day budget.

## Timeline (UTC)

- 2026-11-02 14:02:31 start: release v3.2.1 went live
- 2026-11-02T14:09:10Z detected: the page
- 2026-11-02 14:11:45 UTC acknowledged: the incident commander
- 2026-11-02 14:17:03 mitigated: back to v3.2.0
- 2026-11-02 14:24:40 resolved: every page resolved

## Root causes

1. Release v3.2.1 shipped a client with a short timeout; no canary compared its errors.
2. The bucket notification was changed by hand.

## What went well

- The page came fast.

## What went wrong

- Nothing compared the releases.

## Action items

| # | action | owner | root cause |
|---|--------|-------|------------|
| 1 | Canary every release | orders team | 1 |
| 2 | Drift alerts | platform team | 2 |
"""


def test_a_postmortem_is_read_back():
    pm = postmortem.parse(GOOD_PM)
    assert pm.problems == [] and pm.severity == "SEV2"
    assert (pm.budget_minutes, pm.budget_percent) == (6.4, 2.96)
    assert set(pm.timeline) == set(postmortem.EVENTS)
    assert pm.timeline["detected"] - pm.timeline["start"] == 399
    assert sorted(pm.root_causes) == [1, 2]
    assert [a["causes"] for a in pm.actions] == [[1], [2]] and all(postmortem.owned(a) for a in pm.actions)
    assert postmortem.blame(pm, ["sam"]) == []


def test_the_template_is_full_of_placeholders():
    pm = postmortem.read(postmortem.TEMPLATE)
    assert pm.root_causes == {} and not pm.timeline and pm.severity is None
    assert not [a for a in pm.actions if postmortem.owned(a)]


def test_blame_and_placeholders_are_found():
    blaming = GOOD_PM.replace("no canary compared its errors", "sam was careless (human error)")
    assert set(postmortem.blame(postmortem.parse(blaming), ["sam"])) == {"careless", "human error", "sam"}
    unowned = GOOD_PM.replace("| orders team |", "| TBD |")
    assert not postmortem.owned(postmortem.parse(unowned).actions[0])
    empty = GOOD_PM.replace("- The page came fast.", "<...>")
    assert any("What went well" in p for p in postmortem.parse(empty).problems)


# ==================================================================== the wrong-answer suite, on one real drill
SEED = 15  # difficulty 3: the first release of the train is the first bad one (so it is not the latest)


def budget_burnt(prom, start, end):
    seconds = max(1, round(end - start))
    bad = prom.value(f'sum(increase(orders_requests_total{{job="orders", status=~"5.."}}[{seconds}s]))', at=end)
    total = prom.value(f'sum(increase(orders_requests_total{{job="orders"}}[{seconds}s]))', at=end)
    minutes = (bad or 0.0) / total * seconds if total else 0.0
    return {"minutes": round(minutes, 3), "percent": round(100 * minutes / 216, 4)}


ERROR_QUERY = (
    'sum by (route) (rate(orders_requests_total{job="orders", status=~"5.."}[1m]))'
    ' / sum by (route) (rate(orders_requests_total{job="orders"}[1m]))'
)


def make_backfill(s3, everything=False):
    def backfill(bucket):
        stored, shipped = [], set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                k = o["Key"]
                if k.startswith("orders/") and k.endswith(".json"):
                    stored.append(k[7:-5])
                elif k.startswith("shipments/") and k.endswith(".json"):
                    shipped.add(k[10:-5])
        todo = sorted(i for i in stored if everything or i not in shipped)

        def announce(i):
            k = f"orders/{i}.json"
            s3.copy_object(
                Bucket=bucket,
                Key=k,
                CopySource={"Bucket": bucket, "Key": k},
                MetadataDirective="REPLACE",
                Metadata={"backfill": "t"},
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(announce, todo))
        return todo

    return backfill


def phases(series, start, stop):
    return checks_fix.reference_phases(series, start, stop)


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    import os

    import cloudlab
    from cloudlab import lesson10

    cloudlab.connect()
    cloudlab.reset_lesson("10", quiet=True)
    here = tmp_path_factory.mktemp("l10")
    cwd = os.getcwd()
    os.chdir(here)  # the postmortem file goes next to "the notebook"
    st = lesson10.start(difficulty=3, seed=SEED, quiet=True)
    yield {"state": st, "sc": lesson10.system.the_scenario(), "l": lesson10}
    lesson10.stop()
    os.chdir(cwd)


def guess(prom, start, end):  # a number read off a dashboard
    return {"minutes": 12.0, "percent": 5.56}


def share_of_requests(prom, start, end):  # percent of requests, not of the budget
    got = budget_burnt(prom, start, end)
    return {"minutes": got["minutes"], "percent": 100 * got["minutes"] / max(1, end - start)}


def full_outage(prom, start, end):  # as if every request had failed
    return {"minutes": end - start, "percent": 100 * (end - start) / 216}


@pytest.mark.lab
def test_01_triage_rejects_no_ack_an_acked_ticket_and_guessed_impact(drill):
    l10, st = drill["l"], drill["state"]
    page = l10.wait_for_page()
    prom = l10.prometheus()
    window = (st["started_at"], time.time())
    right = {"budget_burnt": budget_burnt, "impact_window": window, "impact": budget_burnt(prom, *window)}
    rejected(l10.check_triage, right, "has no acknowledgement")  # taking the page is part of triage
    ticket = (
        next(p for p in l10.alerts_delivered() if p.path == "/tickets")
        if any(p.path == "/tickets" for p in l10.alerts_delivered())
        else l10.signals.Page("OrdersCostOverBudget", "firing", "0c993e77cb0dcc5b", 0, "/tickets", "ticket", "", "")
    )
    l10.acknowledge(ticket, by="ops")  # a ticket is not the page
    rejected(l10.check_triage, right, "has no acknowledgement")
    l10.acknowledge(page, by="incident commander")
    for wrong, words in (
        (guess, "Prometheus says"),
        (share_of_requests, "216-minute budget"),
        (full_outage, "Prometheus says"),
    ):
        rejected(l10.check_triage, {**right, "budget_burnt": wrong, "impact": wrong(prom, *window)}, *words.split("|"))
    late = (page.received_at - 1, time.time())  # starts after the incident did
    rejected(
        l10.check_triage,
        {**right, "impact_window": late, "impact": budget_burnt(prom, *late)},
        "should cover the incident",
    )
    l10.check_triage(right)


@pytest.mark.lab
def test_02_evidence_rejects_the_release_alone_and_the_latest_release(drill):
    l10, sc = drill["l"], drill["sc"]
    right = {
        "route": sc.route,
        "first_bad_release": sc.first_bad.id,
        "drifted_resource": scenario.DRIFT_RESOURCE,
        "drifted_setting": sc.drift["setting"],
    }
    l10.wait_for(lambda: "drift" in l10.system.read_json("happened.json", {}), 30)
    stop_at_release = {**right, "drifted_resource": None, "drifted_setting": None}
    rejected(l10.check_evidence, {"evidence": stop_at_release, "error_query": ERROR_QUERY}, "terraform plan")
    latest = {**right, "first_bad_release": sc.releases[-1].id}
    assert sc.releases[-1].id != sc.first_bad.id
    rejected(l10.check_evidence, {"evidence": latest, "error_query": ERROR_QUERY}, "not always the first bad")
    other = next(r for r in scenario.ROUTES if r != sc.route)
    rejected(l10.check_evidence, {"evidence": {**right, "route": other}, "error_query": ERROR_QUERY}, "route")
    rejected(
        l10.check_evidence,
        {"evidence": {**right, "drifted_setting": "queue"}, "error_query": ERROR_QUERY},
        "drifted_setting",
    )
    count = 'sum by (route) (increase(orders_requests_total{job="orders", status=~"5.."}[1m]))'
    rejected(l10.check_evidence, {"evidence": right, "error_query": count}, "between 0 and 1")
    rejected(l10.check_evidence, {"evidence": right, "error_query": "vector(0.5)"}, "route")
    everything = (
        'sum by (route) (rate(orders_requests_total{job="orders"}[1m])) / '
        'sum by (route) (rate(orders_requests_total{job="orders"}[1m]))'
    )
    rejected(l10.check_evidence, {"evidence": right, "error_query": everything}, "before the incident")
    l10.check_evidence({"evidence": right, "error_query": ERROR_QUERY})


@pytest.mark.lab
def test_03_mitigation_rejects_a_silence_a_bad_switch_and_a_restart_of_the_live_colour(drill):
    from cloudlab import net

    l10, sc = drill["l"], drill["sc"]
    am = l10.alertmanager()
    now = time.time()
    silence = net.request(
        "POST",
        am.url + "/api/v2/silences",
        {
            "matchers": [{"name": "alertname", "value": "OrdersErrorBudgetFastBurn", "isRegex": False}],
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
            "createdBy": "on call",
            "comment": "quiet please",
        },
    ).json()["silenceID"]
    rejected(l10.check_mitigation, {}, "a bad release still serves", "silence")
    am.expire(silence)
    live = l10.live_colour()
    idle = "green" if live == "blue" else "blue"
    assert l10.colours()[idle]["release"] != sc.last_good.id  # both colours run bad releases now
    l10.switch(idle)  # "roll back the last deploy": the other colour runs a bad release too
    rejected(l10.check_mitigation, {}, "a bad release still serves")
    l10.deploy_release(sc.last_good.id, idle)  # the good release on the LIVE colour: its requests fail meanwhile
    l10.switch(idle)
    l10.wait_resolved("OrdersErrorBudgetFastBurn", timeout=90)
    rejected(l10.check_mitigation, {}, "failed at the balancer")
    other = "green" if idle == "blue" else "blue"
    l10.deploy_release(sc.last_good.id, other)  # the right way: the idle colour, then the switch
    l10.switch(other)
    l10.check_mitigation({})


@pytest.mark.lab
def test_04_the_drift_fix_rejects_plan_only_code_accepting_the_drift_and_hand_fixes(drill):
    import cloudlab

    l10, sc = drill["l"], drill["sc"]
    s3 = cloudlab.client("s3")
    tf = l10.terraform()
    tf.plan(detailed_exitcode=True, show=False)  # plan, and stop there
    rejected(l10.check_drift, {"backfill": make_backfill(s3)}, "still finds changes", "not shipped")
    code, hand = sc.drift["code"], sc.drift["hand"]
    if sc.drift["setting"] == "queue_arn":
        code, hand = "data.aws_sqs_queue.fulfilment.arn", f'"{l10.system.queue_arn(hand)}"'
    else:
        code, hand = json.dumps(code), json.dumps(hand)
    text = tf.read("main.tf")
    field = sc.drift["setting"]
    changed = re.sub(
        rf"({field}\s*=\s*)(\[?){re.escape(code)}(\]?)", lambda m: m.group(1) + m.group(2) + hand + m.group(3), text
    )
    assert changed != text
    tf.write("main.tf", changed)  # make the code say what the console says
    tf.apply()
    rejected(l10.check_drift, {"backfill": make_backfill(s3)}, "differs from the code")
    l10.terraform(fresh=True)
    from cloudlab.lesson10.platform import hand_change

    hand_change(field, sc.drift["code"] if field != "queue_arn" else l10.system.FULFILMENT_QUEUE)
    cfg = {
        k: v for k, v in s3.get_bucket_notification_configuration(Bucket=l10.BUCKET).items() if k != "ResponseMetadata"
    }
    rules = cfg["QueueConfigurations"][0].setdefault("Filter", {"Key": {"FilterRules": []}})["Key"]["FilterRules"]
    rules.append({"Name": "suffix", "Value": ".json"})  # "fixed" in the console, one setting more than the code
    s3.put_bucket_notification_configuration(Bucket=l10.BUCKET, NotificationConfiguration=cfg)
    rejected(l10.check_drift, {"backfill": make_backfill(s3)}, "still finds changes")
    exact = {
        "QueueConfigurations": [
            {  # the console fix, exactly what the code says (and the lab's audit sees it)
                "Id": "new-orders-to-fulfilment",
                "QueueArn": l10.system.queue_arn(l10.system.FULFILMENT_QUEUE),
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "orders/"}]}},
            }
        ]
    }
    s3.put_bucket_notification_configuration(Bucket=l10.BUCKET, NotificationConfiguration=exact)
    rejected(l10.check_drift, {"backfill": make_backfill(s3)}, "by hand")
    tf.run("apply", "-auto-approve", "-no-color", "-replace=aws_s3_bucket_notification.orders")
    rejected(l10.check_drift, {"backfill": make_backfill(s3, everything=True)}, "each once")
    backfill = make_backfill(s3)
    backfill(l10.BUCKET)
    l10.check_drift({"backfill": backfill})


@pytest.mark.lab
def test_05_cost_rejects_terminating_without_fixing_the_policy(drill):
    import cloudlab

    l10 = drill["l"]
    l10.wait_for(lambda: len(l10.instances("worker")) > 8, 30)
    extra = [i["id"] for i in l10.instances("worker") if i["tags"].get("launched_by") == "autoscaler"]
    cloudlab.client("ec2").terminate_instances(InstanceIds=extra)  # the instances go, the policy stays
    rejected(l10.check_cost, {"phases": phases}, "can still run away")
    avg = lambda s, a, b: {**phases(s, a, b), "during": sum(v for t, v in s if a <= t <= b) / 5}  # noqa: E731
    rejected(l10.check_cost, {"phases": avg}, "phases(series, 101.5, 106.5)")
    first = lambda s, a, b: {**phases(s, a, b), "before": s[0][1]}  # noqa: E731
    rejected(l10.check_cost, {"phases": first}, "phases(series, 101.5, 106.5)")
    wide = {**fleet.GOOD_POLICY, "max": 40}  # scales in, but its ceiling is far above the budget
    l10.deploy_policy(wide)
    rejected(l10.check_cost, {"phases": phases}, "can still run away")
    webs = [i["id"] for i in l10.instances("web")]
    cloudlab.client("ec2").terminate_instances(InstanceIds=webs)  # "everything l10 goes"
    l10.deploy_policy(dict(fleet.GOOD_POLICY))
    rejected(l10.check_cost, {"phases": phases}, "hosts")
    for name, itype, role in fleet.BASE_FLEET[:2]:
        fleet.launch(name, itype, role, launched_by="terraform")
    pol = l10.changes("scaling_policy")
    leak = next(e["t"] for e in pol if not e["settings"]["scale_in"])
    fix = next(e["t"] for e in pol if e["t"] > leak and e["by"] == "you")
    last = pol[-1]["t"]

    def scaled_in():  # a sample after the last policy change, within budget; the workers within the policy
        later = l10.bill_history(start=last + 2) if time.time() > last + 3 else []
        workers = len(l10.instances("worker"))
        return later and later[-1][1] <= 1000 and fleet.GOOD_POLICY["min"] <= workers <= fleet.GOOD_POLICY["max"]

    l10.wait_for(scaled_in, 45)
    series = l10.bill_history()
    right = {"phases": phases, "bill_phases": phases(series, leak, fix), "bill_plot": l10.plot_bill(series, {})}
    rejected(l10.check_cost, {**right, "bill_phases": {**right["bill_phases"], "during": 1000.0}}, "bill_phases")
    l10.check_cost(right)


LESSON_TIMES = {
    "start": 1793628151.0,
    "detected": 1793628550.0,
    "acknowledged": 1793628705.0,
    "mitigated": 1793629023.0,
    "resolved": 1793629480.0,
}


def reference(pager, changes, bad):
    return truth.incident_times(pager, changes, bad)


@pytest.mark.lab
def test_06_times_reject_copied_times_tickets_and_the_first_resolution(drill):
    l10, sc = drill["l"], drill["sc"]
    l10.wait_resolved(timeout=120)
    bad = {r.id for r in sc.releases if r.bad}
    times = truth.incident_times(l10.pager_log(), l10.changes(), bad)
    durations = truth.durations(times)
    right = {
        "incident_times": reference,
        "times": times,
        "durations": durations,
        "timeline_plot": l10.plot_timeline(times, durations),
    }
    rejected(l10.check_times, {**right, "times": LESSON_TIMES}, "times differs")
    minutes = {k: v * 60 for k, v in durations.items()}
    rejected(l10.check_times, {**right, "durations": minutes}, "lab minutes")

    def any_notification(pager, changes, bad):
        out = reference(pager, changes, bad)
        out["detected"] = min(
            n["received_at"] for n in pager if n["path"] in ("/pager", "/tickets") and n["received_at"] >= out["start"]
        )
        return out

    rejected(l10.check_times, {**right, "incident_times": any_notification}, "detected")

    def first_resolution(pager, changes, bad):
        out = reference(pager, changes, bad)
        done = [n["received_at"] for n in pager if n["path"] == "/pager" and n["payload"]["status"] == "resolved"]
        out["resolved"] = min(done) if done else None
        return out

    rejected(l10.check_times, {**right, "incident_times": first_resolution}, "resolved")

    def any_switch(pager, changes, bad):
        out = reference(pager, changes, bad)
        out["mitigated"] = next(c["t"] for c in changes if c.get("kind") == "switch" and c["t"] > out["start"])
        return out

    rejected(l10.check_times, {**right, "incident_times": any_switch}, "mitigated")
    l10.check_times(right)


@pytest.mark.lab
def test_07_the_postmortem_rejects_copied_times_early_impact_blame_and_unowned_causes(drill):
    from pathlib import Path

    l10, sc, st = drill["l"], drill["sc"], drill["state"]
    times = truth.now_times()
    final = budget_burnt(l10.prometheus(), st["started_at"] - 5, times["resolved"] + 1)
    early = budget_burnt(l10.prometheus(), st["started_at"], times["detected"])
    W = l10.when

    def write(**k):
        impact = k.get("impact", final)
        stamps = k.get("times", times)
        causes = k.get(
            "causes",
            [
                f"Release {sc.first_bad.id} failed {sc.route}; no canary compared its errors.",
                f"The bucket notification ({sc.drift['setting']}) was changed outside Terraform.",
                "Scaling policy v8 scaled on latency with scale-in disabled.",
            ],
        )
        owners = k.get("owners", ["orders team", "platform team", "platform team"])
        text = (
            f"""# Postmortem

**Severity:** {k.get("severity", "SEV2")} · **Status:** final

## Summary

{k.get("summary", "A bad release and a hand change broke orders and fulfilment.")}

## Impact

- Availability SLO: {impact["minutes"]} minutes of error budget burnt, {impact["percent"]} % of the 30-day budget.

## Timeline (UTC)

"""
            + "\n".join(
                f"- {W(stamps[e]) if isinstance(stamps[e], float) else stamps[e]} {e}: ..." for e in postmortem.EVENTS
            )
            + "\n\n## Root causes\n\n"
            + "\n".join(f"{i}. {c}" for i, c in enumerate(causes, 1))
            + """

## What went well

- The page came fast.

## What went wrong

- Nothing compared the releases.

## Action items

| # | action | owner | root cause |
|---|--------|-------|------------|
"""
            + "\n".join(f"| {i} | fix it | {o} | {i} |" for i, o in enumerate(owners, 1))
            + "\n"
        )
        Path("l10_postmortem.md").write_text(text)

    write(times=LESSON_TIMES)
    rejected(l10.check_postmortem, {}, "timeline: start is 2026-11-02")
    write(impact=early)
    if abs(early["minutes"] - final["minutes"]) > max(0.15, 0.25 * final["minutes"]):
        rejected(l10.check_postmortem, {}, "impact says")
    write(
        summary=f"{sc.approvers[0]} approved a bad release.",
        causes=[
            f"Release {sc.first_bad.id} was approved by {sc.approvers[0]}: human error.",
            "The bucket notification was changed outside Terraform.",
            "Scaling policy v8 never scaled in.",
        ],
    )
    rejected(l10.check_postmortem, {}, "not blameless", sc.approvers[0])
    write(causes=[f"Release {sc.first_bad.id} failed {sc.route}."], owners=["orders team"])
    rejected(l10.check_postmortem, {}, "no root cause names the hand-changed bucket notification")
    write(owners=["orders team", "TBD", "platform team"])
    rejected(l10.check_postmortem, {}, "no action item with an owner")
    write(severity="SEV4")
    rejected(l10.check_postmortem, {}, "severity is SEV4")
    write()
    l10.check_postmortem({})
