"""Unit tests of cloudlab.terraform (the Terraform runner).

Most tests are pure or run the real `terraform` binary on small, provider-free configurations
(offline, a second each). Tests marked ``lab`` talk to the running lab; they create only
``/l02/t-...`` parameters and remove them.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

import pytest

from cloudlab import terraform as tfm
from cloudlab.terraform import (
    Change,
    LabDown,
    PlanSummary,
    Result,
    Terraform,
    TerraformError,
    backend_config,
    cli_config_text,
    explain,
    parse_plan_json,
    summary_from_events,
)

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    """A private lab state dir, so tests never touch the learner's .lab/terraform."""
    d = tmp_path / "state"
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(d))
    monkeypatch.setenv("CLOUDLAB_TF_MIRROR", "")  # no mirror needed for provider-free configs
    tfm.find_mirror.cache_clear()
    yield d
    tfm.find_mirror.cache_clear()


# ------------------------------------------------------------------ environment
def make_mirror(root: Path) -> Path:
    d = root / "registry.terraform.io" / "hashicorp" / "aws" / "5.100.0" / "linux_amd64"
    d.mkdir(parents=True)
    (d / "terraform-provider-aws_v5.100.0_x5").write_text("")
    return root


def test_find_mirror_from_environment(tmp_path):
    tfm.find_mirror.cache_clear()
    mirror = make_mirror(tmp_path / "m")
    assert tfm.find_mirror(str(mirror)) == mirror
    assert tfm.find_mirror("") is None, "an empty CLOUDLAB_TF_MIRROR means: download normally"
    assert tfm.find_mirror(str(tmp_path / "nothing-here")) is None


def test_find_mirror_uses_its_cache(tmp_path):
    tfm.find_mirror.cache_clear()
    mirror = make_mirror(tmp_path / "m")
    cache = tmp_path / "mirror-path.txt"
    cache.write_text(f"{mirror}\n")
    assert tfm.find_mirror(None, str(cache)) == mirror
    tfm.find_mirror.cache_clear()


def test_walk_finds_a_mirror_but_not_a_working_directory(tmp_path):
    make_mirror(tmp_path / "opt" / "plugins")
    make_mirror(tmp_path / "work" / ".terraform" / "providers")
    assert tfm.env._walk_for_mirror(str(tmp_path)) == tmp_path / "opt" / "plugins"


def test_cli_config_points_at_the_mirror(tmp_path):
    text = cli_config_text(tmp_path / "mirror", tmp_path / "cache")
    assert "filesystem_mirror" in text and json.dumps(str(tmp_path / "mirror")) in text
    assert 'include = ["registry.terraform.io/hashicorp/*"]' in text
    assert f'plugin_cache_dir = "{tmp_path / "cache"}"' in text


def test_environment_with_a_mirror(state_dir, tmp_path, monkeypatch):
    mirror = make_mirror(tmp_path / "m")
    monkeypatch.setenv("CLOUDLAB_TF_MIRROR", str(mirror))
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/nonexistent/.terraformrc")
    env = tfm.terraform_env()
    assert env["TF_CLI_CONFIG_FILE"] == str(state_dir / "terraform" / "cli.tfrc")
    assert str(mirror) in Path(env["TF_CLI_CONFIG_FILE"]).read_text()
    assert env["TF_PLUGIN_CACHE_DIR"] == str(state_dir / "terraform" / "plugin-cache")
    assert env["TF_IN_AUTOMATION"] == "1" and env["TF_INPUT"] == "0" and env["CHECKPOINT_DISABLE"] == "1"
    assert env["GOGC"] == "400"
    monkeypatch.setenv("GOGC", "150")
    assert tfm.terraform_env()["GOGC"] == "150", "the learner's own setting wins"
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_environment_without_a_mirror_drops_a_missing_cli_config(state_dir, monkeypatch):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/nonexistent/.terraformrc")
    env = tfm.terraform_env()
    assert "TF_CLI_CONFIG_FILE" not in env
    assert not (state_dir / "terraform" / "cli.tfrc").exists()


def test_environment_refuses_real_aws(state_dir, monkeypatch):
    from cloudlab.aws import RealAWSRefused

    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.us-east-1.amazonaws.com")
    with pytest.raises(RealAWSRefused):
        tfm.terraform_env()


