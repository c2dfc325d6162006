"""Lesson 04 (observability): run the instrumented order service under load, watch it with a real
Prometheus and Alertmanager, and check the exercises.

The tools that work on the signals (load, logs, metrics, traces, SLO maths, Prometheus and
Alertmanager, promtool, plots) are the toolkit :mod:`cloudlab.observability`; the SNS -> SQS pager
is :mod:`cloudlab.pager`. The parts: ``service`` (start and find the service), ``stack`` (the service
under load, Prometheus, Alertmanager, the receiver), ``files`` (loading the learner's rules and routes),
``scenarios`` (the traffic the rule checks replay), ``cloudwatch`` (the AWS form of the alarm) and the checks:
``checks`` (04.1-04.2), ``checks_rules`` (04.3-04.5), ``checks_alerting`` (04.6-04.7),
``checks_more`` (04.8-04.9)."""

from .checks import check_buckets, check_ship_lines  # noqa: F401
from .checks_alerting import check_routes, check_silence  # noqa: F401
from .checks_more import check_composite, check_span  # noqa: F401
from .checks_rules import check_alert_rules, check_alert_tests, check_recording_rules  # noqa: F401
from .files import (  # noqa: F401
    apply_routes,
    candidate_config,
    load_rules,
    run_tests,
    test_with_rules,
    unload_rules,
    write_file,
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
    SLO_TARGET,
    Service,
    find_service,
    load_results,
    send,
    setup_backing,
    start_service,
    wait_for_line,
    work_dir,
)
from .stack import (  # noqa: F401
    ALERTMANAGER,
    LESSON_DIR,
    PAGER_QUEUE,
    PAGER_TOPIC,
    PROMETHEUS,
    RUNBOOK,
    RuleFileError,
    Stack,
    current,
    read_yaml,
    restart_service,
    set_fault_rate,
    sns_pages,
    start_stack,
    stop_stack,
    wait_for,
    wait_for_delivery,
)
