"""Lesson 05's exercise checks. Each one builds, runs or saves the REAL image from the learner's
Dockerfile (or runs the learner's flags) in a fresh copy of the project, with fresh names and a fresh
token, and says what is right and what is missing."""

from __future__ import annotations

import re
import secrets

from .. import containers, net
from ..checks import check
from .project import backing_services, base_ref, stage

LESSON = "05"
SIZE_BUDGET_MB = 55  # what the runtime image may add to its base: the virtual environment (~50 MB) and code
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as")
INSTALL = re.compile(r"\b(pip3?|uv|poetry|pipenv)\b[^&;|]*\binstall\b|python3?\s+-m\s+pip\b")
DIGEST_PIN = re.compile(r"@sha256:[0-9a-f]{64}\b")
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")


def _nonce() -> str:
    return secrets.token_hex(4)


def _require_engine(r):
    if not containers.answers():
        eng = containers.connect(quiet=True)
        if eng is None:
            r.fail(
                "no Docker engine answers, so nothing can be built: start Docker (or run the setup cell, "
                "which starts the lab's own engine where it can), then run this check again."
            )


def _dockerfile(r, ns, name: str) -> str:
    text = r.need(ns, name, str, "Dockerfile (a string)")
    r.require(
        re.search(r"^\s*FROM\s", text, re.M | re.I) is not None,
        f"{name} is a Dockerfile",
        f"{name} has no FROM line: write the whole Dockerfile, starting with `ARG BASE=...` and `FROM ${{BASE}}`",
    )
    return text


def _build(r, project, dockerfile_text: str, tag: str, what: str, **kw) -> containers.Build:
    project.write("Dockerfile.check", dockerfile_text)
    b = project.build("Dockerfile.check", tag, show=False, check=False, **kw)
    if not b.ok:
        r.fail(f"{what} does not build: {b.reason}.\n{b.error}")
    return b


def _stages(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if re.match(r"\s*FROM\s", ln, re.I)]


def _paths(c, tag: str) -> list[str]:
    """Every path of the image: from the running container (fast), else from ``docker export``."""
    found = c.find() if c.running() else None
    return found if found is not None else list(containers.files(tag, lesson=LESSON))


JUNK = (".env", ".env.production", "debug.log")  # what stage(junk=True) plants: the developer's folder
NUMERIC_USER = re.compile(r"\d+(:\d+)?")


def _junk(paths: list[str]) -> list[str]:
    """Paths of the image that come from the developer's folder rather than the code: .env files, logs."""
    return sorted(p for p in paths if p.rsplit("/", 1)[-1] in JUNK)


def _cleanup(*refs: str) -> None:
    for ref in refs:
        containers.docker("rm", "-f", ref) if ":" not in ref else containers.docker("rmi", "-f", ref)


