"""What a lesson notebook says about itself: title, objectives, sections, the learner's moments, tasks, figures.

Read from the notebooks as they are, so the instructor pack (:mod:`.instructor`, :mod:`.agenda`) follows every
change a lesson's author makes. Standard library only; never imported by a notebook.

The markers it reads are the ones CONTRIBUTING.md asks every lesson for:

* the title ``# NN · Title``, the bold promise under it, the ``**Time:**`` line, ``## Learning objectives``;
* a section is a ``## `` heading (``### `` sub-headings stay inside it); ``## Summary`` and
  ``## Key takeaways`` close the lesson;
* a learner's **moment** is a markdown paragraph with a bold ``**Predict``, ``**Your turn`` or
  ``**Read the output`` (the "every ~10 minutes the learner does something" rule; one per paragraph);
  ``Your turn (N minutes)`` gives its length;
* a **task** (solutions/) is a ``## Task`` section; its check is the code cell tagged ``check``, which calls
  ``lessonNN.check_x()``; the check's id comes from the ``@check("NN.k", ...)`` that decorates ``check_x``
  in ``cloudlab/lessonNN`` (read with :mod:`ast`, nothing imported);
* a **figure** is a code cell that calls a function that draws (matplotlib, found in ``cloudlab/`` by
  :func:`figure_functions`); its text is an ``alt=`` given to :func:`cloudlab.figures.show`, or a caption: a
  markdown cell right before or after it with a paragraph that opens with ``**Figure``.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import course

ROOT = course.ROOT
MOMENT = re.compile(r"\*\*(Predict|Your turn|Read the output)([^*]*)\*\*")
MINUTES = re.compile(r"\((\d+) min(?:ute)?s?\)")
CAPTION = re.compile(r"^\*\*Figure\b", re.M)
CLOSING = ("Summary", "Key takeaways")
INTRO = ("Learning objectives", "Setup")


def source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def words(text: str) -> int:
    """Words a person reads: markdown without link targets, HTML tags or table rules."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>]+>|^\|?[-:| ]+\|?$", " ", text, flags=re.M)
    return len(re.findall(r"[A-Za-z0-9][\w'’./-]*", text))


@dataclass
class Moment:
    kind: str  # "Predict" | "Your turn" | "Read the output"
    text: str  # the paragraph, as the learner reads it
    cell: int  # index of the markdown cell in the notebook
    section: str
    minutes: int | None = None  # "Your turn (2 minutes)"

    @property
    def question(self) -> str:
        """What the learner is asked: the paragraph from the bold marker on (at most 400 characters)."""
        body = re.sub(r"\s+", " ", self.text).strip()
        start = MOMENT.search(body)
        rest = body[start.end() :].strip() if start else body
        return rest if len(rest) <= 400 else rest[:397].rsplit(" ", 1)[0] + " ..."

    @property
    def first_sentence(self) -> str:
        body = re.sub(r"\s+", " ", self.text).strip()
        start = MOMENT.search(body)
        rest = body[start.end() :].strip() if start else body
        m = re.match(r"(.+?[.?!])(\s|$)", rest)
        return (m.group(1) if m else rest)[:300]


@dataclass
class Figure:
    cell: int  # notebook cell index of the code cell
    code_index: int  # its number among the code cells (nbval's "Cell N")
    section: str
    calls: list[str]
    text: str = ""  # the alt text or caption found, "" when none

    @property
    def described(self) -> bool:
        return bool(self.text)


@dataclass
class Section:
    heading: str
    cells: list[int] = field(default_factory=list)  # notebook cell indices
    code_cells: list[int] = field(default_factory=list)  # their numbers among code cells
    words: int = 0
    code_lines: int = 0
    moments: list[Moment] = field(default_factory=list)
    subheadings: list[str] = field(default_factory=list)


@dataclass
class Task:
    heading: str
    goal: str
    check_call: str  # "lesson01.check_config"
    check_id: str
    words: int
    section: str


