"""The field's own validators over every artifact the course ships (lessons/artifacts.toml): what a lesson holds
up as good passes them (or carries a skip with a written reason); what it shows as bad is flagged for its flaw."""

from __future__ import annotations

import pytest

from cloudlab.authoring import validators as v

ARTIFACTS = v.load()


def test_registry_is_sound():
    paths = [a.path for a in ARTIFACTS]
    assert len(paths) == len(set(paths)), "an artifact is registered twice"
    for a in ARTIFACTS:
        assert a.file.exists(), f"{a.path} is registered but does not exist"
        assert a.validators, f"{a.path} names no validator"
        for val in a.validators:
            kind, _, arg = val.partition(":")
            assert val in v.VALIDATORS or kind in ("checkov", "check-jsonschema"), f"{a.path}: unknown validator {val}"
            if kind == "check-jsonschema":
                assert (v.ROOT / arg).is_file(), f"{a.path}: the schema {arg} does not exist"


SHIPPED = ["Dockerfile*", "*.gitlab-ci.yml", "kustomization.yaml", "Chart.yaml", "*.tf", "alertmanager.yml"]


def test_every_shipped_artifact_is_registered():
    """A Dockerfile, pipeline, chart, overlay, Terraform module or Alertmanager config the course ships is in
    the registry (itself, or a folder that holds it), so no new file escapes the validators."""
    registered = [a.file for a in ARTIFACTS]
    roots = [v.ROOT / "lessons", v.ROOT / ".github"]
    unregistered = []
    for root in roots:
        for pattern in SHIPPED:
            for f in root.rglob(pattern):
                if any(part.startswith(".") and part not in (".github", ".gitlab-ci.yml") for part in f.parts[-3:]):
                    continue
                if not any(f == r or r in f.parents for r in registered):
                    unregistered.append(str(f.relative_to(v.ROOT)))
    allowed = {a.path for a in ARTIFACTS}
    assert not [u for u in unregistered if u not in allowed], (
        "shipped but not in lessons/artifacts.toml (label it good or bad): " + ", ".join(sorted(unregistered))
    )


def test_verdict_rules():
    good = v.Artifact("x", "good", ["hadolint"], skip={"hadolint:DL1": "why"})
    assert v.verdict(good, {"hadolint:DL1": "m"}) == []
    assert v.verdict(good, {"hadolint:DL1": "m", "hadolint:DL2": "m"}) == ["hadolint:DL2: m"]
    assert "stale" in v.verdict(good, {})[0]
    assert "no written reason" in v.verdict(v.Artifact("x", "good", ["h"], skip={"h:1": " "}), {"h:1": "m"})[0]
    bad = v.Artifact("x", "bad", ["hadolint"], flaws=["hadolint:DL1"])
    assert v.verdict(bad, {"hadolint:DL1": "m"}) == []
    assert "not reported" in v.verdict(bad, {"hadolint:DL2": "m"})[0]
    assert v.verdict(v.Artifact("x", "bad", ["h"]), {"h:1": "m"})


def test_shell_scripts_are_found_in_both_ci_formats(tmp_path):
    gl = tmp_path / ".gitlab-ci.yml"
    gl.write_text("default:\n  before_script: [echo hi]\njob:\n  script:\n    - ! false\n")
    gh = tmp_path / "w.yml"
    gh.write_text("on: push\njobs:\n  a:\n    steps:\n      - uses: x@y\n      - run: echo $(date)\n")
    assert [w for w, _ in v.shell_scripts(gl)] == ["job before_script", "job script"]
    assert v.shell_scripts(gh) == [("a step 2", "echo $(date)")]


@pytest.fixture(scope="module")
def results():
    return v.run_all(ARTIFACTS)


@pytest.mark.lab
@pytest.mark.parametrize("artifact", ARTIFACTS, ids=[a.path for a in ARTIFACTS])
def test_artifact(artifact, results):
    found, errors = results[artifact.path]
    assert not errors, f"{artifact.path}: a validator could not run (that is no clean bill):\n" + "\n".join(errors)
    problems = v.verdict(artifact, found)
    if artifact.pending:
        if problems:
            pytest.xfail(f"known, being fixed ({artifact.pending}): {problems[0][:200]}")
        pytest.fail(f"{artifact.path} now passes: remove its `pending` line from lessons/artifacts.toml")
    assert not problems, f"{artifact.path} ({artifact.label}):\n  " + "\n  ".join(problems)
