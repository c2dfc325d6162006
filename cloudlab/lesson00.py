"""Lesson 00 (environment check): one table that says what works, what is missing, and how to fix it."""

from __future__ import annotations

import html
import importlib.metadata as md
import os
import sys
from dataclasses import dataclass

from .lab import Lab, emulators, tools


@dataclass
class Row:
    group: str
    item: str
    ok: bool
    detail: str
    fix: str = ""
    needed_for: str = "all lessons"

    @property
    def status(self) -> str:
        return "OK" if self.ok else "FAIL"


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
        ok, detail = tools.version(name)
        needed = "lesson " + ", ".join(tool.lessons) if tool.lessons else "the course's own tests only"
        rows.append(Row("tool", name, ok, detail, tool.fix(), needed))
    return rows


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
    """Docker (kind needs it) and the course's kind cluster, on its own context only (never your current one)."""
    from .lab import cluster

    docker_ok, docker_detail = cluster.docker_status()
    ok, detail = cluster.cluster_status()
    kind_ok, _ = cluster.kind_status()
    if ok:
        fix = ""
    elif not kind_ok:
        fix = f"{cluster.KIND_FIX}, then `make cluster`"
    elif not docker_ok:
        fix = cluster.DOCKER_FIX
    else:
        fix = "`make cluster` (creates it and loads the order service's image)"
    fix += ". Without one, lesson 06 still validates every manifest offline; only [live] cells skip."
    return [
        Row(
            "Kubernetes", "docker engine", docker_ok, docker_detail, cluster.DOCKER_FIX, "lesson 06 (cluster part), 05"
        ),
        Row("Kubernetes", f"cluster {cluster.NAME}", ok, detail, fix.lstrip(". "), "lesson 06 (cluster part)"),
    ]


def engine_rows() -> list[Row]:
    """The Docker engine lessons 05+ build and run on, and a docker CLI that can build with BuildKit.

    Nothing is started here: an engine that does not run yet is fine where the lab can start its own."""
    from .lab import docker

    lab = Lab.from_env()
    needed = "lessons 05-08 (containers)"
    host = docker.answering_host(lab)
    if host:
        whose = "the lab's own dockerd" if host.endswith(docker.lab_socket(lab)) else "your engine"
        engine = Row("docker", "engine", True, f"{whose} answers at {host}", needed_for=needed)
    elif docker.can_start():
        engine = Row("docker", "engine", True, "none runs yet; the lab starts its own when needed", "", needed)
    else:
        engine = Row(
            "docker",
            "engine",
            False,
            "no engine answers, and the lab can start one only as root with dockerd installed",
            "start Docker Desktop, or `sudo systemctl start docker`; install: https://docs.docker.com/get-docker/",
            needed,
        )
    try:
        from .containers.engine import pick_client

        exe, mode = pick_client()
        how = "buildx" if mode == "buildx" else "DOCKER_BUILDKIT=1"
        cli = Row("docker", "build (BuildKit)", True, f"{exe}, {how}", "", needed)
    except tools.ToolMissing as e:
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
        return [r for r in self.rows if not r.ok]

    def __repr__(self):
        w = max(len(r.item) for r in self.rows)
        out = []
        for r in self.rows:
            out.append(f"[{r.status:^4}] {r.group:<11} {r.item:<{w}}  {r.detail}")
            if not r.ok:
                out.append(f"{'':>7} fix ({r.needed_for}): {r.fix}")
        ok = len(self.rows) - len(self.failed)
        out.append(f"{ok}/{len(self.rows)} OK")
        return "\n".join(out)

    def _repr_html_(self):
        tr = []
        for r in self.rows:
            color = "#1a7f37" if r.ok else "#cf222e"
            tr.append(
                f"<tr><td style='color:{color};font-weight:bold'>[{r.status}]</td><td>{html.escape(r.group)}</td>"
                f"<td><code>{html.escape(r.item)}</code></td><td>{html.escape(r.detail)}</td>"
                f"<td>{'' if r.ok else html.escape(r.needed_for + ': ' + r.fix)}</td></tr>"
            )
        ok = len(self.rows) - len(self.failed)
        return (
            "<table><tr><th>status</th><th>what</th><th>item</th><th>detail</th><th>how to fix</th></tr>"
            + "".join(tr)
            + f"</table><p><b>{ok}/{len(self.rows)} OK</b></p>"
        )


def environment_check(services=None) -> Table:
    return Table(tool_rows() + emulator_rows() + service_rows(services) + engine_rows() + cluster_rows() + guard_rows())