def test_backend_config_has_locking_and_the_endpoint():
    cfg = backend_config("a/terraform.tfstate", "l02-tfstate", endpoint="http://127.0.0.1:4566", region="us-east-1")
    assert cfg["use_lockfile"] == "true" and cfg["use_path_style"] == "true"
    assert cfg["endpoints"] == '{s3="http://127.0.0.1:4566"}'
    assert cfg["bucket"] == "l02-tfstate" and cfg["key"] == "a/terraform.tfstate"


# ------------------------------------------------------------------ parsing
PLAN = {
    "resource_changes": [
        {"address": "aws_s3_bucket.a", "change": {"actions": ["create"], "before": None, "after": {"bucket": "x"}}},
        {
            "address": "aws_s3_bucket.b",
            "change": {
                "actions": ["update"],
                "before": {"tags": {"a": "1"}, "bucket": "b"},
                "after": {"tags": {"a": "2"}, "bucket": "b"},
                "after_unknown": {},
            },
        },
        {"address": "aws_sns_topic.c", "change": {"actions": ["delete", "create"], "before": {}, "after": {}}},
        {"address": "aws_sns_topic.d", "change": {"actions": ["delete"], "before": {}, "after": None}},
        {"address": "aws_sns_topic.e", "change": {"actions": ["no-op"], "before": {}, "after": {}}},
    ],
    "resource_drift": [
        {
            "address": "aws_s3_bucket.b",
            "change": {
                "actions": ["update"],
                "before": {"tags": {"a": "2"}, "versioning": [1]},
                "after": {"tags": {"a": "1"}, "versioning": [2]},
            },
        },
        {
            "address": "aws_s3_bucket.z",
            "change": {"actions": ["update"], "before": {"lifecycle_rule": []}, "after": {"lifecycle_rule": [1]}},
        },
    ],
    "relevant_attributes": [{"resource": "aws_s3_bucket.z", "attribute": ["arn"]}],
}


def test_parse_plan_json_counts_and_names_changes():
    s = parse_plan_json(PLAN)
    assert (s.count("create"), s.count("update"), s.count("delete")) == (2, 1, 2)
    upd = next(c for c in s.changes if c.action == "update")
    assert upd.attributes == ["tags"]
    text = str(s)
    assert "+ create   aws_s3_bucket.a" in text and "-/+ replace  aws_sns_topic.c" in text
    assert "Plan: 2 to add, 1 to change, 2 to destroy." in text
    assert "aws_sns_topic.e" not in text, "no-op changes are not listed"


def test_drift_keeps_what_the_plan_reverts_and_drops_noise():
    s = parse_plan_json(PLAN)
    assert [(d.address, d.attributes) for d in s.drift] == [("aws_s3_bucket.b", ["tags"])]
    assert "Changed outside Terraform" in str(s)


def test_summary_from_streamed_events():
    events = [
        {"type": "planned_change", "change": {"resource": {"addr": "aws_s3_bucket.a"}, "action": "create"}},
        {"type": "planned_change", "change": {"resource": {"addr": "aws_s3_bucket.b"}, "action": "update"}},
        {"type": "resource_drift", "change": {"resource": {"addr": "aws_s3_bucket.b"}, "action": "update"}},
        {"type": "resource_drift", "change": {"resource": {"addr": "aws_s3_bucket.noise"}, "action": "update"}},
        {"type": "outputs", "outputs": {"x": {"action": "create"}}},
    ]
    s = summary_from_events(events)
    assert [c.action for c in s.changes] == ["create", "update"]
    assert [d.address for d in s.drift] == ["aws_s3_bucket.b"]
    assert s.outputs == {"x": "create"} and s.has_changes


def test_no_changes_reads_plainly():
    assert "No changes" in str(PlanSummary())
    assert not PlanSummary([Change("a.b", "no-op")]).has_changes


def diag(summary, detail="", filename=None, line=None):
    d = {"severity": "error", "summary": summary, "detail": detail}
    if filename:
        d["range"] = {"filename": filename, "start": {"line": line}}
        d["snippet"] = {"code": "  tags = { team = }", "start_line": line}
    return {"type": "diagnostic", "diagnostic": d}


