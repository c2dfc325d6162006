"""Unit tests of cloudlab.lesson02, lesson 02's Terraform templates, and the wrong-answer suite of its checks.

Pure tests need nothing; template tests need `terraform` (and, to validate with the AWS provider,
the machine's provider mirror); tests marked ``lab`` need the running lab. The lab tests of the
helpers touch only ``l02-t...`` buckets, which they delete. The wrong-answer suites build the
exercises' own resources (``l02-ex-reports``, ``/l02/ex/...``, the exercise directories) with real
Terraform, so they run only in a test lab (``make test``, or
``python3 -m cloudlab.lab --profile test run -- .venv/bin/python -m pytest tests/test_lesson02.py``),
and reset lesson 02 before and after.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess

import checktest
import pytest

from cloudlab import lesson02, net
from cloudlab import terraform as tfm
from cloudlab.checks import REGISTRY, CheckFailed
from cloudlab.lesson02 import evidence

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
TEMPLATE_DIRS = sorted(p.parent for p in lesson02.TEMPLATES.glob("*/*.tf") if p.parent.name != "modules")
MODULE_DIR = lesson02.TEMPLATES / "modules" / "secure-bucket"


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(d))
    return d


# ------------------------------------------------------------------ templates
def test_no_terraform_leftovers_in_the_repository():
    bad = [
        p
        for p in lesson02.TEMPLATES.rglob("*")
        if p.name in (".terraform", ".terraform.lock.hcl", "tfplan") or p.name.endswith((".tfstate", ".tfstate.backup"))
    ]
    assert not bad, f"working files in the repository: {bad} (Terraform runs in the lab's state dir)"


def test_every_stack_pins_the_provider_and_uses_no_endpoint_or_key():
    for d in TEMPLATE_DIRS:
        text = "\n".join(p.read_text() for p in d.glob("*.tf"))
        if "hashicorp/aws" in text:
            assert '"~> 5.100"' in text, f"{d.name}: pin the AWS provider"
            assert "s3_use_path_style           = true" in text and "max_retries" in text
        assert "localhost" not in text and "4566" not in text, f"{d.name}: no hard-coded endpoint"
        assert "access_key" not in text and "secret_key" not in text, f"{d.name}: no keys in code"


def test_stacks_need_terraform_1_11():
    """use_lockfile (the S3 backend's own lock) is GA since 1.11; write-only arguments need 1.11."""
    for d in TEMPLATE_DIRS:
        text = "\n".join(p.read_text() for p in d.glob("*.tf"))
        assert 'required_version = ">= 1.11"' in text, d.name


def test_the_module_sets_its_lifecycle_rule_without_the_waiting_resource():
    """aws_s3_bucket_lifecycle_configuration waits >= 55 s per change (provider 5.100); the lesson explains why
    the module uses the bucket's inline rule instead, and the module says so where it does it."""
    text = (MODULE_DIR / "main.tf").read_text()
    assert 'resource "aws_s3_bucket_lifecycle_configuration"' not in text
    assert "lifecycle_rule {" in text and "55 s" in text and "On real AWS" in text


@needs_terraform
def test_templates_are_formatted():
    r = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-list=true", str(lesson02.TEMPLATES)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null"),
    )
    assert r.returncode == 0, f"run `terraform fmt -recursive lessons/02_infrastructure-as-code`: {r.stdout}"


@needs_terraform
def test_platform_template_validates(state_dir):
    """The platform stack (two module calls, workspace settings, a precondition) passes `terraform validate`.

    One stack only: loading the AWS provider's schema costs seconds per directory, and the notebooks
    apply every template in CI anyway. The one warning allowed is the module's inline lifecycle rule."""
    tfm.find_mirror.cache_clear()
    if tfm.mirror() is None:
        pytest.skip("no provider mirror on this machine: validating would download the AWS provider")
    tf = lesson02.workdir("platform", quiet=True)
    tf.run("init", "-backend=false", "-no-color")
    tf.validate()
    assert all("lifecycle_rule is deprecated" in w for w in tf.warnings), tf.warnings


