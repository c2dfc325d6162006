"""Lesson 01: the service, the helpers, and the checks' wrong-answer suite.

For every check: the worked solution (read from solutions/01_cloud-mindset.ipynb, so the test and the
notebook cannot drift apart) passes, and at least three plausible wrong answers are rejected, each with a
``[missing]`` line that says what is wrong and a hint. Tests marked ``lab`` need the running lab.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from checktest import rejected

from app.service import Config, ConfigError, JsonLog
from cloudlab import lesson01, net
from cloudlab.checks import CheckFailed

ROOT = Path(__file__).resolve().parent.parent


def solution_cells() -> list[str]:
    nb = json.loads((ROOT / "solutions" / "01_cloud-mindset.ipynb").read_text())
    return [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]


def solution_namespace() -> dict:
    """The solution's functions, defined the way the notebook defines them."""
    ns: dict = {}
    exec("import json", ns)
    for src in solution_cells():
        if src.startswith(("def ", "from datetime")):
            exec(src.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""), ns)
    return ns


def solution_worker() -> str:
    src = next(s for s in solution_cells() if s.startswith("%%writefile l01_worker.py"))
    return src.split("\n", 1)[1]


SOLUTION = solution_namespace()


# ------------------------------------------------------------------ the service itself
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


@pytest.mark.parametrize(
    "code, text",
    [
        (0, "exit code 0 (the same in a shell, Docker and Kubernetes)"),
        (78, "exit code 78"),
        (-9, "exit code -9 in Python (killed by SIGKILL); a shell, Docker and Kubernetes report 128 + 9 = 137"),
        (-15, "128 + 15 = 143"),
    ],
)
def test_exit_codes_are_told_both_ways(code, text):
    assert text in lesson01.describe_exit(code)
    assert lesson01.shell_exit_code(code) == (128 - code if code < 0 else code)


def test_try_config_shows_the_command_and_the_refusal(capsys):
    code, events = lesson01.try_config({"ORDERS_BUCKET": "b", "PORT": "eighty"})
    assert code == 78
    assert events[0]["event"] == "config_error" and "ORDERS_QUEUE_URL" in events[0]["error"]
    assert "$ ORDERS_BUCKET=b PORT=eighty python -m app.service" in capsys.readouterr().out


# ------------------------------------------------------------------ 01.1 config
def good_config(environ):
    return SOLUTION["load_config"](environ)


def test_check_config_accepts_the_solution():
    lesson01.check_config({"load_config": good_config})


def _no_fail_fast(env):
    return good_config({"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q", **env})


def _key_error(env):
    return {"bucket": env["ORDERS_BUCKET"], "queue_url": env["ORDERS_QUEUE_URL"], "port": int(env.get("PORT", 8080)),
            "log_level": env.get("LOG_LEVEL", "INFO")}  # fmt: skip


def _exits(env):
    for k in ("ORDERS_BUCKET", "ORDERS_QUEUE_URL"):
        if not env.get(k):
            sys.exit(f"{k} is not set")
    return good_config(env)


def _in_check(env):  # "in" accepts ORDERS_BUCKET=""
    for k in ("ORDERS_BUCKET", "ORDERS_QUEUE_URL"):
        if k not in env:
            raise ValueError(f"{k} is missing")
    return {**good_config({**env, "ORDERS_BUCKET": env["ORDERS_BUCKET"] or "x", "ORDERS_QUEUE_URL": "x"}),
            "bucket": env["ORDERS_BUCKET"], "queue_url": env["ORDERS_QUEUE_URL"]}  # fmt: skip


def _os_fallback(env):
    merged = {**os.environ, **env}
    return good_config(merged)


def _setdefault(env):
    env.setdefault("PORT", "8080")
    env.setdefault("LOG_LEVEL", "INFO")
    return good_config(env)


