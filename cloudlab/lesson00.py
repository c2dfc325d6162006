"""Lesson 00 (environment check): one table that says what works, what is missing, and how to fix it.

Every row has one of four states, and only one of them asks the learner to act:

* ``OK``    works now;
* ``AUTO``  not there yet, and nothing to do: the lab installs (or starts) it when a lesson first needs it
            (``make setup ALL=1`` does all of it now);
* ``OPT``   optional: a lesson runs without it and says which cells it skipped;
* ``FAIL``  missing, and the lab cannot get it for you: the row says which lessons need it and the fix.
"""

from __future__ import annotations

import html
import importlib.metadata as md
import os
import platform
import shutil
import sys
from dataclasses import dataclass

from .lab import Lab, emulators, tools

STATES = {"OK": "works", "AUTO": "installed or started on first use", "OPT": "optional", "FAIL": "to fix"}
COLORS = {"OK": "#1a7f37", "AUTO": "#0969da", "OPT": "#6e7781", "FAIL": "#cf222e"}


@dataclass
class Row:
    group: str
    item: str
    ok: bool
    detail: str
    fix: str = ""
    needed_for: str = "all lessons"
    state: str = ""  # AUTO or OPT; empty: OK or FAIL, from ``ok``

    @property
    def status(self) -> str:
        return self.state or ("OK" if self.ok else "FAIL")


PACKAGES = [
    "boto3",
    "jupyterlab",
    "matplotlib",
    "ipywidgets",
    "numpy",
    "prometheus_client",
    "opentelemetry-sdk",
    "nbval",
    "PyYAML",
]


def tool_rows() -> list[Row]:
    rows = [
        Row(
            "python",
            "Python",
            sys.version_info >= (3, 11),
            sys.version.split()[0],
            "use Python 3.11-3.13: `make setup` builds .venv for you",
        )
    ]
    for pkg in PACKAGES:
        try:
            rows.append(Row("python", pkg, True, md.version(pkg)))
        except md.PackageNotFoundError:
            rows.append(
                Row("python", pkg, False, "not installed", "`make setup` (installs requirements.txt into .venv)")
            )
    for name, tool in tools.TOOLS.items():
        if name in SHOWN_ELSEWHERE:
            continue
        ok, detail = tools.version(name)
        needed = "lesson " + ", ".join(tool.lessons) if tool.lessons else "the course's own tests only"
        state = "" if ok or tools.which(name) is not None else missing_state(tool)
        if state:
            detail = f"not installed{' yet' if state == 'AUTO' else ''}: {LATER[state](tool)}"
        rows.append(Row("tool", name, ok, detail, tool.fix(), needed, state))
    return rows


SHOWN_ELSEWHERE = {"docker"}  # the engine and the CLI have rows of their own (engine_rows)


def missing_state(tool: tools.Tool) -> str:
    """A tool that is not here: AUTO (the lab installs it on first use), OPT (optional) or FAIL (learner acts)."""
    if tool.optional or not tool.lessons:  # no lesson needs it: the course's own tests only
        return "OPT"
    if tool.kind == "venv":
        return "AUTO"
    if tool.kind == "npm":
        return "AUTO" if shutil.which("npm") else ""
    if tool.kind == "wheel":
        return "AUTO" if (sys.platform, platform.machine()) == ("linux", "x86_64") else ""
    if tool.kind == "apt":
        return "AUTO" if tools.can_apt() else ""
    return ""


def _first_use(tool: tools.Tool) -> str:
    first = f"lesson {tool.lessons[0]}" if tool.lessons else "the course's tests"
    return f"installed when {first} first needs it (or now: `make setup ALL=1`)"


COURSE_ONLY = "only the course's own tests use it"
LATER = {"AUTO": _first_use, "OPT": lambda tool: f"optional, {tool.optional or COURSE_ONLY}"}


