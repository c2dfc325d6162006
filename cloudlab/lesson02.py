"""Lesson 02 (infrastructure as code): working directories, remote state, the lock demo, drift,
CloudFormation, the policy scan, and the exercise checks.

Terraform itself is driven by :mod:`cloudlab.terraform`. Templates live in
``lessons/02_infrastructure-as-code/`` and are copied into ``<state>/terraform/l02/<name>``.
"""
from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from . import aws, procs
from .checks import check
from .lab import ROOT, Lab, venv_python
from .terraform import Terraform, TerraformError, backend_config, copy_template, tf_root

LESSON = "02"
TEMPLATES = ROOT / "lessons" / "02_infrastructure-as-code"
STATE_BUCKET = "l02-tfstate"
PARAM_PREFIX = "/l02/"
LOCK_HOLDER = "l02-lock-holder"
EX_REPORTS_BUCKET = "l02-ex-reports"
EX_STATE_KEY = "exercise/terraform.tfstate"
EX_ENVS_KEY = "envs/terraform.tfstate"
EX_SIZES = {"staging": "t3.small", "prod": "m5.large"}


# ------------------------------------------------------------------ working directories
def workroot() -> Path:
    return tf_root() / "l02"


def workdir(name: str, template: str | None = None, fresh: bool = True, **kwargs) -> Terraform:
    """A Terraform working directory ``<state>/terraform/l02/<name>``, copied from a lesson template.

    ``template=None`` copies the template of the same name (if there is one); ``fresh`` wipes the
    directory first (its local state too). The shared modules are copied next to it as ``../modules``.
    """
    root = workroot()
    # Overwrite, do not wipe: another kernel (the lesson and the exercises open together) may be using it.
    copy_template(TEMPLATES / "modules", root / "modules", fresh=False)
    src = TEMPLATES / (template or name)
    dest = root / name
    if src.is_dir():
        copy_template(src, dest, fresh=fresh)
    elif fresh and dest.exists():
        shutil.rmtree(dest)
    return Terraform(dest, **kwargs)


def remote(name: str, key: str | None = None, template: str | None = None, fresh: bool = True,
           **kwargs) -> Terraform:
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
    except s3.exceptions.NoSuchKey:
        return None
    except Exception as e:
        if "NoSuchBucket" in str(e) or "404" in str(e):
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


# ------------------------------------------------------------------ reset
def _delete_parameters(prefix: str = PARAM_PREFIX) -> list[str]:
    ssm = aws.client("ssm")
    names = []
    for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [prefix]}]):
        names += [p["Name"] for p in page.get("Parameters", [])]
    for i in range(0, len(names), 10):
        ssm.delete_parameters(Names=names[i:i + 10])
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


def reset(quiet: bool = False) -> None:
    """Lesson 02 from the start: l02- buckets (state bucket too), parameters, stacks, working dirs."""
    from .cleanup import reset_lesson
    procs.stop(LOCK_HOLDER)
    removed = reset_lesson(LESSON, quiet=True)
    params = _delete_parameters()
    stacks = _delete_stacks()
    shutil.rmtree(workroot(), ignore_errors=True)  # .terraform/, local state; the plugin cache stays
    if not quiet:
        parts = [f"{len(removed.get('buckets', []))} buckets", f"{len(params)} parameters",
                 f"{len(stacks)} stacks", f"{len(removed.get('topics', []))} topics"]
        print(f"Lesson 02 reset: {', '.join(parts)} removed; Terraform working directories wiped.")


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
    from .procs import free_port
    return f"http://127.0.0.1:{free_port()}"


# ------------------------------------------------------------------ inspection
def bucket_report(name: str) -> dict:
    """The real settings of a bucket in the emulator (what a check or an auditor would look at)."""
    s3 = aws.client("s3")
    rep: dict = {"bucket": name}
    rep["versioning"] = s3.get_bucket_versioning(Bucket=name).get("Status", "Off")
    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        rep["encryption"] = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    except Exception:
        rep["encryption"] = None
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        rep["noncurrent_days"] = [r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for r in rules
                                  if r.get("Status") == "Enabled"]
    except Exception:
        rep["noncurrent_days"] = []
    try:
        pab = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        rep["public_access_blocked"] = all(pab.values())
    except Exception:
        rep["public_access_blocked"] = False
    try:
        rep["tags"] = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    except Exception:
        rep["tags"] = {}
    return rep