def _cached_once():
    cache = {}

    def load_config(env):  # "read the environment once": every later call gets the first answer
        if "cfg" not in cache:
            cache["cfg"] = good_config(env)
        return cache["cfg"]

    return load_config


def _vague_error(env):
    if not env.get("ORDERS_BUCKET") or not env.get("ORDERS_QUEUE_URL"):
        raise ValueError("config incomplete")
    return good_config(env)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (lambda env: {**good_config(env), "port": env.get("PORT", "8080")}, "a string: convert it with int"),
        (lambda env: {**good_config(env), "bucket": "l01-orders"}, "should be the value of ORDERS_BUCKET"),
        (_no_fail_fast, "should raise ValueError (fail fast"),
        (lambda env: good_config(dict(os.environ)), "came from os.environ"),
        (_os_fallback, "should raise ValueError"),
        (lambda env: [env], "should return a dict"),
        (_key_error, "raise ValueError, not KeyError"),
        (_exits, "called sys.exit: raise ValueError instead"),
        (_in_check, "ORDERS_BUCKET empty, load_config should raise ValueError"),
        (lambda env: {**good_config(env), "port": int(env.get("PORT", 80))}, "default to the int 8080"),
        (_setdefault, "changed the mapping it was given"),
        (_vague_error, "should name it, but says 'config incomplete'"),
        (lambda env: {**good_config(env), "log_level": "INFO"}, "should be 'DEBUG' when LOG_LEVEL='DEBUG'"),
        (_cached_once(), "without PORT, port should default to the int 8080"),  # module-level state: the first one
    ],
)
def test_check_config_rejects_wrong_answers(wrong, says):
    rejected(lesson01.check_config, {"load_config": wrong}, says)


def test_check_config_puts_os_environ_back():
    before = {k: os.environ.get(k) for k in lesson01.checks.DECOYS}
    with pytest.raises(CheckFailed):
        lesson01.check_config({"load_config": lambda env: None})
    assert {k: os.environ.get(k) for k in lesson01.checks.DECOYS} == before


# ------------------------------------------------------------------ 01.2 logs
def test_check_logs_accepts_the_solution():
    lesson01.check_logs({"log_event": SOLUTION["log_event"]})


def test_check_logs_accepts_a_logging_handler_made_before_the_check(capsys):
    logger = logging.getLogger("l01-test-json")
    handler = logging.StreamHandler(sys.stdout)  # holds the stream object of the moment, like in a notebook
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def log_event(event, level="INFO", **fields):
        rec = {"ts": datetime.now(UTC).isoformat(), "level": level, "event": event, **fields}
        logger.log(logging.getLevelName(level), json.dumps(rec))

    try:
        lesson01.check_logs({"log_event": log_event})
    finally:
        logger.removeHandler(handler)


def _json_line(ts=lambda: datetime.now(UTC).isoformat(), **dumps):
    def log_event(event, level="INFO", **fields):
        print(json.dumps({"ts": ts(), "level": level, "event": event, **fields}, **dumps))

    return log_event


def _via_logging_module(event, level="INFO", **fields):
    logger = logging.getLogger("l01-test-default")  # as after logging.basicConfig(): a handler on stderr
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
        logger.propagate = False
    logger.error(json.dumps({"ts": datetime.now(UTC).isoformat(), "level": level, "event": event, **fields}))


