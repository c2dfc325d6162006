"""The instructor's copy of each lesson and solution notebook: the notes as markdown cells tagged ``instructor``.

``make instructor-notebooks`` (:func:`write_notebooks`) writes them into ``<workspace>/instructor/``: git-ignored, and
never part of a learner's workspace (:mod:`cloudlab.lab.workspace` copies only notebooks/, exercises/ and
solutions/, which hold no such cell: ``tests/test_instructor.py``). Serves instructors; built by :mod:`.instructor`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from .. import course
from . import outline, timing, wronganswers
from .instructor import INSTRUCTOR_TAG, _md, _mins, _quote, expected, load_notes


def _cell(text: str) -> dict:
    box = "<div style='border-left:4px solid #6e7781;padding-left:8px'>"
    source = f"{box}\n\n**Instructor note.** {text}\n\n</div>"
    return {"cell_type": "markdown", "metadata": {"tags": [INSTRUCTOR_TAG]}, "source": source}


def instructor_notebook(lesson: course.Lesson, folder: str, lt: timing.LessonTime, answers) -> dict:
    """A copy of the lesson (or solution) notebook with the notes inserted as cells tagged ``instructor``."""
    path = lesson.path(folder)
    nb = json.loads(path.read_text())
    notes = load_notes(lesson.id)
    ol = outline.read(path)
    cells = nb["cells"]
    inserts: dict[int, list[str]] = {}
    if folder == "notebooks":
        mins = {h: (m, src) for h, m, src in lt.section_minutes()}
        skip = {s["section"]: s.get("why", "") for s in (notes.skip if notes else [])}
        head = [f"Timing: teaching {lt.used('teaching')[0]} min ({lt.used('teaching')[1]}), exercises "
                f"{lt.used('exercises')[0]} min. Full notes: docs/instructors/{lesson.stem}.md."]  # fmt: skip
        if notes and notes.key_points:
            head.append("What matters most: " + " · ".join(_md(k) for k in notes.key_points))
        inserts.setdefault(1, []).append("\n\n".join(head))
        for s in ol.sections:
            if s.cells and s.heading in mins and s.heading != "Introduction":  # the title's note says the rest
                note = f"*{s.heading}*: about {_mins(mins[s.heading][0])} min ({mins[s.heading][1]})."
                if s.heading in skip:
                    note += f" Skip it when short of time: {_md(skip[s.heading])}"
                inserts.setdefault(s.cells[0], []).append(note)
        for mo in ol.moments:
            exp = expected(notes, mo)
            if exp:
                inserts.setdefault(mo.cell + 1, []).append(f"Expected answer ({mo.kind.lower()}): {_md(exp)}")
    else:
        by = wronganswers.by_check([a for a in answers if a.lesson == lesson.id])
        checks = [i for i, c in enumerate(cells) if "check" in c.get("metadata", {}).get("tags", [])]
        for t, i in zip(ol.tasks, checks, strict=False):
            rows = [f"- {_md(a.description)} → {_quote(a.words)}" for a in by.get(t.check_id, [])]
            if rows:
                inserts.setdefault(i + 1, []).append(
                    f"Wrong answers the check {t.check_id} rejects:\n\n" + "\n".join(rows)
                )
    out = copy.deepcopy(nb)
    new = []
    for i, c in enumerate(out["cells"]):
        new += [_cell(t) for t in inserts.get(i, [])]
        new.append(c)
    new += [_cell(t) for t in inserts.get(len(cells), [])]
    out["cells"] = new
    return out


def write_notebooks(target: Path) -> list[Path]:
    """Write the instructor's notebooks into ``target``. Run as root into another user's home (the instructor's
    account on the workshop hub), the files belong to that user, readable by nobody else."""
    import os

    answers, times = wronganswers.read(), timing.all_times()
    owner = next((d.stat() for d in (target, *target.parents) if d.exists()), None)  # before mkdir makes it root's
    foreign = os.geteuid() == 0 and owner is not None and owner.st_uid != 0
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for le in course.lessons():
        if not le.ready:
            continue
        for folder, suffix in (("notebooks", ""), ("solutions", ".solutions")):
            if le.path(folder).exists():
                p = target / f"{le.stem}{suffix}.instructor.ipynb"
                p.write_text(json.dumps(instructor_notebook(le, folder, times[le.id], answers), indent=1) + "\n")
                written.append(p)
    if foreign:
        for path in [target, *written]:
            os.chown(path, owner.st_uid, owner.st_gid)
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
    return written


def learner_safe(nb: dict) -> bool:
    """No cell of the notebook is an instructor's note."""
    return not any(INSTRUCTOR_TAG in c.get("metadata", {}).get("tags", []) for c in nb.get("cells", []))
