"""Lesson 02's exercise checks. Each reads the real result from several angles: the bucket or parameter in
the emulator, Terraform's state (local file or S3), the working directory's settings, a fresh plan (it
must be empty once the work is done), and for the scan a fresh checkov run. Never the learner's report
or variables alone; every read tolerates a missing or broken thing and says so in words."""

from __future__ import annotations

import subprocess

from botocore.exceptions import ClientError

from .. import aws, scanners
from ..checks import check
from ..lab.tools import ToolMissing
from ..terraform import Terraform
from .cloud import DRIFT_BUCKET, DRIFT_NOTE, DRIFT_PARAM, bucket_report
from .evidence import (
    MAY_SKIP,
    backend_settings,
    expect_old_versions_expire,
    expect_plan_empty,
    expect_secure,
    expect_versions_kept,
    find_bucket,
    instances,
    local_state,
    module_sources,
    parameters,
    plan_statuses,
    safe_state,
    say_plan,
    selected_workspace,
    skip_problems,
    state_of,
)
from .workdirs import (
    EX_DRIFT_DIR,
    EX_ENVS_DIR,
    EX_ENVS_KEY,
    EX_MODULE_DIR,
    EX_REPORTS_BUCKET,
    EX_REPORTS_DAYS,
    EX_REPORTS_TEAM,
    EX_SCAN_DIR,
    EX_SIZES,
    EX_STATE_KEY,
    EX_UPLOADS_BUCKET,
    LESSON,
    STATE_BUCKET,
    state_key,
    state_resources,
    workroot,
)

MODULE = "secure-bucket"


# ------------------------------------------------------------------ 02.1
@check(
    "02.1",
    "A reports bucket from the team's module",
    hints=[
        "Read the module's inputs (lesson02.module_doc()), call it from ex1's main.tf with a `module` block, "
        "then init (it installs the module), plan and apply.",
        'The module\'s inputs are name, noncurrent_days (in days) and tags; ownership is the tag team = "data". '
        "After the apply, a fresh plan must show no changes.",
        'module "reports" { source = "../modules/secure-bucket", name = "l02-ex-reports", noncurrent_days = 30, '
        'tags = { team = "data" } } in main.tf; then ex1.init(); ex1.apply()',
    ],
)
def check_module(r, ns):
    wd = workroot() / EX_MODULE_DIR
    rep = bucket_report(EX_REPORTS_BUCKET)
    r.require(
        rep["exists"],
        f"bucket {EX_REPORTS_BUCKET} exists in the emulator",
        f"there is no bucket {EX_REPORTS_BUCKET} in the emulator yet: write ex1's main.tf, then init and apply",
    )
    expect_secure(r, rep)
    expect_old_versions_expire(r, rep["rules"], EX_REPORTS_DAYS)
    team = rep["tags"].get("team")
    r.expect(
        team == EX_REPORTS_TEAM,
        f"it belongs to the data team (tag team={EX_REPORTS_TEAM})",
        f"the ownership tag team is {team!r}, expected {EX_REPORTS_TEAM!r} (tags are case-sensitive; "
        f"the bucket's tags: {rep['tags']})",
    )
    expect_versions_kept(r, EX_REPORTS_BUCKET)
    state, where = state_of(wd)
    addr = find_bucket(state, EX_REPORTS_BUCKET)
    r.require(
        addr is not None,
        f"ex1's state ({where}) manages the bucket as {addr}",
        f"ex1's state ({where}) does not list the bucket: it was not made by applying ex1's code "
        "(by hand, or from another directory?)",
    )
    key = addr.split(".")[1] if addr.startswith("module.") else None
    source = module_sources(wd).get(key or "", "")
    from_module = bool(key) and (wd / source).resolve() == (workroot() / "modules" / MODULE).resolve()
    extra = sorted(a for a in state_resources(state) if not (key and a.startswith(f"module.{key}.")))
    r.expect(
        not extra or not key,
        "ex1 manages the module's resources and nothing else",
        f"ex1 also manages {', '.join(extra[:4])}: the task asks for one bucket from the module; everything else "
        "in this state is one more thing to pay for and to secure (destroy it: remove it from the code, apply)",
    )
    r.expect(
        from_module,
        f"it is made by the team's {MODULE} module (module.{key})",
        f"module.{key} comes from {source!r}, not the team's ../modules/{MODULE}"
        if key
        else f"it is a plain resource ({addr}), not made by the team's {MODULE} module: call the module instead",
    )
    if not r.wrong:
        expect_plan_empty(r, wd, "in ex1")


