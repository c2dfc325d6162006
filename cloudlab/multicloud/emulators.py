"""Google Cloud's and Azure's emulators, as lesson processes on 127.0.0.1 (lesson 11).

Four emulators, each its provider's own where one exists:

=================  ===============================================  =============================
process            command (see :func:`command`)                     serves
=================  ===============================================  =============================
``l11-pubsub``     ``gcloud beta emulators pubsub start``            Pub/Sub (Java)
``l11-firestore``  ``gcloud beta emulators firestore start``         Firestore (Java)
``l11-gcs``        ``fake-gcs-server -scheme http``                  Cloud Storage (Go; no official emulator)
``l11-azurite``    ``azurite --inMemoryPersistence``                 Blob, Queue, Table storage (Node.js)
=================  ===============================================  =============================

They start side by side (the Java ones take seconds), once per lab: a lesson reset wipes their data but leaves
them running (:func:`cloudlab.cleanup.keep_running`), `make stop` stops them. Each listens on the lab's port
(``cloudlab.lab.PORTS``), 127.0.0.1 only. Where an emulator already answers at its standard variable (the Docker
path runs them as compose services), it is used as it is. Cold start and peak memory are measured and kept in
``<lab state>/work/l11/emulators.json``.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .. import net, procs
from ..lab import Lab, process, tools
from . import guard

NAMES = ("pubsub", "firestore", "gcs", "azurite")
PROC = {n: f"l11-{n}" for n in NAMES}
TITLES = {
    "pubsub": "Pub/Sub emulator",
    "firestore": "Firestore emulator",
    "gcs": "fake-gcs-server (Cloud Storage)",
    "azurite": "Azurite (Blob, Queue, Table)",
}
VERSIONS = {"gcs": "1.54.0", "azurite": "3.37.0"}  # the pinned wheel and npm package (cloudlab.lab.tools)
# Java's start-up: a small heap (the emulators hold a lesson's worth of data), the quick C1 compiler only.
JAVA_OPTIONS = "-Xmx192m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
STARTUP_TIMEOUT = 90.0


class EmulatorMissing(RuntimeError):
    """An emulator cannot start here; the message names the fix."""

    def _render_traceback_(self):
        return [f"\x1b[31mEmulatorMissing\x1b[0m: {self}"]


def lab() -> Lab:
    return Lab.from_env()


def work_dir() -> Path:
    return lab().work_dir("11")


def env(the_lab: Lab | None = None) -> dict[str, str]:
    """The providers' standard variables for this lab's emulators: what a Google or Azure client reads."""
    lb = the_lab or lab()
    p = lb.ports
    return {
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{p['pubsub']}",
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{p['firestore']}",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{p['gcs']}",
        "GOOGLE_CLOUD_PROJECT": "demo-cloudlab",
        guard.AZURE_VAR: guard.azurite_connection_string(p["azurite_blob"], p["azurite_queue"], p["azurite_table"]),
        # gcloud and Google's auth library read their settings here, never from the learner's ~/.config/gcloud
        # (where a real login may live); and they never ask a cloud metadata server for credentials.
        "CLOUDSDK_CONFIG": str(lb.state / "gcloud"),
        "NO_GCE_CHECK": "True",
    }


def connect() -> dict[str, str]:
    """Set the standard variables in this process (values set before, e.g. by docker compose, win), then check
    them with the real-cloud guard. Returns them."""
    for k, v in env().items():
        os.environ.setdefault(k, v)
    for service in guard.GCP_VARS:
        guard.gcp_endpoint(service)
    guard.azure_connection_string()
    return {k: os.environ[k] for k in env()}


def address(name: str) -> str:
    e = os.environ
    if name == "gcs":
        return e.get("STORAGE_EMULATOR_HOST") or env()["STORAGE_EMULATOR_HOST"]
    if name == "azurite":
        parts = guard.parse_connection_string(
            guard.azure_connection_string({guard.AZURE_VAR: e.get(guard.AZURE_VAR) or env()[guard.AZURE_VAR]})
        )
        return parts.get("BlobEndpoint", "http://127.0.0.1:10000").rsplit("/", 1)[0]
    var = guard.GCP_VARS[name]
    return "http://" + (e.get(var) or env()[var])


def command(name: str, the_lab: Lab | None = None) -> list[str]:
    """The real command line that starts ``name`` on this lab's port (what a learner would type)."""
    lb = the_lab or lab()
    p = lb.ports
    if name == "pubsub":
        data = lb.work_dir("11") / "pubsub"
        return ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{p['pubsub']}",
                "--project=demo-cloudlab", f"--data-dir={data}"]  # fmt: skip
    if name == "firestore":
        return ["gcloud", "beta", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{p['firestore']}",
                "--project=demo-cloudlab"]  # fmt: skip
    if name == "gcs":
        port = p["gcs"]
        return ["fake-gcs-server", "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
                "-public-host", f"127.0.0.1:{port}", "-external-url", f"http://127.0.0.1:{port}",
                "-log-level", "warn"]  # fmt: skip
    if name == "azurite":
        return ["azurite", "--blobHost", "127.0.0.1", "--blobPort", str(p["azurite_blob"]),
                "--queueHost", "127.0.0.1", "--queuePort", str(p["azurite_queue"]),
                "--tableHost", "127.0.0.1", "--tablePort", str(p["azurite_table"]),
                "--inMemoryPersistence", "--extentMemoryLimit", "64", "--disableTelemetry", "--skipApiVersionCheck",
                "--silent"]  # fmt: skip
    raise KeyError(name)


