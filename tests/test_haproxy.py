"""The haproxy toolkit against a real haproxy and two real backends on 127.0.0.1."""

import signal
import sys
import time

import pytest

from cloudlab import deploy, haproxy, net, procs

pytestmark = pytest.mark.skipif(not haproxy.available(), reason="haproxy is not installed (make setup ALL=1)")

BACKEND = """
import http.server, sys
name = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = name.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@pytest.fixture
def lab_state(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path
    procs.stop_all("l99-")


def backend(name):
    port = net.free_port()
    procs.start(f"l99-{name}", ["-c", BACKEND, str(port), name], ready_url=f"http://127.0.0.1:{port}/health")
    return haproxy.Server(name, port)


def hits(url, n=20):
    return [net.request("GET", url, timeout=3).body.decode() for _ in range(n)]


def test_balances_and_obeys_the_runtime_api(lab_state):
    blue, green = backend("blue"), backend("green")
    lb = haproxy.Balancer("l99-lb", [haproxy.Backend("app", [blue, green])], quiet=True).start()
    for s in ("blue", "green"):
        lb.wait_status("app", s, "UP", timeout=10)
    assert set(hits(lb.url)) == {"blue", "green"}
    lb.set_weight("app", "blue", 0)
    assert set(hits(lb.url)) == {"green"}
    lb.set_weight("app", "blue", 100)
    lb.set_state("app", "green", "maint")
    assert lb.status("app", "green") == "MAINT"
    assert set(hits(lb.url)) == {"blue"}
    rows = lb.stats()
    assert {r["svname"] for r in rows if r["pxname"] == "app"} >= {"blue", "green", "BACKEND"}
    lb.stop()


def test_a_dead_backend_is_taken_out_by_health_checks(lab_state):
    a, b = backend("a"), backend("b")
    lb = haproxy.Balancer("l99-lb", [haproxy.Backend("app", [a, b])], check_inter_ms=100, quiet=True).start()
    lb.wait_status("app", "a", "UP")
    procs.stop("l99-a")
    t = lb.wait_status("app", "a", "DOWN", timeout=5)
    assert t < 5
    assert set(hits(lb.url, 10)) == {"b"}


def test_bad_input_is_a_plain_error(lab_state):
    a = backend("a")
    with pytest.raises(haproxy.HaproxyError, match="rejected the configuration"):
        haproxy.Balancer("l99-lb", [haproxy.Backend("app", [a])], rules=["use_backend nowhere"], quiet=True).start()
    lb = haproxy.Balancer("l99-lb", [haproxy.Backend("app", [a])], quiet=True).start()
    with pytest.raises(haproxy.HaproxyError, match="weight is 0-256"):
        lb.set_weight("app", "a", 1000)
    with pytest.raises(haproxy.HaproxyError, match="no server"):
        lb.server("app", "nope")
    with pytest.raises(haproxy.HaproxyError):
        lb.command("set server app/nope weight 1")
    taken = net.free_port()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", taken))
        s.listen()
        with pytest.raises(haproxy.HaproxyError, match="already taken"):
            haproxy.Balancer("l99-lb2", [haproxy.Backend("app", [a])], port=taken, quiet=True).start()
    lb.stop()
    t0 = time.monotonic()
    with pytest.raises(haproxy.HaproxyError, match="does not answer"):
        lb.command("show stat")
    assert time.monotonic() - t0 < 2


def test_listens_on_loopback_only(lab_state):
    a = backend("a")
    lb = haproxy.Balancer("l99-lb", [haproxy.Backend("app", [a])], quiet=True).start()
    import subprocess

    out = subprocess.run(["ss", "-ltnH", f"sport = :{lb.port}"], capture_output=True, text=True).stdout
    assert out.strip() and all(line.split()[3].startswith("127.0.0.1:") for line in out.strip().splitlines())
    assert sys.platform.startswith("linux")


def test_a_map_switches_every_new_request_at_once(lab_state):
    blue, green = backend("blue"), backend("green")
    lb = haproxy.Balancer(
        "l99-lb",
        [haproxy.Backend("blue", [blue]), haproxy.Backend("green", [green])],
        rules=["use_backend %[str(live),map(<map:active>,blue)]"],
        maps={"active": {"live": "blue"}},
        quiet=True,
    ).start()
    lb.wait_status("blue", "blue", "UP")
    lb.wait_status("green", "green", "UP")
    assert str(lb.map_path("active")) in lb.config_path.read_text()
    assert set(hits(lb.url, 6)) == {"blue"}
    lb.set_map("active", "live", "green")
    assert lb.show_map("active") == {"live": "green"}
    assert set(hits(lb.url, 6)) == {"green"}
    with pytest.raises(haproxy.HaproxyError, match="no map"):
        lb.set_map("nope", "live", "green")


def test_a_disabled_slot_starts_in_maintenance_and_can_be_turned_on(lab_state):
    a, b = backend("a"), backend("b")
    b.disabled = True
    assert b.line().endswith("check disabled")
    lb = haproxy.Balancer("l99-lb", [haproxy.Backend("app", [a, b])], check_inter_ms=100, quiet=True).start()
    lb.wait_status("app", "a", "UP")
    assert lb.status("app", "b") == "MAINT"
    assert set(hits(lb.url, 6)) == {"a"}
    lb.set_state("app", "b", "ready")
    lb.wait_status("app", "b", "UP", timeout=5)
    assert set(hits(lb.url, 10)) == {"a", "b"}
    assert int(lb.frontend()["req_tot"]) >= 16
    lb.stop()


def test_server_url_is_where_haproxy_sends_the_traffic(lab_state):
    a = backend("a")
    lb = haproxy.Balancer("l99-lb", [haproxy.Backend("app", [a])], quiet=True).start()
    assert lb.server_url("app", "a") == f"http://127.0.0.1:{a.port}"
    talker = haproxy.Balancer("l99-lb", [haproxy.Backend("app")], quiet=True)  # knows no servers: asks haproxy
    assert talker.server_url("app", "a") == f"http://127.0.0.1:{a.port}"
    with pytest.raises(haproxy.HaproxyError, match="no server"):
        lb.server_url("app", "nope")


def test_blue_green_switch_refuses_a_server_that_just_died(lab_state):
    """Issue 19 item 4: right after a server dies haproxy still says UP (until `fall` checks failed); the switch
    must not send every request there. It asks the server itself."""
    blue, green = backend("blue"), backend("green")
    lb = deploy.blue_green("l99-lb", blue.port, green.port, quiet=True, fall=3)
    lb.wait_status("blue", "blue", "UP", timeout=10)
    lb.wait_status("green", "green", "UP", timeout=10)
    procs.stop("l99-green", grace=0, sig=signal.SIGKILL)
    assert lb.status("green", "green") == "UP", "haproxy has not noticed yet: the case this test is about"
    with pytest.raises(deploy.ReleaseError, match="not healthy"):
        deploy.switch(lb, "green", health_timeout=1.0)
    assert deploy.live(lb) == "blue" and set(hits(lb.url, 4)) == {"blue"}
    assert deploy.healthy(lb.server_url("blue", "blue")) and not deploy.healthy(lb.server_url("green", "green"))
    # and a healthy green: the switch happens, at once
    procs.start("l99-green", ["-c", BACKEND, str(green.port), "green"], ready_url=f"http://127.0.0.1:{green.port}/")
    assert deploy.switch(lb, "green", health_timeout=10) < 10
    assert deploy.live(lb) == "green" and set(hits(lb.url, 4)) == {"green"}
    lb.stop()