def show_buckets(names) -> None:
    """A small table of the real bucket settings."""
    rows = [bucket_report(n) for n in names]
    print(f"{'bucket':<24} {'versioning':<10} {'encryption':<10} {'old versions kept':<18} {'private':<7} tags")
    for r in rows:
        days = ", ".join(f"{d} d" for d in r["noncurrent_days"]) or "forever"
        tags = ", ".join(f"{k}={v}" for k, v in sorted(r["tags"].items()))
        print(f"{r['bucket']:<24} {r['versioning']:<10} {str(r['encryption']):<10} {days:<18} "
              f"{'yes' if r['public_access_blocked'] else 'NO':<7} {tags}")


def bootstrap_state_bucket(name: str = STATE_BUCKET) -> str:
    """Create the bucket that holds Terraform state (once, by hand: Terraform cannot store its state
    in a bucket it has not created yet). Versioned, so an older state can always be restored."""
    s3 = aws.client("s3")
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    print(f"state bucket s3://{name}: versioned, encrypted, private")
    return name


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
    args = [shutil.which("terraform") or "terraform", "apply", "-auto-approve", "-no-color",
            f"-var=hold_seconds={seconds}", f"-var=run_id={secrets.token_hex(4)}"]
    return procs.start(LOCK_HOLDER, args, env=env, python=False, cwd=str(tf.workdir))


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
                raise TerraformError(f"the background apply ended before it took the lock:\n{proc.output()[-800:]}")
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


# ------------------------------------------------------------------ CloudFormation
def cfn_deploy(stack: str, template: Path, params: dict, timeout: float = 60.0) -> dict:
    """Create (or update) a CloudFormation stack and wait; returns its outputs."""
    cf = aws.client("cloudformation")
    body = Path(template).read_text()
    p = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params.items()]
    t0 = time.monotonic()
    try:
        cf.create_stack(StackName=stack, TemplateBody=body, Parameters=p)
        waiter = "stack_create_complete"
    except cf.exceptions.AlreadyExistsException:
        try:
            cf.update_stack(StackName=stack, TemplateBody=body, Parameters=p)
        except Exception as e:
            if "No updates" not in str(e):
                raise
        waiter = "stack_update_complete"
    cf.get_waiter(waiter).wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": int(timeout)})
    s = cf.describe_stacks(StackName=stack)["Stacks"][0]
    print(f"stack {stack}: {s['StackStatus']} in {time.monotonic() - t0:.1f} s")
    return {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}


def cfn_preview(stack: str, template: Path, params: dict) -> list[dict]:
    """CloudFormation's plan: a change set, described and then deleted (nothing is executed)."""
    cf = aws.client("cloudformation")
    name = f"preview-{secrets.token_hex(3)}"
    cf.create_change_set(StackName=stack, ChangeSetName=name, TemplateBody=Path(template).read_text(),
                         Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params.items()])
    deadline = time.monotonic() + 20
    while True:
        d = cf.describe_change_set(StackName=stack, ChangeSetName=name)
        if d["Status"] in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    changes = [c["ResourceChange"] for c in d.get("Changes", [])]
    for c in changes:
        print(f"  {c['Action']:<7} {c['LogicalResourceId']} ({c['ResourceType']}), replacement: {c.get('Replacement', '-')}")
    if not changes:
        print(f"  no changes ({d.get('StatusReason', '')})")
    cf.delete_change_set(StackName=stack, ChangeSetName=name)
    return changes


# ------------------------------------------------------------------ policy as code
def checkov_path() -> Path:
    return venv_python(Lab.from_env(), "checkov").parent / "checkov"


