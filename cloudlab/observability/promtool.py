"""promtool and amtool, run for real: check and unit-test rule files, check and test Alertmanager routing.

Each runner prints the real command (so a learner can repeat it in a terminal), returns its full
output, and parses what a program can use: the failures of ``promtool test rules`` (which alert or
expression, at which time, what was expected and what came out) and the receivers of
``amtool config routes test``. Serves lesson 04 and the later lessons that alert.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..lab import tools


@dataclass
class ToolRun:
    """One run of promtool or amtool: did it succeed, what it printed, the command."""

    ok: bool
    output: str
    command: str
    failures: list[dict] = field(default_factory=list)  # promtool test rules: the failed assertions
    stdout: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _exe(name: str, tool: str, lesson: str) -> str:
    tools.require(tool, lesson)  # installs the package where the lab can, else ToolMissing with the fix
    exe = shutil.which(name)
    if exe is None:  # the package is there but this program is not on PATH (unusual)
        raise tools.ToolMissing(f"{name} was not found on PATH although {tool} is installed: {tools.TOOLS[tool].fix()}")
    return exe


def _run(args: list[str], shown: str, cwd=None, quiet: bool = True, timeout: float = 60.0) -> ToolRun:
    if not quiet:
        print(f"$ {shown}")
    try:
        out = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ToolRun(False, f"{args[0]} did not finish within {timeout:.0f} s", shown)
    text = (out.stdout + ("\n" if out.stdout and out.stderr else "") + out.stderr).strip()
    return ToolRun(out.returncode == 0, text, shown, stdout=out.stdout)


def promtool(*args, cwd=None, quiet: bool = True, lesson: str = "04") -> ToolRun:
    exe = _exe("promtool", "prometheus", lesson)
    return _run([exe, *map(str, args)], "promtool " + " ".join(shlex.quote(str(a)) for a in args), cwd, quiet)


def amtool(*args, cwd=None, quiet: bool = True, lesson: str = "04") -> ToolRun:
    exe = _exe("amtool", "alertmanager", lesson)
    return _run([exe, *map(str, args)], "amtool " + " ".join(shlex.quote(str(a)) for a in args), cwd, quiet)


def check_rules(path, quiet: bool = True) -> ToolRun:
    """``promtool check rules FILE``: syntax, PromQL, names."""
    path = Path(path)
    return promtool("check", "rules", path.name, cwd=path.parent, quiet=quiet)


def test_rules(path, quiet: bool = True) -> ToolRun:
    """``promtool test rules FILE``; ``failures`` lists each failed assertion (see :func:`parse_failures`)."""
    path = Path(path)
    run = promtool("test", "rules", path.name, cwd=path.parent, quiet=quiet)
    run.failures = parse_failures(run.output) if not run.ok else []
    return run


test_rules.__test__ = False  # not a pytest test, despite its name


_HEAD = re.compile(r'^\s*(alertname|expr): (".*?"|[^,]*), time: ([0-9hms.]+),\s*$')


def go_minutes(text: str) -> float:
    """A Go duration as promtool prints it (``1h30m``, ``2m30s``, ``45s``) in minutes."""
    total = 0.0
    for n, unit in re.findall(r"([0-9.]+)(h|m|s)", text):
        total += float(n) * {"h": 60, "m": 1, "s": 1 / 60}[unit]
    return total


def parse_failures(output: str) -> list[dict]:
    """The failed assertions in ``promtool test rules`` output: kind, name (alertname or expr), minute, detail."""
    fails, current = [], None
    for line in output.splitlines():
        m = _HEAD.match(line)
        if m:
            name = m.group(2)
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            current = {"kind": m.group(1), "name": name, "minute": go_minutes(m.group(3)), "detail": ""}
            fails.append(current)
        elif current is not None and line.strip():
            current["detail"] += line.strip() + " "
    return fails


def counter_values(per_minute) -> str:
    """promtool ``values`` of a counter that grows by each of ``per_minute``: '0 6 12 ...' (cumulative)."""
    total, out = 0.0, ["0"]
    for inc in per_minute:
        total += inc
        out.append(f"{total:g}")
    return " ".join(out)


def check_am_config(path, quiet: bool = True) -> ToolRun:
    """``amtool check-config FILE``."""
    path = Path(path)
    return amtool("check-config", path.name, cwd=path.parent, quiet=quiet)


def route_receivers(config, labels: dict) -> tuple[list[str], ToolRun]:
    """``amtool config routes test --config.file=FILE k=v ...``: the receivers an alert with ``labels`` reaches."""
    config = Path(config)
    args = ["config", "routes", "test", f"--config.file={config.name}", *(f"{k}={v}" for k, v in labels.items())]
    run = amtool(*args, cwd=config.parent)
    lines = run.stdout.strip().splitlines()
    names = [n.strip() for n in lines[-1].split(",") if n.strip()] if run.ok and lines else []
    return names, run


# ------------------------------------------------------------------ promtool as an evaluator
_PAIR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_samples(text: str) -> list[tuple[dict, float]]:
    """``{a="1", b="x}"} 1E-01, {c="2"} 5E-01`` (promtool's "got:" line) -> [(labels, value)]."""
    out, i, n = [], 0, len(text)
    while i < n:
        start = text.find("{", i)
        if start < 0:
            break
        labels, j = {}, start + 1
        while j < n and text[j] != "}":
            m = _PAIR.match(text, j)
            if not m:
                return out  # not promtool's format: stop rather than guess
            labels[m.group(1)] = bytes(m.group(2), "utf-8").decode("unicode_escape")
            j = m.end()
        value = re.match(r"\s*([-+0-9.eEInfNa]+)", text[j + 1 :])
        if value is None:
            break
        try:
            out.append((labels, float(value.group(1))))
        except ValueError:
            break
        i = j + 1 + value.end()
    return out


def evaluate(rule_files: list, groups: list[dict], workdir, name: str = "probe") -> tuple[dict, ToolRun]:
    """Evaluate expressions over synthetic series with ``promtool test rules`` (after the rules ran).

    ``groups``: [{"series": {series: values}, "probes": [(expr, minute)]}]. Every probe expects nothing,
    so promtool prints what it got. Returns ({(expr, minute): [(labels, value)]}, the run); a probe that
    got nothing maps to []. Each (expr, minute) must be unique across the groups.
    """
    import yaml

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tests = []
    for g in groups:
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in g["series"].items()],
                "promql_expr_test": [{"expr": e, "eval_time": f"{m}m", "exp_samples": []} for e, m in g["probes"]],
            }
        )
    doc = {"rule_files": [str(Path(f).resolve()) for f in rule_files], "evaluation_interval": "1m", "tests": tests}
    path = workdir / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
    run = test_rules(path)
    got = {(e, float(m)): [] for g in groups for e, m in g["probes"]}
    for f in run.failures:
        if f["kind"] == "expr":
            text = f["detail"].split("got:", 1)[1] if "got:" in f["detail"] else ""
            got[(f["name"], f["minute"])] = parse_samples(text)
    return got, run
