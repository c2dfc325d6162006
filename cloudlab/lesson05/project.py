"""Lesson 05's project folder: the order service as a developer's checkout, ready to build.

:func:`stage` copies ``lessons/05_containers/orders`` (Dockerfiles, requirements, tools), the service
itself (``app/service.py``) and a wheelhouse into the lab's scratch space, and plants what a real
checkout holds: a ``.env`` with a (fake, generated) token, logs and caches. The token also goes to a
file *outside* the folder, the way a build secret is passed. :func:`build_orders` builds the
production image ``cloudlab/orders:<source hash>``: the course's one image of the service (``make cluster``
loads this build; lesson 08's pipeline builds the same sources with the same command, to the same digest).
"""

from __future__ import annotations

import hashlib
import os
import py_compile
import re
import secrets
import shutil
import string
import time
from dataclasses import dataclass
from pathlib import Path

from .. import aws, cleanup, containers
from ..lab import ROOT, Lab
from ..lab import docker as labdocker
from ..tables import Table

LESSON = "05"
ASSETS = ROOT / "lessons" / "05_containers"
PROJECT = ASSETS / "orders"
REPOSITORY = "cloudlab/orders"  # the production image's name; its tag is a hash of its sources (never latest)
SECRET_ID = "index_token"  # the build secret's id (RUN --mount=type=secret,id=index_token)
PRIVATE_RECORD = "/usr/local/share/orders-private/index.json"  # what tools/private_index.py writes
BUCKET = QUEUE = "l05-orders"
THIRD_PARTY = r"/site-packages/|\.whl$"  # what the lesson's secret scan leaves out of extracted layers (see notebook)
LEGACY_SERVICE = ROOT / "app" / "legacy_service.py"


def pinned_base() -> str:
    """The base image the lesson's Dockerfiles pin (``ARG BASE=...``): what a learner's engine pulls."""
    for line in (PROJECT / "Dockerfile").read_text().splitlines():
        if line.startswith("ARG BASE="):
            return line.split("=", 1)[1].strip()
    raise ValueError("lessons/05_containers/orders/Dockerfile has no ARG BASE=... line")


PINNED_BASE = pinned_base()


def base_ref() -> str:
    """The base image the lesson's builds use on this engine: the lab's local base, or the pinned image."""
    return containers.current().base or PINNED_BASE


def work_dir() -> Path:
    return Lab.from_env().work_dir(LESSON)


def fake_token() -> str:
    """A GitHub-style token, random, made now: it looks real to scanners and opens nothing."""
    alphabet = string.ascii_letters + string.digits
    return "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))


def fingerprint(token: str) -> str:
    """What tools/private_index.py records: 8 hex digits of the token's SHA-256 (no way back to the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


@dataclass
class Project:
    """A staged project folder (the build context) and the token planted in it."""

    path: Path
    token: str
    secret_file: Path

    @property
    def secrets(self) -> dict[str, str]:
        """``--secret id=index_token,src=<file outside the context>``."""
        return {SECRET_ID: str(self.secret_file)}

    def build(self, dockerfile: str, tag: str, **kw) -> containers.Build:
        kw.setdefault("lesson", LESSON)
        return containers.build(self.path, tag, dockerfile, **kw)

    def write(self, name: str, text: str) -> Path:
        p = self.path / name
        p.write_text(text if text.endswith("\n") else text + "\n")
        return p

    def add_dockerignore(self) -> Path:
        """Put the lesson's .dockerignore (an allow-list) into the folder."""
        return Path(shutil.copy2(PROJECT / ".dockerignore", self.path / ".dockerignore"))

    def change_code(self, marker: str | None = None) -> str:
        """A code-only change: one comment line appended to app/service.py. Returns the marker."""
        marker = marker or f"changed {time.strftime('%H:%M:%S')} {secrets.token_hex(4)}"
        with open(self.path / "app" / "service.py", "a") as fh:
            fh.write(f"# {marker}\n")
        return marker

    def tree(self) -> str:
        """The folder as a developer sees it (``ls -la``, one level deep), sizes in kB."""
        rows = []
        for p in sorted(self.path.iterdir(), key=lambda p: (p.is_file(), p.name)):
            if p.is_dir():
                size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                rows.append((p.name + "/", f"{size / 1e3:.1f}", sum(1 for _ in p.rglob("*"))))
            else:
                rows.append((p.name, f"{p.stat().st_size / 1e3:.1f}", ""))
        return Table(("name", "size kB", "entries"), rows, indent=2).text()


