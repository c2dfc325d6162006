"""Unit tests of cloudlab.lesson02 and of lesson 02's Terraform templates.

Pure tests need nothing; template tests need `terraform` (and, to validate with the AWS provider,
the machine's provider mirror); tests marked ``lab`` need the running lab and only touch
``l02-t...`` buckets, which they delete.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time

import pytest

from cloudlab import lesson02, net
from cloudlab import terraform as tfm
from cloudlab.checks import REGISTRY, CheckFailed

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
TEMPLATE_DIRS = sorted(p.parent for p in lesson02.TEMPLATES.glob("*/*.tf") if p.parent.name != "modules")


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
    apply every template in CI anyway."""
    tfm.find_mirror.cache_clear()
    if tfm.mirror() is None:
        pytest.skip("no provider mirror on this machine: validating would download the AWS provider")
    tf = lesson02.workdir("platform", quiet=True)
    tf.run("init", "-backend=false", "-no-color")
    tf.validate()
    assert tf.warnings == []


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


# ------------------------------------------------------------------ helpers
def test_workdir_copies_the_template_and_the_modules(state_dir):
    tf = lesson02.workdir("platform", quiet=True)
    assert tf.workdir == state_dir / "terraform" / "l02" / "platform"
    assert {"main.tf", "versions.tf", "outputs.tf"} <= set(tf.files())
    assert (tf.workdir.parent / "modules" / "secure-bucket" / "main.tf").exists()
    (tf.workdir / "terraform.tfstate").write_text("{}")
    assert not (lesson02.workdir("platform", quiet=True).workdir / "terraform.tfstate").exists(), "fresh wipes"
    assert lesson02.workdir("scratch", quiet=True).files() == [], "no template: an empty directory"


def test_state_keys_per_workspace():
    assert lesson02.state_key("a/terraform.tfstate") == "a/terraform.tfstate"
    assert lesson02.state_key("a/terraform.tfstate", "prod") == "env:/prod/a/terraform.tfstate"


STATE = {
    "resources": [
        {
            "mode": "managed",
            "type": "aws_ssm_parameter",
            "name": "p",
            "instances": [{"attributes": {"name": "/l02/x", "value": "s3cret-value"}}],
        },
        {
            "mode": "managed",
            "module": "module.logs",
            "type": "aws_s3_bucket",
            "name": "this",
            "instances": [{"attributes": {"bucket": "l02-dev-logs"}}],
        },
        {"mode": "data", "type": "aws_caller_identity", "name": "me", "instances": []},
    ]
}


def test_state_resources_and_secret_search():
    assert lesson02.state_resources(STATE) == ["aws_ssm_parameter.p", "module.logs.aws_s3_bucket.this"]
    assert lesson02.state_resources(None) == []
    assert lesson02.where_in_state(STATE, "s3cret-value") == ["aws_ssm_parameter.p.value"]
    assert lesson02.where_in_state(STATE, "absent") == []


def test_unreachable_endpoint_is_local_and_silent():
    url = lesson02.unreachable_endpoint()
    assert url.startswith("http://127.0.0.1:")
    assert not net.answers(url, timeout=1)


# ------------------------------------------------------------------ checks
def test_five_checks():
    assert sorted(k for k in REGISTRY if k.startswith("02.")) == ["02.1", "02.2", "02.3", "02.4", "02.5"]


def write_scan(wd, failed=(), skipped=(), resources=5, passed=10, after=True):
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "main.tf").write_text('module "uploads" {\n  name = "l02-scan-uploads"\n}\n')
    if after:
        time.sleep(0.01)
    rep = {
        "failed": list(failed),
        "skipped": list(skipped),
        "resources": resources,
        "passed": passed,
        "scanned_at": time.time() if after else time.time() - 60,
    }
    (wd / ".checkov.json").write_text(json.dumps(rep))


def test_scan_check_passes_on_a_clean_report(state_dir):
    write_scan(
        state_dir / "terraform" / "l02" / "ex-scan", skipped=[("CKV_AWS_18", "m.b", "access logs need a second bucket")]
    )
    lesson02.check_scan(ns={})


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"failed": [("CKV_AWS_21", "aws_s3_bucket.uploads", "versioning")]}, "CKV_AWS_21"),
        ({"skipped": [("CKV_AWS_18", "x", "")]}, "without a real reason"),
        ({"after": False}, "changed after the last scan"),
        ({"resources": 0, "passed": 0}, "nothing to check"),
    ],
)
def test_scan_check_fails_with_a_reason(state_dir, kwargs, words):
    write_scan(state_dir / "terraform" / "l02" / "ex-scan", **kwargs)
    with pytest.raises(CheckFailed, match=words):
        lesson02.check_scan(ns={})


def test_scan_check_without_a_report(state_dir):
    with pytest.raises(CheckFailed, match="no scan report"):
        lesson02.check_scan(ns={})


def test_drift_check_needs_the_scenario(state_dir):
    with pytest.raises(CheckFailed, match="drift scenario has not run"):
        lesson02.check_drift(ns={"drift_code": 2})


def test_scan_runs_checkov_offline(state_dir):
    from cloudlab import scanners

    tf = lesson02.workdir("scan", quiet=True)
    rep = scanners.checkov(tf.workdir, quiet=True)
    assert "CKV_AWS_21" in {f[0] for f in rep["failed"]}, "an unversioned bucket is flagged"
    tf.write("main.tf", 'module "uploads" {\n  source = "../modules/secure-bucket"\n  name   = "l02-scan-uploads"\n}\n')
    rep = scanners.checkov(tf.workdir, quiet=True)
    assert rep["failed"] == [] and rep["resources"] >= 5
    assert all(len(why) > 10 for _, _, why in rep["skipped"]), "the module's skips carry reasons"


# ------------------------------------------------------------------ against the lab
@pytest.mark.lab
def test_bucket_report_reads_real_settings():
    import cloudlab

    s3 = cloudlab.client("s3")
    name = f"l02-t-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    try:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
        rep = lesson02.bucket_report(name)
        assert rep["versioning"] == "Enabled" and rep["tags"] == {"team": "data"}
        assert rep["noncurrent_days"] == []
    finally:
        s3.delete_bucket(Bucket=name)


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


@pytest.mark.lab
def test_blank_exercise_checks_fail_plainly(state_dir):
    """On an empty lab the state-reading checks fail with words, not tracebacks."""
    import cloudlab

    s3 = cloudlab.client("s3")
    if any(b["Name"] == lesson02.EX_REPORTS_BUCKET for b in s3.list_buckets()["Buckets"]):
        pytest.skip("the exercise bucket exists (a solution ran in this lab)")
    with pytest.raises(CheckFailed, match="no bucket l02-ex-reports"):
        lesson02.check_module(ns={})
    with pytest.raises(CheckFailed, match="does not exist"):
        lesson02.check_workspaces(ns={})