def _to_file_and_stdout(event, level="INFO", **fields):
    line = json.dumps({"ts": datetime.now(UTC).isoformat(), "level": level, "event": event, **fields})
    with open("service.log", "a") as fh:
        fh.write(line + "\n")
    print(line)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (lambda event, level="INFO", **f: print(f"{level} {event} {f}"), "this is not JSON"),
        (
            lambda event, level="INFO", **f: print(
                json.dumps({"ts": datetime.now(UTC).isoformat(), "level": level, "event": event, "msg": str(f)})
            ),
            "top-level JSON fields",
        ),
        (lambda event, level="INFO", **f: None, "exactly two lines"),
        (_via_logging_module, "it wrote to stderr instead"),
        (_json_line(ts=lambda: datetime.now().isoformat()), "a timestamp without a zone"),
        (_json_line(ts=lambda: datetime.utcnow().isoformat()), "end in +00:00 or Z"),
        (_json_line(ts=lambda: datetime.now().astimezone(_plus_two()).isoformat()), "compare events"),
        (_json_line(indent=2), "pretty-printed JSON"),
        (_json_line(ts=lambda: "2026-01-01T00:00:00+00:00"), "should be the time the event happened"),
        (_json_line(ts=lambda: __import__("time").time()), "should be an ISO 8601 timestamp"),
        (lambda event, level="INFO", **f: _json_line()(event, **f), "'level' should be 'INFO' by default and 'ERROR'"),
        (lambda event, level="INFO", **f: print(repr({"event": event, "level": level, **f})), "not JSON"),
    ],
)
def test_check_logs_rejects_wrong_answers(wrong, says):
    rejected(lesson01.check_logs, {"log_event": wrong}, says)


def _plus_two():
    from datetime import timedelta, timezone

    return timezone(timedelta(hours=2))


def _stdout_and_stderr(event, level="INFO", **fields):
    line = json.dumps({"ts": datetime.now(UTC).isoformat(), "level": level, "event": event, **fields})
    print(line)
    print(line, file=sys.stderr)  # "to be safe": the platform now has every event twice


def test_check_logs_rejects_every_event_twice():
    rejected(lesson01.check_logs, {"log_event": _stdout_and_stderr}, "it also wrote to stderr")


def test_check_logs_rejects_a_log_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rejected(lesson01.check_logs, {"log_event": _to_file_and_stdout}, "files were written next to the notebook")


def test_check_logs_leaves_stdout_as_it_was():
    out, write = sys.stdout, vars(sys.stdout).get("write")
    lesson01.check_logs({"log_event": SOLUTION["log_event"]})
    assert sys.stdout is out and vars(sys.stdout).get("write") is write


# ------------------------------------------------------------------ 01.3 backing services
def _save_to_disk(s3, bucket, order):
    Path(f"{order['id']}.json").write_text(json.dumps(order))
    return f"orders/{order['id']}.json"


def _save_to_lesson_bucket(s3, bucket, order):
    lesson01.backing_services()  # the lesson's bucket exists: storing there works, and is still wrong
    return SOLUTION["save_order"](s3, "l01-orders", order)


def _save_repr(s3, bucket, order):
    key = f"orders/{order['id']}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=str(order))
    return key


def _publish_order_itself(sqs, url, order):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(order))


def _publish_twice(sqs, url, order):
    SOLUTION["publish_order"](sqs, url, order)
    SOLUTION["publish_order"](sqs, url, order)


def _publish_with_the_order(sqs, url, order):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"type": "order_created", "order_id": order["id"], **order}))


ORDERS: dict = {}  # the test module's globals stand in for the notebook's


def _save_and_remember(s3, bucket, order):
    ORDERS[order["id"]] = order  # "a cache, for speed": process memory is state too
    return SOLUTION["save_order"](s3, bucket, order)


def _publish_to_lesson_queue(sqs, url, order):
    SOLUTION["publish_order"](sqs, lesson01.backing_services()[1], order)


@pytest.mark.lab
def test_check_backing_accepts_the_solution():
    lesson01.check_backing({"save_order": SOLUTION["save_order"], "publish_order": SOLUTION["publish_order"]})


