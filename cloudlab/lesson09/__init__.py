"""Lesson 09 (reliability and chaos engineering): the lesson's glue and its checks.

The tools (retries, breaker, dependency, availability, namespaces, faults, fleet, autoscaling, Chaos
Toolkit) are the toolkit :mod:`cloudlab.reliability`. The parts here: ``setup`` (names, the
dependency, the fleet, the retry storm, reset) and ``drills`` (the worker, the backup drill)."""

from .checks import (  # noqa: F401
    check_breaker,
    check_idempotent,
    check_retry,
)
from .checks_ops import (  # noqa: F401
    EX_DLQ,
    EX_QUEUE,
    EXPERIMENT_FILE,
    check_dlq,
    check_experiment,
    check_restore,
    experiment_path,
)
from .drills import (  # noqa: F401
    contents,
    create_key_table,
    manifest,
    queue_with_dlq,
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
    failed,
    find_dependency,
    plot_storm,
    start_dependency,
    start_fleet,
    storm,
    under_load,
    work_dir,
)
