"""The Docker engine and CLI the lessons talk to, and the one way to run a ``docker ...`` command.

:func:`connect` finds an engine (the learner's own, else the lab's private dockerd, started by
:mod:`cloudlab.lab.docker`), picks a docker CLI that can build with BuildKit, and decides which base
image the lesson Dockerfiles get: the pinned ``python:3.11-slim-bookworm`` digest where a registry
answers, or the lab's local Debian + Python base where none does (CI here). Every command goes through
:func:`docker`, which can print it the way a learner would type it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..lab import Lab, tools
from ..lab import docker as labdocker

LABEL = "cloudlab.lesson"  # every image and container a lesson makes carries LABEL=<NN>
BASE_ARG = "BASE"  # the build argument the lesson Dockerfiles take their base image from
BASE_ENV = "CLOUDLAB_BASE_IMAGE"  # set it to force a base (e.g. an image you pulled elsewhere)
BASE_BUILD_SECONDS = 90  # the local base image's first build (debootstrap + import), measured idle; see the README
DOWN_WORDS = ("Cannot connect to the Docker daemon", "Is the docker daemon running", "error during connect")


class EngineDown(RuntimeError):
    """The Docker engine stopped answering in the middle of a lesson; the message says what to do."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mEngineDown\x1b[0m: {self}"]


EngineMissing = labdocker.EngineMissing


