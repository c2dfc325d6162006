"""Lesson 08's exercise checks: they run the learner's pipeline in gitlab-ci-local, lint the learner's
workflow, drive real traffic through haproxy during the learner's switch and canary, and apply the
learner's migration plan to a real PostgreSQL database."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import yaml

from .. import database as db
from .. import deploy, net, pipelines, procs
from .. import observability as obs
from ..checks import check
from ..scanners import ScanError
from .migrations import columns, run_plan, seed
from .release import backing, database, failing_test, prepare, work_dir

PIPELINE_JOBS = ("lint", "test", "build", "deploy-staging", "smoke-staging", "deploy-production")


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
        "need that artifact. deploy-production gets `when: manual`.",
        "The deploy script reads $DEPLOY_TOKEN by itself: do not echo it (not even encoded). A skeleton: "
        "`deploy-staging: {stage: staging, needs: [build, test], script: [python ci/deploy.py staging]}`.",
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
    tag = uuid.uuid4().hex[:8]
    token = secrets.token_urlsafe(18)
    green_dir, red_dir = work_dir() / f"check-{tag}-green", work_dir() / f"check-{tag}-red"

    def run(name, files, releases, validate):
        project = prepare(name, text, files)
        variables = {"DEPLOY_TOKEN": token, "RELEASES_DIR": str(releases)}
        return pipelines.run_pipeline(project, variables=variables, quiet=True, timeout=120, validate=validate)

    try:
        with ThreadPoolExecutor(2) as pool:
            fg = pool.submit(run, f"check-{tag}-green", {}, green_dir / "releases", True)
            fr = pool.submit(run, f"check-{tag}-red", failing_test(), red_dir / "releases", False)
            green, red = fg.result(), fr.result()
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
    r.expect(
        "staging" in rec and rec["staging"].get("commit") == pipelines.commit_sha(green.project),
        "staging runs the artifact built from this commit",
        "no release record for staging of this commit: deploy-staging must run `python ci/deploy.py staging` "
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
        isinstance(spec["deploy-production"], dict)
        and spec["deploy-production"].get("when") == "manual"
        and not green.ran("deploy-production"),
        "deploy-production waits behind a manual gate (when: manual) and did not run by itself",
        "deploy-production ran by itself or is not `when: manual`: production needs a person's go",
    )
    r.expect(
        "production" not in rec,
        "nothing reached production without the gate",
        "a production release was recorded without anyone opening the gate",
    )
    # the broken commit
    r.expect(
        red.status("test") == "failed",
        "a broken commit: the test job failed",
        f"a broken commit's failing unit test did not fail the test job (it {red.status('test')})"
        + (": remove allow_failure / `|| true`" if red.status("test") in ("passed", "allowed to fail") else ""),
    )
    deployed = [j for j in ("deploy-staging", "smoke-staging", "deploy-production") if red.ran(j)]
    r.expect(
        not deployed and "staging" not in _records(red_dir / "releases"),
        "and the pipeline stopped there: nothing was deployed",
        f"a broken commit still ran {deployed or ['a deploy']}: deploy jobs must depend on the tests",
    )
    # the secret
    found = pipelines.leaks(green.logs() + red.logs(), token)
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
        "Pin each action by its commit SHA (the table in the task) with the version in a comment; set "
        "`persist-credentials: false` on checkout; replace `permissions: write-all` by `contents: read`.",
        "The PR title goes through an environment variable: `env: {TITLE: ${{ github.event.pull_request.title }}}` "
        'and `run: echo "Testing $TITLE"` (shell expansion, not `${{ }}`, inside run).',
    ],
)
def check_workflow(r, ns):
    text = r.need(ns, "WORKFLOW_FIXED", str, "YAML text (a string)")
    path = work_dir() / f"check-{uuid.uuid4().hex[:8]}" / "release.yml"
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
    r.expect(
        "make test-unit" in runs,
        "it still runs the unit tests",
        "the `make test-unit` step is gone: fix findings, do not delete the work",
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


# ==================================================================== 08.3 blue-green
def _call_with_timeout(r, fn, args, seconds) -> dict:
    """Run the learner's function in a thread, at most ``seconds``: {"value": ...} or {"error": exception}."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args)
        except NotImplementedError:
            box["todo"] = True
        except Exception as e:
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        r.fail(f"`{fn.__name__}` was still running after {seconds:.0f} s")
    if box.get("todo"):
        r.fail(f"`{fn.__name__}` still raises NotImplementedError: replace the TODO with your code.")
    return box


