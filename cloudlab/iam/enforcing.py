"""An emulator that really says AccessDenied: moto server with IAM enforcement, started for a lesson.

``start("l07-iam")`` runs moto (its own pinned environment) on a free port on 127.0.0.1 through
:mod:`cloudlab.procs` (so ``reset_lesson`` and ``make stop`` stop it) with
``INITIAL_NO_AUTH_ACTION_COUNT=3``: the first three calls create an administrator (a user, its
``*:*`` inline policy, its access key); from then on every call must be signed by a key of one of
moto's users and is checked against that user's policies. Its state lives in memory: a restart
forgets every user and key. Serves lesson 07.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from .. import aws, net, procs
from ..lab import REGION, Lab, venvs

BOOTSTRAP_CALLS = 3
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
AUTH_ERRORS = {
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "AuthFailure",
}


@dataclass(frozen=True)
class Creds:
    """An access key of a user of the enforcing emulator (the secret half is never shown)."""

    user: str
    key_id: str
    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)  # a session token (temporary credentials from STS)


@dataclass(frozen=True)
class Outcome:
    """What one call got: ``allowed`` (it passed authorization, even if it then failed for another reason,
    such as NoSuchKey), ``denied`` (403 / AccessDenied / a key that does not exist) or ``error``."""

    state: str
    code: str = ""
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.state == "allowed"

    @property
    def denied(self) -> bool:
        return self.state == "denied"

    def __str__(self) -> str:
        return self.state + (f" ({self.code})" if self.code else "")


def try_call(fn, *args, **kwargs) -> Outcome:
    """Run one AWS call and say whether IAM let it through."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    try:
        fn(*args, **kwargs)
        return Outcome("allowed")
    except ClientError as e:
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in AUTH_ERRORS or status == 403:
            return Outcome(
                "denied", code if code and code != "403" else "AccessDenied", str(err.get("Message", ""))[:200]
            )
        return Outcome("allowed", code, str(err.get("Message", ""))[:200])
    except EndpointConnectionError as e:
        return Outcome("error", "EndpointConnectionError", str(e)[:200])


def _state_file(name: str):
    return Lab.from_env().run_dir / f"{name}.iam.json"


@dataclass
class EnforcingIAM:
    """A running enforcing moto: its URL and its administrator's key."""

    name: str
    url: str
    admin: Creds

    def client(self, service: str, creds: Creds | None = None):
        """A boto3 client of this emulator, signed with ``creds`` (default: the administrator)."""
        import boto3
        from botocore.config import Config

        host = urlparse(self.url).hostname or ""
        if host not in aws.EMULATOR_HOSTS:  # the same promise as cloudlab.client: never real AWS
            raise aws.RealAWSRefused(f"{self.url} is not a local emulator")
        c = creds or self.admin
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=c.key_id,
            aws_secret_access_key=c.secret,
            aws_session_token=c.token,
            config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=20),
        )

    def alive(self) -> bool:
        return net.answers(f"{self.url}/moto-api/data.json", timeout=1.0)

    def new_key(self, user: str) -> Creds:
        k = self.client("iam").create_access_key(UserName=user)["AccessKey"]
        return Creds(user, k["AccessKeyId"], k["SecretAccessKey"])

    def create_user(self, user: str, policy=None, policy_name: str = "inline") -> Creds:
        """A fresh user (an old one of that name is deleted first) with ``policy`` inline, and an access key."""
        self.delete_user(user)
        iam = self.client("iam")
        iam.create_user(UserName=user)
        if policy is not None:
            doc = policy if isinstance(policy, str) else json.dumps(policy)
            iam.put_user_policy(UserName=user, PolicyName=policy_name, PolicyDocument=doc)
        return self.new_key(user)

    def delete_user(self, user: str) -> bool:
        iam = self.client("iam")
        try:
            keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        except iam.exceptions.NoSuchEntityException:
            return False
        for k in keys:
            iam.delete_access_key(UserName=user, AccessKeyId=k["AccessKeyId"])
        for p in iam.list_user_policies(UserName=user)["PolicyNames"]:
            iam.delete_user_policy(UserName=user, PolicyName=p)
        iam.delete_user(UserName=user)
        return True

    def key_works(self, creds: Creds) -> Outcome:
        """Does this key still authenticate? (``sts:GetCallerIdentity`` is allowed to every valid key.)"""
        return try_call(self.client("sts", creds).get_caller_identity)


def running(name: str) -> EnforcingIAM | None:
    """The enforcing emulator ``name`` if it runs and answers, else None."""
    path = _state_file(name)
    if procs.running(name) is None or not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
        e = EnforcingIAM(name, d["url"], Creds(d["user"], d["key_id"], d["secret"]))
    except (OSError, ValueError, KeyError):
        return None
    return e if e.alive() else None


def start(name: str, admin_user: str = "admin", quiet: bool = False) -> EnforcingIAM:
    """Start (or restart: its memory is wiped) an enforcing moto called ``name`` and bootstrap its administrator."""
    import boto3
    from botocore.config import Config

    lab = Lab.from_env()
    py = venvs.ensure_venv(lab, "moto")
    port = net.free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_CALLS)
    procs.start(
        name,
        [py, "-m", "moto.server", "-H", "127.0.0.1", "-p", port],
        python=False,
        env=env,
        ready_url=f"{url}/moto-api/data.json",
        timeout=60,
    )
    # The first three calls need no signature: they make the administrator.
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
        config=Config(retries={"max_attempts": 1}),
    )
    iam.create_user(UserName=admin_user)
    iam.put_user_policy(UserName=admin_user, PolicyName="administrator", PolicyDocument=json.dumps(ADMIN_POLICY))
    k = iam.create_access_key(UserName=admin_user)["AccessKey"]
    admin = Creds(admin_user, k["AccessKeyId"], k["SecretAccessKey"])
    path = _state_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "user": admin.user, "key_id": admin.key_id, "secret": admin.secret}, fh)
    if not quiet:
        print(
            f"enforcing IAM emulator {name}: {url} (moto, INITIAL_NO_AUTH_ACTION_COUNT={BOOTSTRAP_CALLS}), "
            f"administrator {admin_user!r} ready in {time.monotonic() - t0:.1f} s"
        )
    return EnforcingIAM(name, url, admin)