def test_cfn_template_is_the_same_bucket():
    import yaml

    doc = yaml.safe_load(
        (lesson02.TEMPLATES / "cfn" / "secure-bucket.yaml").read_text().replace("!Ref ", "").replace("!GetAtt ", "")
    )
    props = doc["Resources"]["Bucket"]["Properties"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert (
        props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    )
    assert props["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"]
    assert all(props["PublicAccessBlockConfiguration"].values())


def test_module_doc_lists_inputs_and_outputs(capsys):
    rows = {r["name"]: r for r in evidence.module_inputs(MODULE_DIR)}
    assert rows["name"]["default"] is None and rows["name"]["kind"] == "input"
    assert rows["noncurrent_days"]["default"] == "30" and rows["noncurrent_days"]["type"] == "number"
    assert rows["arn"]["kind"] == "output"
    lesson02.module_doc()
    out = capsys.readouterr().out
    assert "noncurrent_days" in out and "required" in out and "outputs:" in out


# ------------------------------------------------------------------ helpers
def test_workdir_copies_the_template_and_the_modules(state_dir):
    tf = lesson02.workdir("platform", quiet=True)
    assert tf.workdir == state_dir / "terraform" / "l02" / "platform"
    assert {"main.tf", "versions.tf", "outputs.tf"} <= set(tf.files())
    assert (tf.workdir.parent / "modules" / "secure-bucket" / "main.tf").exists()
    (tf.workdir / "terraform.tfstate").write_text("{}")
    assert not (lesson02.workdir("platform", quiet=True).workdir / "terraform.tfstate").exists(), "fresh wipes"
    assert lesson02.workdir("scratch", quiet=True).files() == [], "no template: an empty directory"
    tf.write("main.tf", "# mine\n")
    (tf.workdir / "terraform.tfstate").write_text("{}")
    again = lesson02.workdir("platform", fresh=False, quiet=True)  # the cell run twice: nothing lost
    assert again.read("main.tf") == "# mine\n" and (again.workdir / "terraform.tfstate").exists()


def test_state_keys_per_workspace():
    assert lesson02.state_key("a/terraform.tfstate") == "a/terraform.tfstate"
    assert lesson02.state_key("a/terraform.tfstate", "prod") == "env:/prod/a/terraform.tfstate"


STATE = {
    "resources": [
        {
            "mode": "managed",
            "type": "aws_ssm_parameter",
            "name": "p",
            "instances": [{"attributes": {"name": "/l02/x", "value": "s3cret-value", "insecure_value": None}}],
        },
        {
            "mode": "managed",
            "module": "module.logs",
            "type": "aws_s3_bucket",
            "name": "this",
            "instances": [{"attributes": {"bucket": "l02-dev-logs"}}],
        },
        {
            "mode": "managed",
            "type": "aws_ssm_parameter",
            "name": "sizes",
            "instances": [
                {"index_key": "a", "attributes": {"name": "/l02/a", "insecure_value": "t3.small"}},
                {"index_key": "b", "attributes": {"name": "/l02/b", "insecure_value": "m5.large"}},
            ],
        },
        {"mode": "data", "type": "aws_caller_identity", "name": "me", "instances": []},
    ]
}


def test_state_resources_and_secret_search():
    assert lesson02.state_resources(STATE) == [
        "aws_ssm_parameter.p",
        "module.logs.aws_s3_bucket.this",
        "aws_ssm_parameter.sizes",
    ]
    assert lesson02.state_resources(None) == []
    assert lesson02.where_in_state(STATE, "s3cret-value") == ["aws_ssm_parameter.p.value"]
    assert lesson02.where_in_state(STATE, "absent") == []


def test_evidence_reads_state_documents():
    assert evidence.find_bucket(STATE, "l02-dev-logs") == "module.logs.aws_s3_bucket.this"
    assert evidence.find_bucket(STATE, "l02-other") is None and evidence.find_bucket(None, "x") is None
    assert evidence.parameters(STATE) == {"/l02/x": "s3cret-value", "/l02/a": "t3.small", "/l02/b": "m5.large"}
    addrs = [a for a, _ in evidence.instances(STATE, "aws_ssm_parameter")]
    assert addrs == ["aws_ssm_parameter.p", 'aws_ssm_parameter.sizes["a"]', 'aws_ssm_parameter.sizes["b"]']
    assert evidence.instances({"resources": [None, {"mode": "managed"}]}, "aws_s3_bucket") == []


def test_evidence_reads_a_working_directory_and_tolerates_junk(tmp_path):
    wd = tmp_path / "wd"
    assert evidence.backend_settings(wd) == {} and evidence.selected_workspace(wd) == "default"
    assert evidence.module_sources(wd) == {} and evidence.local_state(wd) is None
    (wd / ".terraform" / "modules").mkdir(parents=True)
    (wd / ".terraform" / "terraform.tfstate").write_text(
        json.dumps({"backend": {"type": "s3", "config": {"key": "k", "use_lockfile": True}}})
    )
    (wd / ".terraform" / "environment").write_text("prod")
    (wd / ".terraform" / "modules" / "modules.json").write_text(
        json.dumps({"Modules": [{"Key": "", "Source": "", "Dir": "."}, {"Key": "r", "Source": "../m", "Dir": "x"}]})
    )
    (wd / "terraform.tfstate").write_text("{not json")
    assert evidence.backend_settings(wd) == {"type": "s3", "config": {"key": "k", "use_lockfile": True}}
    assert evidence.selected_workspace(wd) == "prod"
    assert evidence.module_sources(wd) == {"r": "../m"}
    assert evidence.local_state(wd) is None, "a broken state file reads as no state, never a crash"


@pytest.mark.parametrize(
    "reason",
    ["", "n/a", "N/A", "none", "No comment provided", "not needed", "false positive", "skip", "TODO", "ok"],
)
def test_an_empty_skip_reason_is_no_reason(reason):
    assert "no reason given" in lesson02.reason_problem(reason)


@pytest.mark.parametrize(
    "reason", ["TODO: add logging later", "will fix later", "temporary, until the audit", "quick fix for the demo"]
)
def test_a_promise_is_a_to_do_not_a_reason(reason):
    assert "to-do" in lesson02.reason_problem(reason)


def test_short_reasons_cannot_be_judged_and_real_ones_pass():
    assert "too short" in lesson02.reason_problem("lab only")
    assert lesson02.reason_problem("event notifications need a consumer, and nothing here consumes them") is None
    module_reasons = [
        line.split(":", 2)[2]
        for line in (MODULE_DIR / "main.tf").read_text().splitlines()
        if line.strip().startswith("#checkov:skip=")
    ]
    assert len(module_reasons) == 3 and all(lesson02.reason_problem(r) is None for r in module_reasons)


def test_skip_policy_fix_what_can_be_met():
    problems = evidence.skip_problems(
        [
            ("CKV_AWS_21", "aws_s3_bucket.u", "versioning is not needed for uploads, they are re-creatable"),
            ("CKV_AWS_18", "aws_s3_bucket.u", "n/a"),
            ("CKV2_AWS_62", "aws_s3_bucket.u", "nothing in this lab consumes bucket events at all"),
            "junk",
        ]
    )
    assert len(problems) == 2
    assert "CKV_AWS_21" in problems[0] and "can be met here" in problems[0]
    assert "CKV_AWS_18" in problems[1] and "no reason given" in problems[1]
    assert set(lesson02.MAY_SKIP) == {"CKV_AWS_18", "CKV_AWS_144", "CKV2_AWS_62"}


def test_unreachable_endpoint_is_local_and_silent():
    url = lesson02.unreachable_endpoint()
    assert url.startswith("http://127.0.0.1:")
    assert not net.answers(url, timeout=1)


# ------------------------------------------------------------------ checks without the lab
def test_five_checks():
    assert sorted(k for k in REGISTRY if k.startswith("02.")) == ["02.1", "02.2", "02.3", "02.4", "02.5"]


def test_drift_check_needs_the_scenario(state_dir):
    with pytest.raises(CheckFailed, match="drift scenario has not run"):
        lesson02.check_drift(ns={"drift_code": 2})


def test_drift_check_reads_a_broken_run_log_without_crashing(state_dir, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{net.free_port()}")  # no emulator: words, not a crash
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    wd = state_dir / "terraform" / "l02" / "ex-drift"
    wd.mkdir(parents=True)
    (wd / ".drift-token").write_text("abc 1.0\n")
    (wd / ".cloudlab-runs.jsonl").write_text('{"at": 5}\n[1, 2]\nnot json\n{"args": null, "at": "x"}\n')
    with pytest.raises(CheckFailed) as info:
        lesson02.check_drift(ns={"drift_code": 2})
    assert "no plan with -detailed-exitcode" in str(info.value)


def test_scan_check_needs_code(state_dir):
    with pytest.raises(CheckFailed, match="holds no .tf files"):
        lesson02.check_scan(ns={})


# ------------------------------------------------------------------ helpers against the lab
@pytest.mark.lab
def test_bucket_report_reads_real_settings():
    import cloudlab

    s3 = cloudlab.client("s3")
    name = f"l02-t-{secrets.token_hex(4)}"
    assert lesson02.bucket_report(name)["exists"] is False
    s3.create_bucket(Bucket=name)
    try:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "old",
                        "Status": "Enabled",
                        "Filter": {"Prefix": "reports/"},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
                        "Expiration": {"Days": 90},
                    }
                ]
            },
        )
        rep = lesson02.bucket_report(name)
        assert rep["exists"] and rep["versioning"] == "Enabled" and rep["tags"] == {"team": "data"}
        assert rep["rules"] == [
            {
                "id": "old",
                "enabled": True,
                "prefix": "reports/",
                "noncurrent_days": 7,
                "expiration_days": 90,
                "abort_days": None,
            }
        ]
        assert rep["noncurrent_days"] == [7]  # (public access: blocked by default on new buckets, as on AWS since 2023)
    finally:
        s3.delete_bucket_lifecycle(Bucket=name)
        s3.delete_bucket(Bucket=name)


