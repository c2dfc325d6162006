"""``docker build`` with BuildKit, measured: every step, whether it came from the cache, how long it took.

:func:`build` runs the real CLI (``--progress=plain``, no network inside the build), prints the
command, and returns a :class:`Build` whose ``steps`` come from BuildKit's own output
(:func:`parse_plain`). A failed build is explained in plain words (:func:`explain`): a syntax error,
a step that needs the network, a USER placed too early, a file the context does not hold.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .context import context_size
from .engine import LABEL, current, docker, shown

_HEAD = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")
_CACHED = re.compile(r"^#(\d+) CACHED$")
_DONE = re.compile(r"^#(\d+) DONE (\d+(?:\.\d+)?)s$")
_ERROR = re.compile(r"^#(\d+) ERROR:? (.*)$")
_OUT = re.compile(r"^#(\d+) (\d+\.\d+) (.*)$")
_CONTEXT = re.compile(r"^#\d+ transferring context: ([\d.]+)\s*([kMG]?B)\b")
_IMAGE = re.compile(r"writing image (sha256:[0-9a-f]{64})")
_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


@dataclass
class Step:
    """One Dockerfile instruction as BuildKit ran it."""

    n: int
    stage: str  # "" for a single stage, else the stage name ("builder", "stage-1")
    index: str  # "2/4": the instruction's place in its stage
    instruction: str  # "COPY . ."
    cached: bool = False
    seconds: float | None = None
    error: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def keyword(self) -> str:
        return self.instruction.split(" ", 1)[0].upper()

    @property
    def label(self) -> str:
        where = f"{self.stage} {self.index}" if self.stage else self.index
        return f"[{where}] {self.instruction}"

    @property
    def ran(self) -> bool:
        """Did this step really execute (not cached, not the base image)?"""
        return not self.cached and self.keyword != "FROM"


@dataclass
class Build:
    """What one ``docker build`` did."""

    tag: str
    command: str
    ok: bool
    seconds: float
    steps: list[Step]
    output: str
    context_bytes: int | None = None
    image_id: str = ""
    error: str = ""  # the failing step's last lines and docker's error line
    reason: str = ""  # what the error means, in plain words

    @property
    def ran(self) -> list[Step]:
        return [s for s in self.steps if s.ran]

    @property
    def cached(self) -> list[Step]:
        return [s for s in self.steps if s.cached]

    def step(self, words: str) -> Step | None:
        """The first step whose instruction contains ``words``."""
        return next((s for s in self.steps if words in s.instruction), None)

    def table(self, width: int = 72) -> str:
        rows = []
        for s in self.steps:
            name = s.label if len(s.label) <= width else s.label[: width - 3] + "..."
            when = "CACHED" if s.cached else ("ERROR" if s.error else f"{s.seconds or 0:.1f} s")
            rows.append(f"  {name:<{width}}  {when:>7}")
        return "\n".join(rows)

    def summary(self) -> str:
        ctx = f", context {self.context_bytes / 1e6:.1f} MB" if self.context_bytes is not None else ""
        if not self.ok:
            return f"build of {self.tag} FAILED after {self.seconds:.1f} s{ctx}"
        return (
            f"built {self.tag} in {self.seconds:.1f} s{ctx}: {len(self.ran)} step(s) ran, "
            f"{len(self.cached)} came from the cache"
        )

    def __repr__(self) -> str:
        text = f"{self.summary()}\n{self.table()}"
        if not self.ok:
            text += f"\n{self.error}\nWhat it means: {self.reason}"
        return text


class BuildFailed(RuntimeError):
    """``docker build`` failed; the message shows the failing step, docker's words, and what they mean."""

    def __init__(self, build: Build):
        super().__init__(repr(build))
        self.build = build

    def _render_traceback_(self):
        return [f"\x1b[31mBuildFailed\x1b[0m: {self}"]


def parse_plain(text: str) -> tuple[list[Step], int | None, str]:
    """BuildKit's ``--progress=plain`` output -> (steps in order, context size in bytes, image id)."""
    steps: dict[int, Step] = {}
    internal: set[int] = set()
    context = None
    image = ""
    for line in text.splitlines():
        line = line.rstrip()
        m = _HEAD.match(line)
        if m:
            n, where, instr = int(m.group(1)), m.group(2).strip(), m.group(3).strip()
            if where == "internal" or not re.search(r"\d+/\d+$", where):
                internal.add(n)
                continue
            if n not in steps:
                stage, _, index = where.rpartition(" ")
                steps[n] = Step(n, stage, index, instr)
            continue
        m = _CONTEXT.match(line)
        if m:
            context = int(float(m.group(1)) * _UNITS.get(m.group(2), 1))
            continue
        m = _IMAGE.search(line)
        if m:
            image = m.group(1)
        for rx, what in ((_CACHED, "cached"), (_DONE, "done"), (_ERROR, "error"), (_OUT, "out")):
            m = rx.match(line)
            if m and int(m.group(1)) in steps:
                s = steps[int(m.group(1))]
                if what == "cached":
                    s.cached, s.seconds = True, 0.0
                elif what == "done":
                    s.seconds = float(m.group(2))
                elif what == "error":
                    s.error = m.group(2)
                else:
                    s.output.append(m.group(3))
                break
    return _in_dockerfile_order(steps), context, image