def emulator_rows() -> list[Row]:
    lab = Lab.from_env()
    url = os.environ.get("AWS_ENDPOINT_URL", lab.localstack_url)
    moto_url = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", lab.moto_url)
    in_compose = "localstack:" in url
    ls_ok = True if in_compose else emulators.localstack_healthy(lab)
    mo_ok = True if in_compose else emulators.moto_healthy(lab)
    fix = "run `make lab` in a terminal (or `docker compose up`); `make logs` shows why it stopped"
    return [
        Row("emulator", "LocalStack 4.14", ls_ok, url if ls_ok else f"no answer at {url}", fix),
        Row("emulator", "moto server", mo_ok, moto_url if mo_ok else f"no answer at {moto_url}", fix),
    ]


def service_rows(services=None) -> list[Row]:
    from .ready import PROBES, probe, served_by

    rows = []
    for s in services or PROBES:
        ok, detail = probe(s, timeout=2)
        rows.append(
            Row(
                "AWS service",
                s,
                ok,
                f"{served_by(s)}: {detail}",
                "start the lab (`make lab`); if only this one fails, `make logs` and `make reset`",
            )
        )
    return rows


def cluster_rows() -> list[Row]:
    """The course's kind cluster, on its own context only (never your current one). Optional: without it,
    lesson 06 validates every manifest offline (unless ``CLOUDLAB_REQUIRE_CLUSTER=1``, the live CI job)."""
    from .lab import cluster

    ok, detail = cluster.cluster_status()
    needed = "lesson 06 (cluster part)"
    if ok:
        return [Row("Kubernetes", f"cluster {cluster.NAME}", True, detail, needed_for=needed)]
    kind_ok, _ = cluster.kind_status()
    docker_ok, _ = cluster.docker_status() if kind_ok else (False, "")
    if not kind_ok:
        fix = f"{cluster.KIND_FIX}, then `make cluster`"
    elif not docker_ok:
        fix = (
            "kind runs Kubernetes in a Docker engine of your own (Docker Desktop or Docker Engine; the lab's private "
            f"dockerd has no network for it): {cluster.DOCKER_FIX}"
        )
    else:
        fix = "`make cluster` (creates it and loads the order service's image)"
    required = os.environ.get("CLOUDLAB_REQUIRE_CLUSTER") == "1"
    detail += "" if required else ": optional, lesson 06 validates every manifest offline and its [live] cells skip"
    return [Row("Kubernetes", f"cluster {cluster.NAME}", False, detail, fix, needed, "" if required else "OPT")]


def engine_rows() -> list[Row]:
    """The Docker engine lessons 05+ build and run on, and a docker CLI that can build with BuildKit.

    Nothing is started here: an engine that does not run yet is fine where the lab can start its own, and a
    missing dockerd is fine where the lab can install Debian's docker.io (root with apt)."""
    from .lab import docker

    lab = Lab.from_env()
    needed = "lessons 05-08 (containers)"
    host = docker.answering_host(lab)
    installs = docker._root() and shutil.which("dockerd") is None and tools.can_apt()
    fix = "start Docker Desktop, or `sudo systemctl start docker`; install: " + tools.TOOLS["docker"].fix()
    if host:
        whose = "the lab's own dockerd" if host.endswith(docker.lab_socket(lab)) else "your engine"
        engine = Row("docker", "engine", True, f"{whose} answers at {host}", needed_for=needed)
    elif docker.can_start():
        engine = Row("docker", "engine", True, "none runs yet: the lab starts its own when a lesson needs it", "",
                     needed, "AUTO")  # fmt: skip
    elif installs:
        engine = Row(
            "docker",
            "engine",
            False,
            "none answers and dockerd is not installed: the lab installs Debian's docker.io and starts its own "
            "engine when lesson 05 first needs it (or now: `make setup ALL=1`)",
            fix,
            needed,
            "AUTO",
        )
    else:
        engine = Row(
            "docker",
            "engine",
            False,
            "no engine answers, and the lab can start one only as root with dockerd installed",
            fix,
            needed,
        )
    try:
        from .containers.engine import pick_client

        exe, mode = pick_client()
        how = "buildx" if mode == "buildx" else "DOCKER_BUILDKIT=1"
        cli = Row("docker", "build (BuildKit)", True, f"{exe}, {how}", "", needed)
    except tools.ToolMissing as e:
        if installs:  # Debian's docker.io brings a CLI that builds with BuildKit (DOCKER_BUILDKIT=1)
            detail = "no docker CLI here builds with BuildKit yet: docker.io, installed with the engine, brings one"
            cli = Row("docker", "build (BuildKit)", False, detail, str(e), needed, "AUTO")
        else:
            cli = Row("docker", "build (BuildKit)", False, "no docker CLI that builds with BuildKit", str(e), needed)
    return [engine, cli]