@pytest.mark.lab
def test_the_teams_secrets_key_is_made_once_and_rotates():
    import cloudlab

    cloudlab.connect(quiet=True)
    arn = lesson02.bootstrap_secrets_key(quiet=True)
    assert lesson02.bootstrap_secrets_key(quiet=True) == arn  # found by its alias the second time
    kms = cloudlab.client("kms")
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"]
    assert kms.describe_key(KeyId=lesson02.APP_KMS_ALIAS)["KeyMetadata"]["Arn"] == arn
    assert 'kms_key = "alias/l02-app-secrets"' in (lesson02.TEMPLATES / "secret" / "main.tf").read_text()


@pytest.mark.lab
def test_wait_for_lock_reads_the_lock_object():
    import cloudlab

    s3 = cloudlab.client("s3")
    bucket = f"l02-t-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(
            Bucket=bucket,
            Key="k/terraform.tfstate.tflock",
            Body=json.dumps({"ID": "1", "Operation": "OperationTypeApply", "Who": "bob@ci"}).encode(),
        )
        assert lesson02.wait_for_lock("k/terraform.tfstate", bucket=bucket, timeout=2)["Who"] == "bob@ci"
        with pytest.raises(tfm.TerraformError, match="no lock object"):
            lesson02.wait_for_lock("other/terraform.tfstate", bucket=bucket, timeout=0.5)
    finally:
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)


