"""What lesson 02's checks read, besides the emulator: a working directory's files (local state, backend
settings, selected workspace, installed modules), state documents, a fresh read-only plan, and the
policy for skipped scanner findings. Every reader is tolerant: a missing or broken file reads as
"nothing", so a check can say what is missing instead of crashing."""

from __future__ import annotations

import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from .. import aws
from ..terraform import Terraform, TerraformError
from .workdirs import STATE_BUCKET, read_state, state_key


# ------------------------------------------------------------------ a working directory's files
def _json(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def local_state(wd: Path) -> dict | None:
    """The local ``terraform.tfstate`` (the state before a backend is configured), or None."""
    return _json(Path(wd) / "terraform.tfstate")


def backend_settings(wd: Path) -> dict:
    """``{"type": "s3", "config": {...}}`` as ``terraform init`` recorded them, or ``{}`` (local state)."""
    data = _json(Path(wd) / ".terraform" / "terraform.tfstate") or {}
    backend = data.get("backend")
    if not isinstance(backend, dict):
        return {}
    return {"type": backend.get("type"), "config": backend.get("config") or {}}


def selected_workspace(wd: Path) -> str:
    try:
        return (Path(wd) / ".terraform" / "environment").read_text().strip() or "default"
    except OSError:
        return "default"


def module_sources(wd: Path) -> dict[str, str]:
    """``{module key: source}`` of the modules ``terraform init`` installed (``.terraform/modules/modules.json``)."""
    data = _json(Path(wd) / ".terraform" / "modules" / "modules.json") or {}
    return {m.get("Key", ""): m.get("Source", "") for m in data.get("Modules") or [] if m.get("Key")}


# ------------------------------------------------------------------ state documents
def instances(state: dict | None, rtype: str) -> list[tuple[str, dict]]:
    """``[(address, attributes)]`` of the managed resources of one type in a state document."""
    out = []
    for r in (state or {}).get("resources") or []:
        if not isinstance(r, dict) or r.get("mode") != "managed" or r.get("type") != rtype:
            continue
        base = (r["module"] + "." if r.get("module") else "") + f"{r.get('type')}.{r.get('name')}"
        for inst in r.get("instances") or []:
            key = inst.get("index_key") if isinstance(inst, dict) else None
            addr = base + (f"[{json.dumps(key)}]" if key is not None else "")
            out.append((addr, (inst.get("attributes") if isinstance(inst, dict) else None) or {}))
    return out


def find_bucket(state: dict | None, name: str) -> str | None:
    """The address of the ``aws_s3_bucket`` whose bucket is ``name`` in a state document, or None."""
    return next((a for a, attrs in instances(state, "aws_s3_bucket") if attrs.get("bucket") == name), None)


def parameters(state: dict | None) -> dict[str, str]:
    """``{parameter name: value}`` of the ``aws_ssm_parameter`` resources in a state document."""
    out = {}
    for _, attrs in instances(state, "aws_ssm_parameter"):
        value = attrs.get("insecure_value")
        out[attrs.get("name", "?")] = value if value not in (None, "") else attrs.get("value")
    return out


# ------------------------------------------------------------------ a fresh plan
def plan_status(wd: Path, workspace: str | None = None, timeout: float = 120.0) -> tuple[int | None, str]:
    """A fresh, read-only plan in ``wd`` (refresh on, no lock, no plan file, not recorded as the learner's run).

    Returns ``(0, "")`` when the real resources match the code, ``(2, "what it would change")`` when they
    do not, and ``(None, why)`` when Terraform could not plan at all."""
    env = {"TF_WORKSPACE": workspace} if workspace else None
    tf = Terraform(wd, env=env, quiet=True, timeout=timeout, record=False)
    try:
        res = tf.plan(detailed_exitcode=True, out=None, show=False, lock=False)
    except TerraformError as e:
        return None, " ".join(str(e).split())[:300]
    changes = [" ".join(str(c).split()) for c in res.plan.changes if c.action not in ("no-op", "read")]
    more = f" (and {len(changes) - 4} more)" if len(changes) > 4 else ""
    return res.exit_code, "; ".join(changes[:4]) + more


def plan_statuses(wd: Path, workspaces: list[str]) -> dict[str, tuple[int | None, str]]:
    """:func:`plan_status` in several workspaces side by side (each reads its own state)."""
    with ThreadPoolExecutor(max_workers=max(1, len(workspaces))) as pool:
        results = list(pool.map(lambda ws: plan_status(wd, ws), workspaces))
    return dict(zip(workspaces, results, strict=True))


# ------------------------------------------------------------------ expectations shared by the checks
def state_of(wd: Path) -> tuple[dict | None, str]:
    """The state a working directory really uses (local file, or its S3 backend), and where that is."""
    backend = backend_settings(wd)
    if backend.get("type") == "s3":
        cfg = backend["config"]
        ws = selected_workspace(wd)
        key = state_key(str(cfg.get("key") or ""), ws)
        try:
            return read_state(str(cfg.get("key") or ""), ws, str(cfg.get("bucket") or STATE_BUCKET)), (
                f"s3://{cfg.get('bucket')}/{key}"
            )
        except (ValueError, ClientError, BotoCoreError):
            return None, f"s3://{cfg.get('bucket')}/{key}"
    return local_state(wd), f"{wd.name}/terraform.tfstate"


def safe_state(key: str, workspace: str = "default") -> dict | None:
    try:
        return read_state(key, workspace)
    except (ValueError, ClientError, BotoCoreError):
        return None


def expect_secure(r, rep: dict) -> None:
    """The guarantees of the team's secure-bucket module, read from the real bucket."""
    r.expect(rep["versioning"] == "Enabled", "versioning is on", f"versioning is {rep['versioning']}, not Enabled")
    r.expect(
        rep["encryption"] == "aws:kms",
        "objects are encrypted with KMS by default",
        f"default encryption is {rep['encryption'] or 'off'}, not aws:kms",
    )
    r.expect(
        rep["public_access_blocked"],
        "public access is blocked (all four settings)",
        "the public access block is missing or incomplete",
    )


def expect_old_versions_expire(r, rules: list[dict], days: int) -> None:
    enabled = [x for x in rules if x["enabled"]]
    whole = [x for x in enabled if x["noncurrent_days"] and not x["prefix"]]
    if any(x["noncurrent_days"] == days for x in whole):
        r.expect(True, f"overwritten (noncurrent) versions are kept {days} days, then expire", "")
    elif whole:
        found = ", ".join(str(x["noncurrent_days"]) for x in whole)
        r.expect(False, "", f"old versions expire after {found} days, not {days} (the unit is days)")
    elif any(x["noncurrent_days"] for x in enabled):
        scope = next(x["prefix"] for x in enabled if x["noncurrent_days"])
        r.expect(False, "", f"the rule that expires old versions covers only {scope!r}: the rest are kept forever")
    elif any(x["noncurrent_days"] for x in rules):
        r.expect(False, "", "the rule that expires old versions is Disabled")
    else:
        r.expect(
            False, "", "no lifecycle rule expires old (noncurrent) versions: they would be kept, and billed, forever"
        )
    current = sorted({x["expiration_days"] for x in enabled if x["expiration_days"]})
    r.expect(
        not current,
        "no rule deletes current objects",
        f"a lifecycle rule deletes CURRENT objects after {current[0] if current else '?'} days: the live data would "
        "vanish; only old versions should expire",
    )


def expect_versions_kept(r, bucket: str) -> None:
    """Versioning and encryption for real: write the same new key twice, expect two encrypted versions."""
    s3 = aws.client("s3")
    key = f"check/{secrets.token_hex(6)}.txt"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"v1")
        put = s3.put_object(Bucket=bucket, Key=key, Body=b"v2")
        versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": key, "VersionId": v["VersionId"]} for v in versions], "Quiet": True},
        )
    except ClientError as e:
        r.expect(False, "", f"writing a test object into {bucket} failed: {e}")
        return
    r.expect(
        len(versions) == 2,
        "overwriting an object keeps the old version (tried)",
        f"after two writes of one key the bucket holds {len(versions)} version(s), not 2",
    )
    r.expect(
        put.get("ServerSideEncryption") == "aws:kms",
        "a new object is stored KMS-encrypted (tried)",
        f"a new object was stored with encryption {put.get('ServerSideEncryption')!r}",
    )


