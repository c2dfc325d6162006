"""Lesson 03's checks of cost alerts: the alarm that pages (03.4) and the budget (03.5).

03.4 never forces the alarm: it publishes real charges and lets the emulator evaluate the learner's alarm
(its namespace, dimension, statistic and period must match the data), and it reads the queue policy
that real AWS needs before SNS may deliver to SQS (LocalStack delivers without one)."""

from __future__ import annotations

import ast
import contextlib
import inspect
import textwrap
from datetime import UTC, datetime

from .. import aws, pager
from ..checks import check
from .resources import BILLING_NAMESPACE, account_id, describe_budget, nonce, put_charges

PAGE_WAIT = 25.0  # seconds: the emulator evaluates a 10-second alarm every 10 s; the rest is margin for load


def _queue_arn(r, sqs, url) -> str:
    try:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    except Exception as e:  # a wrong URL, or not a string at all
        r.fail(
            f"create_pager's second value should be the queue's URL, but {url!r:.80} is not one ({type(e).__name__})"
        )


def _subscriptions(r, sns, topic) -> list[dict]:
    try:
        return sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    except Exception as e:
        r.fail(
            f"create_pager's first value should be the topic's ARN, but {topic!r:.80} is not one ({type(e).__name__})"
        )


def _calls_wire_pager(fn) -> bool:
    """Does the function's code call wire_pager (a call, not a comment)?"""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(
        isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) == "wire_pager"
        for n in ast.walk(tree)
    )


def _delete(name: str, topic, url) -> None:
    sns, sqs, cw = aws.client("sns"), aws.client("sqs"), aws.client("cloudwatch")
    with contextlib.suppress(Exception):
        cw.delete_alarms(AlarmNames=[name])
    topics = {t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":" + name)}
    queues = set(sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []))
    if isinstance(topic, str):
        topics.add(topic)
    if isinstance(url, str):
        queues.add(url)
    for t in topics:
        with contextlib.suppress(Exception):
            sns.delete_topic(TopicArn=t)
    for q in queues:
        with contextlib.suppress(Exception):
            sqs.delete_queue(QueueUrl=q)


@check(
    "03.4",
    "A cost alarm that pages",
    hints=[
        "create_pager: a topic, a queue, a queue policy that lets the topic send to the queue (real AWS needs it), "
        "and a subscription of the queue (protocol sqs, endpoint the queue's ARN). Read pager.wire_pager after "
        "you tried.",
        "Policy: {'Effect': 'Allow', 'Principal': {'Service': 'sns.amazonaws.com'}, 'Action': 'sqs:SendMessage', "
        "'Resource': queue_arn, 'Condition': {'ArnEquals': {'aws:SourceArn': topic_arn}}}, set as the queue's "
        "'Policy' attribute (json.dumps).",
        "cost_alarm: put_metric_alarm(Namespace='L03/Billing', MetricName='EstimatedCharges', Dimensions=[{'Name': "
        "'Currency', 'Value': 'USD'}], Statistic='Maximum', Period=10, EvaluationPeriods=1, Threshold=threshold, "
        "ComparisonOperator='GreaterThanThreshold', AlarmActions=[topic_arn]).",
    ],
)
def check_alarm(r, ns):
    create_pager = r.need(ns, "create_pager", callable)
    cost_alarm = r.need(ns, "cost_alarm", callable)
    tag = nonce()
    name = f"l03-chk-{tag}"
    threshold = float(100 + int(tag, 16) % 400)
    sns, sqs, cw = aws.client("sns"), aws.client("sqs"), aws.client("cloudwatch")
    topic = url = None
    try:
        pair = r.call(create_pager, name)
        r.require(
            isinstance(pair, (tuple, list)) and len(pair) == 2,
            "create_pager returns (topic_arn, queue_url)",
            f"create_pager(name) should return (topic_arn, queue_url), not {pair!r:.80}",
        )
        topic, url = pair
        r.expect(
            not _calls_wire_pager(create_pager),
            "create_pager wires the pager itself",
            "create_pager calls pager.wire_pager: the exercise is to make the four boto3 calls yourself",
        )
        r.expect(
            str(topic).endswith(":" + name) and str(url).endswith("/" + name),
            f"the topic and the queue are called {name}",
            f"the topic and the queue should both be called {name!r} (the `name` argument); got {topic!r:.60} and "
            f"{url!r:.60}",
        )
        qarn = _queue_arn(r, sqs, url)
        subs = [s for s in _subscriptions(r, sns, topic) if s.get("Protocol") == "sqs" and s.get("Endpoint") == qarn]
        r.require(subs, "the queue is subscribed to the topic", "the topic has no sqs subscription to the queue")
        attrs = {}
        with contextlib.suppress(Exception):
            attrs = sns.get_subscription_attributes(SubscriptionArn=subs[0]["SubscriptionArn"])["Attributes"]
        r.expect(
            not attrs.get("FilterPolicy"),
            "the subscription lets every message through",
            "the subscription has a filter policy: alarm notifications carry no message attributes, so it would "
            "drop every page",
        )
        policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")
        problems = pager.queue_policy_problems(policy, qarn, topic)
        r.expect(not problems, "the queue policy lets this topic (and only it) deliver", "; ".join(problems))

        r.call(cost_alarm, name, topic, threshold)
        alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        r.require(alarms, "cost_alarm created the alarm", f"no alarm named {name} after cost_alarm({name!r}, ...)")
        _settings(r, alarms[0], topic, threshold)
        if r.wrong:
            r.fail("(the check publishes charges and waits for the page once the settings above are right)")
        peak = round(threshold * 1.3, 2)
        page, waited = pager.wait_for_page(
            sqs,
            url,
            name,
            timeout=PAGE_WAIT,
            while_waiting=lambda: put_charges([threshold * 0.3, threshold * 0.3, peak]),
        )
        r.expect(
            page is not None,
            f"real charges (up to ${peak:g}) crossed ${threshold:g}: the alarm saw them and paged in {waited:.0f} s",
            f"the check published charges up to ${peak:g} for {waited:.0f} s, but no ALARM page arrived in the queue: "
            "is the queue subscribed to the topic that the alarm notifies?",
        )
    finally:
        _delete(name, topic, url)