@pytest.mark.lab
@pytest.mark.parametrize(
    "save, publish, says",
    [
        (_save_to_disk, None, "no object arrived in the bucket"),
        (lambda s3, b, o: SOLUTION["save_order"](s3, b, o) and o["id"], None, "should return 'orders/"),
        (None, lambda sqs, url, order: None, "no message arrived in the queue"),
        (_save_to_lesson_bucket, None, "(the `bucket` argument, not a name of your own)"),
        (_save_repr, None, "should hold the order as JSON"),
        (None, _publish_order_itself, "it is not JSON with order_id="),
        (None, _publish_twice, "2 messages arrived for one order"),
        (None, _publish_to_lesson_queue, "use the `queue_url` argument"),
        (None, _publish_with_the_order, "the event also carries id, item, qty"),  # more than asked, on the queue
        (_save_and_remember, None, "ORDERS now holds the check's order"),  # a module-level dict
    ],
)
def test_check_backing_rejects_wrong_answers(tmp_path, monkeypatch, save, publish, says):
    monkeypatch.chdir(tmp_path)
    ns = {"save_order": save or SOLUTION["save_order"], "publish_order": publish or SOLUTION["publish_order"]}
    rejected(lesson01.check_backing, ns, says)


@pytest.mark.lab
def test_check_backing_rejects_saving_that_also_publishes():
    def save(s3, bucket, order):
        import cloudlab

        sqs = cloudlab.client("sqs")
        url = sqs.get_queue_url(QueueName=bucket)["QueueUrl"]  # the check names its queue like its bucket
        SOLUTION["publish_order"](sqs, url, order)
        return SOLUTION["save_order"](s3, bucket, order)

    rejected(lesson01.check_backing, {"save_order": save, "publish_order": lambda *a: None}, "save_order also sent")


@pytest.mark.lab
def test_check_backing_leaves_nothing_behind():
    import cloudlab

    lesson01.check_backing({"save_order": SOLUTION["save_order"], "publish_order": SOLUTION["publish_order"]})
    assert not [b for b in cloudlab.client("s3").list_buckets()["Buckets"] if b["Name"].startswith("l01-chk-")]
    assert not cloudlab.client("sqs").list_queues(QueueNamePrefix="l01-chk-").get("QueueUrls")


# ------------------------------------------------------------------ 01.4 the worker
def _variant(old: str, new: str) -> str:
    src = solution_worker()
    assert old in src, f"the solution's worker changed: {old!r} is not in it any more"
    return src.replace(old, new)


WRONG_WORKERS = {
    "ignores SIGTERM": (
        _variant("signal.signal(signal.SIGTERM, on_sigterm)", "signal.signal(signal.SIGTERM, signal.SIG_IGN)"),
        ["SIGTERM the exit code was", 'no JSON line with "event": "shutdown"'],
    ),
    "crashes on a message that is not JSON": (
        _variant("except (ValueError, AttributeError, KeyError, TypeError) as e:", "except (KeyError,) as e:"),
        ["the worker exited by itself", "a message that is not JSON crash it"],
    ),
    "deletes the message it cannot read": (
        _variant(
            "            continue  # not deleted",
            "            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg['ReceiptHandle'])\n"
            "            continue  # deleted: lost",
        ),
        ["the malformed message was deleted: it is lost"],
    ),
    "never deletes a message": (
        _variant(
            '        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])  # done: only now',
            "        pass",
        ),
        ["handled message(s) were never deleted"],
    ),
    "uses the lesson's bucket": (
        _variant('bucket = os.environ["ORDERS_BUCKET"]', 'bucket = "l01-orders"'),
        ["0/2 test orders had a processed/<order_id>.json"],
    ),
    "processes every event type": (
        _variant('if event.get("type") == "order_created" else None', "if True else None"),
        ["objects for messages that are not order_created"],
    ),
    "a long poll it cannot leave": (
        _variant("WaitTimeSeconds=1", "WaitTimeSeconds=20"),
        ["to stop (limit 3 s)"],
    ),
    "deletes before it works": (  # the write fails while the bucket is missing: the order is lost
        _variant(
            "        if order_id:\n            try:",
            '        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])\n'
            "        if order_id:\n            try:",
        ),
        ["it deleted 2 order message(s) anyway: those orders are lost"],
    ),
    "crashes when a write fails": (
        _variant("            except ClientError as e:", "            except ValueError as e:"),
        ["the worker exited by itself", "did a write that failed crash it?"],
    ),
    "stops when the queue is empty": (
        _variant(
            "    for msg in sqs.receive_message(",
            '    if not sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"):\n'
            '        break  # "nothing left to do"\n'
            "    for msg in sqs.receive_message(",
        ),
        ["the worker exited by itself", "even while the queue is empty"],
    ),
    "a copy on the local disk": (
        _variant(
            '            log("processed", order_id=order_id)',
            '            open(f"processed-{order_id}.json", "w").write(msg["Body"])\n'
            '            log("processed", order_id=order_id)',
        ),
        ["on the instance's disk"],
    ),
    "a hard-coded endpoint": (
        _variant(
            'boto3.client("s3"), boto3.client("sqs")',
            'boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"] and "http://127.0.0.1:4566"), '
            'boto3.client("sqs")',
        ),  # fmt: skip
        ["names an endpoint or a key"],
    ),
}


