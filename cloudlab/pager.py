"""The pretend pager: a CloudWatch alarm's SNS topic delivers to an SQS queue that a check can read.

Used by lesson 03 (cost alerts) and lesson 04 (SLO burn-rate pages).
"""

from __future__ import annotations

import json
import time


def wire_pager(sns, sqs, topic_name: str, queue_name: str) -> dict:
    """An SNS topic whose messages land in an SQS queue (the "pager"), with the queue policy real AWS needs."""
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    queue = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": qarn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    return {"topic_arn": topic, "queue_url": queue, "queue_arn": qarn}


def alarm_message(body: str) -> dict | None:
    """The CloudWatch alarm notification in an SQS message body (raw, or inside an SNS envelope)."""
    try:
        msg = json.loads(body)
        if isinstance(msg, dict) and "Message" in msg and "AlarmName" not in msg:
            msg = json.loads(msg["Message"])
    except (ValueError, TypeError):
        return None
    return msg if isinstance(msg, dict) and "AlarmName" in msg else None


def read_pages(sqs, queue_url: str, wait: float = 0, delete: bool = True) -> list[dict]:
    """Alarm notifications waiting in the pager queue (each once: read messages are deleted)."""
    out, deadline = [], time.monotonic() + wait
    while True:
        resp = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1 if wait else 0, VisibilityTimeout=5
        )
        msgs = resp.get("Messages", [])
        for m in msgs:
            page = alarm_message(m["Body"])
            if page is not None:
                out.append(page)
            if delete:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        if not msgs and (out or time.monotonic() >= deadline):
            return out


def wait_for_page(
    sqs, queue_url: str, alarm: str, state: str = "ALARM", timeout: float = 30.0, while_waiting=None
) -> tuple[dict | None, float]:
    """Poll the pager queue until ``alarm`` reports ``state``; (notification or None, seconds waited).

    ``while_waiting()`` is called between polls (e.g. to keep traffic and metrics flowing).
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if while_waiting:
            while_waiting()
        for page in read_pages(sqs, queue_url):
            if page.get("AlarmName") == alarm and page.get("NewStateValue") == state:
                return page, time.monotonic() - t0
        time.sleep(0.5)
    return None, time.monotonic() - t0


# ------------------------------------------------------------------ the queue policy real AWS needs
def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns, value: str) -> bool:
    import fnmatch

    return any(isinstance(p, str) and fnmatch.fnmatchcase(value.lower(), p.lower()) for p in _as_list(patterns))


def _principal_is_sns(principal) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return _matches(principal.get("Service", []), "sns.amazonaws.com") or "*" in _as_list(principal.get("AWS", []))


def _conditions_hold(conditions, context: dict[str, str]) -> bool:
    """IAM conditions, for the few operators a queue policy uses; an unknown one does not hold."""
    if not conditions:
        return True
    if not isinstance(conditions, dict):
        return False
    for op, tests in conditions.items():
        if not isinstance(tests, dict):
            return False
        base = op.replace("IfExists", "")
        for key, wanted in tests.items():
            have = context.get(key.lower())
            if have is None:
                return False
            if base in ("ArnEquals", "StringEquals"):
                ok = any(have == w for w in _as_list(wanted))
            elif base in ("ArnLike", "StringLike"):
                ok = _matches(wanted, have)
            else:
                return False
            if not ok:
                return False
    return True


def _allows(policy: dict, queue_arn: str, source_arn: str) -> tuple[bool, bool]:
    """(an Allow matches, a Deny matches) for SNS sending to ``queue_arn`` on behalf of ``source_arn``."""
    account = source_arn.split(":")[4] if source_arn.count(":") >= 5 else ""
    context = {"aws:sourcearn": source_arn, "aws:sourceaccount": account}
    allow = deny = False
    for st in _as_list(policy.get("Statement", [])):
        if not isinstance(st, dict):
            continue
        hit = (
            _principal_is_sns(st.get("Principal"))
            and _matches(st.get("Action", []), "sqs:SendMessage")
            and _matches(st.get("Resource", []), queue_arn)
            and _conditions_hold(st.get("Condition"), context)
        )
        if hit and st.get("Effect") == "Allow":
            allow = True
        if hit and st.get("Effect") == "Deny":
            deny = True
    return allow, deny


def queue_policy_problems(policy_text: str | None, queue_arn: str, topic_arn: str) -> list[str]:
    """What is wrong with a pager queue's policy for SNS delivery on real AWS ([] when nothing is).

    Real AWS delivers from a topic to a queue only when the queue's policy allows the SNS service to
    ``sqs:SendMessage`` to it; the policy should allow it for this topic only (``aws:SourceArn``), or any
    topic in the world could write to the pager. LocalStack delivers without a policy: a check reads it.
    """
    if not policy_text:
        return [
            "the queue has no policy: LocalStack delivers anyway, real AWS does not. Allow the service "
            "sns.amazonaws.com to sqs:SendMessage to the queue, with Condition ArnEquals aws:SourceArn = the topic"
        ]
    try:
        policy = json.loads(policy_text)
    except (TypeError, ValueError):
        return ["the queue's Policy attribute is not JSON: pass json.dumps(policy)"]
    if not isinstance(policy, dict):
        return ["the queue's policy should be a JSON object with a Statement list"]
    allow, deny = _allows(policy, queue_arn, topic_arn)
    if deny:
        return ["the queue policy denies sqs:SendMessage from the topic"]
    if not allow:
        return [
            "the queue policy does not let the topic deliver: it needs Effect Allow, Principal "
            "{'Service': 'sns.amazonaws.com'}, Action sqs:SendMessage, Resource the queue's ARN, and "
            "Condition {'ArnEquals': {'aws:SourceArn': <the topic's ARN>}}"
        ]
    stranger = topic_arn.rsplit(":", 1)[0] + ":someone-elses-topic"
    if _allows(policy, queue_arn, stranger)[0]:
        return [
            "the queue policy also lets other topics (or anyone) send to the pager: limit it to yours with "
            "Condition {'ArnEquals': {'aws:SourceArn': <the topic's ARN>}}"
        ]
    return []