def _settings(r, a: dict, topic: str, threshold: float) -> None:
    """The alarm as CloudWatch reports it, setting by setting (each with its own line)."""
    r.expect(
        (a.get("Namespace"), a.get("MetricName")) == (BILLING_NAMESPACE, "EstimatedCharges"),
        "it watches L03/Billing EstimatedCharges",
        f"it watches {a.get('Namespace')} {a.get('MetricName') or '(metric math)'}, not L03/Billing EstimatedCharges",
    )
    dims = sorted((d.get("Name"), d.get("Value")) for d in a.get("Dimensions", []))
    r.expect(
        dims == [("Currency", "USD")],
        "its dimension is Currency=USD, as the data's",
        f"its dimensions are {dims or 'none'}: a metric is found by namespace, name AND every dimension, and the "
        "charges are published with exactly Currency=USD",
    )
    r.expect(
        a.get("Statistic") == "Maximum",
        "it uses the Maximum of each period",
        f"its statistic is {a.get('Statistic') or a.get('ExtendedStatistic')}: use Maximum for a running total "
        "like month-to-date charges (Sum would add the samples of a period up; Average hides the highest)",
    )
    r.expect(
        a.get("Unit") in (None, "None"),
        "it names no unit (the charges carry none)",
        f"its Unit is {a.get('Unit')!r}, but the charges are published without one: on AWS an alarm whose unit "
        "differs from the data's never sees the data. Leave Unit out",
    )
    r.expect(
        a.get("Period") == 10,
        "its period is 10 s (a high-resolution alarm)",
        f"its period is {a.get('Period')} s; the task asks for 10 s (the lab's short stand-in for AWS's 6 hours)",
    )
    r.expect(
        a.get("EvaluationPeriods") == 1 and a.get("DatapointsToAlarm", 1) == 1,
        "one period above the threshold is enough",
        f"it needs {a.get('DatapointsToAlarm', a.get('EvaluationPeriods'))} of {a.get('EvaluationPeriods')} periods "
        "above the threshold; the task asks for 1 of 1",
    )
    r.expect(
        a.get("Threshold") == threshold and a.get("ComparisonOperator") == "GreaterThanThreshold",
        f"it fires above ${threshold:g}",
        f"it should fire when the value is greater than {threshold:g} (GreaterThanThreshold); it has "
        f"{a.get('ComparisonOperator')} {a.get('Threshold')}",
    )
    r.expect(
        topic in a.get("AlarmActions", []) and a.get("ActionsEnabled", True),
        "its alarm action is the pager topic",
        f"its AlarmActions are {a.get('AlarmActions', [])}"
        + ("" if a.get("ActionsEnabled", True) else " and its actions are disabled (ActionsEnabled=False)")
        + ": they should include the pager topic (OKActions and InsufficientDataActions are for other transitions)",
    )
    r.expect(
        topic not in a.get("InsufficientDataActions", []),
        "it pages nobody when data is merely missing",
        "its InsufficientDataActions page the pager: it would wake someone every time the billing data is late "
        "(AWS publishes it only every few hours); page on ALARM only",
    )
    r.expect(
        a.get("TreatMissingData", "missing") != "breaching",
        "a gap in the data does not page anyone",
        "TreatMissingData='breaching' pages whenever the billing data is late: leave the default (missing)",
    )


