"""The workshop hub's parts, without a hub: accounts and cards, exposure, cgroups, the roster's facts, relays,
the launcher's mounts and environment, the JupyterHub config, and the Kubernetes path validated offline.

The hub itself, three learners and a real browser: tests/test_hub_room.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from cloudlab.hub import INSTRUCTOR, Hub, accounts, cgroups, cli, k8s, launch, relay, rosterdata, settings, supervisor
from cloudlab.lab import LabError


# ------------------------------------------------------------------ accounts and cards
def test_passwords_are_random_unambiguous_and_long_enough():
    pws = {accounts.password() for _ in range(200)}
    assert len(pws) == 200
    for pw in pws:
        letters = pw.replace("-", "")
        assert len(letters) == 12 and set(letters) <= set(accounts.ALPHABET)
        assert not set(letters) & set("0o1li")


def test_names_from_seats_and_lists_and_what_is_refused(tmp_path):
    assert accounts.names_from(3) == ["seat01", "seat02", "seat03"]
    f = tmp_path / "names.txt"
    f.write_text("ada  # the first\n\nBen\ncy-2\n")
    assert accounts.names_from(listfile=str(f)) == ["ada", "ben", "cy-2"]
    for bad in ["ada\nada\n", "a b\n", "../etc\n", f"{INSTRUCTOR}\n", "9lives\n", "x" * 21 + "\n"]:
        f.write_text(bad)
        with pytest.raises(ValueError):
            accounts.names_from(listfile=str(f))


def test_login_cards_hold_every_account_escaped_and_are_private(tmp_path):
    hub = Hub.from_env("test", {"CLOUDLAB_HUB_STATE": str(tmp_path / "state")})
    pws = {INSTRUCTOR: "aaaa-bbbb-cccc", "ada": "dddd-eeee-ffff"}
    path = accounts.write_cards(hub, pws, url="https://room.example.org/<x>")
    text = path.read_text()
    assert "aaaa-bbbb-cccc" in text and "dddd-eeee-ffff" in text and "&lt;x&gt;" in text and "<x>" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert text.count('class="card"') == 2 and "delete the file" in text


# ------------------------------------------------------------------ the hub's configuration
def test_hub_ports_follow_the_offsets_and_test_hubs_have_their_own_users():
    lab = Hub.from_env("lab", {})
    assert lab.ports == {"hub_public": 8000, "hub_proxy_api": 8001, "hub_api": 8081, "hub_roster": 8082}
    assert lab.sysuser("seat01") == "cl-seat01" and lab.url == "http://127.0.0.1:8000"
    test = Hub.from_env("test", {"CLOUDLAB_PORT_OFFSET": "8000"})
    assert test.ports["hub_public"] == 16010 and test.sysuser("ada") == "clt8010-ada"
    with pytest.raises(LabError):
        Hub.from_env("lab", {"CLOUDLAB_HUB_PREFIX": "root"})


def test_a_hub_beyond_loopback_needs_an_explicit_acknowledgement():
    cli.check_exposure(Hub.from_env("lab", {}), {})
    exposed = Hub.from_env("lab", {"CLOUDLAB_HUB_IP": "0.0.0.0"})
    with pytest.raises(LabError, match="TLS reverse proxy"):
        cli.check_exposure(exposed, {})
    with pytest.raises(LabError):
        cli.check_exposure(exposed, {"CLOUDLAB_HUB_EXPOSE": "yes"})
    cli.check_exposure(exposed, {"CLOUDLAB_HUB_EXPOSE": cli.EXPOSE_ACK})


def test_the_jupyterhub_config_listens_on_loopback_and_uses_the_settings(tmp_path, monkeypatch):
    from traitlets.config import Config

    state = tmp_path / "state"
    state.mkdir()
    (state / "proxy-auth-token").write_text("x" * 64)
    monkeypatch.setenv("CLOUDLAB_HUB_STATE", str(state))
    c = Config()
    cfg = Path(k8s.ROOT / "hub" / "jupyterhub_config.py")
    exec(compile(cfg.read_text(), str(cfg), "exec"), {"get_config": lambda: c, "__file__": str(cfg)})
    assert c.JupyterHub.bind_url.startswith("http://127.0.0.1:")
    assert c.JupyterHub.hub_bind_url.startswith("http://127.0.0.1:")
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert c.Spawner.mem_limit == settings.MEM_LIMIT and c.Spawner.cpu_limit == settings.CPU_LIMIT
    assert c.Spawner.default_url == settings.DEFAULT_URL and c.NativeAuthenticator.enable_signup is False
    assert c.JupyterHub.cleanup_servers is False and c.JupyterHub.admin_access is False
    culler = next(s for s in c.JupyterHub.services if s["name"] == "idle-culler")
    assert f"--timeout={settings.CULL['timeout']}" in culler["command"]
    roster = next(s for s in c.JupyterHub.services if s["name"] == "roster")
    assert roster["url"].startswith("http://127.0.0.1:")


# ------------------------------------------------------------------ the launcher
def test_root_home_is_replaced_by_only_what_the_course_runs():
    cmds = launch.hidden_home_mounts([Path("/root/.pyenv/versions/3.11.7"), Path("/work/course")])
    flat = [" ".join(c) for c in cmds]
    assert any("tmpfs" in c and c.endswith(" /root") for c in flat)
    assert any(c.startswith("mount -o remount,bind,ro /root/.pyenv/versions/3.11.7") for c in flat)
    assert not any("/work/course" in c for c in flat)
    assert launch.hidden_home_mounts([Path("/opt/python")]) == []


def test_a_private_tmp_keeps_a_course_cloned_under_tmp():
    """A clean clone in /tmp/ci-a: the learners' private /tmp hid the course, and no server of the room started
    ("mount point does not exist", then the hub's 120 s timeout)."""
    stage = Path("/run/cloudlab-tmp-7")
    cmds = launch.private_tmp_mounts(
        [Path("/tmp/ci-a"), Path("/tmp/ci-a/.lab/venvs"), Path("/root/.pyenv/versions/3.11.7"), Path("/tmp/homes/x")],
        stage=stage,
    )
    flat = [" ".join(c) for c in cmds]
    assert flat[1].startswith("mount -t tmpfs") and flat[1].endswith(" /run/cloudlab-tmp-7")
    binds = [c for c in flat if c.startswith("mount --bind")]
    assert binds == [
        "mount --bind /tmp/ci-a /run/cloudlab-tmp-7/ci-a",
        "mount --bind /tmp/homes/x /run/cloudlab-tmp-7/homes/x",
    ]
    assert flat[-2:] == ["mount --move /run/cloudlab-tmp-7 /tmp", "rmdir /run/cloudlab-tmp-7"]
    assert not any("remount" in c or "pyenv" in c for c in flat)  # kept as they are on the host; /root is elsewhere
    plain = [" ".join(c) for c in launch.private_tmp_mounts([Path("/work/course")], stage=stage)]
    assert plain == [
        "mkdir -p /run/cloudlab-tmp-7",
        "mount -t tmpfs -o mode=1777,nosuid,nodev,size=2g tmpfs /run/cloudlab-tmp-7",
        "mount --move /run/cloudlab-tmp-7 /tmp",
        "rmdir /run/cloudlab-tmp-7",
    ]


def test_the_learner_gets_jupyterhubs_variables_and_none_of_roots():
    import pwd

    pw = pwd.struct_passwd(("cl-ada", "x", 1234, 1234, "", "/home/cl-ada", "/bin/bash"))
    env = launch.learner_env(
        {"JUPYTERHUB_API_TOKEN": "t", "MEM_LIMIT": "2", "AWS_SECRET_ACCESS_KEY": "no", "SSH_AUTH_SOCK": "/x"}, pw
    )
    assert env["JUPYTERHUB_API_TOKEN"] == "t" and env["HOME"] == "/home/cl-ada" and env["USER"] == "cl-ada"
    assert "AWS_SECRET_ACCESS_KEY" not in env and "SSH_AUTH_SOCK" not in env
    assert env["CLOUDLAB_STATE_DIR"] == "/home/cl-ada/.lab" and env["CLOUDLAB_PORT_OFFSET"] == "0"
    assert env["MAKEFILES"].endswith("hub/learner.mk")


def test_the_supervisor_says_why_a_process_ended():
    assert "out-of-memory" in supervisor.why_ended(-9)
    assert supervisor.why_ended(2) == "exited with code 2" and "signal 15" in supervisor.why_ended(-15)


def test_a_relay_carries_bytes_both_ways_between_tcp_and_a_unix_socket(tmp_path):
    path = tmp_path / "echo.sock"
    echo = socket.socket(socket.AF_UNIX)
    echo.bind(str(path))
    echo.listen(1)

    def serve():
        conn, _ = echo.accept()
        conn.sendall(conn.recv(100).upper())
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    listener = relay.tcp_listener(0)
    port = listener.getsockname()[1]

    async def main():
        await relay.serve(listener, relay.unix_opener(path, owner=os.getuid()))
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"hello")
        await w.drain()
        return await asyncio.wait_for(r.read(100), 5)

    assert asyncio.run(main()) == b"HELLO"
    assert listener.getsockname()[0] == "127.0.0.1"


