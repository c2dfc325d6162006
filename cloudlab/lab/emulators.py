"""LocalStack and moto: start them on 127.0.0.1, wait until they answer, stop them. Serves every lesson."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .. import net
from . import Lab, LabError, process, runtime, venvs

EMULATORS = ("localstack", "moto")


def localstack_healthy(lab: Lab) -> bool:
    try:
        data = net.get_json(f"{lab.localstack_url}/_localstack/health")
    except OSError:
        return False
    return isinstance(data, dict) and data.get("services", {}).get("s3") in ("available", "running")


def moto_healthy(lab: Lab) -> bool:
    try:
        # The dashboard page, not /moto-api/data.json: that one dumps every resource moto holds (megabytes
        # after lesson 03) and took longer than the timeout, so a healthy moto was restarted, state lost.
        net.request("GET", f"{lab.moto_url}/moto-api/", timeout=2.0)
        return True
    except OSError:
        return False


HEALTHY = {"localstack": localstack_healthy, "moto": moto_healthy}


def read_pid(lab: Lab, name: str) -> int | None:
    return process.read_pidfile(lab.pidfile(name))


def spawn(lab: Lab, name: str, cmd: list, env: dict[str, str]) -> int:
    proc = process.spawn(
        cmd, lab.logfile(name), env=env, cwd=lab.state, pidfile=lab.pidfile(name), banner=f"starting {name}"
    )
    started_file(lab, name).write_text(f"{time.time():.3f}\n")
    return proc.pid


def mark_stopped(lab: Lab) -> None:
    """`make stop` (and stop-all, reset) stopped the lesson processes now: a kernel set up before will not find them."""
    lab.run_dir.mkdir(parents=True, exist_ok=True)
    (lab.run_dir / "cloud.stopped").write_text(f"{time.time():.3f}\n")


def stopped_at(lab: Lab) -> float | None:
    try:
        return float((lab.run_dir / "cloud.stopped").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def started_file(lab: Lab, name: str) -> Path:
    return lab.run_dir / f"{name}.started"


def started_at(lab: Lab, name: str) -> float | None:
    """When the lab last started ``name`` (epoch seconds), or None: never here, or not this lab's (Docker path).
    A course kernel compares it with its setup cell's time: a later start means the emulator's state is gone."""
    try:
        return float(started_file(lab, name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_healthy(check, pid: int, name: str, lab: Lab, timeout: float) -> float:
    shown = {"localstack": "LocalStack", "jupyter": "JupyterLab"}.get(name, name)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check(lab):
            return time.monotonic() - t0
        if not process.pid_alive(pid):
            raise LabError(
                f"{shown} exited during start-up. Last lines of {lab.logfile(name)}:\n{process.tail(lab.logfile(name))}"
            )
        time.sleep(0.2)
    raise LabError(
        f"{shown} did not become healthy within {timeout:.0f} s. "
        f"Look at `make logs` ({lab.logfile(name)}), then `make stop && make lab`."
    )


def ensure_port_free(port: int, name: str, env_var: str) -> None:
    if net.port_in_use(port):
        raise LabError(
            f"port {port} (for {name}) is already taken by another program.\n"
            f"  Find it:  ss -ltnp 'sport = :{port}'   (an old lab? run `make stop`; Docker's LocalStack? "
            f"`docker compose down`)\n"
            f"  Or move the lab:  {env_var}=<free port> make lab"
        )


def stop_one(lab: Lab, name: str, grace: float = 5.0) -> str:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
    return process.stop_pidfile(lab.pidfile(name), grace)


def _clean_env(*drop_prefixes: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}


# LocalStack 4.14 keeps the bytes of S3 objects under a fixed /tmp/localstack-s3-storage/<bucket>/, shared by
# every LocalStack on the machine: two labs with a bucket of the same name (a learner's lab and `make test`, two
# developers) overwrite and delete each other's objects. This launcher gives each lab its own directory.
_LOCALSTACK_MAIN = (
    "import sys\n"
    "import localstack.services.s3.provider as s3p\n"
    "if hasattr(s3p, 'DEFAULT_S3_TMP_DIR'):\n"
    "    s3p.DEFAULT_S3_TMP_DIR = sys.argv[1]\n"
    "from localstack.runtime.main import main\n"
    "main()\n"
)


def localstack_command(py, lab: Lab) -> list[str]:
    """The command that runs LocalStack with its S3 object storage in the lab's own state folder."""
    return [str(py), "-c", _LOCALSTACK_MAIN, str(lab.state / "localstack" / "s3-storage")]


