"""Lesson 08's setup: where things are, the service's backing services, pipeline runs with the lab's
settings (the course's Python, the Docker engine and base image, the deploy token), a timeline plot, and
the reset hook."""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path

from .. import cleanup, deploy
from .. import database as db
from ..lab import ROOT, Lab
from ..pipelines import prepare_project

ASSETS = ROOT / "lessons" / "08_ci-cd-and-deployment"
PROJECT = ASSETS / "project"
WORKFLOW = ASSETS / "github" / "release.yml"
COURSE_WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"  # the course's own CI, held to the same rules
# The one image of the order service (issue: one image through the course): lesson 05's Dockerfile and build
# context files, copied into every project, never a second Dockerfile of lesson 08's own.
IMAGE_SOURCES = ROOT / "lessons" / "05_containers" / "orders"
IMAGE_FILES = ("Dockerfile", ".dockerignore", "requirements.txt", "healthcheck.py")
IMAGE_REPOSITORY = "cloudlab/orders"
BUCKET = "l08-orders"
QUEUE = "l08-order-events"
DATABASE = "l08-postgres"


def work_dir() -> Path:
    return Lab.from_env().work_dir("08")


def backing() -> dict:
    """The service's S3 bucket and SQS queue in the emulator (idempotent)."""
    return deploy.backing(BUCKET, QUEUE)


def prepare(name: str = "pipeline", pipeline: str | None = None, files: dict | None = None) -> Path:
    """A fresh copy of the sample project under the lab's work folder (``.gitlab-ci-local/`` stays
    there, never in the repository), with lesson 05's Dockerfile and its build files (the course's one
    image); ``pipeline`` replaces its .gitlab-ci.yml, ``files`` ({path: text}) are written over it."""
    extra = {f: (IMAGE_SOURCES / f).read_text() for f in IMAGE_FILES}
    extra.update(files or {})
    if pipeline is not None:
        extra[".gitlab-ci.yml"] = pipeline
    return prepare_project(PROJECT, work_dir() / name, extra)


def failing_test(seed: str | None = None) -> dict:
    """A change that breaks a unit test: the red pipeline's commit. ``seed``: another change the notebook
    never showed (a test file of another name, another setting), for a check."""
    if seed is None:
        name, var, value, wrong = "test_release", "PORT", None, 8081
        body = '    assert Config.from_env({"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q"}).port == 8081\n'
        doc = "the default port moved, and the test that pins it fails"
    else:
        name, var, value, wrong = f"test_{seed}", "LOG_LEVEL", "WARNING", f"{seed}"
        body = (
            f'    cfg = Config.from_env({{"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q", "{var}": "{value}"}})\n'
            f'    assert cfg.log_level == "{wrong}"\n'
        )
        doc = "a setting is read differently now, and its test fails"
    return {
        f"tests/{name}.py": (
            f'"""A teammate\'s change: {doc}."""\n\nfrom app.service import Config\n\n\ndef {name}():\n{body}'
        )
    }


def image_settings(quiet: bool = False) -> tuple[dict, dict]:
    """(pipeline variables, process environment) for the image jobs: the docker CLI and engine lesson 05
    uses, and its base image where no registry answers; or IMAGE_BUILD=no (the image jobs are left out,
    the pipeline ships the zip application) where no engine runs."""
    from .. import containers

    try:
        eng = containers.connect(quiet=True)
        if eng is None:
            raise containers.EngineMissing("no Docker engine answers, and the lab cannot start one here")
        base = eng.base
    except Exception as e:  # no engine, no local base: say so, run the rest of the pipeline
        print(f"no Docker engine here ({str(e).splitlines()[0]}): the image jobs are left out (IMAGE_BUILD=no)")
        return {"IMAGE_BUILD": "no"}, {}
    variables = {"DOCKER": eng.client, **({"BASE_IMAGE": base} if base else {})}
    env = {k: v for k, v in eng.environ().items() if k.startswith("DOCKER")}
    if not quiet:
        print(f"the image jobs build on {eng.whose} (Docker {eng.version}), base {base or 'the pinned digest'}")
    return variables, env


def pipeline_variables(token: str | None = None, releases: Path | None = None) -> dict:
    """The CI/CD variables of a run: the interpreter every job runs (this kernel's Python, explicit: a job
    shell's start-up files must not pick another one), a fresh deploy token (a masked variable: never
    printed) and the folder where the "platform" records what runs where."""
    releases = releases or work_dir() / "releases"
    shutil.rmtree(releases, ignore_errors=True)
    return {"PYTHON": sys.executable, "DEPLOY_TOKEN": token or secrets.token_hex(16), "RELEASES_DIR": str(releases)}


def database(quiet: bool = False) -> db.Postgres:
    return db.start(DATABASE, "08", quiet=quiet)


def plot_timelines(runs: dict, title: str = "pipeline timeline"):
    """One row per job, a bar from its start to its end, for each run ({label: PipelineRun})."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 1.0 + 0.45 * sum(len(r.jobs) for r in runs.values())))
    axes = [axes] if len(runs) == 1 else list(axes)
    xmax = max((j.end or 0) for r in runs.values() for j in r.jobs.values()) + 0.5
    colours = {"passed": "tab:green", "failed": "tab:red", "allowed to fail": "tab:orange"}
    for ax, (label, run) in zip(axes, runs.items(), strict=True):
        jobs = [j for j in run.jobs.values() if j.start is not None]
        for i, j in enumerate(jobs):
            ax.barh(i, (j.end or j.start) - j.start, left=j.start, color=colours.get(j.status, "grey"))
            ax.text((j.end or j.start) + 0.05, i, f"{j.seconds:.1f} s", va="center", fontsize=8)
        ax.set_yticks(range(len(jobs)), [j.name for j in jobs])
        ax.invert_yaxis()
        ax.set_xlim(0, xmax)
        ax.set_title(f"{label}: {run.seconds:.1f} s", fontsize=10)
    axes[-1].set_xlabel("seconds since the pipeline started")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _images() -> dict:
    """The pipeline's names of the image (``cloudlab/orders:ci-*``, untagged: the image itself is lesson 05's
    and stays) and any smoke-test container left behind (label cloudlab.lesson=08), where an engine answers."""
    from .. import containers

    if not containers.answers():
        return {}
    try:
        tags = containers.docker("images", IMAGE_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        ours = [t for t in tags if t.split(":", 1)[-1].startswith("ci-")]
        if ours:
            containers.docker("rmi", *ours)
        return {"image tags": ours, **containers.remove_labelled("08")}
    except (containers.EngineDown, containers.EngineMissing, RuntimeError):
        return {}


@cleanup.extra("08")
def _reset() -> dict:
    """Drop the lesson's databases (the server process is stopped by the generic sweep, before this
    hook runs, so start it only if it runs), remove the project copies and release records, and the
    pipeline's image tags and containers."""
    removed = {"databases": [], "work folders": [], **_images()}
    found = db.find(DATABASE)
    if found is not None:
        try:
            for name in found.databases("l08"):
                found.drop_database(name)
                removed["databases"].append(name)
        except db.DatabaseDown:
            pass
    d = work_dir()  # (the cluster is not here: cloudlab.database keeps it, a checked cache, under work/postgres)
    for sub in sorted(d.iterdir()) if d.exists() else []:
        if sub.is_dir():
            shutil.rmtree(sub, ignore_errors=True)
            removed["work folders"].append(sub.name)
    return removed