def _versions(url: str, n: int = 8) -> set[str]:
    return {deploy.version_of(url) for _ in range(n)}


@check(
    "08.3",
    "Blue-green: green takes all traffic only once healthy, with zero failed requests, and blue stays up",
    hints=[
        "Ask haproxy, not the process: lb.wait_status('green', 'green', 'UP', timeout=timeout) waits until its "
        "health checks pass, and raises HaproxyError if they do not within `timeout` seconds.",
        "Then one command moves every new request: lb.set_map('active', 'live', 'green'). Do not touch blue: it "
        "is the instant rollback.",
        "If green never becomes healthy, let the HaproxyError propagate (or return) before touching the map.",
    ],
)
def check_blue_green(r, ns):
    switch_to_green = r.need(ns, "switch_to_green", callable)
    tag = uuid.uuid4().hex[:6]
    bk = backing()
    blue = deploy.start_instance("l08-check-blue", f"blue-{tag}", bk, quiet=True)
    green_port = net.free_port()
    lb = deploy.blue_green("l08-check-lb", blue.port, green_port, quiet=True)
    try:
        lb.wait_status("blue", "blue", "UP", timeout=10)
        lb.wait_status("green", "green", "DOWN", timeout=10)
        # 1. green is still booting when the switch is asked for: it must wait for green's health checks
        with deploy.Traffic(lb.url, seconds=25, rate=60, seed=3) as traffic:
            time.sleep(0.3)
            deploy.start_instance("l08-check-green", f"green-{tag}", bk, port=green_port, wait=False, quiet=True)
            box = _call_with_timeout(r, switch_to_green, (lb, 15), 20)
            switched = time.time()
            time.sleep(0.6)  # traffic goes on after the switch
        if "error" in box:
            r.fail(
                f"`switch_to_green(lb, 15)` raised {type(box['error']).__name__} while green was starting: "
                f"{box['error']}"
            )
        r.expect(
            deploy.live(lb) == "green",
            "haproxy's map sends new requests to green",
            f"haproxy's map still says live={deploy.live(lb)}: switch with lb.set_map('active', 'live', 'green')",
        )
        seen = _versions(lb.url)
        r.expect(
            seen == {f"green-{tag}"},
            "every request now reaches green",
            f"requests through haproxy were answered by {sorted(seen)}, expected only green-{tag}",
        )
        n, failed = len(traffic.results), len(traffic.failed)
        r.expect(
            n > 0 and failed == 0 and traffic.after(switched),
            f"zero failed requests during the switch ({n} sent)",
            f"{failed} of {n} requests failed during the switch: green got traffic before its health checks passed",
        )
        blue_state = lb.status("blue", "blue") if blue.alive() else "stopped"
        r.expect(
            blue_state == "UP",
            "blue still runs and is healthy: an instant rollback is one command away",
            f"blue is {blue_state}: keep it running and ready until green has proven itself",
        )
        # 2. a green that never becomes healthy: the switch must not happen
        procs.stop("l08-check-green")
        lb.set_map("active", "live", "blue")
        lb.wait_status("green", "green", "DOWN", timeout=10)
        _call_with_timeout(r, switch_to_green, (lb, 1.5), 10)
        r.expect(
            deploy.live(lb) == "blue" and _versions(lb.url, 4) == {f"blue-{tag}"},
            "a green that never becomes healthy gets no traffic: blue keeps serving",
            "with a green that never became healthy, traffic was switched to it: wait for UP, and give up if not",
        )
    finally:
        for name in ("l08-check-lb", "l08-check-green", "l08-check-blue"):
            procs.stop(name)


# ==================================================================== 08.4 canary
CANARIES = {  # name: (faults, what it is)
    "good": ({}, "a healthy version"),
    "late": ({"fault_rate": 1.0, "fault_after": 5}, "a version that fails every request after its first 5"),
    "slow": ({"latency_ms": 400}, "a version 400 ms slower per request, without errors"),
}


