"""Lesson 02's Terraform side: working directories, remote state, workspaces side by side, the lock demo,
and the lesson's part of the reset."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

from .. import aws, cleanup, net, procs
from ..lab import ROOT
from ..terraform import Terraform, TerraformError, backend_config, copy_template, tf_root

LESSON = "02"
TEMPLATES = ROOT / "lessons" / "02_infrastructure-as-code"
STATE_BUCKET = "l02-tfstate"
PARAM_PREFIX = "/l02/"
LOCK_HOLDER = "l02-lock-holder"
EX_REPORTS_BUCKET = "l02-ex-reports"
EX_STATE_KEY = "exercise/terraform.tfstate"
EX_ENVS_KEY = "envs/terraform.tfstate"
EX_SIZES = {"staging": "t3.small", "prod": "m5.large"}
EX_REPORTS_DAYS = 30
EX_REPORTS_TEAM = "data"
EX_UPLOADS_BUCKET = "l02-scan-uploads"
# The exercises' working directories (under workroot()).
EX_MODULE_DIR, EX_ENVS_DIR, EX_DRIFT_DIR, EX_SCAN_DIR = "ex-module", "ex-envs", "ex-drift", "ex-scan"


# ------------------------------------------------------------------ working directories
def workroot() -> Path:
    return tf_root() / "l02"


def workdir(name: str, template: str | None = None, fresh: bool = True, **kwargs) -> Terraform:
    """A Terraform working directory ``<state>/terraform/l02/<name>``, copied from a lesson template.

    ``template=None`` copies the template of the same name (if there is one); ``fresh`` wipes the
    directory first (its local state too). ``fresh=False`` keeps what is there (your files, the state)
    and adds only missing template files: a cell that makes the directory can then run twice and lose
    nothing. The shared modules are copied next to it as ``../modules``.
    """
    root = workroot()
    # Overwrite, do not wipe: another kernel (the lesson and the exercises open together) may be using it.
    copy_template(TEMPLATES / "modules", root / "modules", fresh=False)
    src = TEMPLATES / (template or name)
    dest = root / name
    if src.is_dir():
        copy_template(src, dest, fresh=fresh, overwrite=fresh)
    elif fresh and dest.exists():
        shutil.rmtree(dest)
    return Terraform(dest, **kwargs)


def remote(name: str, key: str | None = None, template: str | None = None, fresh: bool = True, **kwargs) -> Terraform:
    """A working directory whose state lives in the lab's state bucket (``init`` done)."""
    tf = workdir(name, template=template, fresh=fresh, **kwargs)
    tf.init(backend_config=backend_config(key or f"{name}/terraform.tfstate", STATE_BUCKET))
    return tf


def state_key(key: str, workspace: str = "default") -> str:
    """Where the S3 backend keeps a workspace's state: non-default workspaces live under env:/<name>/."""
    return key if workspace == "default" else f"env:/{workspace}/{key}"


def read_state(key: str, workspace: str = "default", bucket: str = STATE_BUCKET) -> dict | None:
    """The state document the S3 backend stored, or None when there is none."""
    s3 = aws.client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=state_key(key, workspace))["Body"].read()
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
        return None
    except s3.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
            return None
        raise
    return json.loads(body)


def state_resources(state: dict | None) -> list[str]:
    """Addresses of the resources in a state document (module.x.aws_s3_bucket.this ...)."""
    out = []
    for r in (state or {}).get("resources", []):
        if r.get("mode") != "managed":
            continue
        base = (r.get("module") + "." if r.get("module") else "") + f"{r['type']}.{r['name']}"
        out.append(base)
    return out


def where_in_state(state: dict | None, needle: str) -> list[str]:
    """The resource attributes in which ``needle`` appears in plain text."""
    hits = []
    for r in (state or {}).get("resources", []):
        for inst in r.get("instances", []):
            for k, v in (inst.get("attributes") or {}).items():
                if needle and needle in json.dumps(v):
                    hits.append(f"{r['type']}.{r['name']}.{k}")
    return hits


def back_to_local_state(tf: Terraform, bucket: str = EX_REPORTS_BUCKET) -> str:
    """Put a working directory back where exercise 1 left it: its state a local file, no backend recorded.

    So the task of exercise 2 can run again after any attempt (a backend with the wrong key, no lock, an
    ``-reconfigure`` that started an empty state ...): the newest state document that manages ``bucket`` (local
    or in the state bucket) becomes ``terraform.tfstate`` again, and the copies an attempt left in the state
    bucket are deleted, so a new ``init -migrate-state`` moves it afresh. Returns what it did, in words."""
    from .evidence import find_bucket, local_state

    wd = Path(tf.workdir)
    s3 = aws.client("s3")
    found: list[tuple[int, str, dict]] = []  # (serial, where, state)
    here = local_state(wd)
    if find_bucket(here, bucket):
        found.append((int(here.get("serial") or 0), "terraform.tfstate", here))
    remote_keys = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=STATE_BUCKET):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".tflock"):
                    continue
                try:
                    doc = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=obj["Key"])["Body"].read())
                except ValueError:
                    continue
                if find_bucket(doc, bucket):
                    remote_keys.append(obj["Key"])
                    found.append((int(doc.get("serial") or 0), f"s3://{STATE_BUCKET}/{obj['Key']}", doc))
    except s3.exceptions.NoSuchBucket:
        pass
    record = wd / ".terraform" / "terraform.tfstate"
    if not record.exists() and not remote_keys:
        return "ex1 is as exercise 1 left it: its state is the local file terraform.tfstate"
    if not found:
        return f"no state manages {bucket}: run exercise 1 first (this task moves its state)"
    serial, where, doc = max(found, key=lambda x: x[0])
    (wd / "terraform.tfstate").write_text(json.dumps(doc, indent=2))
    record.unlink(missing_ok=True)
    (wd / ".terraform" / "environment").unlink(missing_ok=True)
    for key in remote_keys:
        s3.delete_object(Bucket=STATE_BUCKET, Key=key)
        s3.delete_object(Bucket=STATE_BUCKET, Key=key + ".tflock")
    moved = f" (from {where})" if where != "terraform.tfstate" else ""
    return (
        f"ex1 is back where exercise 1 left it: its state is the local file terraform.tfstate{moved}; "
        f"removed {len(remote_keys)} copy(ies) an earlier attempt left in s3://{STATE_BUCKET}"
    )


