"""Lesson 07's secret store: a customer-managed KMS key, Secrets Manager, SSM SecureString (LocalStack).

What LocalStack does and does not do here (measured with 4.14): it stores the KMS key a secret or a
SecureString names and reports it back, but does not encrypt them with it: disabling the key does
not stop ``GetSecretValue`` or ``GetParameter(WithDecryption=True)`` there, while on AWS both fail
(Secrets Manager answers ``DecryptionFailure``: it cannot decrypt the secret with the KMS key). KMS itself
is real enough: Encrypt, Decrypt and GenerateDataKey work and a disabled key refuses them
(``DisabledException``), which is how the lesson shows the failure; ``EnableKeyRotation`` takes a
``RotationPeriodInDays`` (90 to 2,560) and ``RotateKeyOnDemand`` answers, ``ListKeyRotations`` does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets

from .. import aws
from ..tables import Table
from .answers import first_line

KEY_ALIAS = "alias/l07-orders"
SECRET_NAME = "l07/orders/db"
PARAM_NAME = "/l07/orders/db-password"


class SecretStoreError(RuntimeError):
    """A secret, parameter or key the lesson needs is missing or unusable; the message says what to do."""

    def _render_traceback_(self):
        return [f"\x1b[31mSecretStoreError\x1b[0m: {self}"]


def kms():
    return aws.client("kms")


def key_for_alias(alias: str) -> str | None:
    """The key id an alias points to, or None."""
    for page in kms().get_paginator("list_aliases").paginate():
        for a in page["Aliases"]:
            if a["AliasName"] == alias and a.get("TargetKeyId"):
                return a["TargetKeyId"]
    return None


def ensure_key(alias: str = KEY_ALIAS, description: str = "lesson 07: orders secrets") -> str:
    """A customer-managed symmetric key behind ``alias``, with automatic rotation on (every 365 days, KMS's
    default; ``RotationPeriodInDays`` sets 90 to 2,560); made once, then reused."""
    k = kms()
    kid = key_for_alias(alias)
    if kid is not None and k.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] in ("Enabled", "Disabled"):
        return kid
    if kid is not None:  # the alias points at a key pending deletion: point it at a new one
        k.delete_alias(AliasName=alias)
    kid = k.create_key(Description=description, Tags=[{"TagKey": "lesson", "TagValue": "07"}])["KeyMetadata"]["KeyId"]
    k.enable_key_rotation(KeyId=kid)
    k.create_alias(AliasName=alias, TargetKeyId=kid)
    return kid


def key_summary(key_id: str) -> dict:
    k = kms()
    meta = k.describe_key(KeyId=key_id)["KeyMetadata"]
    rot = k.get_key_rotation_status(KeyId=meta["KeyId"])
    return {
        "key_id": meta["KeyId"],
        "manager": meta["KeyManager"],
        "state": meta["KeyState"],
        "spec": meta.get("KeySpec"),
        "rotation": rot.get("KeyRotationEnabled"),
        "rotation_days": rot.get("RotationPeriodInDays"),
    }


def generate_password(length: int = 24) -> str:
    """A random password without quotes or backslashes (what GetRandomPassword gives, made locally)."""
    return secrets.token_urlsafe(length)[:length]


def put_secret(name: str, value: dict, key_id: str, description: str = "") -> str:
    """Create the secret (or add a new AWSCURRENT version); returns its ARN."""
    sm = aws.client("secretsmanager")
    body = json.dumps(value)
    try:
        return sm.create_secret(Name=name, SecretString=body, KmsKeyId=key_id, Description=description)["ARN"]
    except sm.exceptions.ResourceExistsException:
        sm.update_secret(SecretId=name, KmsKeyId=key_id)
        sm.put_secret_value(SecretId=name, SecretString=body)
        return sm.describe_secret(SecretId=name)["ARN"]


def fetch(secret_id: str, stage: str = "AWSCURRENT") -> dict:
    """The secret's JSON value (one version stage), or a plain-words error when it does not exist."""
    sm = aws.client("secretsmanager")
    try:
        raw = sm.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        raise SecretStoreError(
            f"there is no secret {secret_id!r} (with a version labelled {stage}) in Secrets Manager. "
            "Run the cell that creates it, or list them: cloudlab.client('secretsmanager').list_secrets()"
        ) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise SecretStoreError(f"the secret {secret_id!r} is not JSON; store json.dumps({{...}})") from None


def stages(secret_id: str) -> dict[str, list[str]]:
    """{version id: [stage labels]} of a secret."""
    return aws.client("secretsmanager").describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})


def stage_table(secret_id: str) -> str:
    sm = aws.client("secretsmanager")
    rows = []
    for vid, labels in stages(secret_id).items():
        value = json.loads(sm.get_secret_value(SecretId=secret_id, VersionId=vid)["SecretString"])
        pw = value.get("password", "") if isinstance(value, dict) else ""
        print_ = hashlib.sha256(pw.encode()).hexdigest()[:8]
        rows.append((f"{vid[:8]}...", ", ".join(sorted(labels)), print_))
    return Table(("version", "stage labels", "password fingerprint"), rows, indent=2).text()


