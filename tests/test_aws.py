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
