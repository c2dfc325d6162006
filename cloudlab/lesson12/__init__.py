"""Lesson 12 (serverless and managed services): the lesson's glue and its checks.

The tools (the Runtime Interface Emulator and its environments, concurrency, API Gateway events, the SQS
event source mapping, the container image) are the toolkit :mod:`cloudlab.serverless`; the prices of each
target are :mod:`cloudlab.cost.targets`. The parts here: ``setup`` (names, deploying a function's file,
tables, queues, the reset), ``managed`` (the RDS API on moto, PostgreSQL's dump and restore),
``concurrency`` (a burst against a connection limit) and the checks."""

from .checks_api import API_FILE, LIST_FILE, check_orders_api, check_orders_list, orders_event_example  # noqa: F401
from .checks_events import ONCE_FILE, PAY_FILE, check_idempotent, check_partial_batch  # noqa: F401
from .checks_ops import REPORT_FILE, check_cold_start, check_lambda_bill, check_restore_drill, imports  # noqa: F401
from .setup import (  # noqa: F401
    FUNCTIONS,
    ORDERS_TABLE,
    charges,
    create_table,
    deploy,
    fresh,
    keep,
    queue_depth,
    queue_messages,
    queue_with_dlq,
    wait,
    work_dir,
)