def test_a_relay_refuses_a_link_planted_in_place_of_the_socket(tmp_path):
    (tmp_path / "other.sock").touch()
    (tmp_path / "jupyter.sock").symlink_to(tmp_path / "other.sock")
    with pytest.raises(OSError):
        asyncio.run(relay.unix_opener(tmp_path / "jupyter.sock", owner=os.getuid())())


# ------------------------------------------------------------------ cgroups
def test_the_hubs_memory_cgroup_is_found_for_v1_and_v2(tmp_path):
    proc = tmp_path / "cgroup"
    (tmp_path / "memory").mkdir()
    proc.write_text("4:memory:/jobs/hub\n0::/\n")
    assert cgroups.own(proc, tmp_path) == ("v1", tmp_path / "memory" / "jobs" / "hub")
    (tmp_path / "memory").rmdir()
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    proc.write_text("0::/system.slice/hub.service\n")
    assert cgroups.own(proc, tmp_path) == ("v2", tmp_path / "system.slice" / "hub.service")


def test_cgroup_stats_read_the_peak_the_limit_and_out_of_memory_kills(tmp_path):
    v1 = tmp_path / "v1"
    v1.mkdir()
    files = {"memory.usage_in_bytes": "100", "memory.max_usage_in_bytes": "300", "cgroup.procs": "7\n8\n"}
    files.update({"memory.limit_in_bytes": "2147483648", "memory.oom_control": "oom_kill_disable 0\noom_kill 2\n"})
    for f, v in files.items():
        (v1 / f).write_text(v)
    assert cgroups.stats(("v1", v1)) == {"current": 100, "peak": 300, "limit": 1 << 31, "oom_kills": 2, "pids": [7, 8]}
    v2 = tmp_path / "v2"
    v2.mkdir()
    for f, v in {
        "memory.current": "5",
        "memory.peak": "9",
        "memory.max": "max",
        "memory.events": "oom_kill 0\n",
    }.items():
        (v2 / f).write_text(v)
    assert cgroups.stats(("v2", v2))["limit"] is None and cgroups.stats(("v2", v2))["peak"] == 9


