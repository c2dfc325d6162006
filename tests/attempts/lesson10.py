"""Lesson 10: one plausible wrong attempt per check, run in the retry notebook between the blank task and the
solution (see the brief's "Retry attempts"). A task whose cell holds several solution blocks gets a tuple, one
string per block, in order. The drill runs once for the whole notebook, so each wrong attempt leaves the state a
learner's would (an acknowledged page, a silence, re-announced orders, terminated instances) and the solution after
it must still pass."""

ATTEMPTS = {
    # 10.1: the page taken, the impact read off a dashboard instead of computed
    "10.1": (
        'lesson10.acknowledge(page, by="on call")\n'
        "\n"
        "\n"
        "def budget_burnt(prom, start, end):\n"
        '    return {"minutes": 12.0, "percent": 5.56}  # what the graph seemed to say\n'
        "\n"
        "\n"
        'impact_window = (drill["started_at"], time.time())\n'
        "impact = budget_burnt(prom, *impact_window)"
    ),
    # 10.2: blames the latest deploy and stops there (no terraform plan, so no drift)
    "10.2": (
        'error_query = (\'sum by (route) (rate(orders_requests_total{job="orders", status=~"5.."}[1m]))\'\n'
        "               ' / sum by (route) (rate(orders_requests_total{job=\"orders\"}[1m]))')\n"
        'by_route = {s["metric"]["route"]: s["value"] for s in prom.query(error_query)}\n'
        "worst = max(by_route, key=by_route.get)\n"
        'deploys = [e["release"] for e in lesson10.changes("deploy")]\n'
        "evidence = {\n"
        '    "route": ("POST " if worst == "/orders" else "GET ") + worst,\n'
        '    "first_bad_release": deploys[-1],\n'
        '    "drifted_resource": None,\n'
        '    "drifted_setting": None,\n'
        "}"
    ),
    # 10.3: silences the page instead of stopping the errors
    "10.3": (
        "from cloudlab import net\n"
        "\n"
        "am = lesson10.alertmanager()\n"
        "now = time.time()\n"
        'stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))\n'
        'net.request("POST", am.url + "/api/v2/silences", {\n'
        '    "matchers": [{"name": "alertname", "value": "OrdersErrorBudgetFastBurn", "isRegex": False}],\n'
        '    "startsAt": stamp(now), "endsAt": stamp(now + 3600), "createdBy": "on call",\n'
        '    "comment": "too noisy while we look into it"})'
    ),
    # 10.4: re-announces every order (shipped ones would ship twice), and only plans: the drift stays
    "10.4": (
        'keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="orders/")\n'
        '        for o in p.get("Contents", [])]\n'
        "\n"
        "def announce(key):\n"
        '    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},\n'
        '                   MetadataDirective="REPLACE", Metadata={"backfill": "l10"})\n'
        "\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    list(pool.map(announce, keys))\n"
        'return sorted(k[len("orders/") : -len(".json")] for k in keys)',
        "tf = lesson10.terraform()\ntf.plan(detailed_exitcode=True)",
    ),
    # 10.5: "during" as the average; terminates the extra instances by hand and leaves the policy in force
    "10.5": (
        "inside = [v for t, v in series if start <= t <= stop]\n"
        "return {\n"
        '    "before": [v for t, v in series if t <= start][-1],\n'
        '    "during": sum(inside) / len(inside),\n'
        '    "after": series[-1][1],\n'
        "}",
        'extra = [i["id"] for i in lesson10.instances("worker") if i["tags"].get("launched_by") == "autoscaler"]\n'
        "if extra:\n"
        '    cloudlab.client("ec2").terminate_instances(InstanceIds=extra)\n'
        'leak_start, leak_stop = lesson10.changes("scaling_policy")[-1]["t"], time.time()',
    ),
    # 10.6: the times of the lesson's example incident, not of this one (and no wait for the end)
    "10.6": (
        'return {"start": 1793628151.0, "detected": 1793628550.0, "acknowledged": 1793628705.0,\n'
        '        "mitigated": 1793629023.0, "resolved": 1793629480.0}',
        "pass",
    ),
    # 10.7: names a person as the cause, and the timeline is the lesson's example
    "10.7": (
        "postmortem = '''# Postmortem: orders failed\n"
        "\n"
        "**Severity:** SEV2 · **Status:** final\n"
        "\n"
        "## Summary\n"
        "\n"
        "A release approved in a hurry broke orders.\n"
        "\n"
        "## Impact\n"
        "\n"
        "- Availability SLO: 6.4 minutes of error budget burnt, 2.96 % of the 30-day budget.\n"
        "\n"
        "## Timeline (UTC)\n"
        "\n"
        "- 2026-11-02 14:02:31 start: release went live\n"
        "- 2026-11-02 14:09:10 detected: paged\n"
        "- 2026-11-02 14:11:45 acknowledged: on call\n"
        "- 2026-11-02 14:17:03 mitigated: rolled back\n"
        "- 2026-11-02 14:24:40 resolved: all clear\n"
        "\n"
        "## Root causes\n"
        "\n"
        "1. Human error: the release was approved without testing.\n"
        "\n"
        "## What went well\n"
        "\n"
        "- The rollback was quick.\n"
        "\n"
        "## Action items\n"
        "\n"
        "| # | action | owner | root cause |\n"
        "|---|--------|-------|------------|\n"
        "| 1 | Be more careful | TBD | 1 |\n"
        "'''"
    ),
}
