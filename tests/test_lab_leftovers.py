"""Item 13 of issue 19: `make stop-all FORCE=1` leaves nothing behind. A lab of its own (its own state folder,
the shard's emulators) runs lesson 09's partition (a fleet with zone c in a network namespace, cut off by an
iptables rule that is still active), a PostgreSQL, and the lab's own dockerd with a container on the host network;
then `make stop-all FORCE=1`. Network namespaces (`ip netns list`), mounts (/proc/self/mountinfo), the runtime
folders under /tmp and /dev/shm, and processes are listed before, during and after: what the lab made is named
after the lab, and nothing of it is left. Also: the one helper for a private runtime folder refuses a folder it
does not own (issue 20)."""

import json
import os
import re
import subprocess
import sys

import pytest

from cloudlab.lab import ROOT, Lab, LabError, runtime

root_only = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="namespaces, dockerd: root")

SCRIPT = r"""
import json, os, shutil, subprocess, sys, tempfile
from cloudlab import database, deploy
from cloudlab.lab import Lab, docker, tools
from cloudlab.reliability import faults, fleet, netns

lab = Lab.from_env()
out = {}
fl = fleet.Fleet.three_azs(deploy.backing("l99-leftovers", "l99-leftovers"))  # lesson 09's fleet: zone c isolated
fl.start(quiet=True)
fl.balancer(quiet=True)
out["namespaces"] = sorted({i.netns for i in fl.instances if i.netns})
faults.partition_instance("l09-web-c", 30, quiet=True)  # still cut off when the lab stops
db = database.start("l99-leftovers-pg", "07", quiet=True)
out["datadir"] = str(db.datadir)
env = docker.ensure(lab, quiet=True)
cli = next(c for c in ("/usr/bin/docker", shutil.which("docker")) if c and os.path.exists(c))
denv = {**os.environ, **env}
with tempfile.TemporaryDirectory() as tmp:  # a tiny image from this machine's own `sleep`: no registry needed
    libs = subprocess.run(["ldd", "/usr/bin/sleep"], capture_output=True, text=True).stdout.split()
    files = ["/usr/bin/sleep", *[w for w in libs if w.startswith("/")]]
    subprocess.run(["tar", "-chf", f"{tmp}/t.tar", *files], check=True, capture_output=True)
    subprocess.run([cli, "import", f"{tmp}/t.tar", "l99-leftovers/sleep:1"], env=denv, check=True, capture_output=True)
run = subprocess.run([cli, "run", "-d", "--network", "host", "l99-leftovers/sleep:1", "/usr/bin/sleep", "600"],
                     env=denv, capture_output=True, text=True)
out["container"] = run.returncode == 0 and run.stdout.strip()
out["exec_root"] = docker._exec_root(lab)
print(json.dumps(out))
"""


def snapshot() -> dict[str, set[str]]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    mounts = {ln.split()[4] for ln in open("/proc/self/mountinfo") if len(ln.split()) > 4}
    folders = {f"{base}/{n}" for base in ("/tmp", "/dev/shm") if os.path.isdir(base) for n in os.listdir(base)}
    return {"namespaces": {x.split()[0] for x in ns if x.strip()}, "mounts": mounts, "folders": folders}


def foreign(entry: str, lab: Lab) -> bool:
    """Made by ANOTHER lab on this machine (other shards, other worktrees run at the same time)."""
    for m in re.finditer(r"cloudlab-([0-9a-f]{10})-|(?:^|/)l\d\d-([0-9a-f]{6})-", entry):
        if (m.group(1) or m.group(2)) not in (runtime.tag(lab), runtime.tag(lab, 6)):
            return True
    if "/.lab/" in entry and not entry.startswith(str(lab.state)):
        return True
    return False


def ours(kind: str, entry: str, lab: Lab) -> bool:
    """What this lab may have made: anything with its tag or under its state; namespaces and mounts of lessons."""
    if foreign(entry, lab):
        return False
    if runtime.tag(lab) in entry or runtime.tag(lab, 6) in entry or entry.startswith(str(lab.state)):
        return True
    if kind == "namespaces":
        return bool(re.match(r"l\d\d-", entry))  # a lesson's namespace without the lab's tag: a global name
    if kind == "mounts":
        return entry.startswith(("/run/netns/l", "/tmp/cl", "/dev/shm/cloudlab"))
    return bool(re.search(r"/(cl-docker-|cloudlab-pg-|localstack)", entry))


