"""A team lead's view of engineers working through the course on their own machines (no hub, no account).

``make progress-export`` (an engineer): writes ``progress-<name>-<date>.json``: their progress file (which checks
passed, tries, when: what ``make status`` shows) with their name, the course's commit and a summary per lesson.
They send it however the team sends files. ``make progress-report FILES="a.json b.json"`` (the lead): one table,
an engineer per row, checks passed per lesson, and the checks people tried and have not passed yet (where to help);
``CSV=1`` writes the same as CSV. On a workshop hub the roster shows the same live (docs/instructors/room.md).

Standard library only. Serves team leads (docs/instructors/team.md).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .lab import ROOT, Lab

FORMAT = "cloudlab-progress/1"


def progress_file(lab: Lab | None = None) -> Path:
    return Path(os.environ.get("CLOUDLAB_PROGRESS_FILE") or (lab or Lab.from_env()).state / "progress.json")


def check_totals() -> dict[str, int]:
    """{lesson: number of checks}, from the lesson modules' ``@check`` decorators (read, not imported)."""
    from .authoring.outline import check_ids

    totals: dict[str, int] = {}
    for key in check_ids():
        if key.startswith("title:"):
            lesson = key[6:].split(".")[0]
            totals[lesson] = totals.get(lesson, 0) + 1
    return totals


def summarise(progress: dict, totals: dict[str, int]) -> dict[str, dict]:
    """{lesson: {"passed", "total", "stuck": [check ids tried, not passed]}}."""
    out: dict[str, dict] = {k: {"passed": 0, "total": n, "stuck": []} for k, n in totals.items()}
    for cid, row in sorted(progress.items()):
        if not isinstance(row, dict) or not re.fullmatch(r"\d\d\.\d+", cid):
            continue
        d = out.setdefault(cid[:2], {"passed": 0, "total": 0, "stuck": []})
        if row.get("passed_at"):
            d["passed"] += 1
        elif row.get("attempts"):
            d["stuck"].append(cid)
    return out


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return out.stdout.strip()
    except OSError:
        return ""


def export(name: str, out: Path | None = None, source: Path | None = None) -> Path:
    source = source or progress_file()
    try:
        progress = json.loads(source.read_text())
    except (OSError, ValueError):
        progress = {}
    if not re.fullmatch(r"[\w .@-]{1,60}", name):
        raise ValueError(f"name {name!r}: use letters, digits, spaces, dots, dashes (at most 60)")
    data = {
        "format": FORMAT,
        "name": name,
        "exported_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "course_commit": _commit(),
        "summary": summarise(progress, check_totals()),
        "progress": progress,
    }
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "engineer"
    out = out or Path.cwd() / f"progress-{slug}-{time.strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return out


def load(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """The exported files that are readable (the newest per name), and a line for each that is not."""
    rows: dict[str, dict] = {}
    problems = []
    for p in paths:
        try:
            data = json.loads(Path(p).read_text())
        except (OSError, ValueError) as e:
            problems.append(f"{p}: not readable as an export ({e})")
            continue
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            problems.append(f"{p}: not a progress export (make progress-export writes them)")
            continue
        old = rows.get(data["name"])
        if old is None or data.get("exported_at", "") > old.get("exported_at", ""):
            rows[data["name"]] = data
    return [rows[k] for k in sorted(rows)], problems


def report_rows(exports: list[dict]) -> tuple[list[str], list[list[str]]]:
    totals = check_totals()
    lessons = sorted(totals)
    head = ["engineer", "exported", *[f"lesson {ls}" for ls in lessons], "passed", "tried, not passed yet"]
    rows = []
    for e in exports:
        s = summarise(e.get("progress") or {}, totals)
        cells = [e["name"], e.get("exported_at", "")[:10]]
        cells += [f"{s[ls]['passed']}/{s[ls]['total']}" if s[ls]["passed"] or s[ls]["stuck"] else "-" for ls in lessons]
        cells.append(str(sum(d["passed"] for d in s.values())))
        cells.append(", ".join(c for d in s.values() for c in d["stuck"]) or "-")
        rows.append(cells)
    return head, rows


def report(paths: list[Path], as_csv: bool = False) -> str:
    exports, problems = load(paths)
    head, rows = report_rows(exports)
    if as_csv:
        buf = io.StringIO()
        csv.writer(buf).writerows([head, *rows])
        return buf.getvalue()
    from .tables import Table

    notes = [f"{len(rows)} engineer(s). '-': no check of that lesson tried yet; n/m: checks passed of the lesson's m."]
    return str(Table(head, rows, title="Progress of the team", notes=notes + problems))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m cloudlab.team", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write your progress to a file for your team lead")
    e.add_argument("--name", default=os.environ.get("CLOUDLAB_NAME") or getpass.getuser())
    e.add_argument("--out", type=Path)
    r = sub.add_parser("report", help="one table from the files your engineers sent")
    r.add_argument("files", nargs="*", type=Path)
    r.add_argument("--csv", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "export":
        try:
            path = export(args.name, args.out)
        except ValueError as err:
            print(f"not exported: {err}")
            return 2
        print(f"progress of {args.name} written to {path}: send this file to your team lead")
        return 0
    if not args.files:
        print('give the exported files: make progress-report FILES="progress-ada-2026-12-01.json ..."')
        return 2
    print(report(args.files, args.csv), end="" if args.csv else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
