"""Lesson 02's exercise checks: they read Terraform state in S3, the real buckets and checkov's report."""

from __future__ import annotations

import json
import secrets

from .. import aws
from ..checks import check
from ..terraform import Terraform
from .workdirs import (
    EX_ENVS_KEY,
    EX_REPORTS_BUCKET,
    EX_SIZES,
    EX_STATE_KEY,
    STATE_BUCKET,
    bucket_report,
    read_state,
    state_key,
    state_resources,
    workroot,
)


# ------------------------------------------------------------------ checks
def _workdir_state(name: str) -> dict | None:
    try:
        return json.loads((workroot() / name / "terraform.tfstate").read_text())
    except (OSError, ValueError):
        return None


@check(
    "02.1",
    "A bucket from the secure-bucket module",
    hints=[
        'Write main.tf with a `module "reports"` block whose source is "../modules/secure-bucket", '
        "then init and apply.",
        'The module\'s inputs are name, noncurrent_days and tags: name = "l02-ex-reports", noncurrent_days = 30, '
        'tags = { team = "data" }.',
        "ex1.write(\"main.tf\", '''module \"reports\" { source = \"../modules/secure-bucket\" ... }'''); "
        "ex1.init(); ex1.apply()",
    ],
)
def check_module(r, ns):
    s3 = aws.client("s3")
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    r.require(
        EX_REPORTS_BUCKET in names,
        f"bucket {EX_REPORTS_BUCKET} exists in the emulator",
        f"there is no bucket {EX_REPORTS_BUCKET} in the emulator yet: write main.tf, then init and apply",
    )
    rep = bucket_report(EX_REPORTS_BUCKET)
    r.expect(rep["versioning"] == "Enabled", "versioning is on", f"versioning is {rep['versioning']}, not Enabled")
    r.expect(
        rep["encryption"] in ("aws:kms", "AES256", "aws:kms:dsse"),
        f"default encryption is {rep['encryption']}",
        "the bucket has no default encryption",
    )
    r.expect(
        30 in rep["noncurrent_days"],
        "old versions expire after 30 days",
        f"no lifecycle rule expires noncurrent versions after 30 days (found {rep['noncurrent_days'] or 'none'})",
    )
    r.expect(
        rep["tags"].get("team") == "data",
        "tag team=data is set",
        f"tag team is {rep['tags'].get('team')!r}, expected 'data'",
    )
    r.expect(
        rep["tags"].get("module") == "secure-bucket",
        "it was made by the module (tag module=secure-bucket)",
        "the bucket lacks the module's tag: create it through the module, not with a plain aws_s3_bucket",
    )
    # Versioning for real: write the same (new) key twice, expect two versions.
    key = f"check/{secrets.token_hex(6)}.txt"
    s3.put_object(Bucket=EX_REPORTS_BUCKET, Key=key, Body=b"v1")
    s3.put_object(Bucket=EX_REPORTS_BUCKET, Key=key, Body=b"v2")
    versions = s3.list_object_versions(Bucket=EX_REPORTS_BUCKET, Prefix=key).get("Versions", [])
    r.expect(
        len(versions) == 2,
        "overwriting an object keeps the old version",
        f"after two writes of {key} the bucket holds {len(versions)} version(s), not 2",
    )
    s3.delete_objects(
        Bucket=EX_REPORTS_BUCKET,
        Delete={"Objects": [{"Key": key, "VersionId": v["VersionId"]} for v in versions], "Quiet": True},
    )
    ex1 = workroot() / "ex-module"
    local = _workdir_state("ex-module")
    remote_state = read_state(EX_STATE_KEY)
    managed = state_resources(local) + state_resources(remote_state)
    r.expect(
        any(a.startswith("module.reports.") for a in managed),
        "Terraform's state has module.reports (the bucket is managed, not hand-made)",
        f'no module.reports in the state of {ex1}: use `module "reports"` and apply from that directory',
    )


@check(
    "02.2",
    "The exercise's state lives in S3, with a lock",
    hints=[
        'Add a backend.tf with `terraform { backend "s3" {} }`, then run init again with the backend settings.',
        'cloudlab.terraform.backend_config("exercise/terraform.tfstate", lesson02.STATE_BUCKET) gives the settings; '
        "init(backend_config=..., migrate=True) moves the existing state.",
        'ex1.write("backend.tf", \'terraform {\\n  backend "s3" {}\\n}\\n\'); '
        "ex1.init(backend_config=backend_config(lesson02.EX_STATE_KEY, lesson02.STATE_BUCKET), migrate=True)",
    ],
)
def check_remote_state(r, ns):
    state = read_state(EX_STATE_KEY)
    r.require(
        state is not None,
        f"the state object s3://{STATE_BUCKET}/{EX_STATE_KEY} exists",
        f"there is no state at s3://{STATE_BUCKET}/{EX_STATE_KEY}: add the s3 backend and run init with "
        "migrate=True (is the state bucket there? lesson02.bootstrap_state_bucket())",
    )
    addrs = state_resources(state)
    r.expect(
        any(a.startswith("module.reports.") for a in addrs),
        f"it holds module.reports ({len(addrs)} resources)",
        "the remote state holds no module.reports: migrate the state of exercise 1 (migrate=True), "
        "do not start an empty one",
    )
    local = _workdir_state("ex-module")
    r.expect(
        not state_resources(local),
        "no resources are left in a local terraform.tfstate",
        "the local terraform.tfstate still lists resources: the state was copied, not moved",
    )
    try:
        backend = json.loads((workroot() / "ex-module" / ".terraform" / "terraform.tfstate").read_text())["backend"]
    except (OSError, ValueError, KeyError):
        backend = {}
    cfg = backend.get("config", {})
    r.expect(
        backend.get("type") == "s3",
        "the working directory uses the s3 backend",
        "the working directory is not initialised with the s3 backend",
    )
    r.expect(
        cfg.get("use_lockfile") is True,
        "locking is on (use_lockfile = true)",
        "use_lockfile is not true: without a lock two runs can write the state at once",
    )