def scan(path, quiet: bool = False, timeout: float = 120.0) -> dict:
    """Scan Terraform in ``path`` with checkov (offline). Returns {'failed': [...], 'passed': n, 'skipped': [...]}.

    The raw JSON report is saved as ``<path>/.checkov.json`` (the exercise check reads it).
    """
    exe = checkov_path()
    if not exe.exists():
        raise RuntimeError(f"checkov is not installed at {exe}. Run `make setup` (it installs checkov in its own "
                           "environment), then re-run this cell.")
    path = Path(path)
    cmd = [str(exe), "-d", str(path), "--framework", "terraform", "--skip-download", "--compact",
           "-o", "json", "--download-external-modules", "false"]
    home = tf_root() / "checkov-home"  # checkov may cache files in $HOME: keep them out of the scanned dir
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home), "BC_SKIP_MAPPING": "TRUE",
                               "LOG_LEVEL": "ERROR", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    try:
        data = json.loads(proc.stdout or "{}")
    except ValueError:
        raise RuntimeError(f"checkov did not produce a JSON report (exit {proc.returncode}):\n{proc.stderr[-800:]}")
    if isinstance(data, list):  # several frameworks: one report each
        data = next((d for d in data if d.get("check_type") == "terraform"), data[0] if data else {})
    res = data.get("results", {}) if isinstance(data, dict) else {}
    summary = data.get("summary", {}) if isinstance(data, dict) else {}
    out = {
        "failed": [(c["check_id"], c["resource"], c["check_name"]) for c in res.get("failed_checks", [])],
        "passed": int(summary.get("passed", len(res.get("passed_checks", [])))),
        "skipped": [(c["check_id"], c["resource"], (c.get("check_result") or {}).get("suppress_comment", ""))
                    for c in res.get("skipped_checks", [])],
        "resources": int(summary.get("resource_count", 0)),
        "seconds": round(time.monotonic() - t0, 1),
    }
    (path / ".checkov.json").write_text(json.dumps(dict(out, scanned_at=time.time()), indent=1))
    if not quiet:
        print(f"checkov: {out['passed']} passed, {len(out['failed'])} failed, {len(out['skipped'])} skipped "
              f"({out['resources']} resources, {out['seconds']} s)")
        for cid, res_, name in out["failed"]:
            print(f"  FAIL {cid:<12} {res_:<40} {name}")
        for cid, res_, why in out["skipped"]:
            print(f"  skip {cid:<12} {res_:<40} reason: {why}")
    return out


# ------------------------------------------------------------------ exercise helpers
def drift_scenario(quiet: bool = True) -> Terraform:
    """For exercise 4: apply the 'loop' stack in its own directory, then change it by hand (as if someone
    clicked in the console): a new tag on the bucket and another value in the parameter."""
    tf = workdir("ex-drift", template="loop", quiet=quiet)
    tf.init()
    tf.apply()
    token = secrets.token_hex(4)
    s3, ssm = aws.client("s3"), aws.client("ssm")
    tags = s3.get_bucket_tagging(Bucket="l02-loop-notes")["TagSet"]
    s3.put_bucket_tagging(Bucket="l02-loop-notes", Tagging={"TagSet": [t for t in tags if t["Key"] != "owner"] +
                                                              [{"Key": "changed-by", "Value": f"console-{token}"}]})
    ssm.put_parameter(Name="/l02/loop/greeting", Value=f"hotfix {token}", Type="String", Overwrite=True)
    (tf.workdir / ".drift-token").write_text(f"{token} {time.time()}\n")
    print("Someone changed the bucket's tags and the parameter by hand. Terraform does not know yet.")
    return tf


# ------------------------------------------------------------------ checks
def _workdir_state(name: str) -> dict | None:
    try:
        return json.loads((workroot() / name / "terraform.tfstate").read_text())
    except (OSError, ValueError):
        return None


@check("02.1", "A bucket from the secure-bucket module", hints=[
    "Write main.tf with a `module \"reports\"` block whose source is \"../modules/secure-bucket\", then init and apply.",
    "The module's inputs are name, noncurrent_days and tags: name = \"l02-ex-reports\", noncurrent_days = 30, "
    "tags = { team = \"data\" }.",
    "ex1.write(\"main.tf\", '''module \"reports\" { source = \"../modules/secure-bucket\" ... }'''); ex1.init(); ex1.apply()",
])
def check_module(r, ns):
    s3 = aws.client("s3")
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    r.require(EX_REPORTS_BUCKET in names, f"bucket {EX_REPORTS_BUCKET} exists in the emulator",
              f"there is no bucket {EX_REPORTS_BUCKET} in the emulator yet: write main.tf, then init and apply")
    rep = bucket_report(EX_REPORTS_BUCKET)
    r.expect(rep["versioning"] == "Enabled", "versioning is on", f"versioning is {rep['versioning']}, not Enabled")
    r.expect(rep["encryption"] in ("aws:kms", "AES256", "aws:kms:dsse"), f"default encryption is {rep['encryption']}",
             "the bucket has no default encryption")
    r.expect(30 in rep["noncurrent_days"], "old versions expire after 30 days",
             f"no lifecycle rule expires noncurrent versions after 30 days (found {rep['noncurrent_days'] or 'none'})")
    r.expect(rep["tags"].get("team") == "data", "tag team=data is set",
             f"tag team is {rep['tags'].get('team')!r}, expected 'data'")
    r.expect(rep["tags"].get("module") == "secure-bucket", "it was made by the module (tag module=secure-bucket)",
             "the bucket lacks the module's tag: create it through the module, not with a plain aws_s3_bucket")
    # Versioning for real: write the same (new) key twice, expect two versions.
    key = f"check/{secrets.token_hex(6)}.txt"
    s3.put_object(Bucket=EX_REPORTS_BUCKET, Key=key, Body=b"v1")
    s3.put_object(Bucket=EX_REPORTS_BUCKET, Key=key, Body=b"v2")
    versions = s3.list_object_versions(Bucket=EX_REPORTS_BUCKET, Prefix=key).get("Versions", [])
    r.expect(len(versions) == 2, "overwriting an object keeps the old version",
             f"after two writes of {key} the bucket holds {len(versions)} version(s), not 2")
    s3.delete_objects(Bucket=EX_REPORTS_BUCKET, Delete={"Objects": [{"Key": key, "VersionId": v["VersionId"]}
                                                                    for v in versions], "Quiet": True})
    ex1 = workroot() / "ex-module"
    local = _workdir_state("ex-module")
    remote_state = read_state(EX_STATE_KEY)
    managed = state_resources(local) + state_resources(remote_state)
    r.expect(any(a.startswith("module.reports.") for a in managed),
             "Terraform's state has module.reports (the bucket is managed, not hand-made)",
             f"no module.reports in the state of {ex1}: use `module \"reports\"` and apply from that directory")