# ------------------------------------------------------------------ the wrong-answer suite (real Terraform, test lab)
# For every check: the answers a learner plausibly writes to get the green tick without the goal, each
# rejected with a [missing] line and a hint, then the solution passing. Everything is built for real
# (Terraform applies, boto3 calls), except where noted.
@pytest.fixture(scope="module")
def l02_lab():
    if os.environ.get("CLOUDLAB_PROFILE") != "test":
        pytest.skip(
            "the wrong-answer suite rebuilds the exercises' own resources: run it in a test lab "
            "(make test, or python3 -m cloudlab.lab --profile test run -- .venv/bin/python -m pytest ...)"
        )
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    tfm.find_mirror.cache_clear()
    if tfm.mirror() is None:
        pytest.skip("no provider mirror on this machine")
    import cloudlab

    cloudlab.reset_lesson("02")
    lesson02.bootstrap_state_bucket(quiet=True)
    yield cloudlab
    cloudlab.reset_lesson("02")


def rejected(check, *words, ns=None) -> str:
    """checktest.rejected with the words first (lesson 02's checks mostly read files, not a namespace)."""
    return checktest.rejected(check, ns, *words)


def module_call(source="../modules/secure-bucket", days=30, tags='{ team = "data" }', name="reports"):
    return (
        f'module "{name}" {{\n  source          = "{source}"\n  name            = "l02-ex-reports"\n'
        f"  noncurrent_days = {days}\n  tags            = {tags}\n}}\n"
    )


PLAIN_REPORTS = """
resource "aws_s3_bucket" "reports" {
  bucket        = "l02-ex-reports"
  force_destroy = true
  tags          = { team = "data" }
  lifecycle_rule {
    id      = "old-versions"
    enabled = true
    noncurrent_version_expiration {
      days = 30
    }
  }
}

resource "aws_s3_bucket_versioning" "reports" {
  bucket = aws_s3_bucket.reports.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "reports" {
  bucket = aws_s3_bucket.reports.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "reports" {
  bucket                  = aws_s3_bucket.reports.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
"""


EXTRA_BUCKET = """
resource "aws_s3_bucket" "archive" {
  bucket        = "l02-ex-reports-archive"
  force_destroy = true
}
"""


def make_reports_bucket_by_hand(s3):
    """Every setting the goal asks for, made with boto3, as someone in the console would."""
    name = lesson02.EX_REPORTS_BUCKET
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "old",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                }
            ]
        },
    )
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})


def solved_ex1():
    """ex1 with the solution of exercise 1 applied (local state)."""
    ex1 = lesson02.workdir("ex-module", template="exercise", quiet=True)
    ex1.write("main.tf", module_call())
    ex1.init()
    ex1.apply()
    return ex1


