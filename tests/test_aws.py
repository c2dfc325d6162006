import pytest

from cloudlab import aws, ready


@pytest.mark.parametrize(
    "env",
    [
        {},  # nothing configured
        {"AWS_ACCESS_KEY_ID": "test"},  # no endpoint
        {"AWS_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com"},  # a real endpoint
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "AWS_ACCESS_KEY_ID": "AKIA" + "IOSFODNN7EXAMPLE",
        },  # real-looking key
        {"AWS_ENDPOINT_URL": "http://10.0.0.5:4566"},  # not local
    ],
)
def test_guard_refuses(env):
    with pytest.raises(aws.RealAWSRefused):
        aws.guard("s3", environ=env)


@pytest.mark.parametrize("url", ["http://127.0.0.1:4566", "http://localstack:4566", "http://moto:5000"])
def test_guard_allows_emulators(url):
    assert aws.guard("s3", environ={"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test"}) == url


def test_per_service_endpoint_wins():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5050"}
    assert aws.guard("dynamodb", environ=env) == "http://127.0.0.1:5050"
    assert aws.guard("s3", environ=env) == "http://127.0.0.1:4566"


def test_per_service_real_endpoint_is_refused_even_if_global_is_local():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_S3": "https://s3.amazonaws.com"}
    with pytest.raises(aws.RealAWSRefused):
        aws.guard("s3", environ=env)


def test_opt_in_is_explicit():
    assert aws.guard("s3", environ={aws.OPT_IN: aws.OPT_IN_VALUE}) == ""
    with pytest.raises(aws.RealAWSRefused):
        aws.guard("s3", environ={aws.OPT_IN: "1"})


@pytest.mark.parametrize(
    "service,var",
    [
        ("ce", "AWS_ENDPOINT_URL_COST_EXPLORER"),
        ("logs", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"),
        ("s3", "AWS_ENDPOINT_URL_S3"),
        ("elbv2", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2"),
    ],
)
def test_env_names_are_boto3s(service, var):
    assert aws.env_name(service) == var


def test_client_refuses_without_lab(monkeypatch):
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", aws.OPT_IN):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(aws.RealAWSRefused, match="REAL AWS"):
        aws.client("s3")


def test_connect_refuses_real_key_in_environment(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + "B" * 16)
    monkeypatch.delenv(aws.OPT_IN, raising=False)
    with pytest.raises(aws.RealAWSRefused, match="looks like a real key"):
        ready.connect(wait=False, quiet=True)


def test_connect_fills_in_lab_defaults(monkeypatch, tmp_path):
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path))
    info = ready.connect(wait=False, quiet=True)
    assert info["endpoint"].startswith("http://127.0.0.1:")
    import os

    assert os.environ["AWS_ACCESS_KEY_ID"] == "test"


# ------------------------------------------------------------------ the request guard (every client, however made)
def _fake_key():
    return "AKIA" + "X" * 16  # built at run time, so secret scanners stay quiet


@pytest.fixture
def protected(monkeypatch):
    """boto3's default session, protected as cloudlab.connect() leaves it, with lab-like variables."""
    import boto3

    monkeypatch.delenv(aws.OPT_IN, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return aws.protect()


def _unused_local_url():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    "host, ok",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("moto", True),
        ("my-bucket.localstack", True),  # S3 virtual-hosted style on the compose network
        ("s3.amazonaws.com", False),
        ("localhost.evil.example", False),
        ("10.0.0.5", False),
        ("", False),
        (None, False),
    ],
)
def test_emulator_hosts(host, ok):
    assert aws.is_emulator_host(host) is ok


def test_plain_boto3_client_with_a_real_endpoint_is_stopped_before_sending(protected):
    import boto3

    s3 = boto3.client("s3", endpoint_url="https://s3.amazonaws.com")
    with pytest.raises(aws.RealAWSRefused, match="stopped before it left this machine"):
        s3.list_buckets()


def test_a_local_endpoint_passes_the_guard(protected):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError

    s3 = boto3.client("s3", endpoint_url=_unused_local_url(), config=Config(retries={"max_attempts": 1}))
    with pytest.raises(EndpointConnectionError):  # nobody listens there: the request was sent, locally
        s3.list_buckets()