# ------------------------------------------------------------------ the roster's facts
CAT = {
    "01.1": {"title": "Config", "hints": ["look at environ", "raise KeyError"], "lesson": "01"},
    "01.2": {"title": "Logs", "hints": ["json.dumps"], "lesson": "01"},
    "04.1": {"title": "Metrics", "hints": ["a counter"], "lesson": "04"},
}


@pytest.fixture
def roster_hub(tmp_path, monkeypatch):
    hub = Hub.from_env("test", {"CLOUDLAB_HUB_HOMES": str(tmp_path / "homes"), "CLOUDLAB_HUB_STATE": str(tmp_path)})
    progress = {
        "ada": {"01.1": {"attempts": 2, "passed_at": "x"}, "01.2": {"attempts": 3}},
        "ben": {"01.1": {"attempts": 5}, "01.2": {"attempts": 1}},
        "cy": {},
    }
    for name, data in progress.items():
        d = hub.home(name) / ".lab"
        d.mkdir(parents=True)
        (d / "progress.json").write_text(json.dumps(data))
    (hub.home("ben") / ".lab" / "hub-health.json").write_text(
        json.dumps({"events": [{"at": "10:02", "event": "localstack was killed (SIGKILL: most likely ...)"}]})
    )
    monkeypatch.setattr(rosterdata.cgroups, "stats", lambda target: {})

    def no_such_user(name):  # the machine's accounts (a room test's learners of the same names) are not these
        raise KeyError(name)

    monkeypatch.setattr(rosterdata.pwd, "getpwnam", no_such_user)
    return hub