@dataclass
class Engine:
    """An engine that answered: where it is, whose it is, the CLI that talks to it, the base image to build on."""

    host: str
    whose: str  # "yours" | "the lab's"
    client: str  # path of the docker CLI used
    buildkit: str  # "buildx" (the CLI's default builder) or "env" (DOCKER_BUILDKIT=1, Docker < 23)
    version: str = ""
    env: dict = field(default_factory=dict)
    _base: list = field(default_factory=list, repr=False)

    @property
    def base(self) -> str | None:
        """``--build-arg BASE=...`` for the lesson Dockerfiles; None: their own pinned default (pulled).

        Decided (and, on the lab's engine, the local base imported) on first use."""
        if not self._base:
            self._base.append(_base_for(self.host, Lab.from_env()))
        return self._base[0]

    @property
    def shown_client(self) -> str:
        """How a learner would call this CLI: plain ``docker`` if it is the first on PATH."""
        return "docker" if shutil.which("docker") == self.client else self.client

    def environ(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        if self.buildkit == "env":
            env["DOCKER_BUILDKIT"] = "1"
        return env

    def __repr__(self) -> str:
        base = self.base or "the pinned python:3.11-slim-bookworm digest (pulled by your engine)"
        return (
            f"Docker engine {self.version} ({self.whose}) at {self.host}\n"
            f"CLI: {self.client} (BuildKit via {'buildx' if self.buildkit == 'buildx' else 'DOCKER_BUILDKIT=1'})\n"
            f"base image for the lesson's Dockerfiles: {base}"
        )


_ENGINE: Engine | None = None


def _cli_version(exe: str) -> tuple[int, str]:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0, ""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return (int(m.group(1)), m.group(0)) if m else (0, "")


def pick_client() -> tuple[str, str]:
    """(path, buildkit mode) of the first docker CLI that can build with BuildKit.

    Docker 23+ builds through the buildx plugin; older CLIs (Debian's docker.io 20.10) have BuildKit
    built in behind ``DOCKER_BUILDKIT=1``. A 23+ CLI without buildx cannot use BuildKit at all."""
    seen: list[str] = []
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/local/bin"]:
        exe = os.path.join(d, "docker") if d else ""
        if exe and os.path.isfile(exe) and os.access(exe, os.X_OK) and os.path.realpath(exe) not in seen:
            seen.append(os.path.realpath(exe))
            major, _ = _cli_version(exe)
            if major and major < 23:
                return exe, "env"
            try:
                ok = subprocess.run([exe, "buildx", "version"], capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            if ok:
                return exe, "buildx"
    if not seen:
        raise tools.ToolMissing(f"the docker CLI is not installed. Fix: {tools.TOOLS['docker'].fix()}")
    raise tools.ToolMissing(
        "the docker CLI found here cannot build with BuildKit: it is Docker 23 or newer without the buildx plugin.\n"
        "  Fix: install buildx (Debian/Ubuntu: `sudo apt-get install docker-buildx`, or `docker-buildx-plugin` "
        "from Docker's repository); Docker Desktop has it."
    )


def _base_for(host: str, lab: Lab) -> str | None:
    forced = os.environ.get(BASE_ENV)
    if forced:
        return forced
    if host.endswith(labdocker.lab_socket(lab)):
        # The lab's own engine runs where no registry answers: build on the local Debian + Python base.
        env = {"DOCKER_HOST": host}
        if labdocker.has_image(env, labdocker.BASE_TAG):
            return labdocker.BASE_TAG
        t0 = time.monotonic()
        cached = any(labdocker.cache_dir().glob("debian-bookworm-*.tar"))
        print(
            f"The base image {labdocker.BASE_TAG} is not in this engine yet: "
            + (
                "importing it from .lab/cache (a few seconds) ..."
                if cached
                else f"building it once (debootstrap of Debian bookworm with Python, then docker import): "
                f"about {BASE_BUILD_SECONDS} s on an idle 2-core machine, longer when it is busy. "
                "Later runs reuse it from .lab/cache ..."
            ),
            flush=True,
        )
        tag = labdocker.base_image(env)
        print(f"base image ready in {time.monotonic() - t0:.0f} s", flush=True)
        return tag
    return None


def connect(quiet: bool = False, start: bool = True) -> Engine | None:
    """The engine lessons build and run on, or None (with the fix printed) when there is none.

    Safe to run again: after an engine stopped, it finds (or starts) one anew. Also installs the
    notebook rule that skips cells starting with ``# needs: docker`` while no engine answers.
    """
    global _ENGINE
    skip_cells_without_engine()
    lab = Lab.from_env()
    try:
        env = labdocker.ensure(lab, quiet=True) if start else {"DOCKER_HOST": labdocker.answering_host(lab) or ""}
        if not env["DOCKER_HOST"]:
            raise EngineMissing("no Docker engine answers")
        client, mode = pick_client()
        host = env["DOCKER_HOST"]
        whose = "the lab's own dockerd" if host.endswith(labdocker.lab_socket(lab)) else "your engine"
    except tools.ToolMissing as e:  # EngineMissing is one
        _ENGINE = None
        if not quiet:
            where = (
                "\nThis kernel runs inside a container (the Docker path): it has no engine of its own. Run this lesson "
                "with `make lab` on your machine instead."
                if os.path.exists("/.dockerenv")
                else ""
            )
            print(f"No Docker engine for this lesson: {e}{where}")
            print("The cells marked `# needs: docker` will say 'skipped'.")
        return None
    eng = Engine(host, whose, client, mode, env=dict(env))
    out = subprocess.run(
        [client, "version", "--format", "{{.Server.Version}}"], env=eng.environ(), capture_output=True, text=True
    )
    eng.version = out.stdout.strip()
    _ENGINE = eng
    if not quiet:
        print(repr(eng))
    return eng


def current() -> Engine:
    """The engine of :func:`connect` (connecting now if needed); raises EngineMissing when there is none."""
    if _ENGINE is None or not answers(_ENGINE):
        eng = connect(quiet=True)
        if eng is None:
            raise EngineMissing(
                "no Docker engine answers. Start Docker Desktop or `sudo systemctl start docker` "
                "(the lab starts its own as root with dockerd installed), then re-run the cell."
            )
    return _ENGINE


def answers(eng: Engine | None = None) -> bool:
    """Does the engine answer right now? (A ping over its socket: milliseconds.)"""
    eng = eng or _ENGINE
    if eng is None:
        return labdocker.answering_host(Lab.from_env()) is not None
    sock = eng.host[len("unix://") :] if eng.host.startswith("unix://") else None
    if sock:
        return labdocker._ping(sock, timeout=1.0)
    return labdocker._cli_answers(eng.host)


# ------------------------------------------------------------------ running docker
def shown(args: list[str], eng: Engine | None = None, cwd: str | os.PathLike | None = None) -> str:
    """The command as a learner types it: ``DOCKER_BUILDKIT=1`` where needed, paths relative to ``cwd``."""
    eng = eng or _ENGINE
    parts = []
    for a in args:
        a = str(a)
        if cwd and a.startswith(str(cwd) + os.sep):
            a = a[len(str(cwd)) + 1 :]
        parts.append(a)
    prefix = "DOCKER_BUILDKIT=1 " if eng and eng.buildkit == "env" and args[:1] == ["build"] else ""
    exe = eng.shown_client if eng else "docker"
    return prefix + shlex.join([exe, *parts])


def docker(
    *args: str,
    show: bool = False,
    cwd: str | os.PathLike | None = None,
    input: str | bytes | None = None,
    timeout: float = 300.0,
    check: bool = False,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``docker <args>`` against the lesson's engine. ``show``: print the command first.

    Raises :class:`EngineDown` when the engine stopped answering, ``RuntimeError`` (with docker's own
    words) when ``check`` and the command failed."""
    eng = current()
    argv = [str(a) for a in args]
    if show:
        print(f"$ {shown(argv, eng, cwd)}", flush=True)
    try:
        out = subprocess.run(
            [eng.client, *argv],
            cwd=cwd,
            env=eng.environ(),
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`{shown(argv, eng, cwd)}` did not finish within {timeout:.0f} s") from None
    err = out.stderr if text else out.stderr.decode(errors="replace")
    if out.returncode != 0 and any(w in err for w in DOWN_WORDS) and not answers(eng):
        raise EngineDown(
            f"the Docker engine at {eng.host} stopped answering.\n"
            "  Fix: re-run the lesson's setup cell (it starts the lab's engine again), or start Docker Desktop / "
            "`sudo systemctl start docker`. Images you built are kept; containers that ran are gone."
        )
    if check and out.returncode != 0:
        raise RuntimeError(f"`{shown(argv, eng, cwd)}` failed: {err.strip()[-800:]}")
    return out


# ------------------------------------------------------------------ notebooks without an engine
MARKER = "# needs: docker"
_last_ping = [0.0, False]


def _skip_message() -> str:
    return (
        "skipped: this cell needs a Docker engine and none answers. Start one (Docker Desktop, "
        "`sudo systemctl start docker`), then re-run the lesson's setup cell and this cell."
    )


def transform_cell(lines: list[str], engine_answers=None) -> list[str]:
    """An IPython input transformer: a cell whose first line is ``# needs: docker`` is replaced by a
    polite 'skipped' message while no engine answers. Every other cell is left alone."""
    if not lines or lines[0].strip() != MARKER:
        return lines
    if engine_answers is None:
        now = time.monotonic()
        if now - _last_ping[0] > 2.0:
            _last_ping[:] = [now, answers()]
        engine_answers = _last_ping[1]
    return lines if engine_answers else [f"print({_skip_message()!r})\n"]


def skip_cells_without_engine() -> bool:
    """Register :func:`transform_cell` in the running IPython (once). False outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    if ip is None:
        return False
    chain = ip.input_transformers_cleanup
    if not any(getattr(t, "__name__", "") == "transform_cell" for t in chain):
        chain.append(transform_cell)
    return True


def lab_engine_memory_mb() -> float | None:
    """Resident memory of the lab's own dockerd and its containerd, in MB (None: not the lab's engine)."""
    pidfile = Lab.from_env().pidfile("docker")
    try:
        pid = int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    pids = [pid] + [int(p) for p in _children(pid)]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return round(total / 1024, 1)


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
