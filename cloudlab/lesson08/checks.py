"""Lesson 08's exercise checks: they run the learner's pipeline in gitlab-ci-local (08.1), lint the
learner's workflow (08.2) and apply the learner's migration plan to a real PostgreSQL database (08.5).
The checks that drive traffic through haproxy (08.3, 08.4) are in ``traffic_checks``."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import yaml

from .. import database as db
from .. import pipelines
from ..checks import check
from ..scanners import ScanError
from .migrations import columns, orders_count, run_plan, seed
from .release import database, failing_test, prepare, work_dir

PIPELINE_JOBS = ("lint", "test", "build", "deploy-staging", "smoke-staging", "deploy-production")


def _fresh(prefix: str) -> str:
    """A new name for this check's folders under the work folder; the folders of earlier runs go."""
    for old in work_dir().glob(f"{prefix}-*"):
        shutil.rmtree(old, ignore_errors=True)
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ==================================================================== 08.1 the pipeline
def _records(releases) -> dict:
    out = {}
    for env in ("staging", "production"):
        try:
            out[env] = json.loads((releases / f"{env}.json").read_text())
        except (OSError, ValueError):
            pass
    return out


@check(
    "08.1",
    "The pipeline stops before deploying a broken commit and never prints the deploy token",
    hints=[
        "Six jobs with exactly these names: lint, test, build, deploy-staging, smoke-staging, deploy-production, "
        "in stages that run in that order. A job starts only when the jobs it depends on have passed.",
        "Deploy jobs must depend on the test job (stage order, or `needs: [test, build]`); never `allow_failure` "
        "or `|| true` on tests. `build` hands dist/ on with `artifacts: paths: [dist/]`, and the jobs after it "
        "need that artifact. deploy-production gets `when: manual` and needs smoke-staging.",
        "The deploy script reads $DEPLOY_TOKEN by itself: do not echo it (not even encoded). A skeleton: "
        "`deploy-staging: {stage: staging, needs: [build, test], script: ['\"$PYTHON\" ci/deploy.py staging']}`.",
    ],
)
def check_pipeline(r, ns):
    text = r.need(ns, "PIPELINE", str, "YAML text (a string)")
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as e:
        r.fail(f"PIPELINE is not valid YAML: {str(e).splitlines()[0]}")
    r.require(isinstance(spec, dict), "PIPELINE is a YAML mapping", "PIPELINE should be a YAML mapping of jobs")
    missing = [j for j in PIPELINE_JOBS if j not in spec]
    r.require(not missing, "it has the six jobs", f"jobs missing (by name): {', '.join(missing)}")
    tag = _fresh("check-pipeline")
    token = secrets.token_urlsafe(18)
    green_dir, red_dir = work_dir() / f"{tag}-green", work_dir() / f"{tag}-red"
    # a broken commit the notebook never showed: another test file, another setting
    broken = failing_test(seed=f"x{secrets.token_hex(3)}")

    def variables(releases):
        return {"PYTHON": sys.executable, "DEPLOY_TOKEN": token, "RELEASES_DIR": str(releases)}

    def run(name, files, releases, validate, manual=()):
        project = prepare(name, text, files)
        return pipelines.run_pipeline(
            project, variables=variables(releases), quiet=True, timeout=120, validate=validate, manual=manual
        )

    def plan(name):  # what gitlab-ci-local plans for each job (rules evaluated): `when: manual` however written
        return {j["name"]: j.get("when") for j in pipelines.list_jobs(prepare(name, text))}

    try:
        with ThreadPoolExecutor(3) as pool:
            fg = pool.submit(run, f"{tag}-green", {}, green_dir / "releases", True)
            # the broken commit, with the gate opened: a person pressing the button must not ship it either
            fr = pool.submit(run, f"{tag}-red", broken, red_dir / "releases", False, ("deploy-production",))
            fk = pool.submit(plan, f"{tag}-plan")
            green, red, kinds = fg.result(), fr.result(), fk.result()
    except pipelines.PipelineError as e:
        r.fail(f"gitlab-ci-local could not run your pipeline: {e}")
    # the good commit
    up_to = ("lint", "test", "build", "deploy-staging", "smoke-staging")
    bad = {j: green.status(j) for j in up_to if green.status(j) != "passed"}
    first = next((green.jobs[j] for j in up_to if j in bad and green.ran(j)), None)
    bad_log = f"{first.name} said: {first.log.strip()[-200:]}" if first else ""
    r.expect(
        not bad,
        "a good commit: lint, test, build, deploy-staging and smoke-staging all passed",
        f"on a good commit these jobs did not pass: {bad}" + (f"; {bad_log}" if bad_log else ""),
    )
    rec = _records(green_dir / "releases")
    sha = pipelines.commit_sha(green.project)
    r.expect(
        "staging" in rec and rec["staging"].get("commit") == sha,
        "staging runs the artifact built from this commit",
        'no release record for staging of this commit: deploy-staging must run `"$PYTHON" ci/deploy.py staging` '
        "with the build's dist/ (an artifact)",
    )
    t_dep = green.jobs.get("deploy-staging")
    start = t_dep.start if t_dep and t_dep.start is not None else -1.0
    after = [j for j in ("test", "build") if j in green.jobs and (green.jobs[j].end or 1e9) <= start + 0.01]
    r.expect(
        len(after) == 2,
        "deploy-staging started only after test and build finished",
        "deploy-staging did not wait for both test and build to finish",
    )
    r.expect(
        kinds.get("deploy-production") == "manual" and not green.ran("deploy-production"),
        "deploy-production waits behind a manual gate and did not run by itself",
        f"deploy-production is `when: {kinds.get('deploy-production')}`"
        + (" and ran by itself" if green.ran("deploy-production") else "")
        + ": production needs a person's go (`when: manual`)",
    )
    r.expect(
        "production" not in rec,
        "nothing reached production without the gate",
        "a production release was recorded without anyone opening the gate",
    )
    gate_logs = ""
    if kinds.get("deploy-production") == "manual" and "staging" in rec:  # the gate opened: the staged artifact ships
        try:
            gate_logs = pipelines.run_pipeline(
                green.project,
                jobs=("deploy-production",),
                manual=("deploy-production",),
                variables=variables(green_dir / "releases"),
                quiet=True,
                timeout=60,
                validate=False,
            ).logs()
        except pipelines.PipelineError as e:
            r.fail(f"gitlab-ci-local could not run deploy-production with the gate opened: {e}")
        prod = _records(green_dir / "releases").get("production", {})
        same = prod.get("commit") == sha and all(prod.get(k) == rec["staging"].get(k) for k in ("sha256", "digest"))
        r.expect(
            same,
            "with the gate opened, production got the very artifact staging runs",
            "with the gate opened, deploy-production did not deploy staging's artifact of this commit: it needs "
            'the build\'s dist/ (an artifact of build) and `"$PYTHON" ci/deploy.py production`',
        )
    # the broken commit
    r.expect(
        red.status("test") == "failed",
        "a broken commit (a failing test the notebook never showed): the test job failed",
        f"a broken commit's failing unit test did not fail the test job (it {red.status('test')})"
        + (
            ": remove allow_failure / `|| true`, and run every test in tests/"
            if red.status("test") in ("passed", "allowed to fail")
            else ""
        ),
    )
    deployed = [j for j in ("deploy-staging", "smoke-staging", "deploy-production") if red.ran(j)]
    r.expect(
        not deployed and not _records(red_dir / "releases"),
        "and the pipeline stopped there: nothing was deployed, not even with the production gate opened",
        f"a broken commit still ran {deployed or ['a deploy']}: every deploy job must depend on the tests",
    )
    # the secret
    found = pipelines.leaks(green.logs() + red.logs() + gate_logs, token)
    r.expect(
        not found,
        "the deploy token appears in no job log",
        f"the deploy token appears in a job log ({', '.join(found)}): never print it, not even encoded",
    )


