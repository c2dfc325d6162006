"""The local cloud: set up, start, stop and inspect the emulators and JupyterLab.

Standard library only, so it runs before any virtual environment exists:
``python3 -m cloudlab.lab up``.  The Makefile is a thin wrapper around this.

Two profiles share one code path:

* ``lab``  (default): what a learner uses; state in ``.lab/``.
* ``test``: what ``make test`` uses; its own ports and state, started and
  stopped around the test run, so tests never disturb a running lab.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"

# Services that LocalStack cannot serve without Docker: moto serves them.
# The names are boto3's: AWS_ENDPOINT_URL_<SERVICE ID, upper case, _ for space>.
MOTO_SERVICES = ("DYNAMODB", "DYNAMODB_STREAMS", "ECS", "EKS", "COST_EXPLORER", "BUDGETS",
                 "ELASTIC_LOAD_BALANCING_V2", "ELASTIC_LOAD_BALANCING")

PROFILES = {
    "lab": {"localstack": 4566, "moto": 5050, "jupyter": 8888, "state": ".lab"},
    "test": {"localstack": 4576, "moto": 5060, "jupyter": 8898, "state": ".lab/test-run"},
}


class LabError(Exception):
    """A problem the learner can fix; the message says how."""


def say(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


# --------------------------------------------------------------------- config
@dataclass
class Lab:
    profile: str = "lab"
    localstack_port: int = 4566
    moto_port: int = 5050
    jupyter_port: int = 8888
    state: Path = field(default_factory=lambda: ROOT / ".lab")

    @classmethod
    def from_env(cls, profile: str | None = None, environ=None) -> "Lab":
        env = os.environ if environ is None else environ
        profile = profile or env.get("CLOUDLAB_PROFILE", "lab")
        if profile not in PROFILES:
            raise LabError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
        p = PROFILES[profile]

        def port(name: str) -> int:
            raw = env.get(f"CLOUDLAB_{name.upper()}_PORT", str(p[name]))
            try:
                value = int(raw)
            except ValueError:
                raise LabError(f"CLOUDLAB_{name.upper()}_PORT must be a port number, not {raw!r}") from None
            if not 1024 <= value <= 65535:
                raise LabError(f"CLOUDLAB_{name.upper()}_PORT={value} is outside 1024-65535")
            return value

        state = Path(env.get("CLOUDLAB_STATE_DIR") or ROOT / p["state"])
        return cls(profile, port("localstack"), port("moto"), port("jupyter"), state.resolve())

    # paths ------------------------------------------------------------------
    @property
    def venvs(self) -> Path:
        # Virtual environments are shared by the profiles: they only depend on pins.
        return Path(os.environ.get("CLOUDLAB_VENV_DIR") or ROOT / ".lab" / "venvs")

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    @property
    def localstack_url(self) -> str:
        return f"http://127.0.0.1:{self.localstack_port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def aws_env(self) -> dict[str, str]:
        """The environment every lesson, test and kernel gets: plain boto3 variables."""
        env = {
            "AWS_ENDPOINT_URL": self.localstack_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # Never read the learner's real ~/.aws files, never ask EC2 metadata.
            "AWS_CONFIG_FILE": str(self.state / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.state / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "CLOUDLAB_PROFILE": self.profile,
            "CLOUDLAB_STATE_DIR": str(self.state),
        }
        for service in MOTO_SERVICES:
            env[f"AWS_ENDPOINT_URL_{service}"] = self.moto_url
        return env


# ------------------------------------------------------------- virtual envs
EMU = ROOT / "pins"
VENV_SPECS = {
    # name: (python versions acceptable, requirement files, constraint files)
    "kernel": (("3.11", "3.12", "3.13"), [ROOT / "requirements.txt"], []),
    "localstack": (("3.13",), [EMU / "localstack-lock.txt"], [EMU / "localstack-constraints.txt"]),
    "moto": (("3.11", "3.12", "3.13"), [EMU / "moto-lock.txt"], []),
    "checkov": (("3.11", "3.12"), [EMU / "checkov-lock.txt"], []),
}


def find_python(versions: tuple[str, ...]) -> str | None:
    """The first interpreter of one of ``versions``: PATH, then pyenv, then uv's."""
    for v in versions:
        cands = [shutil.which(f"python{v}")]
        pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        cands += sorted(glob.glob(f"{pyenv_root}/versions/{v}*/bin/python{v}"), reverse=True)
        cands += sorted(glob.glob(os.path.expanduser(f"~/.local/share/uv/python/cpython-{v}*/bin/python{v}")), reverse=True)
        for c in cands:
            if c and os.access(c, os.X_OK):
                try:
                    out = subprocess.run([c, "-c", "import sys,venv,ensurepip;print('%d.%d'%sys.version_info[:2])"],
                                         capture_output=True, text=True, timeout=20)
                except (OSError, subprocess.TimeoutExpired):
                    continue
                if out.returncode == 0 and out.stdout.strip() == v:
                    return c
    return None


