"""The field's own validators over every artifact the course ships (``tests/test_validators.py``).

``lessons/artifacts.toml`` is the ONE registry: each artifact a lesson shows is labelled

* ``good``: every validator named must pass; a finding may stay only as a *skip with a written reason*, either
  in the registry (``skip = {"checkov:CKV_K8S_43" = "why"}``) or in the file itself (checkov's
  ``checkov:skip=ID:reason``). A registry skip that no longer matches a finding is stale and fails too;
* ``bad``: a deliberately bad example; each finding in ``flaws`` (the flaw its lesson names) must be reported.

A validator that cannot run is an error, never "no findings". Validators (finding ids are ``tool:rule``):

==========================  =====================================================================
``hadolint``                Dockerfiles (``hadolint --disable-ignore-pragma``: a pragma is a skip too)
``checkov:<framework>``     ``dockerfile``, ``terraform``, ``cloudformation``, ``kubernetes`` (a manifest
                            file or folder), ``helm`` (a chart), ``kustomize`` (an overlay, rendered first)
``kubernetes-validate``     strict schemas of the course's Kubernetes version (``.yaml`` files, rendered
                            charts and overlays); a removed API fails
``helm-lint``               ``helm lint --strict`` (``values`` files from the entry)
``shellcheck``              every shell script in a ``.gitlab-ci.yml`` job or a workflow's ``run:`` step
``workflow``                check-jsonschema, actionlint and zizmor (auditor persona) over a GitHub workflow
``promtool``                ``promtool check rules`` (``test rules`` for a unit-test file)
``amtool``                  ``amtool check-config``
``terraform-fmt``           ``terraform fmt -check`` over a module folder
``chaostoolkit``            ``chaos validate`` over a Chaos Toolkit experiment
``pre-commit``              ``pre-commit validate-config`` (a ``.pre-commit-config.yaml``)
``check-jsonschema:<file>`` check-jsonschema against a schema file of the repository (a format with no
                            validator of its own, such as kube-apiserver's EncryptionConfiguration)
==========================  =====================================================================
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
REGISTRY = ROOT / "lessons" / "artifacts.toml"


class ValidatorError(RuntimeError):
    """A validator could not run: never read as "no findings"."""


@dataclass
class Artifact:
    path: str
    label: str  # good | bad
    validators: list[str]
    lesson: str = ""
    skip: dict[str, str] = field(default_factory=dict)
    flaws: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)  # helm: values files (relative to the chart)
    note: str = ""
    pending: str = ""  # a known problem being fixed (who/which issue item): the test expects it to fail

    @property
    def file(self) -> Path:
        return ROOT / self.path


def load(path: Path = REGISTRY) -> list[Artifact]:
    data = tomllib.loads(path.read_text())
    out = []
    for row in data.get("artifact", []):
        row = dict(row)
        out.append(Artifact(**row))
    return out


# ------------------------------------------------------------------ validators: each returns {finding id: message}
def _run(cmd: list[str], cwd=None, timeout: float = 120.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValidatorError(f"`{' '.join(cmd)}` did not run: {e}") from None


def hadolint(a: Artifact) -> dict[str, str]:
    from .. import scanners

    out = scanners.hadolint(a.file, quiet=True, honour_ignores=False)
    return {f"hadolint:{code}": f"line {line}: {msg}" for line, code, _lvl, msg in out["findings"]}


def _stage(a: Artifact, framework: str, where: Path) -> str:
    """Copy (or render) an artifact into ``where`` for a checkov run; return the framework to scan it with."""
    src = a.file
    where.mkdir(parents=True)
    if framework in ("kustomize", "helm-rendered"):
        (where / "rendered.yaml").write_text(yaml.safe_dump_all(list(_objects(a)), sort_keys=False))
        return "kubernetes"
    if src.is_dir():
        shutil.copytree(src, where, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".terraform", ".checkov.json"))
    else:
        shutil.copy(src, where / ("Dockerfile" if framework == "dockerfile" else src.name))
    return framework


def checkov_all(work: list[tuple[Artifact, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """checkov over many artifacts with ONE run per framework (its start-up is most of its time):
    {(artifact path, validator): findings}. Each artifact is staged in a folder of its own, in a private
    temporary folder (checkov writes its report there; the course's folders stay clean)."""
    from .. import scanners

    results: dict[tuple[str, str], dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="cloudlab-validate-") as tmp:
        groups: dict[tuple[str, int], list[tuple[int, Artifact, str]]] = {}
        for i, (a, validator) in enumerate(work):
            fw = _stage(a, validator.split(":", 1)[1], Path(tmp) / "staged" / str(i))
            # Kubernetes checks relate objects across files (a Pod and the NetworkPolicy that selects it):
            # each manifest set is scanned alone. Dockerfiles, Terraform modules, templates share one run.
            groups.setdefault((fw, i if fw == "kubernetes" else -1), []).append((i, a, validator))

        def scan(key, items):
            root = Path(tmp) / f"{key[0]}{key[1]}"
            root.mkdir()
            for i, _a, _v in items:
                (Path(tmp) / "staged" / str(i)).rename(root / str(i))
            return scanners.checkov(root, framework=key[0], quiet=True)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(3) as pool:
            runs = {key: pool.submit(scan, key, items) for key, items in groups.items()}
        for key, items in groups.items():
            out, fw = runs[key].result(), key[0]
            for i, a, validator in items:
                rows = {f: r for f, r in out["files"].items() if f.lstrip("/").split("/")[0] == str(i)}
                if not rows:
                    raise ValidatorError(f"checkov ({fw}) reported nothing for {a.path}: no input is no clean bill")
                found = {}
                for r in rows.values():
                    found.update(
                        {f"checkov:{cid}": f"{re.sub(r'^/[0-9]+/', '', res)}: {name}" for cid, res, name in r["failed"]}
                    )
                    for cid, res, why in r["skipped"]:
                        if not (why or "").strip() or why.strip().lower() in ("no comment provided", "none"):
                            found[f"checkov:{cid}"] = f"{res}: skipped in the file WITHOUT a reason"
                results[(a.path, validator)] = found
    return results


def _objects(a: Artifact) -> list:
    from ..k8s import render

    if a.file.is_dir() and (a.file / "Chart.yaml").exists():
        return list(render.helm_template(a.file, values=[a.file / v for v in a.values], quiet=True))
    if a.file.is_dir():
        return list(render.kustomize(a.file, quiet=True))
    return [o for o in yaml.safe_load_all(a.file.read_text()) if o is not None]


def kubernetes_validate(a: Artifact) -> dict[str, str]:
    from ..k8s import render

    return {f"kubernetes-validate:{where}": msg for where, msg in render.validate(_objects(a))}


def helm_lint(a: Artifact) -> dict[str, str]:
    from ..k8s import render

    ok, said = render.helm_lint(a.file, values=[a.file / v for v in a.values], quiet=True)
    if ok:
        return {}
    lines = [ln.strip() for ln in said.splitlines() if ln.strip().startswith(("[ERROR]", "[WARNING]"))]
    return {f"helm-lint:{i}": ln for i, ln in enumerate(lines or [said[-300:]])}


def shell_scripts(path: Path) -> list[tuple[str, str]]:
    """(where, script) for every shell script of a GitLab CI file or a GitHub workflow."""
    doc = yaml.safe_load(path.read_text()) or {}
    found = []
    if "jobs" in doc and isinstance(doc["jobs"], dict):  # GitHub Actions
        for job, spec in doc["jobs"].items():
            for i, step in enumerate((spec or {}).get("steps", []) or []):
                if isinstance(step, dict) and "run" in step:
                    found.append((f"{job} step {i + 1}", str(step["run"])))
        return found
    defaults = doc.get("default", {}) if isinstance(doc.get("default"), dict) else {}
    for job, spec in doc.items():
        if not isinstance(spec, dict) or "script" not in spec:
            continue  # a keyword (default, variables, workflow ...) or a template without a script
        for part in ("before_script", "script", "after_script"):
            lines = spec.get(part, defaults.get(part) if part != "script" else None)
            if lines:
                lines = [lines] if isinstance(lines, str) else lines
                found.append((f"{job} {part}", "\n".join(str(x) for x in lines)))
    return found


def shellcheck(a: Artifact) -> dict[str, str]:
    exe = shutil.which("shellcheck")
    if exe is None:
        from ..lab import tools

        exe = tools.require("shellcheck")
    found = {}
    for where, script in shell_scripts(a.file):
        # GitHub's `run:` and GitLab's shell executor run bash with -e (and pipefail on GitHub).
        text = "#!/usr/bin/env bash\nset -eo pipefail\n" + re.sub(r"\$\{\{.*?\}\}", "X", script) + "\n"
        try:
            proc = subprocess.run([exe, "-f", "json", "-"], input=text, capture_output=True, text=True, timeout=60)
            data = json.loads(proc.stdout or "[]")
        except (OSError, subprocess.TimeoutExpired, ValueError) as e:
            raise ValidatorError(f"shellcheck did not give a JSON report for {a.path} ({where}): {e}") from None
        for d in data:
            found[f"shellcheck:SC{d['code']}"] = f"{where}, line {d['line'] - 2}: {d['message']}"
    return found


def workflow(a: Artifact) -> dict[str, str]:
    from ..pipelines import workflows

    return {f"{f.tool}:{f.rule}": f"line {f.line}: {f.message}" for f in workflows.lint_workflows([a.file], True)}


def promtool(a: Artifact) -> dict[str, str]:
    from ..observability import promtool as pt

    doc = yaml.safe_load(a.file.read_text()) or {}
    run = pt.test_rules(a.file) if "tests" in doc else pt.check_rules(a.file)
    return {} if run.ok else {"promtool:failed": run.output[-400:]}


def amtool(a: Artifact) -> dict[str, str]:
    from ..observability import promtool as pt

    run = pt.check_am_config(a.file)
    return {} if run.ok else {"amtool:failed": run.output[-400:]}


def terraform_fmt(a: Artifact) -> dict[str, str]:
    exe = shutil.which("terraform")
    if exe is None:
        raise ValidatorError("terraform is not installed")
    proc = _run([exe, "fmt", "-check", "-list=true", "-recursive", str(a.file)])
    return {f"terraform-fmt:{Path(f).name}": "not formatted" for f in proc.stdout.split()}


def pre_commit(a: Artifact) -> dict[str, str]:
    from ..lab import tools

    proc = _run([tools.require("pre-commit"), "validate-config", str(a.file)])
    said = (proc.stdout + proc.stderr).strip()
    return {} if proc.returncode == 0 else {"pre-commit:validate-config": said[-400:] or f"exit {proc.returncode}"}


def check_jsonschema(a: Artifact, schema: str) -> dict[str, str]:
    proc = _run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(ROOT / schema), "-o", "json", str(a.file)]
    )
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise ValidatorError(
            f"check-jsonschema gave no JSON report (exit {proc.returncode}): {proc.stderr[-400:]}"
        ) from None
    found = {}
    for e in data.get("errors", []):
        deep = e.get("best_deep_match") or e.get("best_match") or e
        found[f"check-jsonschema:{deep.get('path', '?')}"] = str(deep.get("message", e))[:300]
    for e in data.get("parse_errors", []):
        found["check-jsonschema:parse"] = str(e.get("message", e))[:300]
    return found


