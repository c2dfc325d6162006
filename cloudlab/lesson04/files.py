"""Lesson 04's files: the learner's rule, test and routing files, checked by their real tools before the live
Prometheus and Alertmanager load them (a file its checker refuses is never loaded)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .. import cleanup
from ..observability import prom
from ..observability.promtool import check_am_config, check_rules
from .stack import LESSON_DIR, RuleFileError, _write_yaml, alertmanager_config, current, read_yaml, stack_dir


# ------------------------------------------------------------------------ rules
def load_rules(path, quiet: bool = False) -> None:
    """Check a rule file with promtool, then load its lab-time copy into Prometheus.

    A file promtool refuses is never loaded: RuleFileError with promtool's own message.
    """
    path = Path(path)
    st = current()
    run = check_rules(path, quiet=quiet)
    if not run.ok:
        raise RuleFileError(f"`{run.command}` refused {path.name}, so Prometheus was not reloaded:\n{run.output}")
    live = st.rules_dir / f"{path.stem}.yml"
    _write_yaml(live, prom.compress_rules(read_yaml(path)))
    st.prometheus.reload()
    names = {g.get("name") for g in read_yaml(path).get("groups") or []}
    deadline, groups = time.monotonic() + 5, []
    while time.monotonic() < deadline:
        groups = [g for g in st.prometheus.rules() if g.get("file") == str(live) and g.get("name") in names]
        if len(groups) == len(names):
            break
        time.sleep(0.1)
    if not quiet:
        n = sum(len(g["rules"]) for g in groups)
        print(f"{run.output.splitlines()[-1].strip()}; Prometheus loaded {n} rules from {live.name} (lab time)")


def unload_rules(stem: str) -> None:
    st = current()
    (st.rules_dir / f"{stem}.yml").unlink(missing_ok=True)
    st.prometheus.reload()


# ------------------------------------------------------------------------ routing
def candidate_config(routes_file, where: Path) -> tuple[Path, object]:
    """Your routes + the lab's receivers as one file in ``where``, and ``amtool check-config``'s verdict on it."""
    routes = read_yaml(routes_file)
    extra = sorted(set(routes) - {"route", "inhibit_rules"})
    if extra:
        raise RuleFileError(
            f"{Path(routes_file).name} should hold only `route` and `inhibit_rules`; the lab provides the rest "
            f"(receivers pager and tickets). Remove: {', '.join(extra)}"
        )
    candidate = _write_yaml(where / "alertmanager.yml", alertmanager_config(current(), routes))
    return candidate, check_am_config(candidate)


def apply_routes(path, quiet: bool = False) -> None:
    """Load your routing (``route`` + ``inhibit_rules`` in real units) into the live Alertmanager.

    The receivers ``pager`` and ``tickets`` come from the lab (their addresses depend on the lab's ports).
    The whole file is checked with ``amtool check-config`` first; a refused file is never loaded.
    """
    st = current()
    candidate, run = candidate_config(path, st.dir / "alertmanager" / "candidate")
    if not quiet:
        print(f"$ {run.command}")
    if not run.ok:
        raise RuleFileError(f"`{run.command}` refused the configuration built from {Path(path).name}:\n{run.output}")
    shutil.copyfile(candidate, st.alertmanager_config)
    st.alertmanager.reload()
    if not quiet:
        print(f"configuration valid; Alertmanager reloaded {st.alertmanager_config.name} (your routes, in lab time)")


# ------------------------------------------------------------------------ files of the exercises
def write_file(name: str, text: str) -> Path:
    """Write ``text`` to ``name`` next to this notebook (where the checks look for it); return the path."""
    if not isinstance(text, str) or not text.strip():
        raise RuleFileError(f"there is nothing to write to {name}: fill in the text first")
    path = Path.cwd() / name
    path.write_text(text if text.endswith("\n") else text + "\n")
    return path


def run_tests(path) -> None:
    """``promtool test rules FILE``, printed as promtool prints it (SUCCESS, or each failed expectation)."""
    from ..observability.promtool import test_rules

    run = test_rules(path, quiet=False)
    print(run.output)


def test_with_rules(test_file, alerts: dict) -> None:
    """Run the promtool tests of ``test_file`` against other alerting rules (``alerts``, parsed YAML) and
    the lesson's recording rules: what the tests say when a rule is wrong."""
    d = stack_dir() / "tests"
    rules = _write_yaml(d / "changed-alerts.yml", alerts)
    test = read_yaml(test_file)
    test["rule_files"] = [str(LESSON_DIR / "slo-recording.yml"), str(rules)]
    run_tests(_write_yaml(d / Path(test_file).name, test))


# ------------------------------------------------------------------------ the reset
# What the exercise cells write next to the notebook. The answers live in the cells; these files are their output,
# and one left by an earlier run would let a blank exercise's check read an old answer.
EXERCISE_FILES = (
    "l04_recording.yml",
    "l04_alerts.yml",
    "l04_alerts_test.yml",
    "l04_alertmanager.yml",
    "l04_inventory.py",
)


@cleanup.extra("04")
def _reset_exercise_files() -> dict:
    """``reset_lesson("04")``: the exercise files next to the notebook go (the cells write them again)."""
    gone = []
    for name in EXERCISE_FILES:
        path = Path.cwd() / name
        if path.is_file():
            path.unlink()
            gone.append(name)
    return {"exercise files next to this notebook": gone}