def _stamp(files: list[Path], python: str) -> str:
    h = hashlib.sha256(python.encode())
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def venv_python(lab: Lab, name: str) -> Path:
    if name == "kernel":
        return Path(os.environ.get("CLOUDLAB_KERNEL_VENV") or ROOT / ".venv") / "bin" / "python"
    return lab.venvs / name / "bin" / "python"


def ensure_venv(lab: Lab, name: str) -> Path:
    versions, reqs, cons = VENV_SPECS[name]
    py = venv_python(lab, name)
    vdir = py.parent.parent
    stampfile = vdir / ".cloudlab-stamp"
    if py.exists() and stampfile.exists():
        # Fast path: the pins have not changed since the last install.
        if stampfile.read_text().strip().split(" ", 1)[-1] == _stamp(reqs + cons, ""):
            return py
    python = find_python(versions)
    if python is None:
        if name == "localstack":
            raise LabError(
                "LocalStack 4.14 needs Python 3.13, and none was found (looked on PATH, in pyenv and uv).\n"
                "  Get one:  pyenv install 3.13   or   uv python install 3.13   or   apt install python3.13 (Debian 13)\n"
                "  Or use Docker instead:  docker compose up   (see README, 'The Docker path')")
        raise LabError(f"the {name} environment needs Python {' or '.join(versions)}; none was found on PATH or in pyenv.")
    t0 = time.monotonic()
    say(f"installing the {name} environment with {python} (once; about a minute) ...")
    if not py.exists():
        subprocess.run([python, "-m", "venv", str(vdir)], check=True)
    cmd = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for r in reqs:
        cmd += ["-r", str(r)]
    for c in cons:
        cmd += ["-c", str(c)]
    if name == "kernel":
        cmd += ["-e", str(ROOT)]
    log = lab.logfile(f"install-{name}")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = "".join([ln for ln in log.read_text().splitlines(True) if "is ignored: it is neither" not in ln][-15:])
        raise LabError(f"installing the {name} environment failed (pip exit {rc}); full log: {log}\n{tail}")
    stampfile.write_text(f"{python} {_stamp(reqs + cons, '')}\n")
    say(f"{name} environment ready in {time.monotonic() - t0:.0f} s")
    return py