def _in_dockerfile_order(steps: dict[int, Step]) -> list[Step]:
    """Stages in the order their work started, steps by their place in the stage. (BuildKit numbers
    vertices as it meets them: a cached FROM can come after the steps built on it.)"""
    by_n = [steps[k] for k in sorted(steps)]
    rank: dict[str, int] = {}
    for s in by_n:
        if not s.index.startswith("1/"):
            rank.setdefault(s.stage, len(rank))
    for s in by_n:
        rank.setdefault(s.stage, len(rank))

    def place(s: Step) -> tuple[int, int]:
        head = s.index.split("/", 1)[0]
        return rank[s.stage], int(head) if head.isdigit() else 0

    return sorted(by_n, key=place)


# What an error means, first match wins: (pattern in docker's output, plain words).
EXPLAIN = [
    (
        r"dockerfile parse error|unknown instruction|unknown flag|failed to process|failed to create LLB definition",
        "the Dockerfile itself has a syntax error (see the line number above): fix the instruction",
    ),
    (
        r"secret .*not found|/run/secrets/\S+.*No such file",
        "a RUN step expected a build secret that was not mounted: check the id in `--mount=type=secret,id=...`",
    ),
    (
        r"Temporary failure in name resolution|Network is unreachable|NewConnectionError|Could not resolve host"
        r"|No matching distribution found|Could not find a version that satisfies|Failed to establish a new connection",
        "this step needs the network, and builds here run with `--network none` (nothing is downloaded inside "
        "a build): put the packages in the wheelhouse (wheels/) and install with "
        "`pip install --no-index --find-links /wheels ...`",
    ),
    (
        r"Permission denied|EACCES|Operation not permitted",
        "a step was not allowed to write: a USER line placed before the steps that install or create files "
        "makes them run as that user. Install as root first, then switch with USER at the end",
    ),
    (
        r"failed to compute cache key|not found: not found|: not found$|no such file or directory",
        "a COPY or ADD names a file that is not in the build context (missing, or excluded by .dockerignore)",
    ),
    (
        r"pull access denied|failed to resolve source metadata|failed to do request|manifest unknown",
        "the engine could not pull the base image: no registry answers, or the name/digest is wrong",
    ),
]


def explain(text: str) -> str:
    for pattern, words in EXPLAIN:
        if re.search(pattern, text, re.M):
            return words
    return "read docker's own words above: the failing step and its last output lines"


def _error_excerpt(steps: list[Step], text: str) -> str:
    failed = next((s for s in steps if s.error), None)
    lines = []
    if failed is not None:
        lines.append(f"failed at {failed.label}")
        lines += [f"  | {x}" for x in failed.output[-8:]]
    tail = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = next((ln for ln in reversed(tail) if re.search(r"error|failed", ln, re.I)), tail[-1] if tail else "")
    lines.append(last[:600])
    return "\n".join(lines)


def build(
    context,
    tag: str,
    dockerfile: str = "Dockerfile",
    *,
    lesson: str = "",
    build_args: dict | None = None,
    secrets: dict | None = None,
    labels: dict | None = None,
    no_cache: bool = False,
    target: str | None = None,
    show: bool = True,
    check: bool = True,
    timeout: float = 600.0,
) -> Build:
    """Build ``context`` with its ``dockerfile`` into ``tag`` (BuildKit, no network inside the build).

    ``build_args`` add to the base (``BASE=...``) the engine needs; ``secrets`` maps a secret id to a file
    (``--secret id=...,src=...``); ``lesson`` labels the image so the lesson's reset finds it.
    ``check``: raise :class:`BuildFailed` on failure (else return the failed Build). Prints the command
    and a step table when ``show``."""
    eng = current()
    context = Path(context).resolve()
    args = ["build", "--progress=plain", "--network", "none", "-f", str(context / dockerfile), "-t", tag]
    for k, v in {**({LABEL: lesson} if lesson else {}), **(labels or {})}.items():
        args += ["--label", f"{k}={v}"]
    bargs = {"BASE": eng.base} if eng.base else {}
    bargs.update(build_args or {})
    for k, v in bargs.items():
        args += ["--build-arg", f"{k}={v}"]
    for sid, src in (secrets or {}).items():
        args += ["--secret", f"id={sid},src={src}"]
    if no_cache:
        args.append("--no-cache")
    if target:
        args += ["--target", target]
    if eng.buildkit == "buildx":
        args.append("--load")  # a non-default builder (docker-container driver) would keep the image to itself
    args.append(".")
    command = shown(args, eng, context)
    if show:
        print(f"$ {command}", flush=True)
    t0 = time.monotonic()
    out = docker(*args, cwd=context, timeout=timeout)
    seconds = time.monotonic() - t0
    text = (out.stdout or "") + (out.stderr or "")
    steps, _, image = parse_plain(text)
    ctx_bytes = context_size(context)  # BuildKit reports only what it transferred this time (it caches the rest)
    b = Build(tag, command, out.returncode == 0, round(seconds, 2), steps, text, ctx_bytes, image)
    if b.ok and not b.image_id:
        got = docker("image", "inspect", "--format", "{{.Id}}", tag)
        b.image_id = got.stdout.strip()
    if not b.ok:
        b.error = _error_excerpt(steps, text)
        b.reason = explain(text)
    if not b.ok and check:
        raise BuildFailed(b)
    if show:
        print(repr(b), flush=True)
    return b
