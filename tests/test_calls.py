"""cloudlab.calls: the boto3 calls behind a helper, shown as the lines a learner would type."""

import socket

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from cloudlab import aws, calls


@pytest.fixture
def local_client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    aws.protect()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"

    def make(service, region="us-east-1"):
        return boto3.client(service, endpoint_url=url, region_name=region, config=Config(retries={"max_attempts": 1}))

    return make


def test_calls_are_recorded_with_their_parameters_even_when_they_fail(local_client):
    sqs = local_client("sqs")
    with calls.recording() as rec:
        with pytest.raises(EndpointConnectionError):
            sqs.create_queue(QueueName="l01-x", Attributes={"VisibilityTimeout": "5"})
    assert [(c.service, c.method, c.params) for c in rec.calls] == [
        ("sqs", "create_queue", {"QueueName": "l01-x", "Attributes": {"VisibilityTimeout": "5"}})
    ]
    assert rec.calls[0].line() == "sqs.create_queue(QueueName='l01-x', Attributes={'VisibilityTimeout': '5'})"


def test_repeats_fold_and_other_regions_are_named(local_client, capsys):
    ec2, eu = local_client("ec2"), local_client("ec2", "eu-west-1")
    with calls.shown():
        for c in (ec2, ec2, ec2, eu):
            with pytest.raises(EndpointConnectionError):
                c.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["l03-" + "x" * 80]}])
    out = capsys.readouterr().out
    assert "boto3 calls made: 4" in out
    assert "(x3, the first shown)" in out and "# in eu-west-1" in out
    assert " ...}]" in out or " ...]" in out  # long values are cut


def test_nothing_is_recorded_outside_the_block(local_client):
    s3 = local_client("s3")
    with calls.recording() as rec:
        pass
    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()
    assert rec.calls == [] and aws.CALL_LISTENERS == []
