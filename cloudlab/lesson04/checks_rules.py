"""Checks 04.3-04.5: the learner's recording rules, alerting rules and promtool tests.

Each check runs the real promtool on the learner's file over the traffic of :mod:`.scenarios`, where
every plausible wrong rule gives a different answer, and reads what the live Prometheus loaded.
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from ..checks import check
from ..observability import prom
from ..observability.promtool import check_rules, evaluate, test_rules
from . import scenarios as sc
from .service import work_dir
from .stack import LESSON_DIR, RUNBOOK, current, wait_for

RECORDING_FILE, ALERTS_FILE, TESTS_FILE = "l04_recording.yml", "l04_alerts.yml", "l04_alerts_test.yml"


# ------------------------------------------------------------------ shared by the checks
def learner_file(r, name: str) -> Path:
    path = Path.cwd() / name
    r.require(
        path.is_file(),
        f"{name} exists next to this notebook",
        f"{name} does not exist next to this notebook yet: run the %%writefile cell of the task",
    )
    return path


def learner_yaml(r, path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        r.fail(f"{path.name} is not valid YAML: {str(e)[:300]}")
    if not isinstance(data, dict):
        r.fail(f"{path.name} should hold a YAML mapping (groups: ...), not {type(data).__name__}")
    return data


def rules_of(data: dict) -> list[dict]:
    groups = data.get("groups") if isinstance(data.get("groups"), list) else []
    return [rule for g in groups if isinstance(g, dict) for rule in (g.get("rules") or []) if isinstance(rule, dict)]


def promtool_accepts(r, path: Path) -> None:
    run = check_rules(path)
    r.require(
        run.ok,
        f"`{run.command}` accepts it",
        f"`{run.command}` refuses it:\n{run.output[-700:]}",
    )


def live_groups(r, path: Path) -> list[dict]:
    """The groups Prometheus loaded from ``path`` (its lab-time copy), after checking the copy is current."""
    st = current()
    live = st.rules_dir / f"{path.stem}.yml"
    try:
        groups = [g for g in st.prometheus.rules() if g.get("file") == str(live)]
    except prom.StackError as e:
        r.fail(str(e))
    r.require(
        bool(groups),
        f"the live Prometheus loaded {path.name}",
        f"the live Prometheus has not loaded {path.name}: run lesson04.load_rules({path.name!r}) after writing it",
    )
    try:
        same = yaml.safe_load(live.read_text()) == prom.compress_rules(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError):
        same = False
    r.expect(
        same,
        "what it runs is your current file (in lab time)",
        f"{path.name} changed after you loaded it: run lesson04.load_rules({path.name!r}) again",
    )
    broken = [x["name"] for g in groups for x in g.get("rules", []) if x.get("health") not in ("ok", "unknown")]
    r.expect(
        not broken,
        "every rule evaluates without error",
        f"Prometheus reports errors evaluating {broken}: "
        + "; ".join(x.get("lastError", "") for g in groups for x in g.get("rules", []) if x.get("lastError"))[:300],
    )
    return groups


def scratch(name: str) -> Path:
    d = work_dir() / "checks" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


# ------------------------------------------------------------------ 04.3 recording rules
def diagnose_ratio(value: float, window: str, t: int) -> str:
    """A likely reason why a recorded ratio is ``value`` instead of the right one."""
    e = sc.recording_errors()
    close = lambda a, b: abs(a - b) < 1e-6  # noqa: E731
    for other, minutes in sc.WINDOW_MINUTES.items():
        if other != window and close(value, sc.window_ratio(e, t, minutes)):
            return f"that is the {other} ratio: check the range of the {window} rule"
    want = sc.window_ratio(e, t, sc.WINDOW_MINUTES[window])
    client = sc.CLIENT_ERRORS / sc.PER_MINUTE
    if close(value, 1 - want):
        return "that is the success ratio: divide the 5xx answers by all answers"
    if close(value, want + client):
        return 'that counts the 404s too: only 5xx answers are errors (status=~"5..")'
    n = min(t, sc.WINDOW_MINUTES[window])
    only_500 = sum(x - sc.unavailable(x) for x in e[t - n : t]) / (sc.PER_MINUTE * n)
    if close(value, only_500) and not close(only_500, want):
        return 'that counts only the 500s, not the 503s: every 5xx answer is an error (status=~"5..")'
    if close(value, (want + sc.PAYMENTS_RATIO) / 2):
        return "the payments job is mixed in: aggregate with sum by (job)"
    if close(value, e[t - 1] / sc.PER_MINUTE):
        return "that is the last minute only (irate?): use rate over the whole window"
    if close(value, 1.0):
        return "a ratio of 1: the 5xx series divided by itself? sum both sides by (job) before dividing"
    return "compare your expression with rate(5xx)[window] / rate(all)[window], both summed by job"


@check(
    "04.3",
    "Recording rules give the error ratio over 5m, 30m, 1h and 6h",
    hints=[
        "One rule per window: record the share of answers with a 5xx status among all answers of the job, "
        "with rate() over that window on both sides.",
        'sum by (job) (rate(orders_requests_total{status=~"5.."}[5m])) / '
        "sum by (job) (rate(orders_requests_total[5m])); write real windows (5m, 30m, 1h, 6h): "
        "the lab compresses them for the live Prometheus.",
        "Record them as job:slo_errors_per_request:ratio_rate5m, ..._ratio_rate30m, ..._ratio_rate1h, "
        "..._ratio_rate6h, then run lesson04.load_rules('l04_recording.yml').",
    ],
)
def check_recording_rules(r, ns):
    path = learner_file(r, RECORDING_FILE)
    data = learner_yaml(r, path)
    promtool_accepts(r, path)
    records = {x.get("record") for x in rules_of(data)}
    missing = [name for name in sc.RECORDS.values() if name not in records]
    r.expect(
        not missing,
        "it records the four windows' ratios under their names",
        f"no rule records {', '.join(missing)}",
    )
    got, run = evaluate([path], sc.recording_groups(), scratch("04.3"))
    r.require(
        run.ok or run.failures,
        "promtool evaluated the rules over seven hours of traffic",
        f"promtool could not evaluate the rules: {run.output[-600:]}",
    )
    expected = sc.recording_expected()
    for window, name in sc.RECORDS.items():
        if name in missing:
            continue
        problems = []
        for t in sc.RECORDING_TIMES:
            want = expected[(window, t)]
            samples = got[(name, float(t))]
            orders = [v for labels, v in samples if labels.get("job") == "orders"]
            payments = [v for labels, v in samples if labels.get("job") == "payments"]
            if not samples:
                seconds = re.findall(r"\[\s*\d+s\s*\]", str(data))
                problems.append(
                    "it gives no value at all over seven hours of 1-minute samples"
                    + (" (windows in seconds are lab time: write real windows, 5m ... 6h)" if seconds else "")
                )
            elif not orders:
                problems.append(f"its result has no job label ({samples[0][0]}): aggregate with sum by (job)")
            elif len(orders) > 1:
                problems.append(f"it gives {len(orders)} series for the orders job: aggregate with sum by (job)")
            elif abs(orders[0] - want) > 1e-6:
                problems.append(
                    f"at {t} min it is {orders[0]:.4f}, not {want:.4f}: {diagnose_ratio(orders[0], window, t)}"
                )
            elif len(payments) != 1 or abs(payments[0] - sc.PAYMENTS_RATIO) > 1e-6:
                problems.append(
                    "it is right for the orders job, but the second job in the traffic (payments, "
                    f"{sc.PAYMENTS_RATIO:.0%} errors) gets {payments or 'no ratio at all'}: record the ratio per job, "
                    'for every job (a job="orders" matcher leaves the others out)'
                )
        r.expect(
            not problems,
            f"{name} is right ({expected[(window, sc.RECORDING_TIMES[0])]:.4f} on the replayed traffic)",
            f"{name}: {problems[0] if problems else ''}",
        )
    live_groups(r, path)
    prometheus = current().prometheus

    def live():
        value = prometheus.value(f'{sc.RECORDS["5m"]}{{job="orders"}}')
        errors = prometheus.value('count(orders_requests_total{job="orders", status=~"5.."})')
        return (value, errors) if value is not None or errors is None else None

    value, errors = wait_for(live, 4.0) or (None, 1)
    r.expect(
        value is not None or errors is None,
        f"the live Prometheus records the running service's 5m ratio ({value:.4f})"
        if value is not None
        else "the live Prometheus evaluates them (no 5xx answered yet, so no ratio yet: absent is not 0)",
        "the service has answered 5xx, but the live Prometheus records no 5m ratio for job orders: "
        "does your rule keep the job label?",
    )


# ------------------------------------------------------------------ 04.4 alerting rules
HOLD = {sc.PAGE: "2m", sc.TICKET: "5m"}  # the task's `for:` of each alert


def alert_rule(rules: list[dict], name: str) -> dict | None:
    return next((x for x in rules if x.get("alert") == name), None)


@check(
    "04.4",
    "Multi-window burn-rate alerts page fast burns and ticket slow ones",
    hints=[
        "Two alerting rules on your recorded ratios: the page when BOTH the 1h and the 5m ratio are above "
        "14.4 times the error budget, the ticket when both the 6h and the 30m ratio are above 6 times it.",
        "The error budget of a 99.5 % SLO is 0.005: expr: job:slo_errors_per_request:ratio_rate1h > (14.4 * 0.005) "
        "and job:slo_errors_per_request:ratio_rate5m > (14.4 * 0.005).",
        "Name them OrdersErrorBudgetFastBurn (for: 2m, severity: page) and OrdersErrorBudgetSlowBurn (for: 5m, "
        f"severity: ticket), both with slo: {sc.SLO_NAME} and the annotation runbook_url: {RUNBOOK}.",
    ],
)
def check_alert_rules(r, ns):
    path = learner_file(r, ALERTS_FILE)
    data = learner_yaml(r, path)
    promtool_accepts(r, path)
    rules = rules_of(data)
    r.expect(
        not any("record" in x for x in rules),
        "it holds alerting rules only",
        f"{path.name} also records series: keep recording rules in {RECORDING_FILE}",
    )
    for name, severity in ((sc.PAGE, "page"), (sc.TICKET, "ticket")):
        rule = alert_rule(rules, name)
        if not r.expect(rule is not None, f"there is an alert {name}", f"there is no alerting rule named {name}"):
            continue
        labels = rule.get("labels") if isinstance(rule.get("labels"), dict) else {}
        r.expect(
            labels.get("severity") == severity and labels.get("slo") == sc.SLO_NAME,
            f"{name} has severity={severity}, slo={sc.SLO_NAME}",
            f"{name} has labels {labels}; it needs severity: {severity} and slo: {sc.SLO_NAME} (routing uses them)",
        )
        try:
            hold = prom.parse_duration(str(rule.get("for", "0s")))
        except ValueError:
            hold = 0
        want = HOLD[name]
        r.expect(
            hold == prom.parse_duration(want),
            f"{name} waits for: {rule.get('for')} before it fires",
            f"{name} has `for: {rule.get('for', '(none)')}`, the task says for: {want}: "
            + (
                "one bad evaluation should not alert"
                if hold < prom.parse_duration(want)
                else "every extra minute of waiting is a minute more of the budget burnt before anyone hears"
            ),
        )
        expr = str(rule.get("expr", ""))
        r.expect(
            ">=" not in expr and "<" not in expr,
            f"{name} fires when a ratio is ABOVE its threshold (>)",
            f"{name} compares with {'>=' if '>=' in expr else '<'}: the task says the ratio burns FASTER than the "
            "threshold, `>` (the replayed traffic never sits exactly on 7.2 %, so only this line can tell)",
        )
        notes = rule.get("annotations") if isinstance(rule.get("annotations"), dict) else {}
        r.expect(
            str(notes.get("runbook_url", "")).endswith(RUNBOOK),
            f"{name} links the runbook",
            f"{name} has no annotation runbook_url ending in {RUNBOOK}: every page needs its runbook",
        )
    got, run = evaluate([path], sc.alert_groups(), scratch("04.4"))
    r.require(
        run.ok or run.failures,
        "promtool evaluated the alerts over the replayed incidents",
        f"promtool could not evaluate the rules: {run.output[-600:]}",
    )
    for case in sc.alert_cases():
        wrong = []
        for p in case.probes:
            firing = [labels for labels, _ in got[(case.expr(), float(p.minute))]]
            page = any(x.get("severity") == "page" or x.get("alertname") == sc.PAGE for x in firing)
            ticket = any(x.get("severity") == "ticket" or x.get("alertname") == sc.TICKET for x in firing)
            if page != p.page or ticket != p.ticket:
                said = " and ".join(n for n, f in (("the page", page), ("the ticket", ticket)) if f) or "nothing"
                wrong.append(f"{p.why}; yours: {said} fires there")
        r.expect(
            not wrong,
            f"{case.story}: right at all {len(case.probes)} moments checked",
            f"{case.story}: {wrong[0] if wrong else ''}",
        )
    groups = live_groups(r, path)
    states = {x["name"]: x.get("state") for g in groups for x in g.get("rules", []) if x.get("type") == "alerting"}
    r.expect(
        sc.PAGE in states and sc.TICKET in states,
        f"the live Prometheus evaluates both alerts ({states})",
        f"the live Prometheus evaluates {sorted(states)}; expected {sc.PAGE} and {sc.TICKET}",
    )


# ------------------------------------------------------------------ 04.5 the learner's promtool tests
def reference_rules() -> tuple[Path, Path]:
    return LESSON_DIR / "slo-recording.yml", LESSON_DIR / "slo-alerts.yml"


def mutant(alerts: dict, expr: str, hold: str | None = None) -> dict:
    """The alerting rules with the page's expression (and, if given, its `for:`) replaced."""
    out = yaml.safe_load(yaml.safe_dump(alerts))
    for rule in rules_of(out):
        if rule.get("alert") == sc.PAGE:
            rule["expr"] = expr
            if hold:
                rule["for"] = hold
    return out


