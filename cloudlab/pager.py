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
