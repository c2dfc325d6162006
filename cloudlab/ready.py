"""Is the local cloud up? Real calls, answers in plain words."""
from __future__ import annotations

import time
from datetime import date, timedelta

ACCOUNT = "000000000000"


def _month():
    start = date.today().replace(day=1)
    return {"Start": (start - timedelta(days=1)).replace(day=1).isoformat(), "End": start.isoformat()}


# service -> (a cheap read-only call, the emulator that serves it here)
PROBES = {
    "s3": (lambda c: c.list_buckets(), "LocalStack"),
    "sqs": (lambda c: c.list_queues(), "LocalStack"),
    "sns": (lambda c: c.list_topics(), "LocalStack"),
    "sts": (lambda c: c.get_caller_identity(), "LocalStack"),
    "iam": (lambda c: c.list_roles(MaxItems=1), "LocalStack"),
    "ec2": (lambda c: c.describe_volumes(MaxResults=5), "LocalStack"),
    "elbv2": (lambda c: c.describe_load_balancers(PageSize=1), "moto"),
    "cloudwatch": (lambda c: c.describe_alarms(MaxRecords=1), "LocalStack"),
    "logs": (lambda c: c.describe_log_groups(limit=1), "LocalStack"),
    "kms": (lambda c: c.list_keys(Limit=1), "LocalStack"),
    "secretsmanager": (lambda c: c.list_secrets(MaxResults=1), "LocalStack"),
    "ssm": (lambda c: c.describe_parameters(MaxResults=1), "LocalStack"),
    "cloudformation": (lambda c: c.list_stacks(), "LocalStack"),
    "dynamodb": (lambda c: c.list_tables(Limit=1), "moto"),
    "ecs": (lambda c: c.list_clusters(maxResults=1), "moto"),
    "eks": (lambda c: c.list_clusters(maxResults=1), "moto"),
    "ce": (lambda c: c.get_cost_and_usage(TimePeriod=_month(), Granularity="MONTHLY", Metrics=["UnblendedCost"]), "moto"),
    "budgets": (lambda c: c.describe_budgets(AccountId=ACCOUNT), "moto"),
}


class EmulatorDown(RuntimeError):
    """The local cloud does not answer; the message says which part and what to run."""

    def _render_traceback_(self):
        return [f"\x1b[31mEmulatorDown\x1b[0m: {self}"]


def probe(service: str, timeout: float = 3.0) -> tuple[bool, str]:
    """One real call to ``service``: (ok, detail)."""
    from botocore.config import Config
    from . import aws
    call, _ = PROBES[service]
    try:
        c = aws.client(service, config=Config(retries={"max_attempts": 1}, connect_timeout=timeout,
                                              read_timeout=timeout + 5))
        t0 = time.monotonic()
        call(c)
        return True, f"answered in {1000 * (time.monotonic() - t0):.0f} ms"
    except aws.RealAWSRefused as e:
        return False, str(e).split("\n")[0]
    except Exception as e:  # connection refused, timeouts, 501 not implemented ...
        return False, f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"


def wait_for_services(services=("s3", "sqs"), timeout: float = 20.0) -> None:
    """Wait until every service answers a real call, or raise :class:`EmulatorDown` saying what to do."""
    from . import aws
    pending = list(services)
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while pending:
        for s in list(pending):
            ok, detail = probe(s)
            if ok:
                pending.remove(s)
            else:
                last[s] = detail
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if pending:
        lines = [f"  - {s} ({PROBES[s][1]} at {aws.endpoint_for(s)}): {last[s]}" for s in pending]
        raise EmulatorDown(
            "the local cloud is not answering:\n" + "\n".join(lines) +
            "\nFix: run `make lab` in a terminal (it starts what is missing; `make status` shows what runs), "
            "or `docker compose up` on the Docker path. Then re-run this cell. Nothing you did is lost.")