def setup(lab: Lab, names=tuple(VENV_SPECS)) -> None:
    """Install the missing environments side by side (pip mostly waits on the network and disk)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [pool.submit(ensure_venv, lab, n) for n in names]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]


# ------------------------------------------------------------------ processes
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_pid(lab: Lab, name: str) -> int | None:
    try:
        pid = int(lab.pidfile(name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _pid_alive(pid) else None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_json(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def localstack_healthy(lab: Lab) -> bool:
    try:
        data = http_json(f"{lab.localstack_url}/_localstack/health")
    except (OSError, urllib.error.URLError):
        return False
    return isinstance(data, dict) and data.get("services", {}).get("s3") in ("available", "running")


def moto_healthy(lab: Lab) -> bool:
    try:
        http_json(f"{lab.moto_url}/moto-api/data.json")
        return True
    except (OSError, urllib.error.URLError):
        return False


def _spawn(lab: Lab, name: str, cmd: list[str], env: dict[str, str]) -> int:
    log = lab.logfile(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    lab.run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(log, "ab")
    fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
    fh.flush()
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=str(ROOT), start_new_session=True)
    lab.pidfile(name).write_text(f"{proc.pid}\n")
    return proc.pid


def _wait(check, pid: int, name: str, lab: Lab, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check(lab):
            return time.monotonic() - t0
        if not _pid_alive(pid):
            tail = "".join(lab.logfile(name).read_text(errors="replace").splitlines(True)[-12:])
            raise LabError(f"{name} exited during start-up. Last lines of {lab.logfile(name)}:\n{tail}")
        time.sleep(0.2)
    raise LabError(f"{name} did not become healthy within {timeout:.0f} s. "
                   f"Look at `make logs` ({lab.logfile(name)}), then `make stop && make lab`.")


def _ensure_port_free(port: int, name: str, env_var: str) -> None:
    if port_in_use(port):
        raise LabError(
            f"port {port} (for {name}) is already taken by another program.\n"
            f"  Find it:  ss -ltnp 'sport = :{port}'   (an old lab? run `make stop`; Docker's LocalStack? `docker compose down`)\n"
            f"  Or move the lab:  {env_var}=<free port> make lab")


def start_localstack(lab: Lab) -> str:
    if read_pid(lab, "localstack") and localstack_healthy(lab):
        return "already running"
    stop_one(lab, "localstack")
    _ensure_port_free(lab.localstack_port, "LocalStack", "CLOUDLAB_LOCALSTACK_PORT")
    py = venv_python(lab, "localstack")
    fsroot = lab.state / "localstack"
    fsroot.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_", "PYTHON"))}
    env.update({
        "GATEWAY_LISTEN": f"127.0.0.1:{lab.localstack_port}",
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(fsroot),
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SQS_ENDPOINT_STRATEGY": "off",
        "SKIP_INFRA_DOWNLOADS": "1",
        "LOCALSTACK_HOST": f"127.0.0.1:{lab.localstack_port}",
    })
    t0 = time.monotonic()
    pid = _spawn(lab, "localstack", [str(py), "-m", "localstack.runtime.main"], env)
    _wait(localstack_healthy, pid, "localstack", lab, timeout=90)
    _warm_up(lab, py)
    return f"started in {time.monotonic() - t0:.1f} s"


def _warm_up(lab: Lab, py: Path) -> None:
    """The first call to each service loads it: do that now, not in a learner's first cell."""
    code = (
        "import boto3,sys\n"
        "kw=dict(endpoint_url=sys.argv[1],region_name='us-east-1',aws_access_key_id='test',aws_secret_access_key='test')\n"
        "boto3.client('s3',**kw).list_buckets()\n"
        "boto3.client('sqs',**kw).list_queues()\n"
        "boto3.client('sts',**kw).get_caller_identity()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CA_BUNDLE"] = os.environ.get("AWS_CA_BUNDLE", "")
    if not env["AWS_CA_BUNDLE"]:
        env.pop("AWS_CA_BUNDLE")
    subprocess.run([str(py), "-c", code, lab.localstack_url], env=env, capture_output=True, timeout=120)


def start_moto(lab: Lab) -> str:
    if read_pid(lab, "moto") and moto_healthy(lab):
        return "already running"
    stop_one(lab, "moto")
    _ensure_port_free(lab.moto_port, "moto", "CLOUDLAB_MOTO_PORT")
    py = venv_python(lab, "moto")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    t0 = time.monotonic()
    pid = _spawn(lab, "moto", [str(py), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(lab.moto_port)], env)
    _wait(moto_healthy, pid, "moto", lab, timeout=60)
    return f"started in {time.monotonic() - t0:.1f} s"