class RotationFailed(SecretStoreError):
    """A step of a rotation raised: which step, what it said, and what Secrets Manager would do next."""


def _resumable(secret_id: str) -> str | None:
    """The version of a rotation that did not finish (labelled AWSPENDING, not AWSCURRENT) when its value is a
    usable login (a JSON object with the current username); a stale one is unlabelled and None returned."""
    sm = aws.client("secretsmanager")
    try:
        current = fetch(secret_id)
    except SecretStoreError:  # no such secret (yet): nothing to resume; the handler will say what it makes of it
        return None
    for vid, labels in stages(secret_id).items():
        if "AWSPENDING" not in labels or "AWSCURRENT" in labels:
            continue
        try:
            value = json.loads(sm.get_secret_value(SecretId=secret_id, VersionId=vid)["SecretString"])
        except (ValueError, KeyError, sm.exceptions.ResourceNotFoundException):
            value = None
        if isinstance(value, dict) and value.get("username") == current.get("username"):
            return vid
        sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=vid)
        print(f"a rotation that did not finish left an unusable AWSPENDING version ({vid[:8]}...): label removed")
    return None


def rotate_now(secret_id: str, handler) -> str:
    """Play Secrets Manager: call a rotation function's four steps with one token, as ``RotateSecret`` would
    through Lambda, then clear AWSPENDING. Returns the new version's id.

    Like Secrets Manager, a rotation that did not finish is reattempted with the same token (its AWSPENDING
    version is kept). A step that raises stops the rotation with one line (:class:`RotationFailed`) saying which
    step and what it raised; a blank function's ``NotImplementedError`` passes through unchanged."""
    import uuid

    token = _resumable(secret_id)
    if token:
        print(f"a previous rotation did not finish: reattempted with the same token ({token[:8]}...)")
    token = token or str(uuid.uuid4())
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        print(f"{step:<13} ...", end=" ", flush=True)
        try:
            handler({"SecretId": secret_id, "ClientRequestToken": token, "Step": step}, None)
        except NotImplementedError:
            print("not written yet")
            raise
        except Exception as err:  # noqa: BLE001  (the learner's function: one line, not its traceback)
            print("failed")
            raise RotationFailed(
                f"{step} raised {first_line(err)}. The rotation stopped there (AWSCURRENT moves only in "
                "finishSecret); running it again reattempts it with the same token, as Secrets Manager does. "
                "The check below drives each step and says which one is wrong."
            ) from None
        print("done")
    sm = aws.client("secretsmanager")
    if "AWSPENDING" in stages(secret_id).get(token, []):
        sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    return token


# ------------------------------------------------------------------ envelope encryption
def envelope_encrypt(key_id: str, plaintext: bytes) -> dict:
    """Encrypt locally with a fresh data key; only the small data key goes to KMS (wrapped by the CMK)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dk = kms().generate_data_key(KeyId=key_id, KeySpec="AES_256")
    nonce = os.urandom(12)
    blob = AESGCM(dk["Plaintext"]).encrypt(nonce, plaintext, None)
    return {"encrypted_key": dk["CiphertextBlob"], "nonce": nonce, "ciphertext": blob}


def envelope_decrypt(envelope: dict) -> bytes:
    """Ask KMS to unwrap the data key (needs kms:Decrypt on the CMK, and the key enabled), then decrypt locally."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = kms().decrypt(CiphertextBlob=envelope["encrypted_key"])["Plaintext"]
    return AESGCM(key).decrypt(envelope["nonce"], envelope["ciphertext"], None)


# ------------------------------------------------------------------ reset
def delete_all(prefix_secret: str = "l07", prefix_param: str = "/l07/", alias_prefix: str = "alias/l07-") -> dict:
    """Lesson 07's secrets, parameters and keys (keys cannot be deleted at once: 7-day schedule, as on AWS)."""
    removed: dict[str, list[str]] = {"secrets": [], "parameters": [], "kms keys": []}
    sm = aws.client("secretsmanager")
    for page in sm.get_paginator("list_secrets").paginate():
        for s in page["SecretList"]:
            if s["Name"].startswith(prefix_secret):
                sm.delete_secret(SecretId=s["ARN"], ForceDeleteWithoutRecovery=True)
                removed["secrets"].append(s["Name"])
    ssm = aws.client("ssm")
    names = [
        p["Name"]
        for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [prefix_param]}]
        )
        for p in page["Parameters"]
    ]
    for i in range(0, len(names), 10):
        ssm.delete_parameters(Names=names[i : i + 10])
    removed["parameters"] = names
    k = kms()
    for page in k.get_paginator("list_aliases").paginate():
        for a in page["Aliases"]:
            if a["AliasName"].startswith(alias_prefix):
                k.delete_alias(AliasName=a["AliasName"])
                if a.get("TargetKeyId"):
                    try:
                        k.schedule_key_deletion(KeyId=a["TargetKeyId"], PendingWindowInDays=7)
                    except k.exceptions.KMSInvalidStateException:
                        pass
                removed["kms keys"].append(a["AliasName"])
    return removed