def expect_plan_empty(r, wd: Path, where: str, workspace: str | None = None) -> None:
    code, what = plan_status(wd, workspace)
    say_plan(r, code, what, where)


def say_plan(r, code, what: str, where: str) -> None:
    if code is None:
        r.expect(False, "", f"Terraform could not plan {where}: {what}")
    else:
        r.expect(
            code == 0,
            f"a fresh plan {where} shows no changes: code, state and real resources agree",
            f"a fresh plan {where} still wants changes ({what}): apply the code as it is now",
        )


# ------------------------------------------------------------------ skipped scanner findings
# A finding may be skipped only where the control cannot be met for this bucket or does not apply; the
# others (versioning, KMS encryption, public access block, lifecycle ...) are met by a few lines of code,
# in the lab as on AWS, so they must be fixed. Each entry: what the control asks, and why it may not apply.
MAY_SKIP = {
    "CKV_AWS_18": "access logging: needs a separate log bucket (whose own logs would need another one)",
    "CKV_AWS_144": "cross-region replication: needs a bucket in a second region and doubles the storage bill",
    "CKV2_AWS_62": "event notifications: only useful when something consumes the events",
}
_EMPTY = re.compile(
    r"^(n/?a|none|no comment provided|not needed|not required|not applicable|not relevant|false positive|"
    r"ignore[d]?|skip(ped)?|ok|fine|because|test(ing)?|todo|tbd|fixme|wip|x+|\W*)$",
    re.I,
)
_LATER = re.compile(r"\b(todo|tbd|fixme|wip|later|for now|temporar(y|ily)|quick ?fix|hack)\b", re.I)


