"""The reliability toolkit: design for failure, then break things on purpose and watch them hold.

Serves lesson 09 (and the capstone). The parts:

=================  ==================================================================================
``retry``          timeouts and retries: capped exponential backoff with full jitter, what to retry
``breaker``        a circuit breaker (closed, open, half-open) with a fallback
``dependency``     a fault-injecting HTTP dependency (errors, latency, outages, hangs, capacity) and its client
``idempotency``    each key processed once: a claim with a status and a lease in DynamoDB (INPROGRESS, COMPLETED)
``availability``   serial/parallel composition, zones, downtime budgets, a plot
``netns``          the lesson's network namespaces and the links that join them to 127.0.0.1
``faults``         bounded faults that are always undone: kill, freeze, partition, slow
``fleet``          instances in availability zones behind haproxy, and the supervisor that restarts them
``autoscale``      target tracking (the ASG/HPA formula) driving the fleet under load
``probes``         steady-state probes for Chaos Toolkit (command line)
``chaos``          Chaos Toolkit: validate, run, read the journal
=================  ==================================================================================

Only the light, pure parts are imported here; import the others as modules.
"""

from .availability import describe, downtime_minutes, nines, parallel, serial, zones  # noqa: F401
from .breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpen  # noqa: F401
from .dependency import Dependency  # noqa: F401
from .retry import (  # noqa: F401
    DependencyError,
    Rejected,
    Unavailable,
    backoff_bound,
    backoff_delay,
    botocore_config,
    error_for_status,
    is_retryable,
    retry_call,
)