def chaos_validate(a: Artifact) -> dict[str, str]:
    from ..reliability import chaos

    ok, why = chaos.validate(a.file, quiet=True)
    return {} if ok else {"chaostoolkit:invalid": why[-400:]}


VALIDATORS = {
    "chaostoolkit": chaos_validate,
    "hadolint": hadolint,
    "kubernetes-validate": kubernetes_validate,
    "helm-lint": helm_lint,
    "shellcheck": shellcheck,
    "workflow": workflow,
    "promtool": promtool,
    "amtool": amtool,
    "terraform-fmt": terraform_fmt,
    "pre-commit": pre_commit,
}


def run_all(artifacts: list[Artifact]) -> dict[str, tuple[dict[str, str], list[str]]]:
    """Every validator over every artifact: {path: (findings, errors)}; checkov batched per framework, the
    rest side by side. An error (a validator that could not run) is never read as "no findings"."""
    from concurrent.futures import ThreadPoolExecutor

    out: dict[str, tuple[dict[str, str], list[str]]] = {a.path: ({}, []) for a in artifacts}
    work = [(a, v) for a in artifacts for v in a.validators if v.startswith("checkov:")]

    def one(a: Artifact, v: str) -> None:
        try:
            if v.startswith("check-jsonschema:"):
                out[a.path][0].update(check_jsonschema(a, v.split(":", 1)[1]))
            elif v not in VALIDATORS:
                raise ValidatorError(f"unknown validator {v!r}")
            else:
                out[a.path][0].update(VALIDATORS[v](a))
        except Exception as e:  # noqa: BLE001  (reported per artifact, with what failed)
            out[a.path][1].append(f"{v} could not run: {type(e).__name__}: {e}")

    def batch() -> None:
        try:
            for (path, _v), found in checkov_all(work).items():
                out[path][0].update(found)
        except Exception as e:  # noqa: BLE001
            for a, v in work:
                out[a.path][1].append(f"{v} could not run: {type(e).__name__}: {e}")

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batch)] if work else []
        futures += [pool.submit(one, a, v) for a in artifacts for v in a.validators if not v.startswith("checkov:")]
        for f in futures:
            f.result()
    return out


def verdict(a: Artifact, found: dict[str, str]) -> list[str]:
    """What is wrong with an artifact given all its findings (empty: it is what its label says)."""
    problems = []
    if a.label == "good":
        for fid, msg in sorted(found.items()):
            if fid not in a.skip:
                problems.append(f"{fid}: {msg}")
        for fid, why in sorted(a.skip.items()):
            if not why.strip():
                problems.append(f"skip {fid} has no written reason")
            elif fid not in found:
                problems.append(f"skip {fid} is stale: no validator reports it any more (remove it)")
    elif a.label == "bad":
        if not a.flaws:
            problems.append("a deliberately bad artifact must name the flaw(s) its lesson teaches (flaws = [...])")
        for flaw in a.flaws:
            if flaw not in found:
                problems.append(f"its flaw {flaw} is not reported (found: {', '.join(sorted(found)) or 'nothing'})")
    else:
        problems.append(f"label must be 'good' or 'bad', not {a.label!r}")
    return problems
