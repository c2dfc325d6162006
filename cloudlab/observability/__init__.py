"""The observability toolkit: load, logs, metrics, traces, SLO maths and plots.

Serves lesson 04 (observability) and the lessons that watch a service (08 canary analysis,
09 chaos experiments, 10 the capstone). Everything here works on real data: the results of real
HTTP requests, the lines the service really logged, the text its /metrics endpoint really served,
the spans it really exported. Pure functions (parsing, percentiles, burn rates) are unit-tested
without the lab.

The parts: ``errors``, ``load`` (a bounded load generator, and steady background load), ``logs``
(JSON lines to and from CloudWatch Logs), ``metrics`` (Prometheus exposition, histograms, CloudWatch
metrics), ``slo`` (SLOs, error budgets, burn rates), ``traces`` (OpenTelemetry spans), ``plots``,
``prom`` (the real Prometheus and Alertmanager: configs, lab time, start/stop, HTTP APIs),
``promtool`` (promtool and amtool: check, test, evaluate) and ``receiver`` (a webhook receiver that
stands in for the on-call tool)."""

from .errors import (  # noqa: F401
    MalformedLogLine,
    NoDataPoints,
)
from .load import (  # noqa: F401
    run_load,
    summarize,
)
from .logs import (  # noqa: F401
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    batches,
    parse_log_line,
    query_logs,
    read_events,
    server_filter_works,
    ship_logs,
    to_log_events,
)
from .metrics import (  # noqa: F401
    LATENCY,
    REQUESTS,
    Sample,
    Scraper,
    bucket_bounds,
    cloudwatch_datums,
    delta_buckets,
    get_series,
    golden_series,
    histogram,
    is_5xx,
    parse_exposition,
    push_scrapes,
    quantile_from_buckets,
    sample_sum,
    scrape,
)
from .plots import (  # noqa: F401
    plot_dashboard,
    plot_latency,
    plot_waterfall,
    plot_windows,
)
from .prom import (  # noqa: F401
    SPEEDUP,
    Alertmanager,
    Prometheus,
    StackDown,
    StackError,
    golden_signals,
    lab_duration,
)
from .slo import (  # noqa: F401
    SLO,
    budget_left,
    burn_rate,
    good_events,
)
from .traces import (  # noqa: F401
    duration_ms,
    print_tree,
    read_spans,
    root_span,
    slow_span,
    slowest_traces,
    span_tree,
    traces,
)