@pytest.mark.lab
def test_02_1_wrong_answers_are_rejected_and_the_solution_passes(l02_lab):
    from cloudlab.cleanup import empty_and_delete_bucket

    s3, check = l02_lab.client("s3"), lesson02.check_module
    ex1 = lesson02.workdir("ex-module", template="exercise", quiet=True)
    rejected(check, "there is no bucket l02-ex-reports")  # nothing done yet

    make_reports_bucket_by_hand(s3)  # every setting right, but clicked, not coded
    rejected(check, "does not list the bucket", "made by applying ex1's code")
    empty_and_delete_bucket(s3, lesson02.EX_REPORTS_BUCKET)

    ex1.write("main.tf", PLAIN_REPORTS)  # right settings, own resources instead of the team's module
    ex1.init()
    ex1.apply()
    rejected(check, "plain resource (aws_s3_bucket.reports)", "not made by the team's secure-bucket module")
    ex1.destroy()

    ex1.write("main.tf", module_call(days=720))  # the module, but 30 days typed as hours
    ex1.init()
    ex1.apply()
    rejected(check, "old versions expire after 720 days, not 30")

    ex1.write("main.tf", module_call(tags='{ owner = "data-team" }'))  # ownership in another tag
    ex1.apply()
    rejected(check, "the ownership tag team is None, expected 'data'")

    ex1.write("main.tf", module_call() + EXTRA_BUCKET)  # the module, and a bucket more than asked for
    ex1.apply()
    rejected(check, "ex1 also manages aws_s3_bucket.archive")

    ex1.write("main.tf", module_call())  # the solution ...
    ex1.apply()
    check(ns={})
    ex1.write("main.tf", module_call(days=60))  # ... then the code changed and never applied
    rejected(check, "a fresh plan in ex1 still wants changes")
    ex1.write("main.tf", module_call())


