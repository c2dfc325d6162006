"""Lesson 09's chaos check (09.6): the learner's Chaos Toolkit experiment, run for real against the fleet.

Besides running it (hypothesis before and after, a real fault, rollbacks), the check reads the experiment as a
contract: the hypothesis probes the three things the task names, the method touches zone c only, for the time
the task says, and the rollbacks really undo a fault (the check injects one that outlasts the experiment and
runs the rollbacks alone: a rollback that only prints leaves it active).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..checks import check
from ..lab import Lab
from ..reliability import chaos, faults, fleet, netns

EXPERIMENT_FILE = "l09-my-experiment.json"
TARGET, FAULT_S, MAX_ERROR_RATIO = "l09-web-c", 3.0, 0.02


def experiment_path() -> Path:
    """Where the exercise writes its experiment: next to the notebook (the kernel's working directory)."""
    return Path.cwd() / EXPERIMENT_FILE


def save_experiment(experiment) -> None:
    """The chaos task's cell: write ``experiment`` to its file and show what ``chaos validate`` says, in one line.
    An experiment that is not JSON removes the file of an earlier try, so the check never reads a stale one."""
    path = experiment_path()
    try:
        text = json.dumps(experiment, indent=2)
    except (TypeError, ValueError) as e:
        path.unlink(missing_ok=True)
        print(f"EXPERIMENT cannot be written as JSON ({e}): use dicts, lists, strings and numbers; nothing saved")
        return
    path.write_text(text)
    ok, why = chaos.validate(path)
    print(f"saved {path.name}; chaos validate: {'valid' if ok else why}")


def _args(provider: dict) -> list[str]:
    args = provider.get("arguments", [])
    return [str(a) for a in args] if isinstance(args, list) else str(args).split()


def _option(args: list[str], name: str, default: float) -> float:
    if name in args[:-1]:
        try:
            return float(args[args.index(name) + 1])
        except ValueError:
            return float("nan")
    return default


def probed(probes: list) -> dict[str, str]:
    """Which of the task's three steady-state signals the hypothesis probes: {signal: the probe's name}."""
    found: dict[str, str] = {}
    for p in probes:
        if not isinstance(p, dict) or not isinstance(p.get("provider"), dict):
            continue
        prov, name, tol = p["provider"], str(p.get("name", "?")), p.get("tolerance")
        if prov.get("type") == "http" and str(prov.get("url", "")).rstrip("/").endswith("/health") and tol == 200:
            found.setdefault("health", name)
        args = _args(prov)
        if "zones-up" in args and _option(args, "--min", 3) >= 3 and tol == 0:
            found.setdefault("instances", name)
        if "error-ratio" in args and _option(args, "--max", 0.02) <= MAX_ERROR_RATIO and tol == 0:
            found.setdefault("errors", name)
    return found


SIGNALS = {
    "health": "the load balancer's ${lb_url}/health answers 200 (an http probe, tolerance 200)",
    "instances": "all 3 instances are UP (zones-up --min 3, tolerance 0)",
    "errors": "at most 2 % of requests fail (error-ratio --max 0.02 or less, tolerance 0)",
}


@check(
    "09.6",
    "Your chaos experiment checks the hypothesis before and after a real fault, and rolls back",
    hints=[
        "The file needs: title, description, a steady-state-hypothesis (title + probes, each with a tolerance), "
        "a method with one action that injects the fault, and rollbacks. The hypothesis probes three things: "
        "${lb_url}/health (http, tolerance 200), zones-up --min 3 and error-ratio --max 0.02 (process, "
        "tolerance 0): copy them from lessons/09_reliability-and-chaos/instance-dies.json.",
        "Action: a process provider with path 'python' and arguments ['-m', 'cloudlab.reliability.faults', "
        "'partition', 'l09-web-c', '--for', '3'] (or 'freeze' where the setup cell said namespaces are not "
        "available). Rollback: the same module with ['heal'], which undoes every fault still active.",
        "Give the fleet time to heal before the hypothesis is checked again: 'pauses': {'after': 4} on the action "
        "(the fault lasts 3 s, then haproxy needs two good health checks).",
    ],
)
def check_experiment(r, ns):
    path = experiment_path()
    r.require(path.exists(), f"{path.name} exists", f"{path.name} does not exist yet: run the task cell that writes it")
    try:
        exp = json.loads(path.read_text())
    except ValueError as e:
        r.fail(f"{path.name} is not valid JSON: {e}")
    r.require(isinstance(exp, dict), "the experiment is a JSON object", "the experiment must be a JSON object")
    hyp = exp.get("steady-state-hypothesis") or {}
    probes = hyp.get("probes") if isinstance(hyp, dict) else None
    r.require(
        isinstance(probes, list) and len(probes) >= 1,
        f"it states a steady-state hypothesis with {len(probes or [])} probe(s)",
        "there is no steady-state-hypothesis with probes: without one, nothing can tell whether the system held",
    )
    found = probed(probes)
    r.expect(
        len(found) == len(SIGNALS),
        "the hypothesis probes the three signals the task names: " + ", ".join(found.values()),
        "the task names three signals for the steady state and the hypothesis does not probe "
        + "; ".join(SIGNALS[k] for k in SIGNALS if k not in found),
    )
    actions = [a for a in exp.get("method") or [] if isinstance(a, dict) and a.get("type") == "action"]
    r.require(
        actions,
        f"its method has {len(actions)} action(s)",
        "the method has no action: probes alone observe, an experiment must inject a fault",
    )
    r.require(
        isinstance(exp.get("rollbacks"), list) and exp["rollbacks"],
        "it declares rollbacks",
        "there are no rollbacks: every experiment must undo what it did, also when it fails",
    )
    ok, why = chaos.validate(path, quiet=True)
    r.require(ok, "Chaos Toolkit says the experiment is valid", f"`chaos validate` refuses it: {why}")
    st = fleet.load_state()
    r.require(
        "lb" in st and TARGET in st.get("instances", {}),
        "the fleet runs",
        "the fleet is not running: run the setup cell at the top of the notebook again",
    )
    t0 = time.time()
    try:
        journal = chaos.run(path, {"lb_url": st["lb"]["url"]}, timeout=60, quiet=True)
    except chaos.ChaosError as e:
        r.fail(str(e))
    ss = journal.get("steady_states") or {}
    before, after = ss.get("before") or {}, ss.get("after") or {}
    r.require(
        before.get("steady_state_met") is True,
        "the hypothesis held before the fault",
        "the hypothesis did NOT hold before the fault, so Chaos Toolkit injected nothing: a probe cannot reach "
        "the service or its tolerance is wrong. Read the journal: chaos.summary(journal)",
    )
    injected = [h for h in faults.history(t0) if h["event"] == "injected"]
    refused = [
        a["output"].get("stderr", "").strip()
        for a in journal.get("run", [])
        if isinstance(a.get("output"), dict) and "refused" in (a["output"].get("stderr") or "")
    ]
    r.require(
        bool(injected),
        f"the method injected a real fault: {', '.join(h['kind'] + ' on ' + h['target'] for h in injected)}",
        "the method injected no fault into the fleet"
        + (f": {refused[0][:200]}" if refused else ": call cloudlab.reliability.faults from an action"),
    )
    _blast_radius(r, injected, st["instances"][TARGET])
    r.expect(
        "steady_state_met" in after,
        "the hypothesis was checked again after the fault",
        "the hypothesis was not checked after the fault (the run stopped early): see chaos.summary(journal)",
    )
    r.expect(
        after.get("steady_state_met") is True,
        "the hypothesis held after the fault",
        "the hypothesis did not hold after the fault: read chaos.summary(journal); a pause after the fault, or "
        "a fix in the system, is what makes it hold",
    )
    rb = journal.get("rollbacks") or []
    r.expect(
        rb and all(a.get("status") == "succeeded" for a in rb),
        f"{len(rb)} rollback(s) ran and succeeded",
        "no rollback ran" if not rb else "a rollback failed: " + ", ".join(a["activity"]["name"] for a in rb),
    )
    left = faults.active()
    r.expect(
        not left,
        "no fault is left active after the experiment",
        f"faults still active after the experiment: {sorted(left)}: roll back with faults heal",
    )
    faults.heal_all()
    _rollbacks_undo(r, exp, st)


def _blast_radius(r, injected: list[dict], web_c: dict) -> None:
    """The method cuts zone c off (a partition in its namespace, or a freeze where there are none), for 3 s."""
    kind = "partition" if web_c.get("netns") and netns.available()[0] else "freeze"
    target = f"{web_c['netns']}:{web_c['inner_port']}" if kind == "partition" else TARGET
    outside = [f"{h['kind']} on {h['target']}" for h in injected if h["target"] != target]
    r.expect(
        not outside,
        f"the blast radius is zone c only ({TARGET})",
        f"the method also hit {', '.join(outside)}: the task's fault is zone c only; a bigger blast radius is "
        "another experiment",
    )
    mine = [h for h in injected if h["target"] == target]
    r.expect(
        any(h["kind"] == kind and abs(float(h.get("seconds", 0)) - FAULT_S) <= 0.5 for h in mine),
        f"it cuts zone c off for {FAULT_S:g} s ({kind})",
        f"the task's fault is a {kind} of {TARGET} for {FAULT_S:g} s; the method injected "
        + (", ".join(f"{h['kind']} for {float(h.get('seconds', 0)):g} s" for h in mine) or "nothing on it"),
    )


def _rollbacks_undo(r, exp: dict, st: dict) -> None:
    """Inject a fault that outlasts everything (20 s), run ONLY the learner's rollbacks with Chaos Toolkit, and
    see whether the fault is gone: a rollback that prints, or waits for the fault to end, leaves it active."""
    web_c = st["instances"][TARGET]
    test = {
        "title": "the check: do these rollbacks undo a fault that is still active?",
        "description": "a no-op method, then the experiment's own rollbacks",
        "configuration": exp.get("configuration") or {},
        "method": [
            {
                "type": "probe",
                "name": "nothing",
                "provider": {"type": "process", "path": "python", "arguments": ["-c", "pass"]},
            }
        ],
        "rollbacks": exp["rollbacks"],
    }
    path = Lab.from_env().work_dir("09") / "l09-check-rollbacks.json"
    path.write_text(json.dumps(test))
    if web_c.get("netns") and netns.available()[0]:
        fault = faults.partition_instance(TARGET, 20, mode="reject", quiet=True)
    else:
        fault = faults.freeze(TARGET, 20, quiet=True)
    try:
        chaos.run(path, {"lb_url": st["lb"]["url"]}, timeout=40, quiet=True)
        still = fault.id in faults.active()
    except chaos.ChaosError as e:
        still, why = True, str(e)
    else:
        why = ""
    finally:
        fault.undo()
    r.expect(
        not still,
        "its rollbacks undo a fault that is still active (the check injected one lasting 20 s and ran them alone)",
        f"the check injected a fault that lasts 20 s ({fault.kind} on {fault.target}) and ran your rollbacks alone: "
        "the fault was still active afterwards"
        + (f" ({why[:150]})" if why else "")
        + ". A rollback must undo every fault (python -m cloudlab.reliability.faults heal), not only print or "
        "wait until the fault ends by itself",
    )
