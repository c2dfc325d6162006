"""Lesson 07 (secrets and least privilege): the lab side and the checks.

The parts: ``repo`` (a repository with a leaked key, git as a learner runs it, what the history holds),
``store`` (KMS key, Secrets Manager, SSM SecureString, envelope encryption, a rotation played step by step),
``db`` (the database and roles whose password is rotated, and a client that survives a rotation), ``service``
(the payments service started with its secret injected, where a secret leaks from a process or an image),
``k8s`` (the lesson's manifests, exercise 7's rendering and questions), ``answers`` (one line when a wrong answer
breaks a task cell's follow-up code; a clean slate before a task runs again), and the exercise checks:
``checks`` (07.1-07.2), ``checks_store`` (07.3-07.4), ``checks_rotation`` (07.5), ``checks_access`` (07.6),
``checks_k8s`` (07.7). The toolkits it builds on:
``cloudlab.iam`` (the enforcing IAM emulator, policy parsing), ``cloudlab.database`` (PostgreSQL on loopback,
roles and passwords), ``cloudlab.k8s`` (kustomize, strict validation, RBAC's ``can``, how pods get Secrets,
encryption at rest, the live cluster) and ``cloudlab.scanners`` (detect-secrets, trufflehog, parliament,
checkov). Every resource is named ``l07-...`` (or ``/l07/``, ``alias/l07-``), every process ``l07-...``, so
``cloudlab.reset_lesson("07")`` removes exactly this lesson's.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from .. import cleanup, iam
from ..lab import ROOT, Lab  # noqa: F401
from . import answers, db, k8s, repo, service, store  # noqa: F401
from .answers import AnswerError, after_answer, forget_store_attempt  # noqa: F401
from .checks import IAM_NAME, check_history, check_hook, nonce  # noqa: F401
from .checks_access import check_policy, make_resources, probe, probe_table  # noqa: F401
from .checks_k8s import check_rbac  # noqa: F401
from .checks_rotation import check_rotation  # noqa: F401
from .checks_store import ROTATION_DAYS, check_launch, check_store  # noqa: F401
from .db import SecretBackedClient  # noqa: F401
from .db import start as start_database
from .repo import HOOK_CONFIG_FILE, fake_aws_key, history_hits, make_leaky_repo, sh  # noqa: F401
from .service import (  # noqa: F401
    health,
    image_with_build_arg,
    process_exposure,
    secrets_dir,
    start_payments,
    write_secret_file,
)
from .store import (  # noqa: F401
    KEY_ALIAS,
    PARAM_NAME,
    SECRET_NAME,
    RotationFailed,
    ensure_key,
    envelope_decrypt,
    envelope_encrypt,
    fetch,
    generate_password,
    key_summary,
    put_secret,
    rotate_now,
    stage_table,
    stages,
)

LESSON = "07"


def workdir() -> Path:
    """The lab's work folder of this lesson (``reset_lesson("07")`` empties it)."""
    return Lab.from_env().work_dir(LESSON)


def enforcing() -> iam.EnforcingIAM:
    """The lesson's enforcing IAM emulator: the running one, or a fresh one (a restart forgets every user)."""
    return iam.running(IAM_NAME) or iam.start(IAM_NAME, admin_user="l07-admin")


def setup_exercises() -> dict:
    """What the exercise notebook works on: the enforcing emulator, a repository with a leaked key, the database."""
    e = enforcing()
    leak = make_leaky_repo("exercise-repo", e)
    database = start_database(quiet=True)
    print(
        f"exercise repository: {leak.repo.relative_to(Lab.from_env().state)} under the lab's state folder "
        f"(a key of {leak.user} leaked in its history)"
    )
    print(f"enforcing IAM emulator: {e.url}; PostgreSQL: 127.0.0.1:{database.port}")
    return {"repo": leak.repo, "leaked_user": leak.user, "emulator": e, "database": database}


@cleanup.extra(LESSON)
def _reset_extra() -> dict[str, list[str]]:
    """Lesson 07's part of ``reset_lesson("07")``: secrets, parameters, KMS aliases (keys scheduled for deletion),
    the repositories and secret files under work/l07, the image the lesson built (when an engine answers). The
    PostgreSQL cluster is a checked cache of :mod:`cloudlab.database` and stays; the one this lesson made itself
    before (``pg``) is removed."""
    removed = store.delete_all()
    from .. import containers

    if containers.answers():
        try:
            removed.update(containers.remove_labelled(LESSON))
        except (containers.EngineDown, containers.EngineMissing):
            pass
    work = workdir()
    removed["work files"] = []
    tag = hashlib.sha256(str(Lab.from_env().state).encode()).hexdigest()[:10]
    for p in [*sorted(work.iterdir()), Path(tempfile.gettempdir()) / f"cloudlab-{tag}-l07-pg"]:
        if p.exists():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed["work files"].append(p.name)
    return removed