# ------------------------------------------------------------------ 05.1 layer order
@check(
    "05.1",
    "A code change rebuilds only the last layers",
    hints=[
        "Order the steps by how often they change: the dependency files first, the code last.",
        "COPY requirements.txt and wheels/ alone, RUN the pip install, and only then COPY app/ (never `COPY . .` "
        "before the install).",
        "FROM ${BASE}; WORKDIR /app; COPY requirements.txt ./; COPY wheels/ /wheels/; RUN python -m venv /opt/venv "
        "&& /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt; "
        'COPY app/ ./app/; CMD ["/opt/venv/bin/python", "-m", "app.service"]',
    ],
)
def check_layer_order(r, ns):
    text = _dockerfile(r, ns, "CACHED_DOCKERFILE")
    _require_engine(r)
    project = stage("check-1", dockerignore=False, junk=True)  # a developer's folder: .env and logs too
    tag = f"l05-check1:{_nonce()}"
    first = _build(r, project, text, tag, "CACHED_DOCKERFILE")
    r.expect(True, f"it builds ({first.seconds:.1f} s, {len(first.cached)} steps from the cache)", "")
    marker = project.change_code(f"check {_nonce()}")
    again = _build(r, project, text, tag, "CACHED_DOCKERFILE after a code change")
    installs = [s for s in again.steps if s.keyword == "RUN" and INSTALL.search(s.instruction)]
    r.require(
        installs,
        "a RUN step installs the dependencies",
        "no RUN step installs the dependencies (pip install ... -r requirements.txt): the image would lack boto3",
    )
    rerun = [s for s in installs if not s.cached]
    r.expect(
        not rerun,
        f"after a code-only change the install step came from the cache; the rebuild took {again.seconds:.1f} s",
        (
            f"after a code-only change, `{rerun[0].instruction[:70]}` ran again ({rerun[0].seconds or 0:.1f} s): "
            "a step before it copies the code. Copy only requirements.txt and the wheels before the install, "
            "and the code after it"
        )
        if rerun
        else "",
    )
    port = net.free_port()
    c = containers.run(
        tag, f"l05-check1-{_nonce()}", env=backing_services(), port=port, lesson=LESSON, show=False, check=False
    )
    try:
        r.expect(
            net.answers(c.url + "/health"),
            "the rebuilt image starts the service, which answers /health",
            f"the rebuilt image does not serve /health: {c.state().get('Status')}; its log: {c.logs(4)[-400:]}",
        )
        wd = (containers.inspect(tag) or {}).get("Config", {}).get("WorkingDir") or "/"
        found = c.exec("grep", "-rlsF", "--include=*.py", marker, wd).stdout.strip() if c.running() else ""
        r.expect(
            bool(found),
            "the rebuilt image holds the changed code",
            "the changed app/service.py is not in the rebuilt image: COPY the code (app/) into it",
        )
        junk = _junk(_paths(c, tag))
        r.expect(
            not junk,
            "it carries the code, not the developer's folder (no .env, no logs)",
            f"the image holds the developer's folder, e.g. {', '.join(junk[:3])}: copy the code (app/) and what the "
            "install needs, not the whole folder (`COPY . .` ships the .env with its token, and any change to any file "
            "rebuilds that layer)",
        )
    finally:
        _cleanup(c.name, tag)


# ------------------------------------------------------------------ 05.2 multi-stage
@check(
    "05.2",
    "A multi-stage image: small, with nothing to build with",
    hints=[
        "Two FROM lines: a builder stage that installs into a virtual environment, and a runtime stage that "
        "starts again from ${BASE}.",
        "In the runtime stage, `COPY --from=builder /opt/venv /opt/venv` and the code: not the wheels, not "
        "`COPY --from=builder / /`, and not `FROM builder`.",
        "FROM ${BASE} AS builder ... RUN python -m venv /opt/venv && /opt/venv/bin/pip install ...; "
        "FROM ${BASE} AS runtime; WORKDIR /app; COPY --from=builder /opt/venv /opt/venv; COPY app/ ./app/; "
        'CMD ["/opt/venv/bin/python", "-m", "app.service"]',
    ],
)
def check_multistage(r, ns):
    text = _dockerfile(r, ns, "MULTISTAGE_DOCKERFILE")
    _require_engine(r)
    froms = _stages(text)
    r.expect(
        len(froms) >= 2,
        f"{len(froms)} stages",
        "only one stage (one FROM): build in a builder stage, then start the runtime stage from ${BASE} again",
    )
    names = {m.group(1).lower() for ln in froms for m in [re.search(r"\sAS\s+(\S+)", ln, re.I)] if m}
    last = froms[-1].split()[1].lower() if froms and len(froms[-1].split()) > 1 else ""
    r.expect(
        last not in names,
        "the runtime stage starts from the base, not from the builder",
        f"the last stage starts FROM {last}, so it inherits everything the builder has: start it FROM ${{BASE}}",
    )
    project = stage("check-2", dockerignore=False, junk=True)
    tag = f"l05-check2:{_nonce()}"
    _build(r, project, text, tag, "MULTISTAGE_DOCKERFILE")
    base_mb = containers.size_mb(base_ref())
    size = containers.size_mb(tag)
    budget = base_mb + SIZE_BUDGET_MB
    if base_mb:  # the base is there (it was just built on)
        r.expect(
            size <= budget,
            f"{size:.0f} MB: within the budget of {budget:.0f} MB (base {base_mb:.0f} MB + {SIZE_BUDGET_MB} MB)",
            f"the image is {size:.0f} MB, over the budget of {budget:.0f} MB (base {base_mb:.0f} MB + "
            f"{SIZE_BUDGET_MB} MB): the runtime stage carries more than the virtual environment and the code",
        )
    c = containers.run(tag, f"l05-check2-{_nonce()}", env=backing_services(), lesson=LESSON, show=False, check=False)
    try:
        r.expect(
            net.answers(c.url + "/health"),
            "the runtime image starts the service (its virtual environment works there)",
            f"the runtime image does not serve /health (did the virtual environment and the code get copied?). "
            f"Its log: {c.logs(6)[-500:]}",
        )
        paths = _paths(c, tag)
    finally:
        _cleanup(c.name, tag)
    wheelhouse = {p.name for p in (project.path / "wheels").glob("*.whl")}
    wheels = sorted(p for p in paths if p.rsplit("/", 1)[-1] in wheelhouse)
    r.expect(
        not wheels,
        "no wheelhouse in the runtime image",
        f"the runtime image still holds {len(wheels)} wheel file(s), e.g. {wheels[0] if wheels else ''}: "
        "copy only the virtual environment from the builder",
    )
    junk = _junk(paths)
    r.expect(
        not junk,
        "nothing from the developer's folder (no .env, no logs)",
        f"the runtime image holds the developer's folder, e.g. {', '.join(junk[:3])}: copy the code, not `. .`",
    )
    tools_found = sorted(p for p in paths if p.rsplit("/", 1)[-1] in COMPILERS and "/bin/" in p)
    tools_found += sorted(p for p in paths if "/.cache/pip/" in p)[:1]
    r.expect(
        not tools_found,
        "no compiler and no pip cache in the runtime image",
        f"the runtime image holds build tools: {', '.join(tools_found[:4])}",
    )