def _empty_state_bucket(s3):
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=lesson02.STATE_BUCKET):
        objs = [
            {"Key": o["Key"], "VersionId": o["VersionId"]}
            for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if objs:
            s3.delete_objects(Bucket=lesson02.STATE_BUCKET, Delete={"Objects": objs, "Quiet": True})


def lesson02_s3_endpoint() -> str:
    from cloudlab import aws

    return aws.endpoint_for("s3")


@pytest.mark.lab
def test_02_2_wrong_answers_are_rejected_and_the_solution_passes(l02_lab, tmp_path):
    s3, ddb, check = l02_lab.client("s3"), l02_lab.client("dynamodb"), lesson02.check_remote_state
    if lesson02.bucket_report(lesson02.EX_REPORTS_BUCKET)["exists"]:
        ex1 = tfm.Terraform(lesson02.workroot() / "ex-module", quiet=True)
    else:
        ex1 = solved_ex1()
    snapshot = tmp_path / "ex1"
    shutil.copytree(ex1.workdir, snapshot, symlinks=True)

    def restore():
        shutil.rmtree(ex1.workdir)
        shutil.copytree(snapshot, ex1.workdir, symlinks=True)
        _empty_state_bucket(s3)

    backend_tf = 'terraform {\n  backend "s3" {}\n}\n'
    cfg = tfm.backend_config(lesson02.EX_STATE_KEY, lesson02.STATE_BUCKET)
    rejected(check, "not initialised with the s3 backend")  # nothing done yet

    s3.put_object(  # the state file copied into the bucket by hand; ex1 still writes its local file
        Bucket=lesson02.STATE_BUCKET, Key=lesson02.EX_STATE_KEY, Body=(ex1.workdir / "terraform.tfstate").read_bytes()
    )
    rejected(check, "not initialised with the s3 backend")
    restore()

    # The cell that creates ex1 run again (its local state wiped), then the backend: Terraform starts empty
    fresh = lesson02.workdir("ex-module", template="exercise", quiet=True)
    fresh.write("main.tf", module_call())
    fresh.write("backend.tf", backend_tf)
    fresh.init(backend_config=cfg)
    rejected(check, "exercise/terraform.tfstate does not exist", "migrate=True moves it")
    restore()

    ex1.write("backend.tf", backend_tf)  # moved, to a key nobody looks at
    ex1.init(backend_config=tfm.backend_config("ex-module/terraform.tfstate", lesson02.STATE_BUCKET), migrate=True)
    rejected(check, "the state key is 'ex-module/terraform.tfstate'")
    restore()

    ex1.write("backend.tf", backend_tf)  # moved, without a lock
    ex1.init(backend_config=dict(cfg, use_lockfile="false"), migrate=True)
    rejected(check, "use_lockfile is not true")
    restore()

    ddb.create_table(  # moved, locked the deprecated way: a DynamoDB table (served by moto)
        TableName="l02-locks",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        endpoints = f'{{s3="{lesson02_s3_endpoint()}",dynamodb="{os.environ["AWS_ENDPOINT_URL_DYNAMODB"]}"}}'
        ex1.write("backend.tf", backend_tf)
        ex1.init(
            backend_config=dict(cfg, use_lockfile="false", dynamodb_table="l02-locks", endpoints=endpoints),
            migrate=True,
        )
        rejected(check, "DynamoDB locking is deprecated since Terraform 1.11", "use_lockfile is not true")
    finally:
        ddb.delete_table(TableName="l02-locks")
    restore()

    ex1.write("backend.tf", backend_tf)  # moved, then another workspace selected
    ex1.init(backend_config=cfg, migrate=True)
    ex1.workspace("exercise")
    rejected(check, "has workspace 'exercise' selected")
    restore()

    ex1.write("backend.tf", backend_tf)  # -reconfigure with a local state: Terraform stops (it would have to ask)
    with pytest.raises(tfm.TerraformError, match="migrate=True"):
        ex1.init(backend_config=cfg, reconfigure=True)
    rejected(check, "not initialised with the s3 backend")

    other = tfm.backend_config("ex-module/terraform.tfstate", lesson02.STATE_BUCKET)
    ex1.init(backend_config=other, migrate=True)  # moved to a key nobody looks at, ...
    rejected(check, "the state key is 'ex-module/terraform.tfstate'")
    # ... then the task cell runs again: it starts from exercise 1's local state, so any answer can follow
    assert "back where exercise 1 left it" in lesson02.back_to_local_state(ex1)
    assert lesson02.back_to_local_state(ex1).startswith("ex1 is as exercise 1 left it")
    assert "ex-module/terraform.tfstate" not in [
        o["Key"] for o in s3.list_objects_v2(Bucket=lesson02.STATE_BUCKET).get("Contents", [])
    ]
    ex1.write("backend.tf", backend_tf)  # the solution
    ex1.init(backend_config=cfg, migrate=True)
    check(ns={})
    assert "back where exercise 1 left it" in lesson02.back_to_local_state(ex1)  # a right answer run again, too
    ex1.init(backend_config=cfg, migrate=True)
    check(ns={})


ENVS_SOLUTION = """
locals {
  sizes = { staging = "t3.small", prod = "m5.large" }
}

resource "aws_ssm_parameter" "instance_size" {
  name           = "/l02/ex/${terraform.workspace}/instance-size"
  type           = "String"
  insecure_value = local.sizes[terraform.workspace]
  tags           = { env = terraform.workspace }
}
"""
ENVS_HARDCODED = """
resource "aws_ssm_parameter" "staging" {
  name           = "/l02/ex/staging/instance-size"
  type           = "String"
  insecure_value = "t3.small"
  tags           = { env = "staging" }
}

resource "aws_ssm_parameter" "prod" {
  name           = "/l02/ex/prod/instance-size"
  type           = "String"
  insecure_value = "m5.large"
  tags           = { env = "prod" }
}
"""
ENVS_BY_VAR = """
variable "env" {
  type    = string
  default = "staging"
}

locals {
  sizes = { staging = "t3.small", prod = "m5.large" }
}

resource "aws_ssm_parameter" "instance_size" {
  name           = "/l02/ex/${var.env}/instance-size"
  type           = "String"
  insecure_value = local.sizes[var.env]
  tags           = { env = var.env }
}
"""


@pytest.mark.lab
def test_02_3_wrong_answers_are_rejected_and_the_solution_passes(l02_lab):
    ssm, s3, check = l02_lab.client("ssm"), l02_lab.client("s3"), lesson02.check_workspaces
    envs = lesson02.remote("ex-envs", key=lesson02.EX_ENVS_KEY, template="exercise-envs", quiet=True)

    def clean():
        names = [f"/l02/ex/{env}/instance-size" for env in lesson02.EX_SIZES]
        ssm.delete_parameters(Names=names)
        for ws in ("default", *lesson02.EX_SIZES):
            s3.delete_object(Bucket=lesson02.STATE_BUCKET, Key=lesson02.state_key(lesson02.EX_ENVS_KEY, ws))

    rejected(check, "parameter /l02/ex/staging/instance-size does not exist")  # nothing done yet

    envs.write("main.tf", ENVS_SOLUTION)  # the solution
    for ws in lesson02.EX_SIZES:
        envs.workspace(ws)
        envs.apply()
    check(ns={})

    # The environment from a -var: right when applied with the right -var, wrong when someone forgets it.
    # (Its resources are the solution's, so the solution's applies stand in for `apply -var env=...`.)
    envs.write("main.tf", ENVS_BY_VAR)
    rejected(check, "a fresh plan in workspace prod still wants changes")
    clean()

    envs.write("main.tf", ENVS_HARDCODED)  # both environments in one state, applied once
    envs.workspace("default")
    envs.apply()
    rejected(
        check,
        "env:/staging/envs/terraform.tfstate does not manage /l02/ex/staging/instance-size",
        "the default workspace manages /l02/ex/prod/instance-size, /l02/ex/staging/instance-size",
    )
    clean()

    envs.write("main.tf", ENVS_SOLUTION.replace('"String"', '"SecureString"').replace("insecure_value", "value"))
    envs.workspace("staging")  # a secret's type for public configuration
    envs.apply()
    rejected(check, "/l02/ex/staging/instance-size is a SecureString, not a String")
    envs.write("main.tf", ENVS_SOLUTION.replace("insecure_value", "value"))  # fixed, with `value` ...
    for ws in lesson02.EX_SIZES:
        envs.workspace(ws)
        envs.apply()
    check(ns={})
    envs.write("main.tf", ENVS_SOLUTION)  # ... then moved to insecure_value: the provider never converges
    for ws in lesson02.EX_SIZES:
        envs.workspace(ws)
        envs.apply()
    rejected(check, '-replace=aws_ssm_parameter.instance_size"', "hashicorp/terraform-provider-aws#30350")
    for ws in lesson02.EX_SIZES:  # what the message says
        envs.workspace(ws)
        envs.run("apply", "-auto-approve", "-no-color", "-replace=aws_ssm_parameter.instance_size")
    check(ns={})
    clean()

    swapped = ENVS_SOLUTION.replace(
        'staging = "t3.small", prod = "m5.large"', 'staging = "m5.large", prod = "t3.small"'
    )
    envs.write("main.tf", swapped)  # the sizes swapped
    envs.workspace("staging")
    envs.apply()
    rejected(check, "/l02/ex/staging/instance-size is 'm5.large', expected 't3.small'")
    clean()


@pytest.mark.lab
def test_02_4_wrong_answers_are_rejected_and_the_solution_passes(l02_lab):
    s3, ssm, check = l02_lab.client("s3"), l02_lab.client("ssm"), lesson02.check_drift
    drift = lesson02.drift_scenario()
    drift.quiet = True
    rejected(check, "`drift_code` is not defined yet")

    rejected(check, "no plan with -detailed-exitcode", "no apply ran", ns={"drift_code": 2})  # the answer typed in

    blind = drift.plan(detailed_exitcode=True, refresh=False).exit_code  # a plan that never looks at reality
    assert blind == 0
    rejected(check, "drift_code is 0, expected 2", "-refresh=false never looks", ns={"drift_code": blind})
    rejected(check, "should be a int", ns={"drift_code": "2"})  # the exit code as text

    seen = drift.plan(detailed_exitcode=True).exit_code  # the drift seen, then accepted with -refresh-only
    drift.run("apply", "-refresh-only", "-auto-approve", "-no-color")
    rejected(check, "`apply -refresh-only` only copies the drift", "the bucket's tags are", ns={"drift_code": seen})

    drift.run("state", "rm", "aws_s3_bucket.notes")  # ... then the bucket dropped from the state
    rejected(check, "no apply ran after the drift", "the bucket's tags are", ns={"drift_code": seen})

    tags = [{"Key": "lesson", "Value": "02"}, {"Key": "owner", "Value": "platform-team"}]  # ... then undone by hand
    s3.put_bucket_tagging(Bucket=lesson02.DRIFT_BUCKET, Tagging={"TagSet": tags})
    ssm.put_parameter(Name=lesson02.DRIFT_PARAM, Value="hello from terraform", Type="String", Overwrite=True)
    rejected(check, "no apply ran after the drift", ns={"drift_code": seen})

    drift = lesson02.drift_scenario()  # silenced: the code told to ignore what drifted, so the plan is empty
    drift.quiet = True
    seen = drift.plan(detailed_exitcode=True).exit_code
    main = drift.read("main.tf")
    drift.edit("main.tf", 'resource "aws_s3_bucket" "notes" {', IGNORE_TAGS)
    drift.edit("main.tf", 'resource "aws_ssm_parameter" "greeting" {', IGNORE_VALUE)
    drift.apply()
    rejected(check, "the bucket's tags are", "the parameter /l02/", ns={"drift_code": seen})
    drift.write("main.tf", main)

    drift = lesson02.drift_scenario()  # the solution ...
    drift.quiet = True
    result = drift.plan(detailed_exitcode=True)
    drift.apply(plan_file="tfplan")
    check(ns={"drift_code": result.exit_code})

    drift.destroy()  # ... but by destroying and re-creating: the code wins, the data is gone
    drift.apply()
    rejected(check, "notes/keep-me.txt is gone", ns={"drift_code": result.exit_code})


IGNORE_TAGS = 'resource "aws_s3_bucket" "notes" {\n  lifecycle {\n    ignore_changes = [tags]\n  }'
IGNORE_VALUE = (
    'resource "aws_ssm_parameter" "greeting" {\n  lifecycle {\n    ignore_changes = [insecure_value, value]\n  }'
)

SCAN_SKIP_ALL = """
resource "aws_s3_bucket" "uploads" {
  #checkov:skip=CKV_AWS_21:uploads are re-created by the clients, old versions are not needed
  #checkov:skip=CKV_AWS_145:the default AES256 encryption is good enough for uploads
  #checkov:skip=CKV2_AWS_6:the bucket has no public policy, so the block adds nothing
  #checkov:skip=CKV2_AWS_61:objects are deleted by the app when processed
  #checkov:skip=CKV_AWS_18:access logging needs a separate log bucket we do not have here
  #checkov:skip=CKV_AWS_144:cross-region replication needs a second region the lab does not have
  #checkov:skip=CKV2_AWS_62:nothing in this lab consumes bucket events at all
  bucket        = "l02-scan-uploads"
  force_destroy = true
}
"""
SCAN_FIXED_LAZY_SKIPS = """
resource "aws_s3_bucket" "uploads" {
  #checkov:skip=CKV_AWS_18:n/a
  #checkov:skip=CKV_AWS_144:TODO replicate later
  #checkov:skip=CKV2_AWS_62
  bucket        = "l02-scan-uploads"
  force_destroy = true
  lifecycle_rule {
    id      = "old-versions"
    enabled = true
    noncurrent_version_expiration {
      days = 30
    }
  }
}

resource "aws_s3_bucket_versioning" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
"""
SCAN_SOLUTION = 'module "uploads" {\n  source = "../modules/secure-bucket"\n  name   = "l02-scan-uploads"\n}\n'


@pytest.mark.lab
def test_02_5_wrong_answers_are_rejected_and_the_solution_passes(l02_lab):
    import time

    check = lesson02.check_scan
    fix = lesson02.workdir("ex-scan", template="scan", quiet=True)
    rejected(check, "7 control(s) still fail", "CKV_AWS_21")  # the hasty code as it is

    clean = {"failed": [], "passed": 20, "skipped": [], "resources": 5, "scanned_at": time.time() + 60}
    (fix.workdir / ".checkov.json").write_text(json.dumps(clean))  # a clean report written by hand
    rejected(check, "7 control(s) still fail")

    fix.write("main.tf", SCAN_SKIP_ALL)  # every finding skipped, with reasons that sound fine
    msg = rejected(check, "CKV_AWS_21 on aws_s3_bucket.uploads is skipped, but this control can be met here")
    assert all(cid in msg for cid in ("CKV_AWS_145", "CKV2_AWS_6", "CKV2_AWS_61"))
    assert "CKV_AWS_18 on" not in msg, "a skip of access logging with a real reason is fine"

    fix.write("main.tf", SCAN_FIXED_LAZY_SKIPS)  # the data protected, the other three skipped without a reason
    rejected(check, "CKV_AWS_18 on aws_s3_bucket.uploads: no reason given", "promises a fix later", "CKV2_AWS_62")

    lazy = (
        "  #checkov:skip=CKV_AWS_18:n/a\n  #checkov:skip=CKV_AWS_144:TODO replicate later\n"
        "  #checkov:skip=CKV2_AWS_62\n"
    )
    fix.write("main.tf", SCAN_FIXED_LAZY_SKIPS.replace(lazy, ""))
    (fix.workdir / ".checkov.yaml").write_text("skip-check:\n  - CKV_AWS_18\n  - CKV_AWS_144\n  - CKV2_AWS_62\n")
    fix.init()  # the data protected, the three others switched off for the whole directory, without a reason
    fix.apply()
    rejected(check, ".checkov.yaml configures checkov for everything in ex-scan")
    (fix.workdir / ".checkov.yaml").unlink()
    fix.destroy()

    fix.write("main.tf", SCAN_SOLUTION)  # fixed and scanned, never applied
    rejected(check, "there is no bucket l02-scan-uploads")

    fix.write("main.tf", SCAN_SOLUTION)  # the solution
    fix.init()
    fix.apply()
    check(ns={})
