"""``make room-check``: on the room's machine image, is every lesson ready? Per lesson: ready, or what to run.

Built on lesson 00's table (:mod:`cloudlab.lesson00`'s states, the tool registry :mod:`cloudlab.lab.tools`, the
environments :mod:`cloudlab.lab.venvs`) and the course's facts (``lessons/course.toml``: each lesson's tools), plus
what was measured (``lessons/instructor/measured.json``: each lesson's peak memory on a fresh lab), and the workshop
hub when the machine runs one. It looks, it never installs or starts anything, and it takes seconds.

A lesson is

* ``READY``      everything it needs is on this machine;
* ``SETUP``      it works, but a tool would be installed when the first learner opens it (``[AUTO]`` in lesson 00):
                 on a room's image run ``sudo make setup ALL=1`` once, so 25 learners do not each wait for it;
* ``NOT READY``  something it needs is missing and the lab cannot get it by itself: the line says the fix.

Optional parts (kind and the live cluster of lesson 06) are listed as optional, never as a failure. Text only,
the state in words. Standard library only: it runs before any environment exists. Serves instructors.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field

from . import course
from .lab import Lab, tools, venvs

STATES = ("READY", "SETUP", "NOT READY")
MIB = 1 << 20


@dataclass
class Verdict:
    what: str  # "lesson 05 · Containers", "the machine", "the workshop hub"
    state: str  # READY | SETUP | NOT READY
    lines: list[str] = field(default_factory=list)  # what is missing, and the fix
    optional: list[str] = field(default_factory=list)


def _tool_state(name: str, lab: Lab) -> tuple[str, str]:
    """(OK | AUTO | OPT | FAIL, detail) of one tool, as lesson 00 decides it, without running it."""
    from .lesson00 import missing_state

    tool = tools.TOOLS[name]
    if tools.which(name, lab) is not None:
        return "OK", ""
    exe = tools._find(tool, lab)
    if exe is not None and tool.needs:  # the executable is there, its condition is not (a docker CLI, no engine)
        why = tools.READY[tool.needs](lab)
        from .lab import docker

        if docker.can_start():
            return "OK", ""
        return "FAIL", f"{name}: {why}"
    state = missing_state(tool)
    return state or "FAIL", f"{name} ({tool.what}): {tool.fix()}"


def core(lab: Lab) -> Verdict:
    """What every lesson needs: the kernel's environment, LocalStack's (Python 3.13) and moto's. (Python 3.11+ runs
    this module at all: it reads course.toml with tomllib.)"""
    v = Verdict("every lesson (the lab itself)", "READY")
    for name in venvs.CORE:
        if venvs.is_current(lab, name):
            continue
        spec = venvs.VENVS[name]
        if venvs.find_python(spec.pythons) is None:
            v.state = "NOT READY"
            v.lines.append(f"{spec.purpose} needs Python {' or '.join(spec.pythons)}, and none is installed: "
                           f"`pyenv install {spec.pythons[-1]}` or `uv python install {spec.pythons[-1]}`")  # fmt: skip
        else:
            v.state = "SETUP" if v.state == "READY" else v.state
            v.lines.append(f"{spec.purpose}: not installed yet: `make setup` (a first `make lab` would do it)")
    return v


def lesson_verdict(le: course.Lesson, lab: Lab, states: dict[str, tuple[str, str]], base: Verdict) -> Verdict:
    v = Verdict(f"lesson {le.id} · {le.title}", "READY" if base.state == "READY" else base.state)
    if base.state != "READY":
        v.lines.append("the lab itself first (see above)")
    for name in le.tools:
        state, detail = states[name]
        if state == "FAIL":
            v.state = "NOT READY"
            v.lines.append(detail)
        elif state == "AUTO":
            v.state = "SETUP" if v.state == "READY" else v.state
            v.lines.append(f"{name}: installed when a learner first opens the lesson: `sudo make setup ALL=1` now")
        elif state == "OPT":
            v.optional.append(f"{name}: {tools.TOOLS[name].optional or 'optional'}")
    if "docker" in le.tools and states.get("docker", ("", ""))[0] == "OK" and not base_image_ready(lab):
        v.state = "SETUP" if v.state == "READY" else v.state
        v.lines.append(
            "the lab's own Docker engine will build its Debian base image at the first build (debootstrap: 90 s "
            "measured on an idle 2-core machine, minutes on a busy one): build it once on the image with "
            "`make measure L=05`"
        )
    return v


def base_image_ready(lab: Lab) -> bool:
    """True when builds do not wait for the base image: a learner's own engine (they pull python:3.11-slim), or the
    lab's debootstrap base already cached (:func:`cloudlab.lab.docker.base_tarball`)."""
    from .lab import docker

    if docker.answering_host(lab) and not docker.answering_host(lab).endswith(docker.lab_socket(lab)):
        return True
    return any(docker.cache_dir().glob("debian-bookworm-*.tar"))