@dataclass
class Outline:
    path: Path
    title: str = ""
    promise: str = ""
    objectives: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    @property
    def moments(self) -> list[Moment]:
        return [m for s in self.sections for m in s.moments]

    def section_of_code_cell(self, n: int) -> str:
        for s in self.sections:
            if n in s.code_cells:
                return s.heading
        return ""


def _section_name(heading: str) -> str:
    return "Summary and key takeaways" if heading in CLOSING else heading


def read(path: Path) -> Outline:
    """The outline of one notebook (lesson, solution or exercise)."""
    nb = json.loads(Path(path).read_text())
    out = Outline(Path(path))
    current = Section("Introduction")
    out.sections.append(current)
    code_n = -1
    in_objectives = False
    calls = figure_functions()
    cells = nb.get("cells", [])
    for i, cell in enumerate(cells):
        text = source(cell)
        if cell.get("cell_type") == "markdown":
            for line in text.splitlines():
                if line.startswith("# ") and not out.title:
                    out.title = line[2:].strip()
                elif line.startswith("## "):
                    name = _section_name(line[3:].strip())
                    in_objectives = name == "Learning objectives"
                    if name in INTRO:
                        continue
                    if name != current.heading:
                        current = Section(name)
                        out.sections.append(current)
                elif line.startswith("### "):
                    current.subheadings.append(line[4:].strip())
                elif in_objectives and line.startswith(("- ", "* ")):
                    out.objectives.append(line[2:].strip())
                elif line.startswith("**") and not out.promise and out.title and not line.startswith("**Time"):
                    out.promise = line.strip().strip("*").strip()
            current.cells.append(i)
            current.words += words(text)
            for para in re.split(r"\n\s*\n", text):
                m = MOMENT.search(para.strip())
                if m:
                    mins = MINUTES.search(m.group(0))
                    current.moments.append(
                        Moment(m.group(1), para.strip(), i, current.heading, int(mins.group(1)) if mins else None)
                    )
        elif cell.get("cell_type") == "code":
            code_n += 1
            current.cells.append(i)
            current.code_cells.append(code_n)
            current.code_lines += sum(1 for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#"))
            written = text.lstrip().startswith("%%writefile")  # a file's source (a Lambda handler): nothing is shown
            drawn = [] if written else sorted(c for c in calls if re.search(rf"(?<![\w]){re.escape(c)}\s*\(", text))
            drawn += ["matplotlib"] if not written and re.search(r"\bplt\.(subplots|figure|plot|show)\(", text) else []
            if drawn:
                out.figures.append(Figure(i, code_n, current.heading, drawn, _figure_text(cells, i, text)))
            tags = cell.get("metadata", {}).get("tags", [])
            if "check" in tags:
                out.tasks.append(_task(cells, i, text, current.heading))
    out.sections = [s for s in out.sections if s.cells]
    return out


def _figure_text(cells: list[dict], i: int, text: str) -> str:
    alt = re.search(r"\balt\s*=\s*([\"'])(.+?)\1", text, re.S)
    if alt and "figures.show" in text:
        return alt.group(2).strip()
    for j in (i - 1, i + 1):
        if 0 <= j < len(cells) and cells[j].get("cell_type") == "markdown":
            for para in re.split(r"\n\s*\n", source(cells[j])):
                if CAPTION.match(para.strip()):
                    return re.sub(r"\s+", " ", para.strip())
    return ""


def _task(cells: list[dict], i: int, text: str, section: str) -> Task:
    m = re.search(r"\b(lesson\d\d)\.(?:[\w.]+\.)?(check_\w+)\s*\(", text)
    call = f"{m.group(1)}.{m.group(2)}" if m else text.strip()
    cid = check_ids().get(call, "")
    goal = ""
    j = i - 1
    while j >= 0 and not source(cells[j]).lstrip().startswith("## "):
        j -= 1
    body = source(cells[j]) if j >= 0 else ""
    g = re.search(r"\*\*Goal:\*\*\s*(.+?)(\n\s*\n|$)", body, re.S)
    if g:
        goal = re.sub(r"\s+", " ", g.group(1)).strip()
    n = sum(words(source(cells[k])) for k in range(max(j, 0), i) if cells[k].get("cell_type") == "markdown")
    if not goal:  # no **Goal:** line: the first sentence after the heading, or the task cell's "# Goal:" comment
        c = re.search(r"^# Goal:\s*(.+)$", text, re.M) or re.search(r"^# Goal:\s*(.+)$", source(cells[i - 1]), re.M)
        rest = body.split("\n", 1)[1] if "\n" in body else ""
        first = re.match(r"\s*(.+?[.:])(\s|$)", re.sub(r"\s+", " ", rest))
        goal = c.group(1).strip() if c else (first.group(1) if first else "")
    return Task(section, goal, call, cid, n, section)


@functools.cache
def check_ids(root: Path = ROOT) -> dict[str, str]:
    """``{"lesson01.check_config": "01.1", ...}`` from every ``@check("NN.k", ...)`` in ``cloudlab/lessonNN``,
    plus each check's title under ``"title:01.1"`` and its hints (one a line) under ``"hints:01.1"`` (read with
    ast, nothing imported)."""
    out: dict[str, str] = {}
    for path in sorted((root / "cloudlab").glob("lesson[0-9][0-9]*")):
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        lesson = path.name[:8]
        for f in files:
            try:
                tree = ast.parse(f.read_text())
            except (SyntaxError, OSError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.FunctionDef):
                    continue
                for d in node.decorator_list:
                    if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "check" and d.args:
                        cid = ast.literal_eval(d.args[0]) if isinstance(d.args[0], ast.Constant) else ""
                        title = d.args[1].value if len(d.args) > 1 and isinstance(d.args[1], ast.Constant) else ""
                        hints = next((k.value for k in d.keywords if k.arg == "hints"), None)
                        if hints is None and len(d.args) > 2:
                            hints = d.args[2]
                        try:
                            hints = list(ast.literal_eval(hints)) if hints is not None else []
                        except ValueError:
                            hints = []
                        if cid:
                            out[f"{lesson}.{node.name}"] = cid
                            out[f"title:{cid}"] = title
                            out[f"hints:{cid}"] = "\n".join(hints)
    return out


@functools.cache
def figure_functions(root: Path = ROOT) -> frozenset[str]:
    """Names of the public functions in ``cloudlab/`` that draw a figure: those that call matplotlib's
    ``subplots``/``figure``, and those that call one of them (in any module, to a fixed point: a widget that
    draws through a plot helper counts). What a notebook cell calls to show a figure."""
    bodies: dict[str, str] = {}
    for f in sorted((root / "cloudlab").rglob("*.py")):
        if "authoring" in f.parts:
            continue
        text = f.read_text()
        for n in ast.parse(text).body:  # module level: a method's name (update, run) says nothing in a notebook
            if isinstance(n, ast.ClassDef) or (isinstance(n, ast.FunctionDef) and not n.name.startswith("_")):
                bodies[n.name] = bodies.get(n.name, "") + (ast.get_source_segment(text, n) or "")
    drawing = {name for name, body in bodies.items() if re.search(r"\.(subplots|figure)\(", body)}
    while True:  # a call by its bare name (imported, or in the same module): `plot_options(...)`, `Calculator(...)`
        more = {
            name
            for name, body in bodies.items()
            if name not in drawing and any(re.search(rf"(?<![\w.]){re.escape(d)}\(", body) for d in drawing)
        }
        if not more:
            return frozenset(drawing)
        drawing |= more


def sources_hash(path: Path) -> str:
    """A hash of a notebook's code cells: a measurement keyed by code cell number holds while it is unchanged."""
    import hashlib

    nb = json.loads(Path(path).read_text())
    code = [source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    # "sha256:" keeps the repository's secret scan from reading a bare hex string in measured.json as a key
    return "sha256:" + hashlib.sha256(json.dumps(code).encode()).hexdigest()[:16]


def lesson_outline(lesson: course.Lesson) -> Outline:
    return read(lesson.path("notebooks"))


def solution_outline(lesson: course.Lesson) -> Outline | None:
    p = lesson.path("solutions")
    return read(p) if p.exists() else None