# ------------------------------------------------------------------ 02.2
@check(
    "02.2",
    "The exercise's state lives in S3, with a lock",
    hints=[
        'The code declares only `backend "s3" {}`; bucket, key and locking come with init. Initialise ex1 again '
        "with those settings, and let Terraform move the existing state instead of starting an empty one.",
        "cloudlab.terraform.backend_config(lesson02.EX_STATE_KEY, lesson02.STATE_BUCKET) gives the lab's settings "
        "(use_lockfile = true among them); init(backend_config=..., migrate=True) runs "
        "`terraform init -migrate-state`.",
        'ex1.write("backend.tf", \'terraform {\\n  backend "s3" {}\\n}\\n\'); '
        "ex1.init(backend_config=backend_config(lesson02.EX_STATE_KEY, lesson02.STATE_BUCKET), migrate=True)",
    ],
)
def check_remote_state(r, ns):
    wd = workroot() / EX_MODULE_DIR
    backend = backend_settings(wd)
    cfg = backend.get("config") or {}
    r.require(
        backend.get("type") == "s3",
        "ex1 is initialised with the s3 backend",
        "ex1 is not initialised with the s3 backend: its state is still the local file "
        f'{EX_MODULE_DIR}/terraform.tfstate (add `backend "s3" {{}}`, then init with the backend settings)',
    )
    r.expect(
        cfg.get("bucket") == STATE_BUCKET,
        f"the state bucket is {STATE_BUCKET}",
        f"the state goes to bucket {cfg.get('bucket')!r}, not the team's {STATE_BUCKET!r}",
    )
    r.expect(
        cfg.get("key") == EX_STATE_KEY,
        f"the state key is {EX_STATE_KEY}",
        f"the state key is {cfg.get('key')!r}: the team (and the pipeline) look for it at {EX_STATE_KEY!r}",
    )
    r.expect(
        cfg.get("use_lockfile") is True,
        "locking is on: use_lockfile = true (a lock object next to the state, GA since Terraform 1.11)",
        "use_lockfile is not true: without a lock two runs can write the state at once",
    )
    r.expect(
        not cfg.get("dynamodb_table"),
        "no DynamoDB lock table (deprecated since Terraform 1.11)",
        f"dynamodb_table = {cfg.get('dynamodb_table')!r}: DynamoDB locking is deprecated since Terraform 1.11; "
        "use_lockfile = true alone is the lock",
    )
    ws = selected_workspace(wd)
    r.expect(
        ws == "default",
        "the default workspace is selected",
        f"ex1 has workspace {ws!r} selected, so its state is at env:/{ws}/{cfg.get('key')}: select default",
    )
    state = safe_state(EX_STATE_KEY)
    addr = find_bucket(state, EX_REPORTS_BUCKET)
    r.expect(
        addr is not None,
        f"s3://{STATE_BUCKET}/{EX_STATE_KEY} manages {EX_REPORTS_BUCKET} ({addr})",
        f"s3://{STATE_BUCKET}/{EX_STATE_KEY} "
        + ("does not exist" if state is None else f"does not list {EX_REPORTS_BUCKET}")
        + ": the state was not moved there (init with migrate=True moves it; without, Terraform starts an empty "
        "state and forgets the bucket)",
    )
    leftover = find_bucket(local_state(wd), EX_REPORTS_BUCKET)
    r.expect(
        leftover is None,
        "the local terraform.tfstate lists nothing any more (moved, not copied)",
        f"the local {EX_MODULE_DIR}/terraform.tfstate still lists {leftover}: two states now claim one bucket",
    )


