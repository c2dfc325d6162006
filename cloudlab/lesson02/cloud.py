"""Lesson 02's cloud side, in plain boto3 (each call printed as you could type it): the real settings of a
bucket, the state bucket's bootstrap, a module's documentation, CloudFormation, and the drift scenario of
exercise 4."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from .. import aws, cleanup
from ..lab import ROOT
from ..tables import Table, show
from ..terraform import Terraform
from .workdirs import EX_DRIFT_DIR, STATE_BUCKET, TEMPLATES, workdir


# ------------------------------------------------------------------ the boto3 calls, shown
def _call(client, op: str, shown: dict | None = None, quiet: bool = False, **kwargs):
    """Call ``client.<op>(**kwargs)`` and print it first as Python you could type yourself
    (``shown`` replaces long arguments, e.g. a template body, by a short description)."""
    if not quiet:
        args = ", ".join(f"{k}={(shown or {}).get(k, repr(v))}" for k, v in kwargs.items())
        print(f"{client.meta.service_model.service_name}.{op}({args})", flush=True)
    return getattr(client, op)(**kwargs)


def _rel(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------ inspection
def _lifecycle_rules(s3, name: str) -> list[dict]:
    """The bucket's lifecycle rules in a flat form: id, enabled, prefix (None = the whole bucket),
    noncurrent_days, expiration_days (of CURRENT objects), abort_days."""
    try:
        raw = s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", [])
    except s3.exceptions.ClientError:
        return []
    rules = []
    for r in raw:
        flt = r.get("Filter") or {}
        scoped = bool(flt.get("Tag") or flt.get("And") or "ObjectSizeGreaterThan" in flt or "ObjectSizeLessThan" in flt)
        prefix = flt.get("Prefix", r.get("Prefix")) or None
        rules.append(
            {
                "id": r.get("ID", ""),
                "enabled": r.get("Status") == "Enabled",
                "prefix": prefix if prefix or not scoped else "(tag or size filter)",
                "noncurrent_days": (r.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
                "expiration_days": (r.get("Expiration") or {}).get("Days"),
                "abort_days": (r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation"),
            }
        )
    return rules


def bucket_report(name: str) -> dict:
    """The real settings of a bucket in the emulator (what a check or an auditor would look at).

    ``exists`` False when there is no such bucket; every other field then has its empty value."""
    s3 = aws.client("s3")
    rep: dict = {
        "bucket": name,
        "exists": False,
        "versioning": "Off",
        "encryption": None,
        "rules": [],
        "noncurrent_days": [],
        "public_access_blocked": False,
        "tags": {},
    }
    try:
        s3.head_bucket(Bucket=name)
    except s3.exceptions.ClientError:
        return rep
    rep["exists"] = True
    try:
        rep["versioning"] = s3.get_bucket_versioning(Bucket=name).get("Status", "Off")
    except s3.exceptions.ClientError:
        pass
    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        rep["encryption"] = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    except (s3.exceptions.ClientError, KeyError, IndexError):
        pass
    rep["rules"] = _lifecycle_rules(s3, name)
    rep["noncurrent_days"] = [r["noncurrent_days"] for r in rep["rules"] if r["enabled"] and r["noncurrent_days"]]
    try:
        pab = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        rep["public_access_blocked"] = len(pab) == 4 and all(pab.values())
    except s3.exceptions.ClientError:
        pass
    try:
        rep["tags"] = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    except s3.exceptions.ClientError:
        pass
    return rep


def module_doc(name: str = "secure-bucket") -> None:
    """Print a module's inputs and outputs (from its .tf files), as its README would list them."""
    from .evidence import module_inputs

    rows = module_inputs(TEMPLATES / "modules" / name)
    print(f'module "{name}" (source = "../modules/{name}")')
    inputs = [
        (x["name"], x["type"], "required" if x["default"] is None else f"default {x['default']}", x["description"])
        for x in rows
        if x["kind"] == "input"
    ]
    show(Table(("name", "type", "required / default", "description"), inputs, title="inputs:", indent=2))
    outputs = [(x["name"], x["description"]) for x in rows if x["kind"] == "output"]
    show(Table(("name", "description"), outputs, title="outputs:", indent=2))


def show_buckets(names) -> None:
    """A small table of the real bucket settings."""
    rows = []
    for r in (bucket_report(n) for n in names):
        if not r["exists"]:
            rows.append((r["bucket"], "(no such bucket)", "", "", "", ""))
            continue
        days = ", ".join(f"{d} d" for d in r["noncurrent_days"]) or "forever"
        tags = ", ".join(f"{k}={v}" for k, v in sorted(r["tags"].items()))
        private = "yes" if r["public_access_blocked"] else "NO"
        rows.append((r["bucket"], r["versioning"], str(r["encryption"]), days, private, tags))
    show(Table(("bucket", "versioning", "encryption", "old versions kept", "private", "tags"), rows))