# ==================================================================== 08.2 the workflow
def _runs(spec) -> list[dict]:
    steps = []
    for job in (spec.get("jobs") or {}).values() if isinstance(spec, dict) else []:
        steps += [s for s in (job or {}).get("steps") or [] if isinstance(s, dict)]
    return steps


def _perms_write(p) -> bool:
    if p in ("write-all",):
        return True
    return isinstance(p, dict) and any(v == "write" for v in p.values())


@check(
    "08.2",
    "The release workflow passes check-jsonschema, actionlint and zizmor, findings fixed",
    hints=[
        "Start from the file's text (lesson08.WORKFLOW.read_text()) and fix one finding at a time; run "
        "pipelines.lint_workflows([path]) on your version to see what is left.",
        "Pin each action by its commit SHA (the table in the task: current majors, which run on node24) with the "
        "version in a comment; set `persist-credentials: false` on checkout; replace `permissions: write-all` by "
        "`contents: read`.",
        "The PR title goes through an environment variable: `env: {TITLE: ${{ github.event.pull_request.title }}}` "
        'and `run: echo "Testing $TITLE"` (shell expansion, not `${{ }}`, inside run).',
    ],
)
def check_workflow(r, ns):
    text = r.need(ns, "WORKFLOW_FIXED", str, "YAML text (a string)")
    path = work_dir() / _fresh("check-workflow") / "release.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    try:
        found = pipelines.lint_workflows([path], quiet=True)
    except ScanError as e:
        r.fail(f"a linter could not run, so nothing can be said about the file: {e}")
    r.expect(
        not found,
        "check-jsonschema, actionlint and zizmor report nothing",
        f"the linters still report {len(found)} finding(s): "
        + "; ".join(f"{f.tool} {f.rule} (line {f.line})" for f in found[:5]),
    )
    hidden = pipelines.suppressions(text)
    r.expect(not hidden, "no finding is silenced by a comment", f"a finding is silenced, not fixed: {hidden[:1]}")
    pins = pipelines.runtime_problems(text)
    r.expect(
        not pins,
        "every pinned action declares a runtime GitHub's hosted runners have (node24)",
        f"{pins[0]}" if pins else "",
    )
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError:
        r.fail("WORKFLOW_FIXED is not valid YAML")
    r.require(isinstance(spec, dict), "it is a YAML mapping", "WORKFLOW_FIXED should be a workflow (a YAML mapping)")
    steps = _runs(spec)
    uses = [str(s.get("uses", "")) for s in steps]
    r.expect(
        any(u.startswith("actions/checkout@") for u in uses)
        and any(u.startswith("actions/setup-python@") for u in uses),
        "it still checks out the code and sets up Python",
        "a step is gone: the workflow must still use actions/checkout and actions/setup-python",
    )
    runs = " ".join(str(s.get("run", "")) for s in steps)
    tests = [s for s in steps if "make test-unit" in str(s.get("run", ""))]
    r.expect(
        bool(tests) and not any(s.get("continue-on-error") for s in tests),
        "it still runs the unit tests, and a failing test still fails the job",
        "the `make test-unit` step is gone: fix findings, do not delete the work"
        if not tests
        else "the unit-test step has `continue-on-error`: a red test would no longer fail the workflow",
    )
    on = spec.get("on", spec.get(True))  # YAML 1.1 reads a bare `on:` key as True
    triggers = set(on) if isinstance(on, (dict, list)) else {on}
    r.expect(
        {"pull_request", "push"} <= triggers and "pull_request_target" not in triggers,
        "it still runs on pull requests and pushes (and not with pull_request_target's write token)",
        f"its triggers are {sorted(map(str, triggers))}: keep `pull_request` and `push`; `pull_request_target` "
        "runs with the base repository's secrets on a stranger's code",
    )
    envs = json.dumps([s.get("env") for s in steps] + [j.get("env") for j in (spec.get("jobs") or {}).values() if j])
    r.expect(
        "github.event.pull_request.title" in envs,
        "the PR title still reaches the job, through an environment variable",
        "the step that announces the PR title is gone (or does not pass the title through `env:`)",
    )
    r.expect(
        "${{" not in runs,
        "no `${{ }}` expression is pasted into a shell script",
        "a `run:` script still contains `${{ ... }}`: the value is pasted into the script before the shell "
        "runs (even `${{ env.X }}`); use the shell's $X",
    )
    perms = [spec.get("permissions")] + [j.get("permissions") for j in (spec.get("jobs") or {}).values() if j]
    r.expect(
        spec.get("permissions") is not None and not any(_perms_write(p) for p in perms),
        "permissions are read-only and explicit",
        f"permissions are {spec.get('permissions')!r} at the top: set `permissions: {{contents: read}}`, no write",
    )


