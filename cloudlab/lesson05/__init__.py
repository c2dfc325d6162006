"""Lesson 05 (containers): the project folder the lesson builds, and the exercise checks.

The engine, builds, images, runs and layer scans are the toolkit :mod:`cloudlab.containers`; this
package stages the order service as a developer's checkout (``project``), builds the production image
``cloudlab/orders:<source hash>`` (the course's one image: ``make cluster`` loads it, lesson 08's pipeline
builds it to the same digest), cleans up by label on reset, and
holds the checks (``checks``). Everything is named ``l05-...`` and labelled ``cloudlab.lesson=05``."""

from .checks import SIZE_BUDGET_MB, check_layer_order, check_multistage, check_run_flags  # noqa: F401
from .project import (  # noqa: F401
    ASSETS,
    BUCKET,
    LEGACY_SERVICE,
    PINNED_BASE,
    PRIVATE_RECORD,
    PROJECT,
    REPOSITORY,
    SECRET_ID,
    THIRD_PARTY,
    Project,
    backing_services,
    base_ref,
    build_orders,
    fake_token,
    fingerprint,
    lint_folder,
    stage,
    try_dockerfile,
    work_dir,
)
from .shipping import check_final, check_no_secret  # noqa: F401