@check("02.2", "The exercise's state lives in S3, with a lock", hints=[
    "Add a backend.tf with `terraform { backend \"s3\" {} }`, then run init again with the backend settings.",
    "lesson02.backend_config(\"exercise/terraform.tfstate\", lesson02.STATE_BUCKET) gives the settings; "
    "init(backend_config=..., migrate=True) moves the existing state.",
    "ex1.write(\"backend.tf\", 'terraform {\\n  backend \"s3\" {}\\n}\\n'); "
    "ex1.init(backend_config=lesson02.backend_config(lesson02.EX_STATE_KEY, lesson02.STATE_BUCKET), migrate=True)",
])
def check_remote_state(r, ns):
    state = read_state(EX_STATE_KEY)
    r.require(state is not None, f"the state object s3://{STATE_BUCKET}/{EX_STATE_KEY} exists",
              f"there is no state at s3://{STATE_BUCKET}/{EX_STATE_KEY}: add the s3 backend and run init with "
              "migrate=True (is the state bucket there? lesson02.bootstrap_state_bucket())")
    addrs = state_resources(state)
    r.expect(any(a.startswith("module.reports.") for a in addrs),
             f"it holds module.reports ({len(addrs)} resources)",
             "the remote state holds no module.reports: migrate the state of exercise 1 (migrate=True), "
             "do not start an empty one")
    local = _workdir_state("ex-module")
    r.expect(not state_resources(local), "no resources are left in a local terraform.tfstate",
             "the local terraform.tfstate still lists resources: the state was copied, not moved")
    try:
        backend = json.loads((workroot() / "ex-module" / ".terraform" / "terraform.tfstate").read_text())["backend"]
    except (OSError, ValueError, KeyError):
        backend = {}
    cfg = backend.get("config", {})
    r.expect(backend.get("type") == "s3", "the working directory uses the s3 backend",
             "the working directory is not initialised with the s3 backend")
    r.expect(cfg.get("use_lockfile") is True, "locking is on (use_lockfile = true)",
             "use_lockfile is not true: without a lock two runs can write the state at once")


@check("02.3", "One stack, two environments (workspaces)", hints=[
    "Use terraform.workspace in names and a map of sizes keyed by workspace; then select each workspace and apply.",
    "name = \"/l02/ex/${terraform.workspace}/instance-size\", insecure_value = local.sizes[terraform.workspace], "
    "tags = { env = terraform.workspace }",
    "for env in [\"staging\", \"prod\"]: envs.workspace(env); envs.apply()",
])
def check_workspaces(r, ns):
    ssm = aws.client("ssm")
    for env, size in EX_SIZES.items():
        name = f"/l02/ex/{env}/instance-size"
        try:
            p = ssm.get_parameter(Name=name)["Parameter"]
        except ssm.exceptions.ParameterNotFound:
            r.expect(False, "", f"parameter {name} does not exist (apply in workspace {env})")
            continue
        r.expect(p["Value"] == size, f"{name} = {size}", f"{name} is {p['Value']!r}, expected {size!r}")
        tags = {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(
            ResourceType="Parameter", ResourceId=name).get("TagList", [])}
        r.expect(tags.get("env") == env, f"{name} is tagged env={env}", f"{name} has tag env={tags.get('env')!r}")
        state = read_state(EX_ENVS_KEY, env)
        r.expect(state is not None and "aws_ssm_parameter.instance_size" in state_resources(state),
                 f"workspace {env} has its own state at s3://{STATE_BUCKET}/{state_key(EX_ENVS_KEY, env)}",
                 f"no state with aws_ssm_parameter.instance_size at s3://{STATE_BUCKET}/{state_key(EX_ENVS_KEY, env)}")