def guard_rows() -> list[Row]:
    from .aws import RealAWSRefused, guard

    cases = {
        "no endpoint -> refused": {"AWS_ACCESS_KEY_ID": "test"},
        "real-looking key -> refused": {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "AWS_ACCESS_KEY_ID": "AKIA" + "Q" * 16,
        },
        "remote endpoint -> refused": {"AWS_ENDPOINT_URL": "https://s3.amazonaws.com", "AWS_ACCESS_KEY_ID": "test"},
    }
    rows = []
    for name, env in cases.items():
        try:
            guard("s3", environ=env)
            rows.append(Row("safety", name, False, "NOT refused", "report this: the guard is broken"))
        except RealAWSRefused:
            rows.append(Row("safety", name, True, "refused before any request"))
    try:
        rows.append(Row("safety", "this kernel -> emulator", True, guard("s3")))
    except RealAWSRefused as e:
        rows.append(
            Row(
                "safety", "this kernel -> emulator", False, str(e).split("\n")[0][:70], "run `cloudlab.connect()` first"
            )
        )
    return rows


class Table:
    def __init__(self, rows: list[Row]):
        self.rows = rows

    @property
    def failed(self) -> list[Row]:
        """The rows the learner must act on (FAIL); AUTO and OPT rows need nothing now."""
        return [r for r in self.rows if r.status == "FAIL"]

    def counts(self) -> dict[str, int]:
        return {state: sum(r.status == state for r in self.rows) for state in STATES}

    def summary(self) -> str:
        return " · ".join(
            f"{n} {state} ({STATES[state]})" for state, n in self.counts().items() if n or state == "FAIL"
        )

    def __repr__(self):
        w = max(len(r.item) for r in self.rows)
        out = []
        for r in self.rows:
            out.append(f"[{r.status:^4}] {r.group:<11} {r.item:<{w}}  {r.detail}")
            if r.status == "FAIL":
                out.append(f"{'':>7} fix ({r.needed_for}): {r.fix}")
        out.append(self.summary())
        return "\n".join(out)

    def _repr_html_(self):
        tr = []
        for r in self.rows:
            todo = {"FAIL": r.needed_for + ": " + r.fix, "OPT": "to have it: " + r.fix}.get(r.status, "")
            tr.append(
                f"<tr><td style='color:{COLORS[r.status]};font-weight:bold'>[{r.status}]</td>"
                f"<td>{html.escape(r.group)}</td><td><code>{html.escape(r.item)}</code></td>"
                f"<td>{html.escape(r.detail)}</td><td>{html.escape(todo)}</td></tr>"
            )
        return (
            "<table><tr><th>status</th><th>what</th><th>item</th><th>detail</th><th>how to fix</th></tr>"
            + "".join(tr)
            + f"</table><p><b>{html.escape(self.summary())}</b></p>"
        )


def environment_check(services=None) -> Table:
    return Table(tool_rows() + emulator_rows() + service_rows(services) + engine_rows() + cluster_rows() + guard_rows())
