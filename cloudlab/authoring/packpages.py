"""The generated parts of the hand-written instructor pages: measured machine needs, lessons per role, the figures
still lacking text. Each sits between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->`` in its
page; ``make instructor-notes`` rewrites only that block (:mod:`.instructor`), and the staleness test covers it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import course
from . import outline, timing

FOLDERS = ("notebooks", "solutions", "exercises")
ROLES = {"backend": "backend engineers", "platform": "platform engineers", "sre": "SREs", "lead": "team leads"}


def figures_lacking_text(root: Path = course.ROOT) -> list[tuple[str, outline.Figure]]:
    """(notebook, figure) of every code cell that draws without alt text or a caption."""
    out = []
    for folder in FOLDERS:
        for p in sorted((root / folder).glob("*.ipynb")):
            out += [(f"{folder}/{p.name}", f) for f in outline.read(p).figures if not f.described]
    return out


def requirements(measured: dict | None = None) -> str:
    measured = timing.measured() if measured is None else measured
    rows = [
        "| # | lesson | peak memory (RSS) | disk during the lesson | machine time, 3 notebooks | "
        "first on a fresh lab | tools beyond the kernel |",
        "|---|---|---|---|---|---|---|",
    ]
    for le in course.lessons():
        if not le.ready:
            continue
        m = measured.get(le.id) or {}
        if not m:
            rows.append(f"| {le.id} | {le.title} | not measured | | | | {', '.join(le.tools) or '-'} |")
            continue
        secs = sum((m.get("notebook_s") or {}).values())
        fresh = "passed" if m.get("passed") else "FAILED (see the lesson's notes)"
        rows.append(
            f"| {le.id} | {le.title} | {m.get('peak_rss_mib')} MiB | {m.get('disk_mib')} MiB | {secs:.0f} s | "
            f"{fresh} ({m.get('measured_on')}) | {', '.join(le.tools) or '-'} |"
        )
    setup = measured.get("_setup") or {}
    loads = [m["load"][0] for k, m in measured.items() if not k.startswith("_") and m.get("load")]
    notes = [
        "",
        "Measured by `make measure` (each lesson alone on a brand-new lab; `lessons/instructor/measured.json`): the "
        "peak is the sum of the resident memory of every process of the run (emulators, lesson processes, the lab's "
        "Docker engine and containers, the notebook's kernel and the test runner that stands in for JupyterLab), "
        "sampled every 0.5 s.",
    ]
    if loads:
        notes.append(
            f"The machine was shared and loaded (load average {min(loads):.0f} to {max(loads):.0f} on 2 cores): "
            "times are upper bounds; memory does not depend on load."
        )
    if setup:
        notes += [
            "",
            f"Installed once, shared by every lesson: the course kernel's environment {setup.get('kernel_mib')} MiB, "
            f"the tools' environments (LocalStack, moto, checkov, scanners ...) {setup.get('venvs_mib')} MiB, "
            f"caches (the Debian base image, wheels) {setup.get('cache_mib')} MiB; "
            f"measured {setup.get('measured_on')}.",
        ]
    return "\n".join(rows + notes)


def roles() -> str:
    from .instructor import load_notes

    times = timing.all_times()
    out = []
    for role, who in ROLES.items():
        picked, total = [], 0
        for le in course.lessons():
            notes = load_notes(le.id)
            if notes and role in notes.roles:
                if le.ready:
                    lt = times[le.id]
                    mins = lt.used("teaching")[0] + lt.used("exercises")[0]
                    total += mins
                    picked.append(f"[{le.id} · {le.title}]({le.stem}.md) ({mins} min)")
                else:
                    picked.append(f"{le.id} · {le.title} (being built)")
        out.append(f"| {who} | {', then '.join(picked)} | {total / 60:.1f} h |")
    head = ["| role | lessons, in this order | time (teaching + exercises) |", "|---|---|---|"]
    return "\n".join(head + out)


def figures() -> str:
    missing = figures_lacking_text()
    if not missing:
        return "Every figure of every notebook has alt text or a caption."
    rows = ["| notebook | code cell | what draws it | section |", "|---|---|---|---|"]
    for nb, f in missing:
        rows.append(f"| `{nb}` | {f.code_index} | `{'`, `'.join(f.calls)}` | {f.section} |")
    return f"{len(missing)} figures still lack alt text or a caption:\n\n" + "\n".join(rows)


BLOCKS = {"checklist.md": {"requirements": requirements}, "team.md": {"roles": roles},
          "accessibility.md": {"figures": figures}}  # fmt: skip


def render(path: Path) -> str | None:
    """The page with its generated blocks rewritten, or None when the page does not exist."""
    if not path.exists():
        return None
    text = path.read_text()
    for name, make in BLOCKS.get(path.name, {}).items():
        begin, end = f"<!-- BEGIN generated: {name} -->", f"<!-- END generated: {name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"{path}: no {begin} ... {end} block")
        text = pattern.sub(lambda _m, b=begin, e=end, mk=make: f"{b}\n{mk()}\n{e}", text)
    return text