# ==================================================================== 08.5 migrations
@check(
    "08.5",
    "The migration plan keeps every running version working at every step",
    hints=[
        "Expand first, in a migration old code does not notice: add the new column with a default, so v1's "
        "inserts (which do not name it) still work and old rows get a value.",
        "Then deploy v2. Only after the rollout, when no v1 runs any more, contract: drop the column v2 no "
        "longer uses. Never in the same step as the deploy.",
        "PLAN = [('migrate', \"ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR'\"), "
        "('deploy', 'v2'), ('migrate', 'ALTER TABLE orders DROP COLUMN note')]",
    ],
)
def check_migrations(r, ns):
    plan = r.need(ns, "PLAN", list, "list of steps")
    r.require(
        all(isinstance(s, (tuple, list)) and len(s) == 2 for s in plan) and plan,
        "PLAN is a list of (kind, argument) steps",
        "PLAN should be a list of pairs like ('migrate', 'ALTER TABLE ...') or ('deploy', 'v2')",
    )
    extra = secrets.randbelow(4) + 2  # orders the notebook never showed
    try:
        pg = database(quiet=True)
        name = seed(pg, db.fresh_name("l08_check"), extra=extra)
    except db.DatabaseDown as e:
        r.fail(str(e))
    try:
        rows = run_plan(pg, name, plan, quiet=True)
        broken = [x for x in rows if not x["ok"]]
        r.expect(
            not broken,
            f"every version that was live worked after each of the {len(plan)} steps",
            "step {step} ({what}): {version} broke: {detail}".format(**broken[0]) if broken else "",
        )
        r.expect(
            any(s[0] == "deploy" and s[1] == "v2" for s in plan),
            "v2 is deployed",
            "the plan never deploys v2",
        )
        cols = columns(pg, name)
        r.expect(
            "currency" in cols and "note" not in cols,
            "the end state: currency added, note dropped (expand, deploy, contract)",
            f"the table ends with columns {cols}: add `currency`, and drop `note` once v1 is gone",
        )
        left = orders_count(pg, name)
        r.expect(
            left == 3 + extra,
            f"no order was lost (the 3 you saw and {extra} more the check added)",
            f"only {left} of the {3 + extra} orders are left",
        )
    finally:
        try:
            pg.drop_database(name)
        except db.DatabaseDown:
            pass