def _scenario(r, run_canary, stable, canary) -> dict:
    lb = deploy.canary_balancer("l08-check-lb", stable.port, canary.port, quiet=True)
    lb.wait_status("app", "stable", "UP", timeout=10)
    lb.wait_status("app", "canary", "UP", timeout=10)
    calls = {"n": 0}

    def observe():
        calls["n"] += 1
        obs.run_load(lb.url, n=60, concurrency=6, post_share=1.0, max_seconds=8, seed=calls["n"])

    s0 = deploy.counters(lb, "stable")
    try:
        box = _call_with_timeout(r, run_canary, (lb, observe), 60)
        if "error" in box:
            r.fail(f"`run_canary(lb, observe)` raised {type(box['error']).__name__}: {box['error']}")
        c, s = deploy.counters(lb, "canary"), deploy.counters(lb, "stable")
        errors = s["errors"] - s0["errors"]
        return {"result": box.get("value"), "observes": calls["n"], "canary": c, "stable_errors": errors}
    finally:
        procs.stop("l08-check-lb")


@check(
    "08.4",
    "The canary controller promotes a good version and rolls back a failing or slow one",
    hints=[
        "Steps 5, 25, 100: at each one set the weights (deploy.set_canary(lb, pct)), read the canary's counters "
        "(deploy.counters(lb, 'canary')), call observe() once, read them again, and compare.",
        "Roll back (deploy.set_canary(lb, 0)) and return 'rolled back' as soon as a step shows an error ratio "
        "above 1 %, or an avg_ms more than 200 above the stable version's; check after EVERY step.",
        "deploy.delta(before, after) gives requests, errors and error_ratio between two readings; "
        "deploy.counters(lb, 'stable')['avg_ms'] is the baseline. After the last step return 'promoted'.",
    ],
)
def check_canary(r, ns):
    run_canary = r.need(ns, "run_canary", callable)
    bk = backing()
    tag = uuid.uuid4().hex[:6]
    instances = {"stable": deploy.start_instance("l08-check-stable", f"v1-{tag}", bk, wait=False, quiet=True)}
    for name, (faults, _) in CANARIES.items():
        instances[name] = deploy.start_instance(f"l08-check-{name}", f"v2-{tag}", bk, wait=False, quiet=True, **faults)
    try:
        for inst in instances.values():
            if not net.wait_http(f"{inst.url}/health", timeout=20, alive=inst.alive):
                r.fail(f"the check's own {inst.name} did not start: {procs.log_path(inst.name)}")
        out = {name: _scenario(r, run_canary, instances["stable"], instances[name]) for name in CANARIES}
    finally:
        for name in instances.values():
            procs.stop(name.name)
    good, late, slow = out["good"], out["late"], out["slow"]
    r.expect(
        good["result"] == "promoted" and good["canary"]["weight"] == 100,
        "a healthy canary is promoted to 100 %",
        f"a healthy canary ended as {good['result']!r} with weight {good['canary']['weight']}: "
        "it should be promoted to 100 %",
    )
    r.expect(
        good["observes"] >= 3,
        f"it watched every step ({good['observes']} observations)",
        f"observe() was called {good['observes']} time(s) for a healthy canary: watch after each of the three steps",
    )
    r.expect(
        late["result"] == "rolled back" and late["canary"]["weight"] == 0,
        "a version that starts failing under more traffic is rolled back",
        f"{CANARIES['late'][1]} ended as {late['result']!r}, weight {late['canary']['weight']}: "
        "a controller that only looks at the first step misses it",
    )
    r.expect(
        late["canary"]["errors"] <= 30,
        f"it was caught early ({late['canary']['errors']} failed requests reached users)",
        f"{late['canary']['errors']} requests failed on the canary before the rollback: check after every step",
    )
    r.expect(
        slow["result"] == "rolled back" and slow["canary"]["weight"] == 0,
        "a slow version (400 ms more per request, no errors) is rolled back",
        f"{CANARIES['slow'][1]} ended as {slow['result']!r}: watch latency (avg_ms), not only errors",
    )
    stable_errors = sum(x["stable_errors"] for x in out.values())
    r.expect(
        stable_errors == 0,
        "zero failed requests on the stable version throughout",
        f"{stable_errors} requests failed on the stable version",
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
    try:
        pg = database(quiet=True)
        name = seed(pg, db.fresh_name("l08_check"))
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
        with pg.connect(name) as conn:
            old = conn.execute("SELECT count(*) FROM orders WHERE item IN ('book', 'pen', 'lamp')").fetchone()[0]
        r.expect(old == 3, "no order was lost", f"only {old} of the 3 original orders are left")
    finally:
        try:
            pg.drop_database(name)
        except db.DatabaseDown:
            pass