# ------------------------------------------------------------------ 05.3 least privilege at run time
FORBIDDEN = {
    "--privileged": "--privileged gives the container every capability and the host's devices",
    "--cap-add": "--cap-add gives a capability back",
    "-v": "a bind mount puts a host folder into the container (the task asks for none)",
    "--volume": "a bind mount puts a host folder into the container (the task asks for none)",
    "--mount": "a mount puts a host folder or volume into the container (the task asks for none)",
    "--device": "--device hands the container a host device",
    "--ipc": "sharing the host's IPC namespace exposes its shared memory",
    "--uts": "sharing the host's UTS namespace lets the container rename the host",
    "--network": "leave the network to the check (it uses the host's 127.0.0.1)",
    "--net": "leave the network to the check (it uses the host's 127.0.0.1)",
    "--pid": "sharing the host's PID namespace exposes every host process",
    "--userns": "--userns=host switches user-namespace isolation off",
    "--name": "leave the container's name to the check",
}


@check(
    "05.3",
    "Least privilege at run time",
    hints=[
        "`docker run` flags for: a numeric non-root user and group, a read-only root filesystem with a small /tmp "
        "that runs nothing, no Linux capabilities, no privilege gain, a memory limit and a process limit.",
        "--user 10001:10001, --read-only with --tmpfs /tmp:rw,noexec,nosuid,size=16m, --cap-drop ALL, "
        "--security-opt no-new-privileges, --memory 128m, --pids-limit 64.",
        'RUN_FLAGS = ["--user", "10001:10001", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m", '
        '"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "128m", "--pids-limit", "64"]',
    ],
)
def check_run_flags(r, ns):
    flags = r.need(ns, "RUN_FLAGS", list, "list of docker run flags (strings)")
    r.require(
        flags and all(isinstance(f, str) for f in flags),
        f"RUN_FLAGS holds {len(flags)} strings",
        "RUN_FLAGS should be a non-empty list of strings, like ['--read-only', '--cap-drop', 'ALL', ...]",
    )
    for f in flags:
        key = f.split("=", 1)[0]
        if key in FORBIDDEN or (key == "--security-opt" and "unconfined" in " ".join(flags)):
            r.fail(f"`{f}` is not least privilege: {FORBIDDEN.get(key, 'it switches a security profile off')}")
    _require_engine(r)
    project = stage("check-3", junk=False)
    tag = f"l05-check3:{_nonce()}"
    project.build("Dockerfile.cached", tag, show=False)  # an image that runs as root unless told otherwise
    name = f"l05-check3-{_nonce()}"
    try:
        c = containers.run(tag, name, flags=flags, env=backing_services(), lesson=LESSON, show=False, check=False)
    except containers.ContainerFailed as e:
        r.fail(f"docker refused these flags: {e}")
    try:
        r.require(
            net.answers(c.url + "/health"),
            "the service starts and answers /health with these flags",
            f"with these flags the service does not answer /health ({c.state().get('Status')}, exit code "
            f"{c.state().get('ExitCode')}{', out of memory' if c.state().get('OOMKilled') else ''}). "
            f"Its log: {c.logs(6)[-500:]}",
        )
        ps = c.proc_status()
        r.expect(ps.uid != 0, f"the process runs as UID {ps.uid}", "the process runs as root (UID 0): add --user")
        user = str((c.inspect().get("Config") or {}).get("User") or "")
        if ps.uid != 0:
            r.expect(
                NUMERIC_USER.fullmatch(user) is not None,
                f"the user is given as a number ({user}), which needs no /etc/passwd entry and can be verified",
                f"--user {user}: a name, not a number. A name means whatever the image's /etc/passwd says (another "
                "image, another UID), and a platform cannot verify a name as non-root (Kubernetes' runAsNonRoot "
                "refuses it): --user 10001:10001",
            )
            r.expect(
                ps.gid != 0,
                f"its group is {ps.gid}, not root's",
                f"the process runs in group 0 (root's): give the group too, --user {ps.uid}:{ps.uid}",
            )
        held = ps.caps or ps.bounding
        r.expect(
            not held,
            "it holds no Linux capabilities, and can gain none",
            f"it can still hold {len(held)} capabilities ({', '.join(held[:4])}, ...): a non-root user has none "
            "in effect, but a setuid program could regain them. --cap-drop ALL empties the set",
        )
        r.expect(ps.no_new_privs, "no-new-privileges is set", "no-new-privileges is not set: --security-opt")
        host = c.inspect().get("HostConfig", {})
        r.expect(
            host.get("ReadonlyRootfs"),
            "the root filesystem is read-only",
            "the root filesystem is writable: --read-only",
        )
        wrote = c.exec("sh", "-c", "echo x > /app/probe").returncode == 0
        r.expect(not wrote, "writing next to the code fails", "the process can write to /app: --read-only")
        scratch = c.exec("sh", "-c", "echo x > /tmp/probe && rm /tmp/probe").returncode == 0
        r.expect(scratch, "/tmp is writable scratch space", "/tmp is not writable: add --tmpfs /tmp")
        if scratch:
            mount = c.exec("sh", "-c", "grep ' /tmp ' /proc/mounts").stdout.split()
            opts = mount[3].split(",") if len(mount) > 3 else []
            size = next((o.split("=", 1)[1] for o in opts if o.startswith("size=")), "")
            ran = c.exec(
                "sh", "-c", "printf '#!/bin/sh\\nexit 0\\n' > /tmp/run.sh && chmod +x /tmp/run.sh && /tmp/run.sh"
            )
            c.exec("rm", "-f", "/tmp/run.sh")
            r.expect(
                ran.returncode != 0 and "noexec" in opts,
                "nothing written to /tmp can be executed (noexec)",
                "a script written to /tmp runs: an attacker who can write there can run their own tools. "
                "Mount it noexec (and nosuid): --tmpfs /tmp:rw,noexec,nosuid,size=16m",
            )
            r.expect(
                _kib(size) is not None and _kib(size) <= 64 * 1024,
                f"/tmp is bounded ({size})",
                f"/tmp has no small size ({'size=' + size if size else 'no size= option'}): a tmpfs is memory, and "
                "without size= only the memory cap stops it, so a full /tmp becomes an OOM kill instead of a 'no "
                "space left' the service can handle; size=16m is plenty for scratch",
            )
        mem, pids = host.get("Memory") or 0, host.get("PidsLimit") or 0
        r.expect(
            0 < mem <= 256 * 2**20,
            f"memory is capped at {mem / 2**20:.0f} MiB",
            "memory is not capped (or above 256 MiB): --memory 128m (about twice what the service uses idle)",
        )
        r.expect(
            0 < pids <= 256,
            f"processes are capped at {pids}",
            "the number of processes is not capped (or above 256): --pids-limit 64",
        )
        made = net.request("POST", c.url + "/orders", {"item": "check", "qty": 1}, timeout=10)
        r.expect(
            made.status == 201,
            "an order still reaches S3 and SQS in the emulator",
            f"POST /orders answered {made.status} {made.body[:120]!r}",
        )
    finally:
        _cleanup(name, tag)


def _kib(size: str) -> float | None:
    """A tmpfs size option (``16m``, ``16384k``, ``1g``, bytes) in KiB; None when absent or unreadable."""
    m = re.fullmatch(r"(\d+)([kmg]?)", size.strip().lower())
    if not m:
        return None
    return int(m.group(1)) * {"": 1 / 1024, "k": 1, "m": 1024, "g": 1024**2}[m.group(2)]