def dressed(alerts: dict) -> dict:
    """The lesson's alert rules wearing the learner's labels and annotations (tests compare those exactly)."""
    out = yaml.safe_load(yaml.safe_dump(alerts))
    try:
        mine = {x.get("alert"): x for x in rules_of(yaml.safe_load((Path.cwd() / ALERTS_FILE).read_text()) or {})}
    except (OSError, yaml.YAMLError, AttributeError):
        mine = {}
    for rule in rules_of(out):
        theirs = mine.get(rule.get("alert"))
        if theirs:
            for key in ("labels", "annotations"):
                if isinstance(theirs.get(key), dict):
                    rule[key] = theirs[key]
                else:
                    rule.pop(key, None)
    return out


def run_tests_against(tests: dict, rule_files: list[Path], d: Path, name: str):
    doc = dict(tests, rule_files=[str(p) for p in rule_files])
    path = d / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
    return test_rules(path)


@check(
    "04.5",
    "Your promtool tests catch a rule that pages wrongly",
    hints=[
        "Write tests with input series of orders_requests_total and alert_rule_test entries: the test passes when "
        "the alerts you list (and only those) fire at eval_time.",
        "Three stories: an incident (10 % errors for an hour: the page fires), a one-minute blip (nothing fires "
        "minutes later), a recovery (the page is gone 10 minutes after the errors stop: exp_alerts: []).",
        "Start each story with a few healthy hours; list exp_labels exactly as the alert has them "
        f"(alertname, severity, slo, service, job). rule_files: [{RECORDING_FILE}, {ALERTS_FILE}].",
    ],
)
def check_alert_tests(r, ns):
    path = learner_file(r, TESTS_FILE)
    tests = learner_yaml(r, path)
    r.require(
        isinstance(tests.get("tests"), list) and tests["tests"],
        "it has test groups",
        f"{path.name} has no `tests:` list",
    )
    d = scratch("04.5")
    rec, alerts_file = reference_rules()
    alerts = dressed(yaml.safe_load(alerts_file.read_text()))
    if not any(w in path.read_text() for w in ("SlowBurn", "ALERTS", "rate6h", "rate30m", "ticket")):
        # the tests look at the page only: leave out the ticket and its six-hour rate (half the work)
        keep = (sc.RECORDS["5m"], sc.RECORDS["1h"])
        doc = yaml.safe_load(rec.read_text())
        for g in doc["groups"]:
            g["rules"] = [x for x in g["rules"] if x.get("record") in keep]
        rec = d / "page-recording.yml"
        rec.write_text(yaml.safe_dump(doc, sort_keys=False))
        for g in alerts["groups"]:
            g["rules"] = [x for x in g["rules"] if x.get("alert") == sc.PAGE]
    correct = d / "correct-alerts.yml"
    correct.write_text(yaml.safe_dump(alerts, sort_keys=False))
    jobs = {"the lesson's correct rules": [rec, correct]}
    for name, expr in sc.MUTANTS.items():
        f = d / f"mutant-{name.replace(' ', '-')}.yml"
        f.write_text(yaml.safe_dump(mutant(alerts, expr, sc.MUTANT_HOLD.get(name)), sort_keys=False))
        jobs[name] = [rec, f]
    with ThreadPoolExecutor(len(jobs)) as ex:
        done = ex.map(lambda kv: run_tests_against(tests, kv[1], d, kv[0].replace(" ", "-")), jobs.items())
        runs = dict(zip(jobs, done, strict=True))
    ref = runs.pop("the lesson's correct rules")
    r.require(
        ref.ok,
        "your tests pass on the lesson's correct rules",
        "your tests FAIL on the lesson's correct rules (lessons/04_observability/slo-*.yml, with your labels and "
        f"annotations), so they expect the wrong thing. promtool says:\n{ref.output[-900:]}",
    )
    for name, run in runs.items():
        r.expect(
            not run.ok,
            f"they fail for a page rule with {name} ({len(run.failures)} failed assertions)",
            f"they PASS a broken page rule with {name} ("
            + (f"for: {sc.MUTANT_HOLD[name]}" if name in sc.MUTANT_HOLD else sc.MUTANTS[name])
            + f"): {sc.MUTANT_HINTS[name]}",
        )
