"""Lesson 01: the service, and checks that must reject wrong answers (not only blank ones)."""

import io
import json
import os
from datetime import UTC

import pytest

from app.service import Config, ConfigError, JsonLog
from cloudlab import lesson01, net
from cloudlab.checks import CheckFailed


def test_config_from_env_defaults_and_errors():
    c = Config.from_env({"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q"})
    assert (c.port, c.log_level, c.fault_rate) == (8080, "INFO", 0.0)
    with pytest.raises(ConfigError, match="ORDERS_QUEUE_URL"):
        Config.from_env({"ORDERS_BUCKET": "b"})
    for bad in ({"PORT": "eighty"}, {"LOG_LEVEL": "LOUD"}, {"FAULT_RATE": "2"}):
        with pytest.raises(ConfigError):
            Config.from_env({"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q", **bad})


def test_json_log_is_one_object_per_line_and_respects_level():
    buf = io.StringIO()
    log = JsonLog("INFO", stream=buf, service="t")
    log("a", x=1)
    log("hidden", level="DEBUG")
    log("b", level="ERROR")
    lines = buf.getvalue().splitlines()
    assert [json.loads(x)["event"] for x in lines] == ["a", "b"]
    assert json.loads(lines[0])["service"] == "t"


def good_config(environ):
    for k in ("ORDERS_BUCKET", "ORDERS_QUEUE_URL"):
        if not environ.get(k):
            raise ValueError(f"{k} missing")
    return {
        "bucket": environ["ORDERS_BUCKET"],
        "queue_url": environ["ORDERS_QUEUE_URL"],
        "port": int(environ.get("PORT", "8080")),
        "log_level": environ.get("LOG_LEVEL", "INFO"),
    }


def test_check_config_accepts_a_right_answer():
    lesson01.check_config({"load_config": good_config})


@pytest.mark.parametrize(
    "wrong,expected",
    [
        (
            lambda env: {**good_config(env), "port": env.get("PORT", "8080")},
            "should be the int 9123",
        ),  # port stays a string
        (lambda env: {**good_config(env), "bucket": "l01-orders"}, "ORDERS_BUCKET"),  # hard-coded
        (
            lambda env: {**good_config({"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q", **env})},
            "should raise ValueError",
        ),  # no fail-fast
        (lambda env: dict(os.environ), "bucket"),  # reads os.environ
        (lambda env: [env], "should return a dict"),
    ],
)
def test_check_config_rejects_wrong_answers(wrong, expected):
    with pytest.raises(CheckFailed, match=expected):
        lesson01.check_config({"load_config": wrong})


def test_check_logs_rejects_free_text_and_missing_fields():
    with pytest.raises(CheckFailed, match="not JSON"):
        lesson01.check_logs({"log_event": lambda event, level="INFO", **f: print(f"{level} {event} {f}")})
    with pytest.raises(CheckFailed, match="top-level JSON fields"):
        lesson01.check_logs(
            {
                "log_event": lambda event, level="INFO", **f: print(
                    json.dumps({"ts": "2026-01-01T00:00:00+00:00", "level": level, "event": event, "msg": str(f)})
                )
            }
        )
    with pytest.raises(CheckFailed, match="exactly two lines"):
        lesson01.check_logs({"log_event": lambda event, level="INFO", **f: None})


def test_check_logs_accepts_a_right_answer():
    from datetime import datetime

    def log_event(event, level="INFO", **fields):
        print(json.dumps({"ts": datetime.now(UTC).isoformat(), "level": level, "event": event, **fields}))

    lesson01.check_logs({"log_event": log_event})


@pytest.mark.lab
def test_check_backing_rejects_local_disk_and_wrong_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def save_to_disk(s3, bucket, order):
        (tmp_path / f"{order['id']}.json").write_text(json.dumps(order))
        return f"orders/{order['id']}.json"

    def publish(sqs, url, order):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"type": "order_created", "order_id": order["id"]}))

    with pytest.raises(CheckFailed) as e:
        lesson01.check_backing({"save_order": save_to_disk, "publish_order": publish})
    assert "no object orders/" in str(e.value) and "local disk" in str(e.value)

    def save_wrong_key(s3, bucket, order):
        s3.put_object(Bucket=bucket, Key=order["id"], Body=json.dumps(order))
        return order["id"]

    with pytest.raises(CheckFailed, match="should return 'orders/"):
        lesson01.check_backing({"save_order": save_wrong_key, "publish_order": publish})


@pytest.mark.lab
def test_check_backing_rejects_a_missing_event():
    def save(s3, bucket, order):
        s3.put_object(Bucket=bucket, Key=f"orders/{order['id']}.json", Body=json.dumps(order))
        return f"orders/{order['id']}.json"

    with pytest.raises(CheckFailed, match="no message with order_id"):
        lesson01.check_backing({"save_order": save, "publish_order": lambda sqs, url, order: None})


@pytest.mark.lab
def test_check_worker_rejects_a_worker_that_ignores_sigterm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lesson01.backing_services()
    path = lesson01.worker_path()
    path.write_text(
        "import json, os, signal, time, boto3\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "s3, sqs = boto3.client('s3'), boto3.client('sqs')\n"
        "q, b = os.environ['ORDERS_QUEUE_URL'], os.environ['ORDERS_BUCKET']\n"
        "while True:\n"
        "    for m in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=1, MaxNumberOfMessages=10).get('Messages', []):\n"
        "        e = json.loads(m['Body'])\n"
        "        s3.put_object(Bucket=b, Key=f\"processed/{e['order_id']}.json\", Body=b'{}')\n"
        "        sqs.delete_message(QueueUrl=q, ReceiptHandle=m['ReceiptHandle'])\n"
    )
    with pytest.raises(CheckFailed) as e:
        lesson01.check_worker({})
    msg = str(e.value)
    assert "[ok]      it processed the queued orders" in msg
    assert "SIGTERM the exit code was" in msg and "no JSON line" in msg


@pytest.mark.lab
def test_service_is_stateless_and_disposable():
    bucket, q = lesson01.backing_services()
    a, url_a = lesson01.start_service("ta", bucket, q)
    b, url_b = lesson01.start_service("tb", bucket, q)
    try:
        r = net.request("POST", f"{url_a}/orders", {"item": "x", "qty": 1})
        order = r.json()
        assert r.status == 201 and r.headers["X-Request-Id"]
        assert net.request("GET", f"{url_b}/orders/{order['id']}").json() == order
        assert net.request("POST", f"{url_a}/orders", {"nope": 1}).status == 400
    finally:
        code, took, killed = lesson01.timed_stop("l01-ta")
        lesson01.timed_stop("l01-tb")
    assert code == 0 and not killed
    assert lesson01.json_lines(a.output())[-1]["event"] == "shutdown"


@pytest.mark.lab
def test_legacy_service_needs_sigkill():
    p, took = lesson01.start_legacy(delay=0.2)
    code, took, killed = lesson01.timed_stop("l01-legacy", grace=0.5)
    assert killed and code == -9
