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


def is_emulator_host(host: str | None) -> bool:
    """Is ``host`` one of the emulators' hosts (or a subdomain of a named one: S3's virtual-hosted buckets)?"""
    host = (host or "").lower().strip("[]")
    named = (h for h in EMULATOR_HOSTS if any(c.isalpha() for c in h) and ":" not in h)
    return host in EMULATOR_HOSTS or any(host.endswith("." + h) for h in named)


_GUARD_ID = "cloudlab-real-aws-guard"
_CALLS_ID = "cloudlab-call-listeners"
CALL_LISTENERS: list = []  # cloudlab.calls adds a listener while it records the calls a helper makes


def refuse_real_requests(request, **_):
    """botocore ``before-send`` hook: the last line of defence, on every request a protected session sends.

    :func:`guard` checks the environment when a course helper makes a client (including a real-looking
    key there); this checks where each request goes, so a client made any other way (plain
    ``boto3.client`` in a cell, localstack-client's ``Session``, its ``enable_local_endpoints()`` patch,
    an explicit ``endpoint_url``) cannot reach real AWS either. It does not judge the key a request is
    signed with: moto's IAM hands out keys that look real (``AKIA...``), and lesson 07 signs with them.
    Returning None lets botocore send the request.
    """
    if os.environ.get(OPT_IN) == OPT_IN_VALUE:
        return None
    url = getattr(request, "url", "") or ""
    host = urlparse(url).hostname
    if not is_emulator_host(host):
        raise RealAWSRefused(
            f"a request to {host or url!r} was stopped before it left this machine: that is not a local emulator "
            f"({', '.join(sorted(EMULATOR_HOSTS))}), so it could be REAL AWS. Create clients with "
            f"cloudlab.client(...) (or plain boto3 with the lab's AWS_ENDPOINT_URL), never with a real endpoint. "
            f"To use a real account on purpose, set {OPT_IN}={OPT_IN_VALUE} (it may cost money)."
        )
    return None


def _tell_listeners(params=None, model=None, context=None, **_):
    for listener in list(CALL_LISTENERS):
        listener(model, params, context or {})


def protect(boto3_session=None):
    """Install the request guard on a boto3 session (boto3's default session when None) and return it.

    Every client the session makes from now on has the guard (clients copy the session's hooks when
    they are made), so :func:`cloudlab.connect` protects the default session first thing. Idempotent.
    """
    import boto3

    if boto3_session is None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3_session = boto3.DEFAULT_SESSION
    events = boto3_session.events
    events.register("before-send", refuse_real_requests, unique_id=_GUARD_ID)
    events.register("before-parameter-build", _tell_listeners, unique_id=_CALLS_ID)
    return boto3_session


def session(**kwargs):
    import boto3

    guard("sts")
    return protect(boto3.session.Session(**kwargs))


def client(service: str, **kwargs):
    """``boto3.client(service)``, after the safety guard. Endpoint and credentials come from the environment."""
    import boto3
    from botocore.config import Config

    guard(service)
    protect()
    kwargs.setdefault(
        "config", Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=30)
    )
    return boto3.client(service, **kwargs)


def resource(service: str, **kwargs):
    import boto3

    guard(service)
    protect()
    return boto3.resource(service, **kwargs)