def test_explain_names_file_line_and_code():
    r = Result(
        ["validate", "-json"],
        1,
        0.1,
        [diag("Invalid expression", "Expected the start of an expression.", "main.tf", 3)],
    )
    e = explain(r)
    assert type(e) is TerraformError
    assert "main.tf line 3: Invalid expression" in str(e) and "tags = { team = }" in str(e)
    assert "Expected the start" in str(e)


def test_explain_a_held_lock():
    detail = (
        "Error message: operation error S3: PutObject, StatusCode: 412\nLock Info:\n  ID:        abc-123\n"
        "  Path:      l02-tfstate/lockdemo/terraform.tfstate\n  Operation: OperationTypeApply\n"
        "  Who:       alice@laptop\n  Version:   1.11.4\n  Created:   2026-11-26 11:39:07.354 +0000 UTC\n"
    )
    e = explain(Result(["plan", "-json"], 1, 0.5, [diag("Error acquiring the state lock", detail)]))
    msg = str(e)
    assert "locked by another Terraform run" in msg and "alice@laptop" in msg and "apply" in msg
    assert "abc-123" in msg and "force-unlock" in msg


def test_explain_connection_refused_as_lab_down():
    r = Result(
        ["plan", "-json"],
        1,
        4.0,
        [diag("reading SSM Parameter", "dial tcp 127.0.0.1:4566: connect: connection refused")],
    )
    e = explain(r, "http://127.0.0.1:4566")
    assert isinstance(e, LabDown) and "make lab" in str(e)


def test_explain_an_init_that_would_ask_to_move_the_state():
    e = explain(Result(["init", "-json", "-backend-config=key=k"], 1, 1.0, [diag("input is disabled")]))
    assert "migrate=True" in str(e) and "-migrate-state" in str(e)


def test_explain_without_diagnostics_shows_the_tail():
    e = explain(Result(["fmt"], 2, 0.1, [], "line one\nsomething broke\n"))
    assert "something broke" in str(e)


# ------------------------------------------------------------------ real terraform, offline
@needs_terraform
def test_a_syntax_error_gives_a_clear_message(state_dir, tmp_path):
    tf = Terraform(tmp_path / "broken", quiet=True)
    tf.write("main.tf", 'resource "aws_s3_bucket" "oops" {\n  bucket = "l02-oops"\n  tags = { team = }\n}\n')
    with pytest.raises(TerraformError) as info:
        tf.validate()
    msg = str(info.value)
    assert "main.tf line 3" in msg and "Invalid expression" in msg and "tags = { team = }" in msg
    with pytest.raises(TerraformError, match="main.tf line 3"):
        tf.init()


@needs_terraform
def test_fmt_rewrites_and_lists_files(state_dir, tmp_path):
    tf = Terraform(tmp_path / "fmt", quiet=True)
    tf.write("a.tf", 'output "x" {\nvalue="1"\n}\n')
    assert tf.fmt(check=True) == ["a.tf"]
    assert tf.fmt() == ["a.tf"]
    assert '  value = "1"' in tf.read("a.tf")
    assert tf.fmt(check=True) == []


@needs_terraform
def test_apply_and_destroy_a_provider_free_stack(state_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Terraform, "check_lab", lambda self: None)  # no cloud involved
    tf = Terraform(tmp_path / "data")
    tf.write(
        "main.tf",
        'resource "terraform_data" "x" {\n  input = var.v\n}\n'
        'variable "v" {\n  type = string\n}\n'
        'output "v" {\n  value = terraform_data.x.output\n}\n',
    )
    tf.init()
    tf.validate()
    r = tf.plan(var={"v": "one"})
    assert r.plan.count("create") == 1
    tf.apply(plan_file="tfplan")
    assert tf.output() == {"v": "one"}
    r = tf.plan(var={"v": "one"}, detailed_exitcode=True)
    assert r.exit_code == 0
    r = tf.plan(var={"v": "two"}, detailed_exitcode=True, details=True)
    assert r.exit_code == 2 and r.plan.count("update") == 1
    tf.destroy(var={"v": "two"})
    assert tf.state_list() == []
    out = capsys.readouterr().out
    assert "Apply complete!" in out and "Destroy complete!" in out
    runs = tf.runs()
    assert [x["exit_code"] for x in runs if "-detailed-exitcode" in x["args"]] == [0, 2]