# ------------------------------------------------------------------ 02.3
@check(
    "02.3",
    "One stack, two environments (workspaces)",
    hints=[
        "One main.tf for every environment: let terraform.workspace pick the parameter's name and the size; "
        "then select each workspace and apply.",
        'A map keyed by workspace gives the size; name = "/l02/ex/${terraform.workspace}/instance-size", '
        'type = "String", tags = { env = terraform.workspace }. No -var: the workspace alone must decide.',
        'for env in ("staging", "prod"): envs.workspace(env); envs.apply()   '
        "(a fresh plan in each workspace must then show no changes)",
    ],
)
def check_workspaces(r, ns):
    wd = workroot() / EX_ENVS_DIR
    ssm = aws.client("ssm")
    ready = []
    for env, size in EX_SIZES.items():
        name = f"/l02/ex/{env}/instance-size"
        try:
            p = ssm.get_parameter(Name=name)["Parameter"]
        except ssm.exceptions.ParameterNotFound:
            r.expect(False, "", f"parameter {name} does not exist (select workspace {env}, then apply)")
            continue
        r.expect(p["Value"] == size, f"{name} = {size}", f"{name} is {p['Value']!r}, expected {size!r}")
        r.expect(p.get("Type") == "String", f"{name} is a plain String", f"{name} is a {p.get('Type')}, not a String")
        tags = {
            t["Key"]: t["Value"]
            for t in ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name).get("TagList", [])
        }
        r.expect(tags.get("env") == env, f"{name} is tagged env={env}", f"{name} has tag env={tags.get('env')!r}")
        state = safe_state(EX_ENVS_KEY, env)
        managed = parameters(state)
        where = f"s3://{STATE_BUCKET}/{state_key(EX_ENVS_KEY, env)}"
        if r.expect(
            managed.get(name) == size,
            f"workspace {env} has its own state ({where}) managing {name}",
            f"{where} does not manage {name} = {size!r}"
            + (f" (it holds {managed})" if managed else " (apply with workspace " + env + " selected)"),
        ):
            ready.append(env)
        others = sorted(n for n in managed if n != name)
        r.expect(
            not others,
            f"workspace {env} manages nothing of the other environment",
            f"workspace {env}'s state also manages {', '.join(others)}: one environment's apply must never "
            "touch another's resources",
        )
    default = sorted(n for n in parameters(safe_state(EX_ENVS_KEY)) if n.startswith("/l02/ex/"))
    r.expect(
        not default,
        "the default workspace manages no environment",
        f"the default workspace manages {', '.join(default)}: environments come from selecting a workspace",
    )
    if ready and not r.wrong:
        for env, (code, what) in plan_statuses(wd, ready).items():
            stuck = _value_not_insecure_value(wd, safe_state(EX_ENVS_KEY, env)) if code == 2 else []
            if stuck:
                r.expect(
                    False,
                    "",
                    f"a fresh plan in workspace {env} wants to update {stuck[0]} again and again: it was first "
                    "applied with `value`, and the AWS provider never moves an existing parameter from `value` to "
                    "`insecure_value` (hashicorp/terraform-provider-aws#30350; the lab's 5.100 does it too). "
                    "Replace it once: "
                    f'envs.workspace("{env}"); envs.run("apply", "-auto-approve", "-replace={stuck[0]}")',
                )
            else:
                say_plan(r, code, what, f"in workspace {env}")