TOOLS = {
    "pubsub": ("gcloud", "cloud-pubsub-emulator", "java"),
    "firestore": ("gcloud", "cloud_firestore_emulator", "java"),
    "gcs": ("fake-gcs-server",),
    "azurite": ("azurite",),
}


def _executable(name: str) -> list[str]:
    """The command with its first word resolved through the tools registry (installing what the lab can)."""
    cmd = command(name)
    for tool in TOOLS[name]:
        path = tools.require(tool, "11")
        if tool == cmd[0]:
            cmd[0] = path
    return cmd


def answers(name: str, url: str | None = None) -> bool:
    """Does the emulator itself (not just anything) answer at its address?"""
    url = url or address(name)
    try:
        if name in ("pubsub", "firestore"):
            r = net.request("GET", url + "/", timeout=2)
            return r.status == 200 and r.body.strip() == b"Ok"
        if name == "gcs":
            r = net.request("GET", url + "/storage/v1/b", timeout=2)
            return r.status == 200 and b"storage#" in r.body
        r = net.request("GET", url + "/devstoreaccount1?comp=list", timeout=2)
        return any(k.lower().startswith("x-ms-") for k in r.headers)
    except (OSError, ValueError):
        return False


def _state_file() -> Path:
    return work_dir() / "emulators.json"


def _load_state() -> dict:
    try:
        return json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}


def _save_state(data: dict) -> None:
    _state_file().write_text(json.dumps(data, indent=1, sort_keys=True))