def stop_one(lab: Lab, name: str, grace: float = 5.0) -> str:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
    pid = read_pid(lab, name)
    pf = lab.pidfile(name)
    if pid is None:
        pf.unlink(missing_ok=True)
        return "not running"
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.1)
        if not _pid_alive(pid):
            break
    pf.unlink(missing_ok=True)
    return "stopped"


SERVICES = ("localstack", "moto")


def up(lab: Lab) -> dict[str, str]:
    setup(lab, ("localstack", "moto"))
    t0 = time.monotonic()
    result = {"localstack": start_localstack(lab), "moto": start_moto(lab)}
    (lab.state / "aws-config").write_text(f"[default]\nregion = {REGION}\n")
    (lab.state / "aws-credentials").write_text("[default]\naws_access_key_id = test\naws_secret_access_key = test\n")
    (lab.state / "lab.env").write_text("".join(f"export {k}={v}\n" for k, v in lab.aws_env().items()))
    for k, v in result.items():
        say(f"{k:<10} {v}")
    say(f"local cloud ready in {time.monotonic() - t0:.1f} s: LocalStack {lab.localstack_url}, moto {lab.moto_url}")
    return result


def stop_lesson_processes(lab: Lab) -> None:
    for pidfile in sorted((lab.run_dir / "procs").glob("*.pid")):
        try:
            pid = int(pidfile.read_text())
            if _pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)


def down(lab: Lab) -> None:
    stop_lesson_processes(lab)
    for name in ("jupyter",) + SERVICES:
        say(f"{name:<10} {stop_one(lab, name)}")


def status(lab: Lab) -> int:
    rows = []
    for name, healthy, url in (("localstack", localstack_healthy, lab.localstack_url),
                               ("moto", moto_healthy, lab.moto_url)):
        pid = read_pid(lab, name)
        ok = healthy(lab)
        state = "healthy" if ok else ("running, not answering" if pid else "stopped")
        rows.append((name, state, url, pid))
    jpid = read_pid(lab, "jupyter")
    rows.append(("jupyter", "running" if jpid else "stopped", jupyter_url(lab) if jpid else "-", jpid))
    for name, state, url, pid in rows:
        print(f"  {name:<11} {state:<24} {url}  {'pid ' + str(pid) if pid else ''}")
    return 0 if all(r[1] == "healthy" for r in rows[:2]) else 1


def jupyter_url(lab: Lab) -> str:
    tokf = lab.run_dir / "jupyter.token"
    token = tokf.read_text().strip() if tokf.exists() else ""
    return f"http://127.0.0.1:{lab.jupyter_port}/lab?token={token}"


def _jupyter_answering(lab: Lab) -> bool:
    tokf = lab.run_dir / "jupyter.token"
    token = tokf.read_text().strip() if tokf.exists() else ""
    try:
        http_json(f"http://127.0.0.1:{lab.jupyter_port}/api/status?token={token}")
        return True
    except (OSError, urllib.error.URLError):
        return False


def spawn_jupyter(lab: Lab) -> int | None:
    """Start JupyterLab without waiting (it boots while the emulators start). None: already running."""
    kpy = ensure_venv(lab, "kernel")
    if read_pid(lab, "jupyter"):
        return None
    _ensure_port_free(lab.jupyter_port, "JupyterLab", "CLOUDLAB_JUPYTER_PORT")
    lab.run_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    (lab.run_dir / "jupyter.token").write_text(token + "\n")
    env = dict(os.environ)
    env.update(lab.aws_env())
    env["JUPYTER_CONFIG_DIR"] = str(lab.state / "jupyter-config")
    return _spawn(lab, "jupyter", [str(kpy), "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                                   f"--port={lab.jupyter_port}", f"--IdentityProvider.token={token}",
                                   f"--ServerApp.root_dir={ROOT}"]
                  + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []), env)