def users(*names, ready=("ada",)):
    out = [{"name": INSTRUCTOR, "admin": True}]
    for n in names:
        out.append({"name": n, "servers": {"": {"ready": True}} if n in ready else {}, "last_activity": None})
    return out


def test_the_roster_counts_passes_tries_and_who_is_stuck_with_the_hints(roster_hub):
    facts = rosterdata.collect(roster_hub, users("ada", "ben", "cy"), cat=CAT, now=0)
    rows = {r["name"]: r for r in facts["learners"]}
    assert set(rows) == {"ada", "ben", "cy"}  # the instructor is not a learner
    assert rows["ada"]["passed"] == 1 and rows["ada"]["tries"] == 5 and rows["ada"]["server"] == "ready"
    assert rows["ben"]["passed"] == 0 and rows["ben"]["server"] == "stopped" and rows["cy"]["lessons"] == {}
    stuck = facts["stuck"]
    assert stuck[0]["check"] == "01.2" and stuck[0]["learners"] == 2 and stuck[0]["hints"] == ["json.dumps"]
    assert any("killed" in a for a in rows["ben"]["alerts"]) and not rows["ada"]["alerts"]
    csv_rows = rosterdata.csv_text(facts).splitlines()
    assert csv_rows[0].startswith("learner,server,last_activity_seconds,lesson_01_passed")
    assert len(csv_rows) == 4 and csv_rows[1].startswith("ada,ready,")
    html = rosterdata.page(facts, 5, "tok")
    assert "Where learners are stuck" in html and "json.dumps" in html and "<svg" in html and '"tok"' in html


def test_the_roster_reports_an_out_of_memory_kill_and_a_nearly_full_memory(roster_hub, monkeypatch):
    monkeypatch.setattr(rosterdata.cgroups, "stats", lambda t: {"current": 1, "peak": 5, "limit": 10, "oom_kills": 1})
    facts = rosterdata.collect(roster_hub, users("ada"), cat=CAT, now=0)
    assert any("out of memory" in a for a in facts["learners"][0]["alerts"])
    monkeypatch.setattr(
        rosterdata.cgroups, "stats", lambda t: {"current": 95, "peak": 95, "limit": 100, "oom_kills": 0}
    )
    assert any("memory at" in a for a in rosterdata.collect(roster_hub, users("ada"), cat=CAT)["learners"][0]["alerts"])


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_the_roster_reports_a_full_disk(roster_hub, tmp_path, monkeypatch):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        monkeypatch.setattr(rosterdata, "DISK_ALERT_BYTES", 1 << 20)
        hub = Hub.from_env("test", {"CLOUDLAB_HUB_HOMES": str(disk), "CLOUDLAB_HUB_STATE": str(tmp_path)})
        assert rosterdata.collect(hub, users(), cat=CAT)["disk"]["alert"] is None
        (disk / "big").write_bytes(b"\0" * (7 << 20) + b"\0" * (512 << 10))  # a learner fills it
        alert = rosterdata.collect(hub, users(), cat=CAT)["disk"]["alert"]
        assert alert and "almost full" in alert
        supervisor.note(type("L", (), {"state": disk})(), "x" * (2 << 20))  # writing there fails: no crash
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_the_roster_never_follows_a_link_or_reads_another_owners_or_a_huge_file(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"root": "only"}')
    link = tmp_path / "progress.json"
    link.symlink_to(secret)
    assert rosterdata.read_learner_json(link, None) == {}
    assert rosterdata.read_learner_json(secret, os.getuid() + 1) == {}
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"x": "y" * rosterdata.MAX_BYTES}))
    assert rosterdata.read_learner_json(big, None) == {}
    assert rosterdata.read_learner_json(secret, os.getuid()) == {"root": "only"}