def _spawn_env(name: str) -> dict[str, str]:
    out = {"CLOUDSDK_CONFIG": env()["CLOUDSDK_CONFIG"], "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    out["CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK"] = "1"
    if name in ("pubsub", "firestore"):
        out["JAVA_TOOL_OPTIONS"] = JAVA_OPTIONS
    return out


@dataclass
class Status:
    """One emulator: how it came to run here, where, how long its cold start took, its peak memory."""

    name: str
    how: str
    url: str
    cold_start_s: float | None
    rss_mb: float | None
    command: str


def peak_rss_mb(proc_name: str) -> float | None:
    """The peak RSS (VmHWM) of a lesson process and every process below it, in MB."""
    running = procs.running(proc_name)
    if running is None:
        return None
    total = 0
    for pid in process.descendants(running.pid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1) if total else None


def _start_one(name: str) -> tuple[str, float | None]:
    """Start one emulator and wait until it answers: (how, cold start seconds)."""
    url = address(name)
    mine = procs.running(PROC[name])
    if answers(name, url):
        return ("already running" if mine else "answering already (not started by this lab)"), None
    if net.port_in_use(int(url.rsplit(":", 1)[1].split("/")[0])) and not mine:
        raise EmulatorMissing(
            f"the port of the {TITLES[name]} ({url}) is taken by another program that is not that emulator. "
            f"`ss -ltnp` shows who holds it; stop it, or move this lab (CLOUDLAB_PORT_OFFSET=100)."
        )
    cmd = _executable(name)
    (work_dir() / "pubsub").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = procs.start(PROC[name], cmd, env=_spawn_env(name), python=False, cwd=str(work_dir()))
    deadline = t0 + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if answers(name, url):
            return "started", round(time.monotonic() - t0, 1)
        if not proc.alive():
            break
        time.sleep(0.1)
    out = proc.output()[-1200:]
    procs.stop(PROC[name])
    raise EmulatorMissing(f"the {TITLES[name]} did not answer at {url}. Its output:\n{out}")


def _versions() -> dict[str, str]:
    """The Google emulators' versions, as `gcloud --version` reports them (read once per lab)."""
    import subprocess

    found = dict(VERSIONS)
    try:
        out = subprocess.run(
            [tools.require("gcloud", "11"), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, **_spawn_env("")),
        ).stdout
    except (OSError, subprocess.TimeoutExpired, tools.ToolMissing):
        out = ""
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("pubsub-emulator", "cloud-firestore-emulator"):
            found["pubsub" if parts[0].startswith("pubsub") else "firestore"] = parts[1]
        elif line.startswith("Google Cloud SDK"):
            found["gcloud"] = line.split()[-1]
    return found


def start(names=NAMES) -> list[Status]:
    """Start the emulators that do not answer yet, side by side; wait for each; say how each came to run."""
    connect()
    state = _load_state()
    with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
        versions = pool.submit(_versions) if "versions" not in state else None
        futures = {n: pool.submit(_start_one, n) for n in names}
        results = {}
        errors = []
        for n, f in futures.items():
            try:
                results[n] = f.result()
            except (EmulatorMissing, tools.ToolMissing) as e:
                errors.append(f"{TITLES[n]}: {e}")
        if versions is not None:
            state["versions"] = versions.result()
    if errors:
        raise EmulatorMissing("\n".join(errors))
    out = []
    for n in names:
        how, seconds = results[n]
        if seconds is not None:
            state.setdefault("cold_start_s", {})[n] = seconds
        rss = peak_rss_mb(PROC[n])
        if rss is not None:
            state.setdefault("rss_mb", {})[n] = max(rss, state.get("rss_mb", {}).get(n, 0))
        cold = state.get("cold_start_s", {}).get(n)
        out.append(Status(n, how, address(n), cold, rss, shlex.join(command(n))))
    _save_state(state)
    return out


def versions() -> dict[str, str]:
    return _load_state().get("versions", dict(VERSIONS))


def table(statuses: list[Status]):
    """The emulators as a table: what runs where, its cold start, its memory."""
    from ..tables import Table

    v = versions()
    rows = [
        (
            TITLES[s.name] + (f" {v[s.name]}" if s.name in v else ""),
            s.url,
            s.how,
            "" if s.cold_start_s is None else f"{s.cold_start_s:.1f} s",
            "" if s.rss_mb is None else f"{s.rss_mb:.0f} MB",
        )
        for s in statuses
    ]
    return Table(
        ("emulator", "listens on", "now", "cold start", "peak RSS"),
        rows,
        title="The lesson's emulators (lesson processes l11-*)",
        notes=["cold start: from the command to the first answer, started side by side (this lab's last start)"],
    )


def stop() -> list[str]:
    """Stop the emulators this lab started (`make stop` does it too)."""
    for n in NAMES:
        procs.stop(PROC[n])
    return [PROC[n] for n in NAMES]