def test_a_key_the_emulator_issued_is_fine_on_a_local_endpoint(protected):
    """moto's IAM hands out keys that look real (AKIA...); lesson 07 signs requests with them, locally."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError

    s3 = boto3.client(
        "s3",
        endpoint_url=_unused_local_url(),
        aws_access_key_id=_fake_key(),
        aws_secret_access_key="x" * 40,
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(EndpointConnectionError):  # past the guard: nobody listens there
        s3.list_buckets()


def test_cloudlab_session_is_protected(monkeypatch):
    monkeypatch.delenv(aws.OPT_IN, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", _unused_local_url())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    s3 = aws.session(region_name="us-east-1").client("s3", endpoint_url="https://s3.amazonaws.com")
    with pytest.raises(aws.RealAWSRefused):
        s3.list_buckets()


def test_opt_in_lets_requests_through():
    class Request:
        url = "https://s3.amazonaws.com/"
        headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential={_fake_key()}/20260101/us-east-1/s3/aws4_request"}

    with pytest.raises(aws.RealAWSRefused):
        aws.refuse_real_requests(Request())
    import os

    os.environ[aws.OPT_IN] = aws.OPT_IN_VALUE
    try:
        assert aws.refuse_real_requests(Request()) is None
    finally:
        del os.environ[aws.OPT_IN]


# localstack-client (lesson 01 shows it): the three ways its README suggests, each guarded.
def test_localstack_client_session_cannot_reach_real_aws(protected, monkeypatch):
    from localstack_client.session import Session

    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.eu-west-1.amazonaws.com")  # a misconfigured shell
    with pytest.raises(aws.RealAWSRefused):
        Session().client("s3").list_buckets()
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("LOCALSTACK_HOST", "sqs.us-east-1.amazonaws.com:443")
    with pytest.raises(aws.RealAWSRefused):
        Session().client("sqs").list_queues()


def test_localstack_client_module_level_client_is_guarded(protected, monkeypatch):
    import localstack_client.session as lsc

    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://sts.amazonaws.com")
    monkeypatch.setattr(lsc, "DEFAULT_SESSION", None)
    with pytest.raises(aws.RealAWSRefused):
        lsc.client("sts").get_caller_identity()


def test_localstack_client_patch_falls_back_to_real_aws_for_unknown_services_and_is_stopped(protected, monkeypatch):
    import boto3
    from localstack_client import patch

    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BUDGETS", "LOCALSTACK_HOST"):
        monkeypatch.delenv(k, raising=False)
    patch.enable_local_endpoints()
    try:
        budgets = boto3.client("budgets")  # not in localstack-client's list: its patch leaves the real endpoint
        assert "amazonaws.com" in budgets.meta.endpoint_url
        with pytest.raises(aws.RealAWSRefused):
            budgets.describe_budgets(AccountId="000000000000")
    finally:
        patch.disable_local_endpoints()


@pytest.mark.lab
def test_the_labs_dynamodb_applies_a_conditional_write_atomically():
    """Four writers race to take over one expired claim, as lesson 09's and 12's checks make them: exactly one wins,
    every round. Plain moto server could let two win (its put_item reads, parses the condition, then writes; 1 round
    in 300 on a loaded machine); the lab's moto serialises DynamoDB actions (emulators.MOTO_BOOT)."""
    import threading
    import uuid

    ddb = aws.client("dynamodb")
    table = f"t-atomic-{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clients = [aws.client("dynamodb") for _ in range(4)]
    try:
        for _ in range(40):
            key = {"pk": {"S": uuid.uuid4().hex}}
            ddb.put_item(TableName=table, Item={**key, "status": {"S": "INPROGRESS"}, "expires": {"N": "100"}})
            wins, barrier = [], threading.Barrier(len(clients))

            def take_over(c, key=key, wins=wins, barrier=barrier):
                barrier.wait()
                try:
                    c.put_item(
                        TableName=table,
                        Item={**key, "status": {"S": "INPROGRESS"}, "expires": {"N": "1145"}},
                        ConditionExpression="attribute_not_exists(pk) OR (#s = :inprogress AND expires < :now)",
                        ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={":inprogress": {"S": "INPROGRESS"}, ":now": {"N": "1100"}},
                    )
                    wins.append(1)
                except c.exceptions.ConditionalCheckFailedException:
                    pass

            threads = [threading.Thread(target=take_over, args=(c,)) for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(wins) == 1, f"{len(wins)} writers took over one expired claim"
    finally:
        ddb.delete_table(TableName=table)