@check(
    "02.3",
    "One stack, two environments (workspaces)",
    hints=[
        "Use terraform.workspace in names and a map of sizes keyed by workspace; then select each workspace and apply.",
        'name = "/l02/ex/${terraform.workspace}/instance-size", insecure_value = local.sizes[terraform.workspace], '
        "tags = { env = terraform.workspace }",
        'for env in ["staging", "prod"]: envs.workspace(env); envs.apply()',
    ],
)
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
        tags = {
            t["Key"]: t["Value"]
            for t in ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name).get("TagList", [])
        }
        r.expect(tags.get("env") == env, f"{name} is tagged env={env}", f"{name} has tag env={tags.get('env')!r}")
        state = read_state(EX_ENVS_KEY, env)
        r.expect(
            state is not None and "aws_ssm_parameter.instance_size" in state_resources(state),
            f"workspace {env} has its own state at s3://{STATE_BUCKET}/{state_key(EX_ENVS_KEY, env)}",
            f"no state with aws_ssm_parameter.instance_size at s3://{STATE_BUCKET}/{state_key(EX_ENVS_KEY, env)}",
        )


@check(
    "02.4",
    "Drift detected and reconciled",
    hints=[
        "plan(detailed_exitcode=True) returns a result whose exit_code is 2 when the real resources differ "
        "from the code.",
        "drift_code = drift.plan(detailed_exitcode=True).exit_code, then drift.apply() puts things back.",
        "Keep refresh on: plan(refresh=False) would not look at the real resources, so it cannot see drift.",
    ],
)
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
    r.expect(
        any(x["exit_code"] == 2 for x in planned) and not any("-refresh=false" in x["args"] for x in planned),
        "a refreshing plan with -detailed-exitcode exited 2 after the manual change",
        "no plan with -detailed-exitcode (and refresh on) saw the drift after the scenario ran",
    )
    s3, ssm = aws.client("s3"), aws.client("ssm")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket="l02-loop-notes").get("TagSet", [])}
    r.expect(
        "changed-by" not in tags and tags.get("owner") == "platform-team",
        "the bucket's tags match the code again",
        f"the bucket's tags are still {tags}",
    )
    value = ssm.get_parameter(Name="/l02/loop/greeting")["Parameter"]["Value"]
    r.expect(
        value == "hello from terraform",
        "the parameter holds the code's value again",
        f"the parameter is still {value!r}: apply to reconcile",
    )


@check(
    "02.5",
    "The scanner finds nothing on the fixed code",
    hints=[
        "Run scanners.checkov(fix.workdir) to see what checkov flags, then change main.tf in that directory.",
        "The secure-bucket module already passes: replace the plain aws_s3_bucket with a module block "
        '(source = "../modules/secure-bucket"), or add the missing resources yourself.',
        "A check you cannot meet in this lab can be skipped with a reason: `#checkov:skip=CKV_AWS_18:why` inside the "
        "resource. Scan again after every change.",
    ],
)
def check_scan(r, ns):
    wd = workroot() / "ex-scan"
    report_file = wd / ".checkov.json"
    r.require(
        report_file.exists(),
        "a scan report exists",
        "no scan report yet: run scanners.checkov(...) on the exercise directory",
    )
    rep = json.loads(report_file.read_text())
    tf_files = list(wd.glob("*.tf"))
    newest = max((f.stat().st_mtime for f in tf_files), default=0)
    r.require(
        rep.get("scanned_at", 0) >= newest,
        "the report is newer than every .tf file",
        "a .tf file changed after the last scan: run scanners.checkov(...) again",
    )
    r.expect(
        rep.get("resources", 0) > 0 and rep.get("passed", 0) > 0,
        f"checkov scanned {rep.get('resources')} resources ({rep.get('passed')} checks passed)",
        "the scan found nothing to check: the bucket must still be defined",
    )
    r.expect(
        not rep.get("failed"),
        "no failed checks",
        f"{len(rep.get('failed', []))} checks still fail: " + ", ".join(f[0] for f in rep.get("failed", [])[:6]),
    )
    bad_skips = [s[0] for s in rep.get("skipped", []) if len((s[2] or "").strip()) < 10]
    r.expect(
        not bad_skips,
        f"every skip has a reason ({len(rep.get('skipped', []))} skips)",
        f"skips without a real reason: {', '.join(bad_skips)} (write why after the check id)",
    )
    text = "\n".join(f.read_text() for f in tf_files)
    r.expect(
        "l02-scan-uploads" in text,
        "the uploads bucket is still there (fixing, not deleting)",
        "the bucket l02-scan-uploads is gone from the code: fix it, do not delete it",
    )