# ------------------------------------------------------------------ reset
def _delete_parameters(prefix: str = PARAM_PREFIX) -> list[str]:
    ssm = aws.client("ssm")
    names = []
    for page in ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [prefix]}]
    ):
        names += [p["Name"] for p in page.get("Parameters", [])]
    for i in range(0, len(names), 10):
        ssm.delete_parameters(Names=names[i : i + 10])
    return names


def _delete_stacks() -> list[str]:
    cf = aws.client("cloudformation")
    gone = []
    for s in cf.describe_stacks().get("Stacks", []):
        if s["StackName"].startswith("l02-") and s["StackStatus"] != "DELETE_COMPLETE":
            cf.delete_stack(StackName=s["StackName"])
            gone.append(s["StackName"])
    for name in gone:
        cf.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return gone


@cleanup.extra(LESSON)
def _reset_extra() -> dict[str, list[str]]:
    """Lesson 02's part of ``cloudlab.reset_lesson("02")``: parameters, stacks, Terraform working dirs."""
    params = _delete_parameters()
    stacks = _delete_stacks()
    dirs = sorted(p.name for p in workroot().iterdir() if p.is_dir()) if workroot().exists() else []
    shutil.rmtree(workroot(), ignore_errors=True)  # .terraform/, local state; the plugin cache stays
    return {"parameters": params, "stacks": stacks, "Terraform working directories": dirs}


def apply_workspaces(tf: Terraform, names, timeout: float = 240.0) -> dict[str, str]:
    """Apply one working directory in several workspaces side by side (as a pipeline runs one job
    per environment). Each run has its own state and its own lock; returns {workspace: summary}."""
    import threading

    results: dict[str, str] = {}

    def one(name: str) -> None:
        try:
            r = tf.with_workspace(name).apply()
            summary = next((e["@message"] for e in reversed(r.events) if e.get("type") == "change_summary"), "done")
            results[name] = summary
        except TerraformError as e:
            results[name] = f"FAILED: {e}"

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in names]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=max(1.0, timeout - (time.monotonic() - t0)))
    for n in names:
        print(f"{n:<8} {results.get(n, 'still running (timed out waiting)')}")
    failed = {n: v for n, v in results.items() if v.startswith("FAILED")}
    if failed or len(results) < len(names):
        raise TerraformError("not every environment applied:\n" + "\n".join(f"{k}: {v}" for k, v in failed.items()))
    return results


def unreachable_endpoint() -> str:
    """A 127.0.0.1 URL on which nothing listens (to show what happens when the lab is down)."""
    return f"http://127.0.0.1:{net.free_port()}"


def list_state_objects(bucket: str = STATE_BUCKET) -> list[str]:
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    for k in keys:
        print(f"  s3://{bucket}/{k}")
    return keys


# ------------------------------------------------------------------ the lock demo
def start_holder(tf: Terraform, seconds: int = 8) -> procs.Proc:
    """Start a real ``terraform apply`` in the background that keeps the state lock for ``seconds``."""
    env = tf.env()
    args = [
        "apply",
        "-auto-approve",
        "-no-color",
        f"-var=hold_seconds={seconds}",
        f"-var=run_id={secrets.token_hex(4)}",
    ]
    print(f"$ {tf.command_line(args)} &   # in the background")
    exe = shutil.which("terraform") or "terraform"
    return procs.start(LOCK_HOLDER, [exe, *args], env=env, python=False, cwd=str(tf.workdir))


def wait_for_lock(key: str, bucket: str = STATE_BUCKET, timeout: float = 20.0, proc: procs.Proc | None = None) -> dict:
    """Wait until the lock object ``<key>.tflock`` exists; return what it says (who holds the lock)."""
    s3 = aws.client("s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = s3.get_object(Bucket=bucket, Key=key + ".tflock")["Body"].read()
            return json.loads(body)
        except s3.exceptions.NoSuchKey:
            if proc is not None and not proc.alive():
                raise TerraformError(
                    f"the background apply ended before it took the lock:\n{proc.output()[-800:]}"
                ) from None
            time.sleep(0.2)
    raise TerraformError(f"no lock object appeared at s3://{bucket}/{key}.tflock within {timeout:.0f} s")


def wait_holder(timeout: float = 60.0) -> int | None:
    """Wait for the background apply to finish; its exit code (0 = it applied)."""
    proc = procs.running(LOCK_HOLDER)
    deadline = time.monotonic() + timeout
    while proc is not None and proc.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    code = procs.stop(LOCK_HOLDER)
    out = procs.log_path(LOCK_HOLDER).read_text(errors="replace") if procs.log_path(LOCK_HOLDER).exists() else ""
    done = [ln for ln in out.splitlines() if "Apply complete" in ln or "Error" in ln]
    print("background apply: " + (done[-1].strip() if done else "finished"))
    return code