def reason_problem(reason: str | None) -> str | None:
    """Why a skip reason is no reason (None when a reviewer could judge it)."""
    text = (reason or "").strip().strip(".!")
    if _EMPTY.match(text):
        return f"no reason given ({text or 'empty'!r})"
    if _LATER.search(text):
        return f"{text!r} promises a fix later: that is a to-do, not a reason"
    if len(re.findall(r"[A-Za-z]{2,}", text)) < 4:
        return f"{text!r} is too short to judge: say why the control cannot be met or does not apply"
    return None


def skip_problems(skipped: list) -> list[str]:
    """What is wrong with the skips of a scan report (``[(check id, resource, reason)]``)."""
    problems = []
    for item in skipped or []:
        try:
            cid, resource, reason = item
        except (TypeError, ValueError):
            continue
        if cid not in MAY_SKIP:
            problems.append(f"{cid} on {resource} is skipped, but this control can be met here: fix it instead")
            continue
        why = reason_problem(reason)
        if why:
            problems.append(f"{cid} on {resource}: {why}")
    return problems


# ------------------------------------------------------------------ a module's documentation
_BLOCK = re.compile(r'^(variable|output)\s+"([^"]+)"\s*\{(.*?)^\}', re.M | re.S)


def module_inputs(module_dir: Path) -> list[dict]:
    """The inputs and outputs of a module, read from its ``.tf`` files: kind, name, type, default, description."""
    rows = []
    for f in sorted(Path(module_dir).glob("*.tf")):
        for kind, name, body in _BLOCK.findall(f.read_text()):
            desc = re.search(r'^\s*description\s*=\s*"((?:[^"\\]|\\.)*)"', body, re.M)
            rtype = re.search(r"^\s*type\s*=\s*(.+)$", body, re.M)
            default = re.search(r"^\s*default\s*=\s*(.+)$", body, re.M)
            rows.append(
                {
                    "kind": "input" if kind == "variable" else "output",
                    "name": name,
                    "type": rtype.group(1).strip() if rtype else "",
                    "default": default.group(1).strip() if default else None,
                    "description": desc.group(1) if desc else "",
                }
            )
    return rows
