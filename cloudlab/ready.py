"""Is the local cloud up? ``connect()``, real probe calls, and answers in plain words.

``cloudlab.connect()`` (the first cell of every lesson) lives here: it sets the lab's variables,
refuses real AWS (:mod:`cloudlab.aws`) and waits until the emulators answer. Serves every lesson.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from . import aws

ACCOUNT = "000000000000"


def _month():
    start = date.today().replace(day=1)
    return {"Start": (start - timedelta(days=1)).replace(day=1).isoformat(), "End": start.isoformat()}


# service -> a cheap read-only call. Which emulator serves it: cloudlab.lab.SERVICES.
PROBES = {
    "s3": lambda c: c.list_buckets(),
    "sqs": lambda c: c.list_queues(),
    "sns": lambda c: c.list_topics(),
    "sts": lambda c: c.get_caller_identity(),
    "iam": lambda c: c.list_roles(MaxItems=1),
    "ec2": lambda c: c.describe_volumes(MaxResults=5),
    "elbv2": lambda c: c.describe_load_balancers(PageSize=1),
    "cloudwatch": lambda c: c.describe_alarms(MaxRecords=1),
    "logs": lambda c: c.describe_log_groups(limit=1),
    "kms": lambda c: c.list_keys(Limit=1),
    "secretsmanager": lambda c: c.list_secrets(MaxResults=1),
    "ssm": lambda c: c.describe_parameters(MaxResults=1),
    "cloudformation": lambda c: c.list_stacks(),
    "dynamodb": lambda c: c.list_tables(Limit=1),
    "ecs": lambda c: c.list_clusters(maxResults=1),
    "eks": lambda c: c.list_clusters(maxResults=1),
    "ce": lambda c: c.get_cost_and_usage(TimePeriod=_month(), Granularity="MONTHLY", Metrics=["UnblendedCost"]),
    "budgets": lambda c: c.describe_budgets(AccountId=ACCOUNT),
    "rds": lambda c: c.describe_db_instances(MaxRecords=20),
}


def served_by(service: str) -> str:
    """'LocalStack' or 'moto': who answers ``service`` in this lab."""
    from .lab import EMULATOR_NAMES, SERVICES

    return EMULATOR_NAMES[SERVICES[service][0]]


class EmulatorDown(RuntimeError):
    """The local cloud does not answer; the message says which part and what to run."""

    def _render_traceback_(self):
        return [f"\x1b[31mEmulatorDown\x1b[0m: {self}"]


def probe(service: str, timeout: float = 3.0) -> tuple[bool, str]:
    """One real call to ``service``: (ok, detail)."""
    from botocore.config import Config

    call = PROBES[service]
    try:
        c = aws.client(
            service, config=Config(retries={"max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout + 5)
        )
        t0 = time.monotonic()
        call(c)
        return True, f"answered in {1000 * (time.monotonic() - t0):.0f} ms"
    except aws.RealAWSRefused as e:
        return False, str(e).split("\n")[0]
    except Exception as e:  # connection refused, timeouts, 501 not implemented ...
        return False, f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"


def wait_for_services(services=("s3", "sqs"), timeout: float = 20.0) -> None:
    """Wait until every service answers a real call, or raise :class:`EmulatorDown` saying what to do."""
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
        lines = [f"  - {s} ({served_by(s)} at {aws.endpoint_for(s)}): {last[s]}" for s in pending]
        raise EmulatorDown(
            "the local cloud is not answering:\n"
            + "\n".join(lines)
            + "\nFix: run `make lab` in a terminal (it starts what is missing; `make status` shows what runs), "
            "or `docker compose up` on the Docker path. Then re-run this cell.\n"
            "Kept: your code, variables, workspace files and progress. Not kept if the local cloud restarted: what "
            "the lesson created in the emulators (they keep no state) and the processes it started: re-run the "
            "notebook from its setup cell."
        )


def lab_defaults() -> dict[str, str]:
    """The lab's environment, when the kernel was not started by `make lab` (e.g. an IDE)."""
    from .lab import Lab

    return Lab.from_env().aws_env()


def connect(wait: bool = True, services=("s3", "sqs"), quiet: bool = False) -> dict:
    """Point this kernel at the local cloud, refuse real AWS, wait until the emulators answer.

    Safe to run twice. Variables already set (by `make lab` or docker compose) win.
    """
    import os

    if os.environ.get(aws.OPT_IN) != aws.OPT_IN_VALUE:
        if aws.REAL_KEY.match(os.environ.get("AWS_ACCESS_KEY_ID", "")):
            aws.guard("s3")  # raises with the plain-words message
        for k, v in lab_defaults().items():
            os.environ.setdefault(k, v)
    info = {"endpoint": aws.guard("s3"), "region": os.environ.get("AWS_DEFAULT_REGION")}
    from . import kernel

    kernel.install()  # short messages instead of traceback walls, also in a kernel `make lab` did not start
    aws.protect()  # every boto3 client made in this kernel from now on refuses real AWS, however it is made
    if wait:
        wait_for_services(services, timeout=15)
    kernel.mark_setup()  # an emulator started after this moment has lost what this notebook creates from here
    if not quiet:
        print(f"Connected to the local cloud: {info['endpoint']} (region {info['region']}); real AWS is blocked.")
    return info
