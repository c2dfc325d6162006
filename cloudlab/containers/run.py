"""``docker run`` for lessons: start a service container (least privilege by default available as
:data:`HARDENED`), wait until it answers, read what really runs inside (UID, capabilities,
no-new-privileges from ``/proc/1/status``), run one-off commands, and clean up.

Containers use the host's network namespace (``--network host``), so a service listening on
127.0.0.1 inside is reachable on 127.0.0.1 outside, and reaches the emulators the same way.
Serves lessons 05, 07 and 08.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import net
from ..lab import ROOT, Lab
from .engine import LABEL, current, docker, shown

# The least-privilege flags: a non-root UID, a read-only root filesystem with a small tmpfs for scratch,
# no Linux capabilities, no privilege gain through setuid binaries, bounded memory and processes.
HARDENED = [
    "--user", "10001:10001",
    "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--memory", "128m",  # about twice the ~50 MiB the service uses idle (lesson 05 prints it)
    "--pids-limit", "64",
]  # fmt: skip

CAPABILITIES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
    "PERFMON BPF CHECKPOINT_RESTORE"
).split()
AWS_PASS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
)


class ContainerFailed(RuntimeError):
    """A container did not start or did not answer; the message holds its state and last log lines."""

    def _render_traceback_(self):
        return [f"\x1b[31mContainerFailed\x1b[0m: {self}"]


def capabilities(mask_hex: str) -> list[str]:
    """Names of the Linux capabilities in a ``CapEff``-style hex mask."""
    mask = int(mask_hex, 16)
    return [name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1] + (
        [f"cap{bit}" for bit in range(len(CAPABILITIES), 64) if mask >> bit & 1]
    )


@dataclass
class ProcStatus:
    """What the kernel says about PID 1 of a container."""

    uid: int
    gid: int
    caps: list[str]  # effective: what it can do now (a non-root process has none, whatever the flags)
    no_new_privs: bool
    rss_kb: int = 0
    bounding: list[str] = field(default_factory=list)  # the most it could ever gain (e.g. through setuid)


def parse_proc_status(text: str) -> ProcStatus:
    f = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        f[k.strip()] = v.split()
    return ProcStatus(
        int((f.get("Uid") or ["-1", "-1"])[1]),
        int((f.get("Gid") or ["-1", "-1"])[1]),
        capabilities((f.get("CapEff") or ["0"])[0]),
        (f.get("NoNewPrivs") or ["0"])[0] == "1",
        int((f.get("VmRSS") or ["0"])[0]),
        capabilities((f.get("CapBnd") or ["0"])[0]),
    )


@dataclass
class Container:
    """A container a lesson started."""

    name: str
    image: str
    port: int | None = None
    command: str = ""
    flags: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inspect(self) -> dict:
        out = docker("container", "inspect", self.name)
        data = json.loads(out.stdout or "[]") if out.returncode == 0 else []
        return data[0] if data else {}

    def state(self) -> dict:
        return self.inspect().get("State", {})

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def logs(self, tail: int = 20) -> str:
        out = docker("logs", "--tail", str(tail), self.name)
        return (out.stdout + out.stderr).strip()

    def exec(self, *cmd: str, show: bool = False, user: str | None = None) -> subprocess.CompletedProcess:
        """``docker exec [--user U] <name> <cmd>``: runs with the container's own limits and filesystem, as its
        own user unless ``user`` is given (``"0"``: root, still without the capabilities the container dropped)."""
        return docker("exec", *(["--user", user] if user else []), self.name, *cmd, show=show)

    def proc_status(self) -> ProcStatus:
        """UID, effective capabilities and no-new-privileges of the container's PID 1, from ``/proc/1/status``."""
        out = self.exec("cat", "/proc/1/status")
        if out.returncode != 0:
            pid = self.state().get("Pid")
            try:
                return parse_proc_status(Path(f"/proc/{pid}/status").read_text())
            except (OSError, TypeError):
                raise ContainerFailed(f"cannot read /proc/1/status of {self.name}: {out.stderr.strip()}") from None
        return parse_proc_status(out.stdout)

    def find(self, *tests: str) -> list[str] | None:
        """``docker exec -u 0 <name> find / -xdev <tests> -print``: paths of the container's own filesystem
        that match (tmpfs mounts, /proc and /sys are other filesystems and left out). As UID 0 so no folder is
        unreadable; with all capabilities dropped that root can still read only what root owns, which is all
        of an image. None when the container does not run or has no ``find``."""
        out = docker("exec", "-u", "0", self.name, "find", "/", "-xdev", *tests, "-print")
        if out.returncode not in (0, 1) or (out.returncode == 1 and not out.stdout):
            return None
        return [line for line in out.stdout.splitlines() if line]

    def health(self, timeout: float = 30.0) -> tuple[str, str]:
        """Wait until Docker's HEALTHCHECK says healthy or unhealthy: (status, the last probe's output)."""
        deadline = time.monotonic() + timeout
        status, output = "none", ""
        while time.monotonic() < deadline:
            h = self.state().get("Health") or {}
            status = h.get("Status", "none")
            log = h.get("Log") or []
            output = (log[-1].get("Output") or "").strip() if log else ""
            if status in ("healthy", "unhealthy", "none"):
                break
            time.sleep(0.2)
        return status, output

    def remove(self) -> None:
        docker("rm", "-f", self.name)

    def __repr__(self) -> str:
        return f"container {self.name} ({self.image}) " + (f"on {self.url}" if self.port else "")