def _value_not_insecure_value(wd, state) -> list[str]:
    """Parameters whose code sets ``insecure_value`` while the state still holds them under ``value`` (the
    provider bug that makes every plan want an update that never happens)."""
    code = " ".join(p.read_text(errors="replace") for p in wd.glob("*.tf"))
    if "insecure_value" not in code:
        return []
    return [
        addr
        for addr, attrs in instances(state, "aws_ssm_parameter")
        if attrs.get("insecure_value") in (None, "") and attrs.get("value")
    ]


# ------------------------------------------------------------------ 02.4
@check(
    "02.4",
    "Drift detected and reconciled",
    hints=[
        "A plan can answer with its exit code (0 nothing to do, 2 changes pending, 1 error): that is what a "
        "pipeline alerts on. Keep refresh on, or it does not look at the real resources.",
        "drift_code = drift.plan(detailed_exitcode=True).exit_code; then reconcile with a normal apply. "
        "`apply -refresh-only` would accept the drift into the state instead of undoing it.",
        'result = drift.plan(detailed_exitcode=True); drift_code = result.exit_code; drift.apply(plan_file="tfplan")',
    ],
)
def check_drift(r, ns):
    wd = workroot() / EX_DRIFT_DIR
    try:
        _, t_drift = (wd / ".drift-token").read_text().split()
        t_drift = float(t_drift)
    except (OSError, ValueError):
        r.fail("the drift scenario has not run: run the cell with lesson02.drift_scenario() first")
    code = r.need(ns, "drift_code", int)
    r.expect(
        code == 2,
        "drift_code is 2: the plan saw changes",
        f"drift_code is {code!r}, expected 2 (the exit code of a plan that sees changes pending)",
    )
    runs = [
        {"args": list(x.get("args") or []), "exit_code": x.get("exit_code")}
        for x in Terraform(wd, quiet=True).runs()
        if isinstance(x, dict) and isinstance(x.get("at"), (int, float)) and x["at"] > t_drift
    ]
    plans = [x for x in runs if x["args"][:1] == ["plan"] and "-detailed-exitcode" in x["args"]]
    seen = [x for x in plans if x["exit_code"] == 2 and "-refresh=false" not in x["args"]]
    blind = [x for x in plans if "-refresh=false" in x["args"]]
    r.expect(
        bool(seen),
        "a plan with -detailed-exitcode (refresh on) exited 2 after the manual change",
        "no plan with -detailed-exitcode and refresh on saw the drift after the scenario ran"
        + (" (a plan with -refresh=false never looks at the real resources)" if blind else ""),
    )
    applies = [
        x
        for x in runs
        if x["args"][:1] == ["apply"] and x["exit_code"] == 0 and not {"-refresh-only", "-destroy"} & set(x["args"])
    ]
    refresh_only = [x for x in runs if x["args"][:1] == ["apply"] and "-refresh-only" in x["args"]]
    r.expect(
        bool(applies),
        "an apply after the drift put the code's values back",
        "no apply ran after the drift"
        + (": `apply -refresh-only` only copies the drift into the state, it does not undo it" if refresh_only else ""),
    )
    rep = bucket_report(DRIFT_BUCKET)
    r.require(
        rep["exists"],
        f"bucket {DRIFT_BUCKET} still exists",
        f"bucket {DRIFT_BUCKET} is gone: reconcile with apply, do not destroy",
    )
    tags = rep["tags"]
    r.expect(
        "changed-by" not in tags and tags.get("owner") == "platform-team",
        "the bucket's tags match the code again",
        f"the bucket's tags are {tags}, the code says lesson=02, owner=platform-team",
    )
    ssm = aws.client("ssm")
    try:
        value = ssm.get_parameter(Name=DRIFT_PARAM)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        value = None
    r.expect(
        value == "hello from terraform",
        "the parameter holds the code's value again",
        f"the parameter {DRIFT_PARAM} is {value!r}, the code says 'hello from terraform'",
    )
    s3 = aws.client("s3")
    try:
        s3.head_object(Bucket=DRIFT_BUCKET, Key=DRIFT_NOTE)
        kept = True
    except ClientError:
        kept = False
    r.expect(
        kept,
        "the note stored before the drift is still there (fixed in place)",
        f"s3://{DRIFT_BUCKET}/{DRIFT_NOTE} is gone: the bucket was re-created, and its data with it; "
        "apply fixes the tags in place",
    )
    if not r.wrong:
        expect_plan_empty(r, wd, "in the drift directory")


