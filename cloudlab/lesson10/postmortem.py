"""The postmortem's parser: the repository's template (``lessons/10_capstone-incident-response/postmortem-template.md``)
read back as data, so a check can compare it with what really happened. Pure (no lab); serves lesson 10.

A postmortem is markdown with ``## `` sections. The parser reads: the severity (``**Severity:** SEV2``), the
Impact section's budget figures (``N minutes`` and ``P %``), the Timeline's ``YYYY-MM-DD HH:MM:SS <event>`` lines
(UTC), the numbered Root causes, and the Action items table (``| # | action | owner | root cause |``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .stack import LESSON_DIR

TEMPLATE = LESSON_DIR / "postmortem-template.md"
SECTIONS = ("Summary", "Impact", "Timeline", "Root causes", "What went well", "Action items")
EVENTS = ("start", "detected", "acknowledged", "mitigated", "resolved")
BLAME = (
    "human error",
    "careless",
    "negligen",
    "fault of",
    "to blame",
    "blame ",
    "incompetent",
    "stupid",
    "lazy",
    "should have known",
    "didn't bother",
    "did not bother",
    "sloppy",
)
PLACEHOLDER = re.compile(r"^\s*(<.*>|tbd|todo|\?+|-+|someone|n/?a|nobody|)\s*$", re.I)
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?\s*(?:Z|UTC|\+00:00)?", re.I)


@dataclass
class Postmortem:
    sections: dict[str, str]
    severity: str | None = None
    timeline: dict[str, float] = field(default_factory=dict)  # event -> epoch seconds (the first line of each)
    timeline_lines: list[str] = field(default_factory=list)
    budget_minutes: float | None = None
    budget_percent: float | None = None
    root_causes: dict[int, str] = field(default_factory=dict)
    actions: list[dict] = field(default_factory=list)  # {"action", "owner", "causes": [int]}
    problems: list[str] = field(default_factory=list)

    def text(self, *names: str) -> str:
        return "\n".join(self.sections.get(n, "") for n in names)


def _sections(text: str) -> dict[str, str]:
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^##\s+(.+?)\s*$", line)
        if m:
            title = re.sub(r"\s*\(.*\)\s*$", "", m.group(1)).strip()  # "Timeline (UTC)" -> "Timeline"
            current = next(
                (s for s in SECTIONS + ("What went wrong", "Where we got lucky") if s.lower() == title.lower()), title
            )
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def parse_time(text: str) -> float | None:
    """``2026-12-06 04:14:31`` (UTC; ``T`` and ``Z`` allowed) -> epoch seconds, or None."""
    m = _TIME.search(text)
    if not m:
        return None
    try:
        return datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def parse(text: str) -> Postmortem:
    """Read a postmortem; ``problems`` lists what is missing or malformed (the checks add what is untrue)."""
    pm = Postmortem(_sections(text))
    for s in SECTIONS:
        body = pm.sections.get(s, "")
        if not body.strip() or re.fullmatch(r"(\s|<[^>]*>|-|\|)*", body):
            pm.problems.append(f"the section `## {s}` is missing or still the template's placeholder")
    m = re.search(r"\*\*Severity:\*\*\s*(SEV\s*\d)", text, re.I)
    pm.severity = m.group(1).upper().replace(" ", "") if m else None
    impact = pm.sections.get("Impact", "")
    for line in impact.splitlines():
        if "budget" in line.lower():
            mins = re.search(r"(\d[\d,]*(?:\.\d+)?)\s*(?:lab\s+)?min(?:ute)?s?\b", line)
            pct = re.search(r"(\d[\d,]*(?:\.\d+)?)\s*%(?!\s*over)", line.replace("99.5 %", "").replace("99.5%", ""))
            if mins and pm.budget_minutes is None:
                pm.budget_minutes = _number(mins.group(1))
            if pct and pm.budget_percent is None:
                pm.budget_percent = _number(pct.group(1))
    for line in pm.sections.get("Timeline", "").splitlines():
        t = parse_time(line)
        if t is None:
            continue
        rest = _TIME.sub("", line, count=1).lower()
        event = next((e for e in EVENTS if re.search(rf"\b{e}\b", rest)), None)
        pm.timeline_lines.append(line.strip())
        if event and event not in pm.timeline:
            pm.timeline[event] = t
    for line in pm.sections.get("Root causes", "").splitlines():
        m = re.match(r"^\s*(\d+)[.)]\s+(.+)$", line)
        if m and not PLACEHOLDER.match(m.group(2)):
            pm.root_causes[int(m.group(1))] = m.group(2).strip()
    pm.actions = _actions(pm.sections.get("Action items", ""))
    return pm


def _actions(body: str) -> list[dict]:
    rows = [ln.strip() for ln in body.splitlines() if ln.strip().startswith("|")]
    if len(rows) < 2:
        return []
    head = [c.strip().lower() for c in rows[0].strip("|").split("|")]
    col = {name: next((i for i, h in enumerate(head) if name in h), None) for name in ("action", "owner", "root")}
    out = []
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
            continue  # the separator line
        got = {k: cells[i] if i is not None and i < len(cells) else "" for k, i in col.items()}
        causes = [int(n) for n in re.findall(r"\d+", got["root"])]
        out.append({"action": got["action"], "owner": got["owner"], "causes": causes})
    return out


def read(path) -> Postmortem:
    return parse(Path(path).read_text())


def blame(pm: Postmortem, people: list[str] = ()) -> list[str]:
    """Phrases (and persons' names) that blame someone, in the summary, the root causes and what went wrong."""
    text = pm.text("Summary", "Root causes", "What went wrong").lower()
    found = [w.strip() for w in BLAME if w in text]
    found += [p for p in people if re.search(rf"\b{re.escape(p.lower())}\b", text)]
    return found


def owned(action: dict) -> bool:
    return (
        bool(action.get("action"))
        and not PLACEHOLDER.match(action.get("action", ""))
        and not PLACEHOLDER.match(action.get("owner", ""))
    )
