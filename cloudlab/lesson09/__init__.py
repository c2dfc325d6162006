"""Lesson 09 (reliability and chaos engineering): the lesson's glue and its checks.

The tools (retries, breaker, dependency, idempotency, availability, namespaces, faults, fleet, autoscaling,
Chaos Toolkit) are the toolkit :mod:`cloudlab.reliability`. The parts here: ``setup`` (names, the dependency,
the fleet, the exercise's helpers, reset), ``storm`` (the retry storm) and ``drills`` (the worker that dies
half-way, the backup drill); the checks are in ``checks``, ``checks_idem``, ``checks_ops`` and ``checks_chaos``."""

from . import storm  # noqa: F401  (the retry storm: lesson09.storm.storm, .table, .findings, .plot)
from .checks import (  # noqa: F401
    check_breaker,
    check_retry,
)
from .checks_chaos import EXPERIMENT_FILE, check_experiment, experiment_path, save_experiment  # noqa: F401
from .checks_idem import check_idempotent  # noqa: F401
from .checks_ops import EX_DLQ, EX_QUEUE, check_dlq, check_restore  # noqa: F401
from .drills import (  # noqa: F401
    LEASE_S,
    contents,
    crashing_worker,
    create_key_table,
    drain,
    lease_left,
    manifest,
    queue_with_dlq,
    records_table,
    restore_from,
    versioned_bucket,
    work_once,
)
from .setup import (  # noqa: F401
    BUCKET,
    DEPENDENCY,
    EXPERIMENTS,
    QUEUE,
    backing,
    dependency,
    failed,
    find_dependency,
    fresh_queues,
    show_queues,
    start_dependency,
    start_fleet,
    try_retry,
    under_load,
    work_dir,
)