def env_file(name: str, extra: dict | None = None) -> Path:
    """The lab's AWS variables (emulator endpoints, dummy key, region) for a container, in a file."""
    import os

    from ..aws import guard

    guard("s3")  # refuses to hand real-AWS settings to a container
    keys = [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")] + [k for k in AWS_PASS if k in os.environ]
    d = Lab.from_env().work / "containers"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.env"
    path.write_text(
        "".join(f"{k}={os.environ[k]}\n" for k in sorted(keys))
        + "".join(f"{k}={v}\n" for k, v in (extra or {}).items())
    )
    return path


def _free_port_from_old_containers(port: int, lesson: str) -> list[str]:
    """Remove this lesson's old containers that hold ``port`` (a cell run twice, a crashed kernel)."""
    out = docker("ps", "--filter", f"label={LABEL}={lesson}", "--format", "{{.Names}}")
    removed = []
    for name in out.stdout.split():
        env = Container(name, "").inspect().get("Config", {}).get("Env") or []
        if f"PORT={port}" in env:
            docker("rm", "-f", name)
            removed.append(name)
    return removed


def run(
    image: str,
    name: str,
    *,
    flags=(),
    env: dict | None = None,
    port: int | None = None,
    lesson: str = "",
    command=(),
    wait: str | None = "/health",
    timeout: float = 20.0,
    aws: bool = True,
    show: bool = True,
    check: bool = True,
) -> Container:
    """``docker run -d`` the image as ``name`` (re-running replaces the old one) and wait until
    ``http://127.0.0.1:<port><wait>`` answers. ``flags``: the learner's ``docker run`` flags, e.g. HARDENED.

    Raises :class:`ContainerFailed` with the state and logs when it does not start or answer (``check``);
    else returns the container, which may have exited (ask ``.state()``)."""
    docker("rm", "-f", name)
    port = port or net.free_port()
    if net.port_in_use(port):
        gone = _free_port_from_old_containers(port, lesson)
        if gone and show:
            print(f"port {port} was held by an old container of this lesson: removed {', '.join(gone)}")
        if net.port_in_use(port):
            raise ContainerFailed(
                f"port {port} is already taken by another process (`ss -ltnp 'sport = :{port}'` shows which). "
                "Stop it, or leave the port out and let the lesson pick a free one."
            )
    args = ["run", "-d", "--name", name, "--network", "host"]
    if lesson:
        args += ["--label", f"{LABEL}={lesson}"]
    args += [str(f) for f in flags]
    for k, v in {"PORT": str(port), **(env or {})}.items():
        args += ["-e", f"{k}={v}"]
    if aws:
        path = env_file(name)
        args += ["--env-file", str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)]
    args += [image, *command]
    cwd = ROOT
    c = Container(name, image, port, shown(args, cwd=cwd), [str(f) for f in flags])
    if show:
        print(f"$ {c.command}", flush=True)
    out = docker(*args, cwd=cwd)
    if out.returncode != 0:
        if check:
            raise ContainerFailed(f"docker run refused: {out.stderr.strip()[-600:]}")
        return c
    if wait and not net.wait_http(c.url + wait, timeout, alive=c.running):
        st = c.state()
        why = (
            f"it exited with code {st.get('ExitCode')}" + (" (killed: out of memory)" if st.get("OOMKilled") else "")
            if not st.get("Running")
            else f"it runs but nothing answered {c.url + wait} within {timeout:.0f} s"
        )
        if st.get("Running") and current().whose == "your engine":
            why += (
                " (the container shares the host's network: on Docker Desktop turn on Settings > Resources > "
                "Network > Enable host networking, version 4.34 or newer)"
            )
        if check:
            raise ContainerFailed(f"{name}: {why}. Its last log lines:\n{c.logs(12)}")
    return c


def run_once(
    image: str, command, flags=(), lesson: str = "", show: bool = True, input: str | None = None
) -> subprocess.CompletedProcess:
    """``docker run --rm --network none [flags] image command``: a one-off command, its output and exit code.

    ``input``: text for the command's stdin (adds ``-i``)."""
    args = ["run", "--rm", "--network", "none"] + (["-i"] if input is not None else [])
    if lesson:
        args += ["--label", f"{LABEL}={lesson}"]
    args += [str(f) for f in flags] + [image, *command]
    return docker(*args, show=show, timeout=120, input=input)
