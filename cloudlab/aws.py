"""Endpoints, sessions and the real-AWS safety guard.

Everything is configured by boto3's own environment variables
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ACCESS_KEY_ID`` ...),
so the code a learner writes is plain boto3 that would run unchanged against
real AWS.  The guard makes sure that never happens by accident.

This module never imports :mod:`cloudlab.ready` (which imports it): ``cloudlab.connect()`` lives there.
Serves every lesson.
"""

from __future__ import annotations

import functools
import os
import re
from urllib.parse import urlparse

OPT_IN = "CLOUDLAB_ALLOW_REAL_AWS"
OPT_IN_VALUE = "yes-i-may-be-billed"
# Hosts an emulator may live on: loopback, and the service names of docker-compose.yml.
EMULATOR_HOSTS = {"127.0.0.1", "localhost", "::1", "localstack", "moto"}
REAL_KEY = re.compile(r"^(AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}$")


class RealAWSRefused(RuntimeError):
    """Raised instead of creating a client that could reach a real AWS account."""

    def _render_traceback_(self):  # IPython: show the message, not a stack trace
        return [f"\x1b[31mRealAWSRefused\x1b[0m: {self}"]


@functools.cache
def env_name(service: str) -> str:
    """boto3's per-service endpoint variable, e.g. 'ce' -> AWS_ENDPOINT_URL_COST_EXPLORER."""
    from .lab import SERVICES

    if service in SERVICES:
        return "AWS_ENDPOINT_URL_" + SERVICES[service][1]
    try:
        import botocore.session

        sid = botocore.session.get_session().get_service_model(service).service_id
        return "AWS_ENDPOINT_URL_" + str(sid).replace(" ", "_").upper()
    except Exception:  # unknown service name: boto3 itself will say so later
        return "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")


def endpoint_for(service: str, environ=None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get(env_name(service)) or env.get("AWS_ENDPOINT_URL")


def guard(service: str, environ=None) -> str:
    """Return the emulator endpoint for ``service`` or raise :class:`RealAWSRefused`."""
    env = os.environ if environ is None else environ
    if env.get(OPT_IN) == OPT_IN_VALUE:
        return endpoint_for(service, env) or ""
    key = env.get("AWS_ACCESS_KEY_ID", "")
    if REAL_KEY.match(key):
        raise RealAWSRefused(
            f"AWS_ACCESS_KEY_ID looks like a real key ({key[:4]}...). The emulators need only the dummy "
            "value 'test'. Unset your real credentials in this shell (or run `make lab`, which sets "
            "dummy ones) so they can never leak into a notebook."
        )
    url = endpoint_for(service, env)
    if not url:
        raise RealAWSRefused(
            f"no emulator endpoint is set for {service!r}, so boto3 would talk to REAL AWS.\n"
            "Start the lab (`make lab`, or `docker compose up`) and open the notebook from it, or run "
            "`cloudlab.connect()` first. To use a real account on purpose, set "
            f"{OPT_IN}={OPT_IN_VALUE} (it may cost money)."
        )
    host = urlparse(url).hostname or ""
    if host not in EMULATOR_HOSTS:
        raise RealAWSRefused(
            f"the endpoint for {service!r} is {url}, which is not a local emulator "
            f"({', '.join(sorted(EMULATOR_HOSTS))}). Refusing: this could be a real account. "
            f"Set {OPT_IN}={OPT_IN_VALUE} only if you mean it."
        )
    return url


def session(**kwargs):
    import boto3

    guard("sts")
    return boto3.session.Session(**kwargs)


def client(service: str, **kwargs):
    """``boto3.client(service)``, after the safety guard. Endpoint and credentials come from the environment."""
    import boto3
    from botocore.config import Config

    guard(service)
    kwargs.setdefault(
        "config", Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=30)
    )
    return boto3.client(service, **kwargs)


def resource(service: str, **kwargs):
    import boto3

    guard(service)
    return boto3.resource(service, **kwargs)
