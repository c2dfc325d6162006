"""Lesson 04: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # Timestamps in epoch seconds, and the stream created without a look at whether it exists.
    "04.1": """
events = []
for line in lines:
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if isinstance(rec, dict) and "ts" in rec:
        events.append({"timestamp": int(datetime.fromisoformat(rec["ts"]).timestamp()), "message": line})
events.sort(key=lambda e: e["timestamp"])
try:
    logs.create_log_group(logGroupName=group)
except logs.exceptions.ResourceAlreadyExistsException:
    pass
logs.create_log_stream(logGroupName=group, logStreamName=stream)
for i in range(0, len(events), 500):
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i:i + 500])
return len(events)
""",
    # Finer buckets, but the SLO threshold 0.25 s is not one of them.
    "04.2": """
BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5)
svc = lesson04.restart_service(buckets=BUCKETS)
""",
    # Only the 500s count as errors (the 503s of an overloaded instance are missed).
    "04.3": """
RECORDING_RULES = "groups:\\n  - name: orders-slo-recording\\n    rules:\\n" + "".join(
    f"      - record: job:slo_errors_per_request:ratio_rate{w}\\n"
    f'        expr: sum by (job) (rate(orders_requests_total{{status="500"}}[{w}]))'
    f" / sum by (job) (rate(orders_requests_total[{w}]))\\n"
    for w in ("5m", "30m", "1h", "6h")
)
""",
    # The page on the long window only: it keeps paging long after the incident is over.
    "04.4": """
ALERT_RULES = '''
groups:
  - name: orders-slo-alerts
    rules:
      - alert: OrdersErrorBudgetFastBurn
        expr: job:slo_errors_per_request:ratio_rate1h > (14.4 * 0.005)
        for: 2m
        labels: {severity: page, slo: orders-availability, service: orders}
        annotations: {summary: fast burn, runbook_url: lessons/04_observability/runbook.md}
      - alert: OrdersErrorBudgetSlowBurn
        expr: |
          job:slo_errors_per_request:ratio_rate6h > (6 * 0.005)
            and job:slo_errors_per_request:ratio_rate30m > (6 * 0.005)
        for: 5m
        labels: {severity: ticket, slo: orders-availability, service: orders}
        annotations: {summary: slow burn, runbook_url: lessons/04_observability/runbook.md}
'''
""",
    # One story only: the incident fires. A page that also fires on a blip passes these tests.
    "04.5": """
ALERT_TESTS = '''
rule_files: [l04_recording.yml, l04_alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'orders_requests_total{job="orders", status="201"}'
        values: '0+100x360 36090+90x59'
      - series: 'orders_requests_total{job="orders", status="500"}'
        values: '0+0x360 10+10x59'
    alert_rule_test:
      - eval_time: 7h
        alertname: OrdersErrorBudgetFastBurn
        exp_alerts:
          - exp_labels: {severity: page, slo: orders-availability, service: orders, job: orders}
            exp_annotations:
              summary: orders burns its error budget 14.4 times too fast
              runbook_url: lessons/04_observability/runbook.md
'''
""",
    # Grouped by alert name only: the pages of two SLOs arrive in one notification.
    "04.6": """
ROUTES = '''
route:
  receiver: tickets
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="page"']
      receiver: pager
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="ticket"']
    equal: [slo]
'''
""",
    # Local time without a zone: Alertmanager refuses it (or, read as UTC, it starts hours off).
    "04.7": """
start = datetime.now()
body = {
    "matchers": [{"name": "service", "value": service, "isRegex": False, "isEqual": True}],
    "startsAt": start.isoformat(),
    "endsAt": (start + timedelta(minutes=minutes)).isoformat(),
    "createdBy": "04 exercises",
    "comment": comment,
}
answer = net.request("POST", f"{am_url}/api/v2/silences", body)
if answer.status != 200:
    raise RuntimeError(f"Alertmanager refused the silence: {answer.status} {answer.body[:200]!r}")
return answer.json()["silenceID"]
""",
    # A span of the default kind (INTERNAL): the call out to another service does not show as one.
    "04.8": """
with tracer.start_as_current_span("inventory.reserve", attributes={"inventory.item": item, "inventory.quantity": qty}):
    return call(item, qty)
""",
    # OR instead of AND: a one-minute blip pages through the 5-minute alarm alone.
    "04.9": """
pager = wire_pager(sns, sqs, "l04-ex-alerts", "l04-ex-pager")
for name, period in (("l04-ex-burn-1h", 3600), ("l04-ex-burn-5m", 300)):
    cw.put_metric_alarm(AlarmName=name, Namespace="l04/orders", MetricName="ErrorRatio",
                        Dimensions=[{"Name": "Service", "Value": "orders"}], Statistic="Average",
                        Period=period, EvaluationPeriods=1, Threshold=14.4 * (1 - 0.995),
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
cw.put_composite_alarm(AlarmName="l04-ex-burn-page",
                       AlarmRule='ALARM("l04-ex-burn-1h") OR ALARM("l04-ex-burn-5m")',
                       AlarmActions=[pager["topic_arn"]])
""",
}