def bootstrap_state_bucket(name: str = STATE_BUCKET, quiet: bool = False) -> str:
    """Create the bucket that holds Terraform state (once, by hand: Terraform cannot store its state
    in a bucket it has not created yet). Versioned, so an older state can always be restored."""
    s3 = aws.client("s3")
    try:
        _call(s3, "create_bucket", quiet=quiet, Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    _call(s3, "put_bucket_versioning", quiet=quiet, Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    _call(
        s3,
        "put_bucket_encryption",
        quiet=quiet,
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    _call(
        s3,
        "put_public_access_block",
        quiet=quiet,
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    if not quiet:
        print(f"state bucket s3://{name}: versioned, encrypted, private")
    return name


APP_KMS_ALIAS = "alias/l02-app-secrets"


def bootstrap_secrets_key(alias: str = APP_KMS_ALIAS, quiet: bool = False) -> str:
    """The team's customer-managed KMS key for its secrets, made once (like the state bucket) and found by its alias:
    rotated every year, its policy the account's default. Returns its ARN; prints the boto3 calls it makes."""
    kms = aws.client("kms")
    try:
        meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
        if meta.get("KeyState") == "Enabled":
            if not quiet:
                print(f"{alias} exists: {meta['Arn']}")
            return meta["Arn"]
        kms.delete_alias(AliasName=alias)  # the key behind it was disabled or scheduled for deletion
    except kms.exceptions.NotFoundException:
        pass
    key = _call(
        kms,
        "create_key",
        quiet=quiet,
        Description="l02: the app's secrets",
        Tags=[{"TagKey": "lesson", "TagValue": "02"}],
    )["KeyMetadata"]
    _call(kms, "enable_key_rotation", quiet=quiet, KeyId=key["KeyId"])
    _call(kms, "create_alias", quiet=quiet, AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"]


# ------------------------------------------------------------------ CloudFormation
def cfn_deploy(stack: str, template: Path, params: dict, timeout: float = 60.0) -> dict:
    """Create (or update) a CloudFormation stack and wait; returns its outputs."""
    cf = aws.client("cloudformation")
    body = Path(template).read_text()
    p = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params.items()]
    shown = {"TemplateBody": f"open({_rel(template)!r}).read()"}
    t0 = time.monotonic()
    try:
        _call(cf, "create_stack", shown, StackName=stack, TemplateBody=body, Parameters=p)
        waiter = "stack_create_complete"
    except cf.exceptions.AlreadyExistsException:
        try:
            _call(cf, "update_stack", shown, StackName=stack, TemplateBody=body, Parameters=p)
        except cf.exceptions.ClientError as e:
            if "No updates" not in str(e):
                raise
        waiter = "stack_update_complete"
    print(f'cloudformation.get_waiter("{waiter}").wait(StackName={stack!r})')
    cf.get_waiter(waiter).wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": int(timeout)})
    s = cf.describe_stacks(StackName=stack)["Stacks"][0]
    print(f"stack {stack}: {s['StackStatus']} in {time.monotonic() - t0:.1f} s")
    return {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}


def cfn_preview(stack: str, template: Path, params: dict) -> list[dict]:
    """CloudFormation's plan: a change set, described and then deleted (nothing is executed)."""
    cf = aws.client("cloudformation")
    name = f"preview-{secrets.token_hex(3)}"
    _call(
        cf,
        "create_change_set",
        {"TemplateBody": f"open({_rel(template)!r}).read()"},
        StackName=stack,
        ChangeSetName=name,
        TemplateBody=Path(template).read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params.items()],
    )
    print(f"cloudformation.describe_change_set(StackName={stack!r}, ChangeSetName={name!r})")
    deadline = time.monotonic() + 20
    while True:
        d = cf.describe_change_set(StackName=stack, ChangeSetName=name)
        if d["Status"] in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    changes = [c["ResourceChange"] for c in d.get("Changes", [])]
    for c in changes:
        print(
            f"  {c['Action']:<7} {c['LogicalResourceId']} ({c['ResourceType']}), "
            f"replacement: {c.get('Replacement', '-')}"
        )
    if not changes:
        print(f"  no changes ({d.get('StatusReason', '')})")
    cf.delete_change_set(StackName=stack, ChangeSetName=name)
    return changes


# ------------------------------------------------------------------ exercise helpers
DRIFT_BUCKET = "l02-loop-notes"
DRIFT_PARAM = "/l02/loop/greeting"
DRIFT_NOTE = "notes/keep-me.txt"


def drift_scenario(quiet: bool = True) -> Terraform:
    """For exercise 4: apply the 'loop' stack in its own directory, store a note in its bucket, then change
    the stack by hand (as if someone clicked in the console): the bucket's tags and the parameter's value.
    Returns a runner for that directory (it prints what it runs)."""
    s3, ssm = aws.client("s3"), aws.client("ssm")
    # Run again, it starts over: what an earlier run made is gone with its (wiped) working directory's state.
    if bucket_report(DRIFT_BUCKET)["exists"]:
        cleanup.empty_and_delete_bucket(s3, DRIFT_BUCKET)
    try:
        ssm.delete_parameter(Name=DRIFT_PARAM)
    except ssm.exceptions.ParameterNotFound:
        pass
    tf = workdir(EX_DRIFT_DIR, template="loop", quiet=quiet)
    tf.init()
    tf.apply()
    token = secrets.token_hex(4)
    s3.put_object(Bucket=DRIFT_BUCKET, Key=DRIFT_NOTE, Body=f"written before the drift ({token})\n".encode())
    print(f"Terraform applied the loop stack; a note was stored at s3://{DRIFT_BUCKET}/{DRIFT_NOTE}.")
    print("Then someone, in the console (these are the calls it made):")
    tags = s3.get_bucket_tagging(Bucket=DRIFT_BUCKET)["TagSet"]
    new_tags = [t for t in tags if t["Key"] != "owner"] + [{"Key": "changed-by", "Value": f"console-{token}"}]
    _call(s3, "put_bucket_tagging", Bucket=DRIFT_BUCKET, Tagging={"TagSet": new_tags})
    _call(ssm, "put_parameter", Name=DRIFT_PARAM, Value=f"hotfix {token}", Type="String", Overwrite=True)
    (tf.workdir / ".drift-token").write_text(f"{token} {time.time()}\n")
    print("Terraform does not know yet.")
    return Terraform(tf.workdir)