def machine(lessons: list[course.Lesson], measured: dict, learners: int = 1) -> Verdict:
    """Memory and disk against what the lessons were measured to use."""
    v = Verdict("the machine", "READY")
    try:
        info = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines() if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024
        avail = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        total = avail = 0
    peaks = {le.id: measured.get(le.id, {}).get("peak_rss_mib") for le in lessons}
    peaks = {k: p for k, p in peaks.items() if p}
    top = max(peaks.values(), default=0)
    free_disk = shutil.disk_usage(course.ROOT).free
    v.lines.append(f"{os.cpu_count()} CPUs; memory {total / (1 << 30):.1f} GiB, {avail / (1 << 30):.1f} GiB available; "
                   f"disk {free_disk / (1 << 30):.1f} GiB free")  # fmt: skip
    if top:
        worst = max(peaks, key=peaks.get)
        need = top * learners * MIB
        v.lines.append(f"the largest measured lab: lesson {worst}, {top} MiB at its peak (per learner on a hub)")
        if avail and avail < need:
            v.state = "NOT READY"
            v.lines.append(f"only {avail / MIB:.0f} MiB available for {learners} lab(s) of up to {top} MiB: close "
                           "other programs, or use a machine with more memory")  # fmt: skip
    if free_disk < 5 * (1 << 30):
        v.state = "NOT READY"
        v.lines.append("under 5 GiB of disk free: the environments, the base image and Docker's layers need more")
    return v


def hub_verdict(lab: Lab) -> Verdict | None:
    """The workshop hub, when this machine is meant to run one (its environment or accounts exist)."""
    from . import hub

    h = hub.Hub.from_env(lab.profile)
    if not (venvs.venv_python(lab, "hub").exists() or h.state.exists()):
        return None
    v = Verdict("the workshop hub (docs/instructors/room.md)", "READY")
    if os.geteuid() != 0:
        v.state = "NOT READY"
        v.lines.append("the hub runs as root: `sudo make room-check`, then `sudo make hub`")
    if not venvs.is_current(lab, "hub"):
        v.state = "SETUP" if v.state == "READY" else v.state
        v.lines.append("its environment is not installed: `sudo make hub` installs it on first start")
    state, detail = (
        _tool_state("configurable-http-proxy", lab) if "configurable-http-proxy" in tools.TOOLS else ("OK", "")
    )
    if state == "FAIL":
        v.state = "NOT READY"
        v.lines.append(detail)
    from .hub import cli as hubcli
    from .hub import settings

    v.lines.append(
        ("the hub answers at " + h.url) if hubcli.answering(h) else "the hub is not running: `sudo make hub`"
    )
    try:
        info = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines() if ":" in line)
        avail = int(info["MemAvailable"].split()[0]) * 1024
        seats = int(avail // settings.to_bytes(settings.MEM_GUARANTEE))
        v.lines.append(f"memory for about {seats} learners at {settings.MEM_GUARANTEE} each (room.md's capacity rule)")
    except (OSError, KeyError, ValueError):
        pass
    return v


def check(lab: Lab | None = None) -> list[Verdict]:
    lab = lab or Lab.from_env()
    lessons = [le for le in course.lessons() if le.ready]
    try:
        measured = json.loads((course.ROOT / "lessons" / "instructor" / "measured.json").read_text())
    except (OSError, ValueError):
        measured = {}
    names = sorted({t for le in lessons for t in le.tools if t in tools.TOOLS})
    states = {n: _tool_state(n, lab) for n in names}
    base = core(lab)
    out = [machine(lessons, measured), base]
    out += [lesson_verdict(le, lab, states, base) for le in lessons]
    h = hub_verdict(lab)
    return out + ([h] if h else [])


def render(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"[{v.state}] {v.what}")
        lines += [f"    {x}" for x in v.lines]
        lines += [f"    optional: {x}" for x in v.optional]
    counts = {s: sum(v.state == s for v in verdicts if v.what.startswith("lesson")) for s in STATES}
    lines.append(", ".join(f"{n} lesson(s) {s}" for s, n in counts.items()))
    return "\n".join(lines)


def main() -> int:
    import time

    t0 = time.monotonic()
    verdicts = check()
    print(render(verdicts))
    print(f"(checked in {time.monotonic() - t0:.1f} s; nothing was installed or started)")
    return 1 if any(v.state == "NOT READY" for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