def start_jupyter(lab: Lab, pid: int | None = None) -> str:
    pid = pid if pid is not None else spawn_jupyter(lab)
    if pid is not None:
        _wait(_jupyter_answering, pid, "jupyter", lab, timeout=60)
    return jupyter_url(lab)


def reset(lab: Lab, progress: bool = False) -> None:
    """Wipe the lab's state: emulator data (restart), Terraform state, optionally progress."""
    was_running = bool(read_pid(lab, "localstack") or read_pid(lab, "moto"))
    for name in SERVICES:
        stop_one(lab, name)
    for sub in ("localstack", "terraform", "work"):
        shutil.rmtree(lab.state / sub, ignore_errors=True)
    for tfdir in ROOT.glob("**/.terraform"):
        if ".lab" not in tfdir.parts:
            shutil.rmtree(tfdir, ignore_errors=True)
    for tfstate in ROOT.glob("**/terraform.tfstate*"):
        if ".lab" not in tfstate.parts and ".venv" not in tfstate.parts:
            tfstate.unlink(missing_ok=True)
    if progress:
        (lab.state / "progress.json").unlink(missing_ok=True)
        say("progress file removed")
    say("emulator data and Terraform state wiped")
    if was_running:
        up(lab)


def run(lab: Lab, cmd: list[str]) -> int:
    """Start the lab, run ``cmd`` with the lab's environment, stop the lab: nothing is left running."""
    try:
        if lab.profile == "test":  # every test run starts from nothing
            for sub in ("localstack", "terraform", "work", "run", "progress.json"):
                target = lab.state / sub
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
        up(lab)
        env = dict(os.environ)
        env.update(lab.aws_env())
        return subprocess.call(cmd, env=env)
    finally:
        stop_lesson_processes(lab)
        for name in SERVICES:
            stop_one(lab, name)
        say("test lab stopped")


def logs(lab: Lab, lines: int = 40) -> None:
    for name in SERVICES + ("jupyter",):
        f = lab.logfile(name)
        if f.exists():
            print(f"==> {f} <==")
            print("".join(f.read_text(errors="replace").splitlines(True)[-lines:]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cloudlab.lab", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default=None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup", help="create the virtual environments that are missing or stale")
    sub.add_parser("up", help="start the emulators (idempotent) and wait until healthy")
    sub.add_parser("lab", help="up + JupyterLab on 127.0.0.1; prints the URL")
    sub.add_parser("down", help="stop everything this lab started")
    sub.add_parser("status", help="what runs, what answers")
    sub.add_parser("logs", help="the last lines of each log")
    sub.add_parser("env", help="print the environment as shell exports")
    r = sub.add_parser("reset", help="wipe emulator data and Terraform state")
    r.add_argument("--progress", action="store_true", help="also delete the progress file")
    rn = sub.add_parser("run", help="up, run a command with the lab environment, down")
    rn.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    try:
        lab = Lab.from_env(args.profile)
        if args.cmd == "setup":
            setup(lab)
        elif args.cmd == "up":
            up(lab)
        elif args.cmd == "lab":
            setup(lab)
            jpid = spawn_jupyter(lab)  # boots while the emulators start
            up(lab)
            url = start_jupyter(lab, jpid)
            say("JupyterLab is running. Open:")
            print(f"\n    {url}\n", flush=True)
            say("start with notebooks/00_environment-check.ipynb; `make stop` stops everything")
        elif args.cmd == "down":
            down(lab)
        elif args.cmd == "status":
            return status(lab)
        elif args.cmd == "logs":
            logs(lab)
        elif args.cmd == "env":
            print("".join(f"export {k}={v}\n" for k, v in lab.aws_env().items()), end="")
        elif args.cmd == "reset":
            reset(lab, progress=args.progress)
        elif args.cmd == "run":
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not cmd:
                raise LabError("`run` needs a command after --")
            return run(lab, cmd)
    except LabError as e:
        print(f"[lab] ERROR: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