def stage(
    name: str = "orders", *, dockerignore: bool = True, junk: bool = True, new_token: bool = False, show: bool = False
) -> Project:
    """A fresh copy of the project in ``.lab/work/l05/<name>`` (the build context).

    ``dockerignore``: include the lesson's .dockerignore (allow-list). ``junk``: plant a ``.env`` holding
    the token, a debug log and a stale ``__pycache__``, as in a real checkout. The fake token is kept
    per folder name (so a re-run can reuse the build cache) unless ``new_token``."""
    dest = work_dir() / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__", ".dockerignore", ".checkov.json"))
    if dockerignore:
        shutil.copy2(PROJECT / ".dockerignore", dest / ".dockerignore")
    (dest / "app").mkdir()
    for f in ("__init__.py", "service.py"):
        shutil.copy2(ROOT / "app" / f, dest / "app" / f)
    containers.wheelhouse(dest / "requirements.txt", dest / "wheels", show=show)
    secret = secret_file(name)
    secret.parent.mkdir(parents=True, exist_ok=True)
    old = secret.read_text().strip() if secret.exists() and not new_token else ""
    token = old if re.fullmatch(r"ghp_[A-Za-z0-9]{36}", old) else fake_token()
    secret.write_text(token)
    os.chmod(secret, 0o600)
    if junk:
        (dest / ".env").write_text(f"# local settings, never committed\nINDEX_TOKEN={token}\nLOG_LEVEL=DEBUG\n")
        (dest / "logs").mkdir()
        line = '{"level": "DEBUG", "event": "request", "path": "/orders", "status": 201, "duration_ms": 3.1}\n'
        (dest / "logs" / "debug.log").write_text(line * 60_000)
        py_compile.compile(str(dest / "app" / "service.py"), doraise=True)
    return Project(dest, token, secret)


def try_dockerfile(text: str, tag: str = "l05-try:dev", secrets: bool = False) -> containers.Build:
    """Build a Dockerfile given as a string in ``.lab/work/l05/try`` and print every step (never raises).

    ``secrets``: also pass the build secret ``index_token`` (exercise 4)."""
    folder = work_dir() / "try"
    project = stage("try", dockerignore=False) if not (folder / "app").exists() else _existing(folder)
    project.write("Dockerfile.try", text)
    return project.build("Dockerfile.try", tag, check=False, secrets=project.secrets if secrets else None)


def secret_file(name: str) -> Path:
    """Where the fake token of project ``name`` is kept: outside every build context, and in the lab's cache
    (which resets keep), so a re-run stages identical files and the engine's build cache still applies."""
    return labdocker.cache_dir() / "l05-secrets" / name / SECRET_ID


def _existing(folder: Path) -> Project:
    secret = secret_file(folder.name)
    return Project(folder, secret.read_text().strip() if secret.exists() else "", secret)


def lint_folder() -> Path:
    """A copy of the lesson's Dockerfiles to scan (checkov writes its report into the folder it scans)."""
    d = work_dir() / "lint"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for f in sorted(PROJECT.glob("Dockerfile*")):
        shutil.copy2(f, d / f.name)
    return d


def backing_services() -> dict[str, str]:
    """The service's bucket and queue in the emulator, created if missing; its environment."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    try:
        s3.head_bucket(Bucket=BUCKET)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=BUCKET)
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    return {"ORDERS_BUCKET": BUCKET, "ORDERS_QUEUE_URL": url}


def build_orders(show: bool = True, lesson: str = LESSON) -> containers.Build:
    """Build the production image ``cloudlab/orders:<source hash>`` (multi-stage, non-root, health check).

    The tag is the first 12 hex digits of a SHA-256 over the Dockerfile and every file sent to the engine: a
    source-hash tag (the same sources give the same tag, any change a new one). It names the sources, not the
    image: the base (``BASE``) is not in it, and a build without cache gives another digest under the same tag,
    so what is deployed is pinned by digest (``Build.image_id``).

    This is the course's one image of the service: ``make cluster`` calls this function (in the course's
    Python) and loads the result into kind under a second name, ``cloudlab/orders:sha-<hash of the sources>``
    (``cloudlab.lab.cluster.image``); lesson 08's pipeline builds the same Dockerfile and sources with the same
    flags and label, so the engine's cache gives the same digest, which its scan and deploy jobs use.
    ``lesson``: the ``cloudlab.lesson`` label (lesson 05's reset removes what carries its own)."""
    project = stage("release", junk=False, show=show)
    tag = containers.content_tag(REPOSITORY, project.path)
    return project.build("Dockerfile", tag, show=show, lesson=lesson)


@cleanup.extra(LESSON)
def _remove_containers_and_images() -> dict[str, list[str]]:
    """Reset: every container and image labelled cloudlab.lesson=05 (when an engine answers)."""
    if not containers.answers():
        return {}
    try:
        return containers.remove_labelled(LESSON)
    except (containers.EngineDown, containers.EngineMissing):
        return {}