@needs_terraform
def test_workspaces_are_created_and_selected(state_dir, tmp_path):
    tf = Terraform(tmp_path / "ws", quiet=True)
    tf.write("main.tf", 'output "ws" {\n  value = terraform.workspace\n}\n')
    tf.init()
    tf.workspace("staging")
    tf.workspace("staging")  # selecting again is fine
    assert tf.current_workspace() == "staging"
    assert set(tf.workspaces()) == {"default", "staging"}
    assert tf.with_workspace("prod").current_workspace() == "prod"


def test_a_stopped_lab_fails_fast_with_the_fix(state_dir, tmp_path, free_port):
    tf = Terraform(tmp_path / "down", env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port}"}, quiet=True)
    t0 = time.monotonic()
    with pytest.raises(LabDown) as info:
        tf.plan()
    assert time.monotonic() - t0 < 5
    assert "the lab is down" in str(info.value) and "make lab" in str(info.value)


def test_missing_terraform_is_explained(state_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(TerraformError, match="not installed"):
        Terraform(tmp_path / "x", quiet=True).run("version")


def test_copy_template_can_keep_what_is_there(tmp_path):
    src = tmp_path / "tpl"
    src.mkdir()
    (src / "main.tf").write_text("template\n")
    (src / "versions.tf").write_text("v\n")
    dest = tmp_path / "wd"
    tfm.copy_template(src, dest)
    (dest / "main.tf").write_text("mine\n")
    (dest / "terraform.tfstate").write_text("{}")
    tfm.copy_template(src, dest, fresh=False, overwrite=False)
    assert (dest / "main.tf").read_text() == "mine\n" and (dest / "terraform.tfstate").exists()
    (dest / "versions.tf").unlink()
    tfm.copy_template(src, dest, fresh=False, overwrite=False)
    assert (dest / "versions.tf").read_text() == "v\n", "missing files come back"
    tfm.copy_template(src, dest, fresh=False)
    assert (dest / "main.tf").read_text() == "template\n"
    tfm.copy_template(src, dest)
    assert not (dest / "terraform.tfstate").exists()


def test_edit_replaces_exactly_once(tmp_path):
    tf = Terraform(tmp_path / "e", quiet=True)
    tf.write("a.tf", "a = 1\nb = 1\n")
    tf.edit("a.tf", "a = 1", "a = 2")
    assert tf.read("a.tf") == "a = 2\nb = 1\n"
    with pytest.raises(ValueError, match="exactly once"):
        tf.edit("a.tf", " = ", "=")


# ------------------------------------------------------------------ against the lab
@pytest.mark.lab
@needs_terraform
def test_apply_inspect_destroy_on_the_lab(tmp_path):
    import cloudlab

    tfm.find_mirror.cache_clear()
    name = f"/l02/t-{secrets.token_hex(4)}"
    tf = Terraform(tmp_path / "lab", quiet=True)
    tf.write(
        "main.tf",
        (
            Path(__file__).resolve().parent.parent / "lessons" / "02_infrastructure-as-code" / "loop" / "versions.tf"
        ).read_text(),
    )
    tf.write(
        "param.tf",
        f'resource "aws_ssm_parameter" "p" {{\n  name = "{name}"\n  type = "String"\n  insecure_value = "v1"\n}}\n',
    )
    tf.init()
    try:
        tf.apply()
        ssm = cloudlab.client("ssm")
        assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "v1"
        ssm.put_parameter(Name=name, Value="by hand", Type="String", Overwrite=True)
        r = tf.plan(detailed_exitcode=True, details=True)
        assert r.exit_code == 2 and [d.address for d in r.plan.drift] == ["aws_ssm_parameter.p"]
    finally:
        tf.destroy()
    with pytest.raises(cloudlab.client("ssm").exceptions.ParameterNotFound):
        cloudlab.client("ssm").get_parameter(Name=name)


def test_a_hanging_run_is_stopped(state_dir, tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(fake))
    tf = Terraform(tmp_path / "hang", quiet=True, timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(TerraformError, match="took longer than"):
        tf.run("version")
    # Usually well under a second; on a loaded machine a SIGINT that lands between fork and exec is
    # lost and the SIGKILL after the 15 s grace ends it: still far from the script's 30 s.
    assert time.monotonic() - t0 < 25