@check("02.4", "Drift detected and reconciled", hints=[
    "plan(detailed_exitcode=True) returns a result whose exit_code is 2 when the real resources differ from the code.",
    "drift_code = drift.plan(detailed_exitcode=True).exit_code, then drift.apply() puts things back.",
    "Keep refresh on: plan(refresh=False) would not look at the real resources, so it cannot see drift.",
])
def check_drift(r, ns):
    wd = workroot() / "ex-drift"
    try:
        token, t_drift = (wd / ".drift-token").read_text().split()
    except (OSError, ValueError):
        r.fail("the drift scenario has not run: run the cell with lesson02.drift_scenario() first")
    code = r.need(ns, "drift_code", int)
    r.expect(code == 2, "drift_code is 2: the plan saw changes", f"drift_code is {code}, expected 2 (changes pending)")
    runs = [x for x in Terraform(wd, quiet=True).runs() if x["at"] > float(t_drift)]
    planned = [x for x in runs if x["args"][:1] == ["plan"] and "-detailed-exitcode" in x["args"]]
    r.expect(any(x["exit_code"] == 2 for x in planned) and not any("-refresh=false" in x["args"] for x in planned),
             "a refreshing plan with -detailed-exitcode exited 2 after the manual change",
             "no plan with -detailed-exitcode (and refresh on) saw the drift after the scenario ran")
    s3, ssm = aws.client("s3"), aws.client("ssm")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket="l02-loop-notes").get("TagSet", [])}
    r.expect("changed-by" not in tags and tags.get("owner") == "platform-team",
             "the bucket's tags match the code again", f"the bucket's tags are still {tags}")
    value = ssm.get_parameter(Name="/l02/loop/greeting")["Parameter"]["Value"]
    r.expect(value == "hello from terraform", "the parameter holds the code's value again",
             f"the parameter is still {value!r}: apply to reconcile")


@check("02.5", "The scanner finds nothing on the fixed code", hints=[
    "Run lesson02.scan(fix.workdir) to see what checkov flags, then change main.tf in that directory.",
    "The secure-bucket module already passes: replace the plain aws_s3_bucket with a module block "
    "(source = \"../modules/secure-bucket\"), or add the missing resources yourself.",
    "A check you cannot meet in this lab can be skipped with a reason: `#checkov:skip=CKV_AWS_18:why` inside the "
    "resource. Scan again after every change.",
])
def check_scan(r, ns):
    wd = workroot() / "ex-scan"
    report_file = wd / ".checkov.json"
    r.require(report_file.exists(), "a scan report exists", "no scan report yet: run lesson02.scan(...) on the exercise directory")
    rep = json.loads(report_file.read_text())
    tf_files = list(wd.glob("*.tf"))
    newest = max((f.stat().st_mtime for f in tf_files), default=0)
    r.require(rep.get("scanned_at", 0) >= newest, "the report is newer than every .tf file",
              "a .tf file changed after the last scan: run lesson02.scan(...) again")
    r.expect(rep.get("resources", 0) > 0 and rep.get("passed", 0) > 0,
             f"checkov scanned {rep.get('resources')} resources ({rep.get('passed')} checks passed)",
             "the scan found nothing to check: the bucket must still be defined")
    r.expect(not rep.get("failed"), "no failed checks",
             f"{len(rep.get('failed', []))} checks still fail: " + ", ".join(f[0] for f in rep.get("failed", [])[:6]))
    bad_skips = [s[0] for s in rep.get("skipped", []) if len((s[2] or "").strip()) < 10]
    r.expect(not bad_skips, f"every skip has a reason ({len(rep.get('skipped', []))} skips)",
             f"skips without a real reason: {', '.join(bad_skips)} (write why after the check id)")
    text = "\n".join(f.read_text() for f in tf_files)
    r.expect("l02-scan-uploads" in text, "the uploads bucket is still there (fixing, not deleting)",
             "the bucket l02-scan-uploads is gone from the code: fix it, do not delete it")