def delete_budget(name: str) -> None:
    """Delete the budget ``name`` if an earlier run made it (a task cell can then create it again), and say so."""
    if describe_budget(name) is not None:
        aws.client("budgets").delete_budget(AccountId=account_id(), BudgetName=name)
        print(f"(deleted the budget {name} an earlier run of this cell made)")


@check(
    "03.5",
    "A monthly budget with alerts",
    hints=[
        "budgets.create_budget(AccountId=lesson03.account_id(), Budget={...}, NotificationsWithSubscribers=[...]).",
        "Budget: BudgetName=name, BudgetLimit={'Amount': str(limit_usd), 'Unit': 'USD'}, TimeUnit='MONTHLY', "
        "BudgetType='COST'.",
        "Two notifications, ThresholdType='PERCENTAGE', ComparisonOperator='GREATER_THAN': ACTUAL at 80 and "
        "FORECASTED at 100, each with an EMAIL subscriber.",
    ],
)
def check_budget(r, ns):
    create_monthly_budget = r.need(ns, "create_monthly_budget", callable)
    limit = r.need(ns, "BUDGET_USD", (int, float))
    tag = nonce()
    name = f"l03-chk-{tag}"
    amount = float(50 + int(tag, 16) % 900)
    b = aws.client("budgets")
    try:
        r.call(create_monthly_budget, name, amount)
        got = describe_budget(name)
        r.require(
            got is not None,
            "create_monthly_budget created the budget",
            f"no budget named {name} after create_monthly_budget({name!r}, {amount:g}) (use the `name` argument)",
        )
        r.expect(
            got["limit"] == amount and got["unit"] == "USD",
            f"its limit is ${amount:g}",
            f"its limit should be {amount:g} USD (the `limit_usd` argument), it is {got['limit']} {got['unit']}",
        )
        r.expect(
            (got["time_unit"], got["type"]) == ("MONTHLY", "COST"),
            "it is a MONTHLY COST budget",
            f"it should be MONTHLY / COST, it is {got['time_unit']} / {got['type']}",
        )
        r.expect(
            not got["filters"],
            "it watches the whole bill (no cost filter)",
            f"it only watches part of the bill ({got['filters']}): the team's budget covers all of its spend",
        )
        start, end = got["period"]
        now = datetime.now(UTC)
        r.expect(
            (start is None or start <= now) and (end is None or end > now),
            "it watches the current month",
            f"its time period runs from {start} to {end}: it does not cover this month, so nothing alerts now "
            "(leave TimePeriod out: a monthly budget then starts with the current month)",
        )
        notes = set(got["notifications"])
        for kind, percent, what in (("ACTUAL", 80.0, "actual spend"), ("FORECASTED", 100.0, "the forecast")):
            near = [n for n in notes if n[0] == kind]
            r.expect(
                (kind, "GREATER_THAN", percent, "PERCENTAGE") in notes,
                f"it alerts when {what} passes {percent:g} % of the limit",
                f"missing a notification {kind} GREATER_THAN {percent:g} PERCENTAGE"
                + (f"; it has {sorted(near)}" if near else "")
                + (
                    " (ABSOLUTE_VALUE means dollars, not a share of the limit)"
                    if any(n[3] != "PERCENTAGE" for n in near)
                    else ""
                ),
            )
        r.expect(
            True,
            "who is e-mailed: not checked here (moto does not serve DescribeSubscribersForNotification; on AWS, "
            "`aws budgets describe-subscribers-for-notification` lists them)",
            "",
        )
    finally:
        with contextlib.suppress(Exception):
            b.delete_budget(AccountId=account_id(), BudgetName=name)
    mine = describe_budget("l03-monthly")
    r.expect(
        mine is not None and mine["limit"] == float(limit),
        f"l03-monthly exists with ${float(limit):g}",
        f"run create_monthly_budget('l03-monthly', BUDGET_USD) once: "
        f"{'it does not exist' if mine is None else 'its limit is ' + str(mine['limit'])}",
    )