# ------------------------------------------------------------------ Kubernetes, offline
def test_the_k8s_values_pass_the_charts_own_schema_and_a_typo_does_not():
    assert k8s.schema_problems() == []
    broken = k8s.values()
    broken["singleuser"]["memory"]["guarantees"] = "1G"  # a typo helm would reject
    broken["cull"]["timeout"] = "eight hours"
    problems = k8s.schema_problems(broken)
    assert any("guarantees" in p for p in problems) and any("cull.timeout" in p for p in problems), problems


def test_the_k8s_values_use_the_one_server_hubs_measured_settings():
    assert k8s.settings_problems() == []
    other = k8s.values()
    other["singleuser"]["memory"]["limit"] = "8G"
    assert k8s.settings_problems(other) == ["singleuser.memory.limit is '8G', the one-server hub uses '2G'"]


def test_the_k8s_objects_validate_strictly_and_learners_cannot_reach_each_other():
    from cloudlab.k8s import netpol, render

    objs = k8s.objects()
    assert render.validate(objs) == []
    pod = next(o for o in objs if o["kind"] == "Pod")
    c = pod["spec"]["containers"][0]
    assert c["resources"]["limits"]["memory"] == str(settings.to_bytes(settings.MEM_LIMIT))
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["args"][-1] == "--pod"
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    ns = "cloudlab-room"
    ada = netpol.Endpoint(
        ns, {"component": "singleuser-server", "hub.jupyter.org/username": "ada"}, {"notebook-port": 8888}
    )
    ben = netpol.Endpoint(
        ns, {"component": "singleuser-server", "hub.jupyter.org/username": "ben"}, {"notebook-port": 8888}
    )
    proxy = netpol.Endpoint(ns, {"component": "proxy", "hub.jupyter.org/network-access-singleuser": "true"})
    hub_pod = netpol.Endpoint(ns, {"component": "hub"}, {"http": 8081})
    assert netpol.allowed(policies, proxy, ada, 8888)
    assert not netpol.allowed(policies, ben, ada, 8888) and not netpol.allowed(policies, ada, ben, 4566)
    assert netpol.allowed(policies, ada, hub_pod, 8081)
    metadata = netpol.Endpoint(None, {}, ip="169.254.169.254")
    assert not netpol.allowed(policies, ada, metadata, 80)


def test_the_k8s_objects_pass_checkov_with_reasons_for_what_they_skip(tmp_path):
    from cloudlab.k8s import render

    report = render.scan({"room": k8s.objects()}, tmp_path / "scan", quiet=True)
    assert report["resources"] >= 4 and report["passed"] > 50
    assert report["failed"] == [], report["failed"]
    assert {s[0] for s in report["skipped"]} == {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_40"}
    assert all(reason for _, _, reason in report["skipped"])


def test_the_single_user_image_passes_hadolint():
    from cloudlab import scanners

    report = scanners.hadolint(k8s.K8S / "Dockerfile.singleuser", quiet=True)
    assert not report.get("findings"), report


def test_capacity_per_node_follows_the_measured_guarantee():
    assert k8s.learners_per_node(16, 4) == int((16 - 1.5) * (1 << 30) // settings.to_bytes(settings.MEM_GUARANTEE))
    assert k8s.learners_per_node(16, 1) == 2  # CPU-bound on a tiny node: (1 - 0.3) / 0.25
    assert yaml.safe_load((k8s.K8S / "values.yaml").read_text())["singleuser"]["memory"]["guarantee"] == "1400M"


def test_users_is_a_list_of_users_even_when_the_hub_answers_an_error(monkeypatch):
    from cloudlab.hub import cli as hub_cli

    monkeypatch.setattr(hub_cli, "api", lambda *a, **k: {"status": 503, "message": "busy"})
    assert hub_cli.users(None) == []
    monkeypatch.setattr(hub_cli, "api", lambda *a, **k: {"items": [{"name": "ana"}], "_pagination": {}})
    assert hub_cli.users(None) == [{"name": "ana"}]
    monkeypatch.setattr(hub_cli, "api", lambda *a, **k: [{"name": "ana"}, "junk"])
    assert hub_cli.users(None) == [{"name": "ana"}]
