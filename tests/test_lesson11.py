"""Lesson 11: the multi-cloud toolkit's units, and every check against the solution and its wrong answers.

The `lab` tests need the running lab (make test starts one) and start the lesson's emulators (the Pub/Sub and
Firestore emulators, fake-gcs-server, Azurite) once, as the notebooks do.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import textwrap
import time

import lesson11_answers as A
import pytest
from checktest import rejected, rejected_in_missing
from google.api_core.exceptions import NotFound

from cloudlab.multicloud import egress, guard, services
from cloudlab.multicloud.port import Message, consume
from cloudlab.multicloud.relay import Relay


# ============================================================ unit: the guard
def dev_string(**over):
    name, key = guard._dev_account()
    parts = {
        "DefaultEndpointsProtocol": "http",
        "AccountName": name,
        "AccountKey": key,
        "BlobEndpoint": f"http://127.0.0.1:10105/{name}",
        "QueueEndpoint": f"http://127.0.0.1:10106/{name}",
    }
    parts.update(over)
    return ";".join(f"{k}={v}" for k, v in parts.items() if v is not None)


def test_guard_accepts_azurite_and_refuses_real_looking_azure_settings():
    env = {guard.AZURE_VAR: dev_string()}
    assert guard.azure_connection_string(env) == env[guard.AZURE_VAR]
    short = guard.azure_connection_string({guard.AZURE_VAR: "UseDevelopmentStorage=true"})  # the Docker path's
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in short
    fake_key = base64.b64encode(os.urandom(64)).decode()  # made up at run time: never a real key
    for bad, word in [
        (dev_string(AccountName="ordersprod"), "ordersprod"),
        (dev_string(AccountKey=fake_key), "development key"),
        (dev_string(QueueEndpoint="https://ordersprod.queue.core.windows.net"), "not on this machine"),
        (dev_string(BlobEndpoint=None, QueueEndpoint=None), "core.windows.net"),
        ("", "not set"),
    ]:
        with pytest.raises(guard.RealCloudRefused) as e:
            guard.azure_connection_string({guard.AZURE_VAR: bad})
        assert word in str(e.value), (bad, str(e.value))


def test_guard_needs_a_local_emulator_and_no_key_file_for_google():
    assert guard.gcp_endpoint("pubsub", {"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"}) == "127.0.0.1:8085"
    assert guard.gcp_endpoint("storage", {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"})
    assert guard.gcp_endpoint("firestore", {"FIRESTORE_EMULATOR_HOST": "[::1]:8087"})
    for env, word in [
        ({}, "not set"),
        ({"PUBSUB_EMULATOR_HOST": "pubsub.googleapis.com:443"}, "not on this machine"),
        ({"PUBSUB_EMULATOR_HOST": "10.0.0.5:8085"}, "not on this machine"),
        ({"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085", "GOOGLE_APPLICATION_CREDENTIALS": "sa.json"}, "key file"),
    ]:
        with pytest.raises(guard.RealCloudRefused) as e:
            guard.gcp_endpoint("pubsub", env)
        assert word in str(e.value)


def test_every_azure_request_is_checked_before_it_leaves():
    class Req:
        class http_request:
            url = "https://ordersprod.blob.core.windows.net/c/o.json"

    with pytest.raises(guard.RealCloudRefused):
        guard.loopback_policy().on_request(Req)
    Req.http_request.url = "http://127.0.0.1:10105/devstoreaccount1/c"
    guard.loopback_policy().on_request(Req)


def test_no_file_of_the_course_holds_azurites_key():
    """The well-known key comes from the SDK at run time; the repository never spells it out."""
    _, key = guard._dev_account()
    out = subprocess.run(["git", "grep", "-l", "-F", key[:24]], cwd=egress.PRICE_FILE.parents[2], capture_output=True)
    assert out.stdout.strip() == b""


# ============================================================ unit: egress, services map, port, relay
def tiered_ok(gb, free_gb, tiers):
    total = 0.0
    for t in tiers:
        inside = min(gb, t.upper_gb) - max(t.lower_gb, free_gb)
        if inside > 0:
            total += inside * t.usd_per_gb
    return round(total, 2)


def test_egress_prices_are_dated_sourced_and_tiered():
    header, providers = egress.load()
    assert header["checked"] and set(providers) == {"aws", "gcp", "azure"}
    for p in providers.values():
        assert p.source.startswith("https://") and p.tiers[-1].upper_gb == float("inf")
        assert all(a.upper_gb == b.lower_gb for a, b in zip(p.tiers, p.tiers[1:], strict=False))
    assert egress.monthly_cost("aws", 100) == 0
    assert egress.monthly_cost("aws", 1100) == pytest.approx(90.0)
    assert egress.monthly_cost("gcp", 2048) == pytest.approx(1024 * 0.12 + 1024 * 0.11)
    assert egress.monthly_cost("aws", 60_000) == pytest.approx((10240 - 100) * 0.09 + 40960 * 0.085 + 8800 * 0.07)
    with pytest.raises(ValueError):
        egress.monthly_cost("aws", -1)


def test_services_map_has_every_cloud_for_every_block():
    rows = services.load()
    assert len(rows) >= 10 and {r["area"] for r in rows} >= {"compute", "storage", "messaging", "identity"}
    for r in rows:
        assert all(r[k] for k in ("aws", "gcp", "azure", "local")), r
    assert "IAM role" in str(services.table("identity"))


class ListQueue:
    def __init__(self, bodies):
        self.msgs = [Message(str(i), b, f"r{i}", 1) for i, b in enumerate(bodies)]
        self.acked, self.released = [], []

    def receive(self, max_messages=1, lease_seconds=30):
        return self.msgs[:max_messages]

    def ack(self, m):
        self.acked.append(m.body)

    def release(self, m):
        self.released.append(m.body)


def test_consume_acks_what_succeeded_releases_what_raised_and_leaves_what_is_in_progress():
    q = ListQueue(["ok", "boom", "ok2", "busy"])

    def handler(m):
        if m.body == "boom":
            raise RuntimeError("no")
        return "in-progress" if m.body == "busy" else "charged"

    assert consume(q, handler) == {"received": 4, "acked": 2, "released": 1, "left": 1}
    assert q.acked == ["ok", "ok2"] and q.released == ["boom"]


def test_relay_forwards_both_ways_and_counts_connections():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with Relay(server.getsockname()[1]) as relay:
        client = socket.create_connection(("127.0.0.1", relay.port), timeout=3)
        conn, _ = server.accept()
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.sendall(b"pong")
        assert client.recv(4) == b"pong"
        assert relay.connections == 1 and relay.url.startswith("http://127.0.0.1:")
        client.close()
        conn.close()
    server.close()


def test_relay_delay_holds_each_request_not_each_chunk():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with Relay(server.getsockname()[1], delay=1.5) as relay:
        client = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
        conn, _ = server.accept()
        conn.settimeout(5)
        t0 = time.monotonic()
        client.sendall(b"GET")
        assert conn.recv(3) == b"GET" and time.monotonic() - t0 >= 1.5
        t0 = time.monotonic()
        conn.sendall(b"200")
        assert client.recv(3) == b"200" and time.monotonic() - t0 < 1.2  # answers are not held (1.5 s if they were)
        client.close()
        conn.close()
    server.close()


def test_function_file_keeps_the_work_apart_from_both_shells():
    from cloudlab.multicloud import functions

    counts = functions.line_counts()
    assert {"archive", "archive_order", "handler"} <= set(counts)
    ns: dict = {}
    exec(compile(functions.LESSON_FUNCTION.joinpath("main.py").read_text(), "main.py", "exec"), ns)
    stored = {}
    assert ns["archive"]({"id": "o-1", "item": "x"}, stored.__setitem__) == "archive/o-1.json"
    with pytest.raises(ValueError):
        ns["archive"]({"item": "no id"}, stored.__setitem__)


def test_emulator_commands_bind_loopback_and_keep_azurite_quiet():
    from cloudlab.multicloud import emulators

    for name in emulators.NAMES:
        cmd = " ".join(emulators.command(name))
        assert "127.0.0.1" in cmd and "0.0.0.0" not in cmd, cmd
    az = emulators.command("azurite")
    assert "--disableTelemetry" in az and "--inMemoryPersistence" in az
    assert "--location" not in az  # Azurite refuses --location together with --inMemoryPersistence
    env = emulators.env()
    assert env["CLOUDSDK_CONFIG"].endswith("gcloud") and ".config" not in env["CLOUDSDK_CONFIG"]
    assert guard.azure_connection_string({guard.AZURE_VAR: env[guard.AZURE_VAR]})


# ============================================================ the checks, against the real emulators
@pytest.fixture(scope="module")
def emu():
    import cloudlab
    from cloudlab.multicloud import emulators

    cloudlab.connect(quiet=True)
    emulators.start()
    return emulators


@pytest.mark.lab
def test_the_pubsub_emulator_accepts_an_ack_deadline_below_the_services_minimum(emu):
    """The lesson says so (the real service's minimum is 10 s): keep the claim true for the pinned emulator."""
    import uuid

    pub, sub = guard.publisher(), guard.subscriber()
    tag = uuid.uuid4().hex[:8]
    topic = pub.topic_path(guard.project(), f"l11-t-deadline-{tag}")
    name = sub.subscription_path(guard.project(), f"l11-t-deadline-{tag}")
    pub.create_topic(name=topic)
    try:
        sub.create_subscription(request={"name": name, "topic": topic, "ack_deadline_seconds": 5})
        assert sub.get_subscription(subscription=name).ack_deadline_seconds == 5
        sub.delete_subscription(subscription=name)
    finally:
        pub.delete_topic(topic=topic)


@pytest.mark.lab
def test_11_1_gcs_adapter(emu):
    from cloudlab import lesson11
    from cloudlab.multicloud import adapters

    assert lesson11.check_gcs_store({"GcsStore": A.GcsOk}) is None
    rejected(lesson11.check_gcs_store, {"GcsStore": A.GcsSubstring}, "START")
    rejected(lesson11.check_gcs_store, {"GcsStore": A.GcsOverwrites}, "AlreadyExists")
    rejected(lesson11.check_gcs_store, {"GcsStore": A.GcsHardCoded}, "STORAGE_EMULATOR_HOST")
    rejected(lesson11.check_gcs_store, {"GcsStore": A.GcsInMemory}, "STORAGE_EMULATOR_HOST")
    rejected_in_missing(lesson11.check_gcs_store, {"GcsStore": A.GcsExistsThenWrite}, "exactly one may win")
    rejected_in_missing(lesson11.check_gcs_store, {"GcsStore": A.GcsReturnsEtag}, "generation")
    rejected_in_missing(lesson11.check_gcs_store, {"GcsStore": A.GcsCachesReads}, "never a copy kept in memory")
    rejected_in_missing(lesson11.check_gcs_store, {"GcsStore": A.GcsDeletesPrefix}, "delete the one blob")
    rejected(lesson11.check_gcs_store, {"GcsStore": adapters.GcsStore}, "toolkit")
    rejected(lesson11.check_gcs_store, {}, "not defined")


@pytest.mark.lab
def test_11_2_azure_queue_adapter(emu):
    from cloudlab import lesson11

    assert lesson11.check_azure_queue({"AzureQueue": A.AzOk}) is None
    rejected(lesson11.check_azure_queue, {"AzureQueue": A.AzNoLease}, "after the lease ran out")
    rejected(lesson11.check_azure_queue, {"AzureQueue": A.AzDeleteOnReceive}, "did not come back")
    rejected(lesson11.check_azure_queue, {"AzureQueue": A.AzClearsAll}, "ack is precise")
    rejected(lesson11.check_azure_queue, {"AzureQueue": A.AzFirstAttempt}, "attempts == 2")
    rejected(lesson11.check_azure_queue, {"AzureQueue": A.AzHardCoded}, "standard variable")
    rejected_in_missing(lesson11.check_azure_queue, {"AzureQueue": A.AzLeaseOfTwo}, "the lease it is given")
    rejected_in_missing(lesson11.check_azure_queue, {"AzureQueue": A.AzReceivesAll}, "not the queue")
    rejected_in_missing(lesson11.check_azure_queue, {"AzureQueue": A.AzReleaseResends}, "not send a new one")


@pytest.mark.lab
def test_11_3_idempotent_consumer(emu):
    from cloudlab import lesson11

    check = lesson11.check_idempotent
    assert check({"handle": A.handle_ok}) is None
    rejected_in_missing(check, {"handle": A.handle_every_time}, "a charged order is a duplicate")
    rejected_in_missing(check, {"handle": A.handle_by_message_id}, "claim the order's id, not the message's")
    rejected_in_missing(check, {"handle": A.handle_read_then_write}, "reading first and writing afterwards is a race")
    rejected_in_missing(check, {"handle": A.handle_keeps_claim}, "delete the claim, then re-raise")
    rejected_in_missing(check, {"handle": A.handle_any_claim_is_duplicate}, "LOST (at most once)")
    rejected_in_missing(check, {"handle": A.handle_no_lease}, "no number `expires`")
    rejected_in_missing(check, {"handle": A.handle_takeover_with_set}, "taking over is a race too")
    rejected_in_missing(check, {"handle": A.handle_wall_clock}, "by the clock you were given")
    rejected_in_missing(check, {"handle": A.handle_default_lease}, "clock() + lease_s")


FUNCTION_OK = """
import base64, json, os
import functions_framework
from google.cloud import storage

@functions_framework.cloud_event
def archive_order(cloud_event):
    order = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
    storage.Client().bucket(os.environ["ARCHIVE_BUCKET"]).blob(f"archive/{order['id']}.json").upload_from_string(
        json.dumps(order))
"""


def deploy_and_subscribe(tmp_path, source, push=True):
    from cloudlab import lesson11
    from cloudlab.multicloud import adapters

    path = tmp_path / "l11_function.py"
    path.write_text(textwrap.dedent(source))
    fn = lesson11.deploy(path)
    sub, pub = guard.subscriber(), guard.publisher()
    topic = pub.topic_path(guard.project(), lesson11.EX_TOPIC)
    adapters.PubSubQueue(lesson11.EX_TOPIC).ensure()
    name = sub.subscription_path(guard.project(), lesson11.EX_PUSH)
    try:
        sub.delete_subscription(subscription=name)
    except NotFound:
        pass
    request = {"name": name, "topic": topic}
    if push:
        request["push_config"] = {"push_endpoint": fn.url}
    sub.create_subscription(request=request)


@pytest.mark.lab
def test_11_4_cloud_function(emu, tmp_path):
    from cloudlab import lesson11

    deploy_and_subscribe(tmp_path, FUNCTION_OK)
    assert lesson11.check_function({}) is None
    deploy_and_subscribe(tmp_path, FUNCTION_OK.replace('os.environ["ARCHIVE_BUCKET"]', '"l11-ex-archive"'))
    rejected(lesson11.check_function, {}, "ARCHIVE_BUCKET")
    deploy_and_subscribe(
        tmp_path,
        FUNCTION_OK.replace(
            'base64.b64decode(cloud_event.data["message"]["data"])', 'cloud_event.data["message"]["data"]'
        ),
    )
    rejected(lesson11.check_function, {}, "fn.logs()")
    deploy_and_subscribe(tmp_path, FUNCTION_OK, push=False)
    rejected(lesson11.check_function, {}, "pull subscription")
    deploy_and_subscribe(tmp_path, FUNCTION_OK.replace("archive/{order['id']}.json", "{order['id']}.json"))
    rejected(lesson11.check_function, {}, "archive/")


def tiered_flat(gb, free_gb, tiers):
    return round(max(0, gb - free_gb) * tiers[0].usd_per_gb, 2)


def tiered_no_free(gb, free_gb, tiers):
    return tiered_ok(gb, 0, tiers)


def tiered_cliff(gb, free_gb, tiers):
    t = next(t for t in tiers if gb <= t.upper_gb)
    return round(max(0, gb - free_gb) * t.usd_per_gb, 2)


def tiered_shifted(gb, free_gb, tiers):
    return tiered_ok(max(0, gb - free_gb), 0, tiers)


@pytest.mark.parametrize("fn", [tiered_ok])
def test_11_5_egress_passes(fn):
    from cloudlab import lesson11

    assert lesson11.check_egress({"tiered_cost": fn}) is None


@pytest.mark.parametrize("fn", [tiered_flat, tiered_no_free, tiered_cliff, tiered_shifted])
def test_11_5_egress_rejects(fn):
    from cloudlab import lesson11

    rejected(lesson11.check_egress, {"tiered_cost": fn}, "instead of")


# ============================================================ the lab's side: sockets, reset, stop
@pytest.mark.lab
def test_every_lesson_11_listener_is_on_loopback(emu, tmp_path):
    from cloudlab.lab import Lab, cli, process
    from cloudlab.multicloud import functions

    functions.deploy(functions.LESSON_FUNCTION / "main.py", name="l11-test-function", port=None)
    try:
        mine = [(ip, port, who) for ip, port, who in cli.listening_report(Lab.from_env()) if who.startswith("l11-")]
        assert {who for _, _, who in mine} >= {"l11-pubsub", "l11-firestore", "l11-gcs", "l11-azurite"}
        assert all(process.is_loopback(ip) for ip, _, _ in mine), mine
        ss = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True)
        if ss.returncode == 0:  # the same ports, seen by ss: never on 0.0.0.0, [::] or *
            ports = {str(port) for _, port, _ in mine}
            for line in ss.stdout.splitlines():
                local = line.split()[3]
                if local.rsplit(":", 1)[-1] in ports:
                    assert local.rsplit(":", 1)[0].strip("[]") in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), line
    finally:
        from cloudlab import procs

        procs.stop("l11-test-function")


@pytest.mark.lab
def test_reset_wipes_the_data_and_keeps_the_emulators(emu):
    import cloudlab
    from cloudlab import procs
    from cloudlab.multicloud import adapters

    pids = {n: procs.running(emu.PROC[n]).pid for n in emu.NAMES}
    adapters.GcsStore("l11-reset-probe").ensure().put("k", b"v")
    adapters.AzureQueue("l11-reset-probe").ensure().send("x")
    guard.firestore_client().collection("l11-charged").document("o-reset").set({"a": 1})
    removed = cloudlab.reset_lesson("11", quiet=True)
    assert "l11-reset-probe" in removed["gcs buckets"] and "l11-reset-probe" in removed["azure"]
    assert not guard.firestore_client().collection("l11-charged").document("o-reset").get().exists
    assert {n: procs.running(emu.PROC[n]).pid for n in emu.NAMES} == pids
    t0 = time.monotonic()
    assert all(s.how == "already running" for s in emu.start()) and time.monotonic() - t0 < 10