def processes_of(lab: Lab) -> list[str]:
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                state = open(f"/proc/{d}/stat").read().rsplit(") ", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and (str(lab.state) in cmd or f"cloudlab-{runtime.tag(lab)}-" in cmd):
                found.append(f"{d} {cmd[:160]}")
    return found


@root_only
@pytest.mark.lab
@pytest.mark.timeout(240)
def test_stop_all_force_leaves_no_namespace_mount_folder_or_process(tmp_path):
    env = {**os.environ, "CLOUDLAB_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}
    lab = Lab.from_env(None, env)
    before = snapshot()
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=180)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        made = json.loads(out.stdout.strip().splitlines()[-1])
        during = snapshot()
        assert made["namespaces"] and made["container"], made
        for ns in made["namespaces"]:
            assert ns.startswith(runtime.netns_prefix(lab, "09")), f"{ns}: a namespace without the lab's tag"
            assert ns in during["namespaces"]
        assert made["datadir"].startswith((str(lab.state), f"/tmp/cloudlab-{runtime.tag(lab)}-")), made
        assert runtime.mounts_under(made["exec_root"]), "the container's namespace is mounted while it runs"
        stop = subprocess.run([sys.executable, "-m", "cloudlab.lab", "down", "--all", "--force"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert stop.returncode == 0, stop.stdout + stop.stderr
    finally:
        subprocess.run([sys.executable, "-m", "cloudlab.lab", "down", "--all", "--force"], env=env, cwd=ROOT,
                       capture_output=True, timeout=120)  # fmt: skip
        _drop_backing()
    after = snapshot()
    left = {
        kind: sorted(e for e in (during[kind] - before[kind]) & after[kind] if ours(kind, e, lab))
        for kind in ("namespaces", "mounts", "folders")
    }
    assert left == {"namespaces": [], "mounts": [], "folders": []}, f"left after `make stop-all FORCE=1`: {left}"
    assert not os.path.exists(made["datadir"]) and not os.path.exists(made["exec_root"])
    assert not runtime.mounts_under(str(lab.state)), "nothing stays mounted under the lab's state"
    assert processes_of(lab) == [], "processes of the lab outlived it"


def _drop_backing():
    import cloudlab

    try:
        s3, sqs = cloudlab.client("s3"), cloudlab.client("sqs")
        s3.delete_bucket(Bucket="l99-leftovers")
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="l99-leftovers")["QueueUrl"])
    except Exception:  # the shard's lab resets between runs anyway
        pass


# ------------------------------------------------------------------ the one private-folder helper (issue 20)
def test_a_private_runtime_folder_is_made_private_and_found_again(tmp_path):
    lab = Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "state")})
    d = runtime.private_dir(lab, "x", base=tmp_path)
    assert d.name == f"cloudlab-{runtime.tag(lab)}-x" and oct(d.stat().st_mode & 0o777) == "0o700"
    assert runtime.private_dir(lab, "x", base=tmp_path) == d, "the same folder next time"
    assert runtime.private_dir(lab, "pg", base=tmp_path, mode=0o755).stat().st_mode & 0o777 == 0o755
    other = Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "other")})
    assert runtime.private_dir(other, "x", base=tmp_path) != d, "two labs, two folders"


def test_a_planted_link_or_an_open_folder_is_refused(tmp_path):
    lab = Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "state")})
    elsewhere = tmp_path / "victim"
    elsewhere.mkdir()
    (tmp_path / runtime.name(lab, "docker")).symlink_to(elsewhere)  # someone planted a link at the predictable name
    with pytest.raises(LabError, match="not this lab's own folder"):
        runtime.private_dir(lab, "docker", base=tmp_path)
    open_dir = tmp_path / runtime.name(lab, "pg")
    open_dir.mkdir()
    open_dir.chmod(0o777)  # writable by everyone: anyone could swap what is inside
    with pytest.raises(LabError, match="writable by others"):
        runtime.private_dir(lab, "pg", base=tmp_path)


def test_every_runtime_folder_in_a_shared_place_goes_through_the_helper():
    """One implementation: the lab's engine, PostgreSQL and LocalStack's scratch use runtime.private_dir, and no
    other module builds a path under /tmp or /dev/shm of its own."""
    for rel in ("cloudlab/lab/docker.py", "cloudlab/database.py", "cloudlab/lab/emulators.py"):
        assert "runtime.private_dir(" in (ROOT / rel).read_text(), rel

    def own_paths(path):  # a path in a command run INSIDE a container is the container's own /tmp: not ours
        lines = path.read_text().splitlines()
        return [
            ln
            for i, ln in enumerate(lines)
            if re.search(r"""["'/]/(tmp|dev/shm)/[{\w]""", ln)
            and ".exec(" not in ln
            and ".exec(" not in (lines[i - 1] if i else "")
        ]

    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "cloudlab").rglob("*.py") if p.name != "runtime.py" and own_paths(p)
    ]
    assert offenders == [], f"modules that build their own path under /tmp or /dev/shm: {offenders}"