def _run_worker_check(tmp_path, monkeypatch, source: str):
    monkeypatch.chdir(tmp_path)
    lesson01.worker_path().write_text(source)
    lesson01.check_worker({})


def test_worker_variants_are_real_python():
    for name, (src, _) in WRONG_WORKERS.items():
        compile(src, name, "exec")
    compile(solution_worker(), "solution", "exec")


@pytest.mark.lab
def test_check_worker_accepts_the_solution(tmp_path, monkeypatch):
    _run_worker_check(tmp_path, monkeypatch, solution_worker())


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(WRONG_WORKERS))
def test_check_worker_rejects_wrong_workers(tmp_path, monkeypatch, name):
    source, says = WRONG_WORKERS[name]
    monkeypatch.chdir(tmp_path)
    lesson01.worker_path().write_text(source)
    rejected(lesson01.check_worker, {}, *says)


@pytest.mark.lab
def test_check_worker_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rejected(lesson01.check_worker, {}, "does not exist next to this notebook yet")


# ------------------------------------------------------------------ the processes
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
def test_legacy_service_needs_sigkill_and_says_137():
    p, took = lesson01.start_legacy(delay=0.2)
    code, took, killed = lesson01.timed_stop("l01-legacy", grace=0.5)
    assert killed and code == -9 and lesson01.shell_exit_code(code) == 137


@pytest.mark.lab
def test_legacy_port_taken_is_a_plain_message():
    import socket

    if net.port_in_use(lesson01.LEGACY_PORT):
        pytest.skip("something else holds the legacy port on this machine")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the legacy test before may leave TIME_WAIT
        s.bind(("127.0.0.1", lesson01.LEGACY_PORT))
        s.listen()
        with pytest.raises(lesson01.PortTaken, match="hard-coded"):
            lesson01.start_legacy(delay=0.1)


@pytest.mark.lab
def test_graceful_stop_finishes_requests_in_flight_and_drops_idle_keep_alive_clients():
    import threading

    import requests

    bucket, q = lesson01.backing_services()
    a, url = lesson01.start_service("tk", bucket, q, EXTRA_LATENCY_MS=800)
    idle = requests.Session()  # keeps its connection open after the answer, as browsers do
    assert idle.get(f"{url}/health", timeout=5).status_code == 200
    answers = []
    slow = threading.Thread(target=lambda: answers.append(requests.post(f"{url}/orders", json={"item": "x"})))
    slow.start()
    import time

    time.sleep(0.3)  # the POST is in flight (it takes 0.8 s)
    code, took, killed = lesson01.timed_stop("l01-tk", grace=3)
    slow.join(5)
    idle.close()
    assert (code, killed) == (0, False) and took < 2.5
    assert answers and answers[0].status_code == 201 and answers[0].headers.get("Connection") == "close"
    assert lesson01.json_lines(a.output())[-1]["event"] == "shutdown"