def start_localstack(lab: Lab) -> str:
    if read_pid(lab, "localstack") and localstack_healthy(lab):
        return "already running"
    stop_one(lab, "localstack")
    ensure_port_free(lab.localstack_port, "LocalStack", "CLOUDLAB_LOCALSTACK_PORT")
    py = venvs.venv_python(lab, "localstack")
    fsroot = lab.state / "localstack"
    fsroot.mkdir(parents=True, exist_ok=True)
    scratch_in_memory(lab, fsroot)
    env = _clean_env("AWS_", "LOCALSTACK_", "PYTHON", "GATEWAY_")
    env.update(
        {
            "GATEWAY_LISTEN": f"127.0.0.1:{lab.localstack_port}",
            # LocalStack's default gateway server (twisted) ignores the host of GATEWAY_LISTEN for IPv4
            # and listens on 0.0.0.0; hypercorn binds exactly the address it is given.
            "GATEWAY_SERVER": "hypercorn",
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(fsroot),
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SQS_ENDPOINT_STRATEGY": "off",
            "SKIP_INFRA_DOWNLOADS": "1",
            "LOCALSTACK_HOST": f"127.0.0.1:{lab.localstack_port}",
            # LocalStack finds its runtime through plux, which caches the venv's entry points in a file under the
            # user's cache folder, written in place: when several labs start LocalStack at once on a new machine
            # (make test's seven shards), one read the file half written and exited with "No component plugins
            # found in namespace localstack.runtime.components". Each lab keeps its own.
            "XDG_CACHE_HOME": str(lab.state / "xdg-cache"),
        }
    )
    t0 = time.monotonic()
    pid = spawn(lab, "localstack", localstack_command(py, lab), env)
    wait_healthy(localstack_healthy, pid, "localstack", lab, timeout=90)
    _warm_up(lab, py)
    return f"started in {time.monotonic() - t0:.1f} s"


def scratch_in_memory(lab: Lab, fsroot: Path, shm: Path = runtime.SHM) -> Path | None:
    """Keep LocalStack's scratch folder (``<FILESYSTEM_ROOT>/tmp``) in RAM where the machine has a tmpfs.

    LocalStack stores CloudWatch metrics in SQLite under it and commits every data point: on a busy disk
    that is about 20 ms a point (a week of hourly metrics for a small fleet: 40 s), on tmpfs 0.3 ms. The
    folder is throw-away (the lab runs LocalStack without persistence, and this runs only while it is
    stopped), so it is emptied here, and `make stop` removes it (:func:`runtime.clean`). It is the lab's
    private folder (:func:`runtime.private_dir`). Returns the folder in RAM, or None (no tmpfs: on disk).
    """
    link = fsroot / "tmp"
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        return None
    target = shm / runtime.name(lab, "localstack")
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)  # LocalStack is stopped here: start from nothing, as on disk
    target = runtime.private_dir(lab, "localstack", base=shm)
    if link.is_symlink():
        if link.resolve() == target.resolve():
            return target
        link.unlink()
    elif link.exists():
        shutil.rmtree(link, ignore_errors=True)
    link.symlink_to(target, target_is_directory=True)
    return target


def _warm_up(lab: Lab, py: Path) -> None:
    """The first call to each service loads it: do that now, not in a learner's first cell."""
    code = (
        "import boto3,sys\n"
        "kw=dict(endpoint_url=sys.argv[1],region_name='us-east-1',aws_access_key_id='test',aws_secret_access_key='test')\n"
        "boto3.client('s3',**kw).list_buckets()\n"
        "boto3.client('sqs',**kw).list_queues()\n"
        "boto3.client('sts',**kw).get_caller_identity()\n"
    )
    env = _clean_env("AWS_")
    if os.environ.get("AWS_CA_BUNDLE"):
        env["AWS_CA_BUNDLE"] = os.environ["AWS_CA_BUNDLE"]
    subprocess.run([str(py), "-c", code, lab.localstack_url], env=env, capture_output=True, timeout=120)


# `python -m moto.server`, with one fix: DynamoDB applies each write atomically, condition and all (what lessons 09
# and 12 teach an idempotency claim on). moto's server runs each request in a thread, and its put_item reads the
# item, then parses the ConditionExpression, then writes: two copies racing for one expired claim could both win
# (1 round in 300 with four writers on a loaded machine, measured). The lock serialises moto's DynamoDB actions only.
MOTO_BOOT = (
    "import sys, threading\n"
    "from moto.dynamodb.responses import DynamoHandler\n"
    "_lock, _call = threading.Lock(), DynamoHandler.call_action\n"
    "def call_action(self):\n"
    "    with _lock:\n"
    "        return _call(self)\n"
    "DynamoHandler.call_action = call_action\n"
    "from moto.server import main\n"
    "main(sys.argv[1:])\n"
)


def start_moto(lab: Lab) -> str:
    if read_pid(lab, "moto") and moto_healthy(lab):
        return "already running"
    stop_one(lab, "moto")
    ensure_port_free(lab.moto_port, "moto", "CLOUDLAB_MOTO_PORT")
    py = venvs.venv_python(lab, "moto")
    t0 = time.monotonic()
    cmd = [py, "-c", MOTO_BOOT, "-H", "127.0.0.1", "-p", str(lab.moto_port)]
    pid = spawn(lab, "moto", cmd, _clean_env("AWS_"))
    wait_healthy(moto_healthy, pid, "moto", lab, timeout=60)
    return f"started in {time.monotonic() - t0:.1f} s"


START = {"localstack": start_localstack, "moto": start_moto}