# ------------------------------------------------------------------ 02.5
@check(
    "02.5",
    "The uploads bucket passes the policy scan, fixed rather than silenced",
    hints=[
        "Run scanners.checkov(fix.workdir) and read each finding: which can a few lines of Terraform fix? Fix "
        "those, scan again, then init and apply.",
        "The secure-bucket module meets versioning, KMS encryption, the public access block and a lifecycle rule. "
        "Only " + ", ".join(MAY_SKIP) + " may be skipped, inside the resource, with a reason a reviewer can judge.",
        'fix.write("main.tf", \'module "uploads" {\\n  source = "../modules/secure-bucket"\\n  '
        'name   = "l02-scan-uploads"\\n}\\n\'); scanners.checkov(fix.workdir); fix.init(); fix.apply()',
    ],
)
def check_scan(r, ns):
    wd = workroot() / EX_SCAN_DIR
    r.require(
        any(wd.glob("*.tf")),
        f"{EX_SCAN_DIR} holds Terraform code",
        f"{EX_SCAN_DIR} holds no .tf files: run the cell that creates `fix` first",
    )
    configs = [p for d in (wd, wd.parent) for p in (d / ".checkov.yaml", d / ".checkov.yml") if p.is_file()]
    r.expect(
        not configs,
        "no checkov configuration file switches checks off for the whole directory",
        f"{', '.join(str(p.relative_to(workroot())) for p in configs)} configures checkov for everything in "
        f"{EX_SCAN_DIR}: a check it switches off is not even reported as skipped. Delete it; a skip goes inside "
        "the resource, with its reason",
    )
    try:
        rep = scanners.checkov(wd, quiet=True, lesson=LESSON)  # a fresh scan: a report file can be edited by hand
    except (scanners.ScanError, ToolMissing, subprocess.TimeoutExpired, OSError) as e:
        r.fail(f"the check could not run checkov on {EX_SCAN_DIR}: {e}")
    r.expect(
        rep["resources"] > 0 and rep["passed"] > 0,
        f"checkov (run by this check) scanned {rep['resources']} resource(s), {rep['passed']} checks passed",
        "checkov found nothing to scan: the uploads bucket must still be defined",
    )
    failed = rep["failed"]
    r.expect(
        not failed,
        "no control fails",
        f"{len(failed)} control(s) still fail: " + ", ".join(f"{f[0]} ({f[2]})" for f in failed),
    )
    problems = skip_problems(rep["skipped"])
    r.expect(
        not problems,
        f"{len(rep['skipped'])} skip(s), each a control that does not apply here, with a reason"
        if rep["skipped"]
        else "no finding is skipped",
        "; ".join(problems),
    )
    bucket = bucket_report(EX_UPLOADS_BUCKET)
    r.require(
        bucket["exists"],
        f"bucket {EX_UPLOADS_BUCKET} exists",
        f"there is no bucket {EX_UPLOADS_BUCKET} in the emulator: keep its name in the code, then init and apply",
    )
    expect_secure(r, bucket)
    r.expect(
        any(x["enabled"] for x in bucket["rules"]),
        "the real bucket has a lifecycle rule",
        "the real bucket has no enabled lifecycle rule",
    )
    addr = find_bucket(local_state(wd), EX_UPLOADS_BUCKET)
    r.expect(
        addr is not None,
        f"{EX_SCAN_DIR}'s state manages it ({addr})",
        f"{EX_SCAN_DIR}'s state does not list {EX_UPLOADS_BUCKET}: apply the scanned code from `fix`",
    )
