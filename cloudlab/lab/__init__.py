"""The local cloud: its configuration (ports, state folder, the emulator of each AWS service).

Standard library only, so ``python3 -m cloudlab.lab ...`` runs before any virtual environment
exists. The Makefile is a thin wrapper around that command (see :mod:`cloudlab.lab.cli`).
Serves every lesson. The parts:

=====================  ==========================================================
``cloudlab.lab``       :class:`Lab` (ports, folders, the AWS environment), SERVICES
``lab.process``        background processes: spawn, is it alive, stop (TERM, then KILL)
``lab.venvs``          the course's virtual environments (uv, or pip as a fallback)
``lab.tools``          the tools lessons need (emulator venvs, system packages), installed on demand
``lab.emulators``      LocalStack and moto: start, health, stop
``lab.jupyter``        JupyterLab (and its culler of idle kernels)
``lab.runtime``        what a lab makes outside its state folder (/tmp, /dev/shm, namespaces), named after it
``lab.report``         `make status` and `make logs`: what runs, what stopped and why, log tails
``lab.cli``            up / lab / down / status / logs / reset / run / env / setup
=====================  ==========================================================

Two profiles share one code path:

* ``lab``  (default): what a learner uses; state in ``.lab/``.
* ``test``: what ``make test`` uses; its own ports and state, started and stopped around
  the test run, so tests never disturb a running lab.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
REGION = "us-east-1"

# Every AWS service the course uses: boto3's service name -> (the emulator that serves it here,
# boto3's endpoint variable suffix: AWS_ENDPOINT_URL_<SUFFIX>). The ONE table of who serves what:
# the lab's environment, the readiness probes, lesson 00's table and the compose file derive from it.
# LocalStack cannot serve DynamoDB, ECS, EKS, ELB, Cost Explorer, Budgets or RDS without Docker: moto does.
SERVICES: dict[str, tuple[str, str]] = {
    "s3": ("localstack", "S3"),
    "sqs": ("localstack", "SQS"),
    "sns": ("localstack", "SNS"),
    "sts": ("localstack", "STS"),
    "iam": ("localstack", "IAM"),
    "ec2": ("localstack", "EC2"),
    "cloudwatch": ("localstack", "CLOUDWATCH"),
    "logs": ("localstack", "CLOUDWATCH_LOGS"),
    "kms": ("localstack", "KMS"),
    "secretsmanager": ("localstack", "SECRETS_MANAGER"),
    "ssm": ("localstack", "SSM"),
    "cloudformation": ("localstack", "CLOUDFORMATION"),
    "dynamodb": ("moto", "DYNAMODB"),
    "dynamodbstreams": ("moto", "DYNAMODB_STREAMS"),
    "ecs": ("moto", "ECS"),
    "eks": ("moto", "EKS"),
    "elbv2": ("moto", "ELASTIC_LOAD_BALANCING_V2"),
    "elb": ("moto", "ELASTIC_LOAD_BALANCING"),
    "ce": ("moto", "COST_EXPLORER"),
    "budgets": ("moto", "BUDGETS"),
    # lesson 12: the RDS API (instances, snapshots, restores, parameter groups: moto records them, no database runs)
    "rds": ("moto", "RDS"),
}
EMULATOR_NAMES = {"localstack": "LocalStack", "moto": "moto"}
# The endpoint variable suffixes routed to moto (the rest goes to AWS_ENDPOINT_URL, LocalStack).
MOTO_SERVICES = tuple(suffix for emulator, suffix in SERVICES.values() if emulator == "moto")

# Default ports of the services the lab (or a lesson) runs on 127.0.0.1. Profiles shift them all by
# an offset; ``CLOUDLAB_<NAME>_PORT`` sets one, ``CLOUDLAB_PORT_OFFSET`` shifts all (several labs on
# one machine). Lessons that run a service learners open in a browser add it here.
PORTS = {"localstack": 4566, "moto": 5050, "jupyter": 8888}
PORTS.update(prometheus=9090, alertmanager=9093, pager=9097)  # lesson 04: its Prometheus, Alertmanager, pager
# lesson 11: Google Cloud's Pub/Sub and Firestore emulators, fake-gcs-server (Cloud Storage), Azurite's Blob,
# Queue and Table services, the Cloud Function (functions-framework). No two differ by a multiple of 10, the
# step between `make test` shards, so shards never collide.
PORTS.update(pubsub=8085, firestore=8087, gcs=4443, function=8089, azurite_blob=10105, azurite_queue=10106)
PORTS.update(azurite_table=10107)
PROFILES = {
    "lab": {"offset": 0, "state": ".lab"},
    "test": {"offset": 10, "state": ".lab/test-run"},
}


class LabError(Exception):
    """A problem the learner can fix; the message says how."""


def say(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


def _port(env, name: str, default: int) -> int:
    raw = env.get(f"CLOUDLAB_{name.upper()}_PORT")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LabError(f"CLOUDLAB_{name.upper()}_PORT must be a port number, not {raw!r}") from None
    if not 1024 <= value <= 65535:
        raise LabError(f"CLOUDLAB_{name.upper()}_PORT={value} is outside 1024-65535")
    return value


@dataclass
class Lab:
    """One lab: a profile, its ports on 127.0.0.1 and its state folder (PID files, logs, emulator data).

    Build it with :meth:`from_env`, which reads the ``CLOUDLAB_*`` variables; every path and URL
    the package uses comes from here, so two labs (a learner's and ``make test``'s) never collide.
    """

    profile: str = "lab"
    ports: dict = field(default_factory=lambda: dict(PORTS))
    state: Path = field(default_factory=lambda: ROOT / ".lab")

    @classmethod
    def from_env(cls, profile: str | None = None, environ=None) -> Lab:
        env = os.environ if environ is None else environ
        profile = profile or env.get("CLOUDLAB_PROFILE", "lab")
        if profile not in PROFILES:
            raise LabError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
        p = PROFILES[profile]
        try:
            offset = p["offset"] + int(env.get("CLOUDLAB_PORT_OFFSET") or 0)
        except ValueError:
            raise LabError(f"CLOUDLAB_PORT_OFFSET must be a number, not {env.get('CLOUDLAB_PORT_OFFSET')!r}") from None
        ports = {name: _port(env, name, default + offset) for name, default in PORTS.items()}
        state = Path(env.get("CLOUDLAB_STATE_DIR") or ROOT / p["state"])
        return cls(profile, ports, state.resolve())

    def port(self, name: str) -> int:
        return self.ports[name]

    @property
    def localstack_port(self) -> int:
        return self.ports["localstack"]

    @property
    def moto_port(self) -> int:
        return self.ports["moto"]

    @property
    def jupyter_port(self) -> int:
        return self.ports["jupyter"]

    # paths ------------------------------------------------------------------
    @property
    def venvs(self) -> Path:
        """Virtual environments are shared by the profiles: they only depend on the pins."""
        return Path(os.environ.get("CLOUDLAB_VENV_DIR") or ROOT / ".lab" / "venvs")

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    @property
    def procs_dir(self) -> Path:
        """PID files of the processes lessons start (:mod:`cloudlab.procs`); `make stop` stops them."""
        return self.run_dir / "procs"

    @property
    def work(self) -> Path:
        """Scratch space of the lessons (``work/lNN``); wiped by `make reset`."""
        return self.state / "work"

    def work_dir(self, lesson: str) -> Path:
        d = self.work / f"l{int(lesson):02d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    @property
    def localstack_url(self) -> str:
        return f"http://127.0.0.1:{self.localstack_port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def aws_env(self) -> dict[str, str]:
        """The environment every lesson, test and kernel gets: plain boto3 variables."""
        env = {
            "AWS_ENDPOINT_URL": self.localstack_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # Never read the learner's real ~/.aws files, never ask EC2 metadata.
            "AWS_CONFIG_FILE": str(self.state / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.state / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            # Fail at once when an emulator is down: 2 attempts (boto3's default, legacy mode, makes 5 with backoff:
            # 4.6 s against a closed port, measured 2026-12-06).
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "2",
            "CLOUDLAB_PROFILE": self.profile,
            "CLOUDLAB_STATE_DIR": str(self.state),
        }
        for suffix in MOTO_SERVICES:
            env[f"AWS_ENDPOINT_URL_{suffix}"] = self.moto_url
        return env
