"""Lesson 04 (observability): run the instrumented order service, drive it, and check the exercises.

The tools that work on the signals (load, logs, metrics, traces, SLO maths, plots) are the
toolkit :mod:`cloudlab.observability`; the pager is :mod:`cloudlab.pager`. The parts:
``service`` (start and find the service, the alarm drill) and ``checks``."""

from .checks import (  # noqa: F401
    check_buckets,
    check_burn_rule,
    check_find_request,
    check_pager,
    check_ship_lines,
)
from .service import (  # noqa: F401
    BUCKET,
    COARSE_BUCKETS,
    DIMENSIONS,
    EXERCISE_GROUP,
    LOG_GROUP,
    NAMESPACE,
    QUEUE,
    SERVICE,
    SLO_LATENCY_S,
    Service,
    alarm_drill,
    exercise_setup,
    find_service,
    load_results,
    put_alarm,
    save_results,
    send,
    setup_backing,
    start_service,
    wait_for_line,
    work_dir,
)
