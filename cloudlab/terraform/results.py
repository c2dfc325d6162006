"""Terraform's machine-readable output, read: plan summaries, diagnostics, errors with their fix."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from .env import LAB_DOWN_HINT, LabDown, TerraformError

# ------------------------------------------------------------------ results
_ACTION_SYMBOL = {"create": "+", "update": "~", "delete": "-", "replace": "-/+", "read": "<=", "no-op": " "}


def _action(actions: list[str]) -> str:
    if actions in (["delete", "create"], ["create", "delete"]):
        return "replace"
    return actions[0] if actions else "no-op"


def _changed_keys(before, after, after_unknown=None, prefix="") -> list[str]:
    """Top-level attribute names that differ (nested blocks are named once)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    keys = []
    for k in sorted(set(before) | set(after)):
        if k in ("id", "arn") or k.endswith("_all") and k != "tags_all":
            continue
        if (after_unknown or {}).get(k) is True:
            continue
        if before.get(k) != after.get(k) and k != "tags_all":
            keys.append(prefix + k)
    return keys


@dataclass
class Change:
    address: str
    action: str  # create, update, delete, replace, read, no-op
    attributes: list[str] = field(default_factory=list)

    def __str__(self):
        detail = f"  ({', '.join(self.attributes)})" if self.attributes and self.action == "update" else ""
        return f"  {_ACTION_SYMBOL.get(self.action, '?'):>3} {self.action:<8} {self.address}{detail}"


@dataclass
class PlanSummary:
    """What a plan will do, and what changed outside Terraform (drift), from ``terraform show -json``."""

    changes: list[Change] = field(default_factory=list)
    drift: list[Change] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(
            1 for c in self.changes if c.action == action or (action in ("create", "delete") and c.action == "replace")
        )

    @property
    def has_changes(self) -> bool:
        return any(c.action not in ("no-op", "read") for c in self.changes)

    def __str__(self):
        lines = []
        if self.drift:
            lines.append("Changed outside Terraform since the last apply (drift):")
            lines += [f"    ! {c.address}  ({', '.join(c.attributes) or 'changed'})" for c in self.drift]
        real = [c for c in self.changes if c.action not in ("no-op", "read")]
        if real:
            lines.append("Terraform will:")
            lines += [str(c) for c in real]
        else:
            lines.append("No changes: the real resources match the code.")
        lines.append(
            f"Plan: {self.count('create')} to add, {self.count('update')} to change, {self.count('delete')} to destroy."
        )
        return "\n".join(lines)

    def __repr__(self):
        return str(self)


def parse_plan_json(data: dict) -> PlanSummary:
    """Turn ``terraform show -json <planfile>`` into a :class:`PlanSummary`."""
    s = PlanSummary()
    for rc in data.get("resource_changes", []) or []:
        ch = rc.get("change", {})
        act = _action(ch.get("actions", []))
        attrs = _changed_keys(ch.get("before"), ch.get("after"), ch.get("after_unknown")) if act == "update" else []
        s.changes.append(Change(rc.get("address", "?"), act, attrs))
    # Drift: only what matters to this plan, as Terraform's own output does: the attributes that the
    # plan now changes back, and the "relevant attributes" other changes depend on. The rest is noise,
    # such as computed attributes that the provider re-reads.
    planned = {c.address: set(c.attributes) for c in s.changes if c.action not in ("no-op", "read")}
    relevant: dict[str, set] = {}
    for ra in data.get("relevant_attributes", []) or []:
        path = ra.get("attribute") or []
        if path and isinstance(path[0], str):
            relevant.setdefault(ra.get("resource", ""), set()).add(path[0])
    for rc in data.get("resource_drift", []) or []:
        ch = rc.get("change", {})
        addr = rc.get("address", "?")
        if ch.get("actions") == ["delete"]:
            s.drift.append(Change(addr, "delete", ["deleted outside Terraform"]))
            continue
        wanted = planned.get(addr, set()) | relevant.get(addr, set())
        attrs = [a for a in _changed_keys(ch.get("before"), ch.get("after")) if a in wanted]
        if attrs:
            s.drift.append(Change(addr, _action(ch.get("actions", [])), attrs))
    for name, oc in (data.get("output_changes") or {}).items():
        s.outputs[name] = _action(oc.get("actions", []))
    return s


def summary_from_events(events: list[dict]) -> PlanSummary:
    """A :class:`PlanSummary` from the streamed ``plan -json`` events (fast: no second command)."""
    s = PlanSummary()
    for ev in events:
        ch = ev.get("change") or {}
        addr = (ch.get("resource") or {}).get("addr", "?")
        act = {"noop": "no-op"}.get(ch.get("action", ""), ch.get("action", ""))
        if ev.get("type") == "planned_change":
            s.changes.append(Change(addr, act))
        elif ev.get("type") == "resource_drift":
            s.drift.append(Change(addr, act))
        elif ev.get("type") == "outputs":
            s.outputs = {k: v.get("action") for k, v in (ev.get("outputs") or {}).items()}
    # Without the plan's details we cannot tell relevant drift from noise: keep drift on resources
    # that the plan changes (or that vanished).
    changing = {c.address for c in s.changes if c.action not in ("no-op", "read")}
    s.drift = [d for d in s.drift if d.address in changing or d.action == "delete"]
    return s


@dataclass
class Result:
    """One Terraform run."""

    args: list[str]
    exit_code: int
    seconds: float
    events: list[dict] = field(default_factory=list)  # -json UI events (when the command has -json)
    output: str = ""  # plain text output (or the raw lines)
    plan: PlanSummary | None = None

    @property
    def diagnostics(self) -> list[dict]:
        return [e["diagnostic"] for e in self.events if e.get("type") == "diagnostic" and "diagnostic" in e]

    @property
    def errors(self) -> list[dict]:
        return [d for d in self.diagnostics if d.get("severity") == "error"]

    def __repr__(self):
        return f"terraform {self.args[0] if self.args else ''}: exit code {self.exit_code} after {self.seconds:.1f} s"


def describe_diagnostic(d: dict) -> str:
    """One diagnostic as 'file line N: summary' + the offending code + the detail."""
    rng = d.get("range") or {}
    where = f"{rng.get('filename')} line {rng.get('start', {}).get('line')}: " if rng.get("filename") else ""
    text = f"{where}{d.get('summary', '').strip()}"
    snip = (d.get("snippet") or {}).get("code")
    if snip:
        start = (d.get("snippet") or {}).get("start_line") or 0
        code = "\n".join(f"      {start + i:>3} | {ln}" for i, ln in enumerate(snip.rstrip().split("\n")))
        text += "\n" + code
    detail = (d.get("detail") or "").strip()
    if detail:
        text += "\n    " + "\n    ".join(detail.split("\n")[:12])
    return text


def _lock_info(detail: str) -> str:
    fields = dict(re.findall(r"^\s*(ID|Path|Operation|Who|Created):\s*(.+?)\s*$", detail, flags=re.M))
    if not fields:
        return ""
    return (
        f"  held by: {fields.get('Who', '?')} ({fields.get('Operation', '?').replace('OperationType', '').lower()}"
        f", since {fields.get('Created', '?')[:19]})\n  lock: {fields.get('Path', '?')}  id {fields.get('ID', '?')}"
    )


def explain(result: Result, endpoint: str | None = None) -> TerraformError:
    """The right error, in plain words, for a failed run."""
    errs = result.errors
    cmd = "terraform " + " ".join(a for a in result.args if not a.startswith("-"))
    blob = "\n".join((d.get("summary", "") + " " + (d.get("detail") or "")) for d in errs) + result.output[-3000:]
    if re.search(r"connection refused|dial tcp|no such host|i/o timeout|connect: ", blob, flags=re.I):
        return LabDown(
            f"`{cmd}` could not reach the emulator{' at ' + endpoint if endpoint else ''}: "
            f"the lab is down. {LAB_DOWN_HINT}",
            result,
        )
    lock = next((d for d in errs if "state lock" in d.get("summary", "").lower()), None)
    if lock is not None:
        return TerraformError(
            f"`{cmd}` stopped: the state is locked by another Terraform run, so this one did not touch "
            f"anything.\n{_lock_info(lock.get('detail') or '')}\n  Wait for that run to finish and retry "
            "(or pass lock_timeout='60s' to wait). Only if that run really died: "
            "`terraform force-unlock <id>`.",
            result,
        )
    if result.args[:1] == ["init"] and any(d.get("summary") == "input is disabled" for d in errs):
        return TerraformError(
            "`terraform init` stopped: this directory already has a state, and Terraform would ask whether to copy "
            "it to the new backend (input is off, so it cannot ask). To move it: init(..., migrate=True), which "
            "runs `terraform init -migrate-state`. Without the old state, Terraform forgets what it made.",
            result,
        )
    if errs:
        body = "\n\n".join(describe_diagnostic(d) for d in errs[:5])
        more = f"\n(and {len(errs) - 5} more errors)" if len(errs) > 5 else ""
        return TerraformError(f"`{cmd}` failed (exit {result.exit_code}):\n{body}{more}", result)
    tail = "\n".join(result.output.strip().split("\n")[-15:])
    return TerraformError(f"`{cmd}` failed (exit {result.exit_code}). Last lines:\n{tail}", result)


# ------------------------------------------------------------------ the runner
class Progress:
    """Turns the ``-json`` events of a long run into a few readable lines (a heartbeat every 10 s)."""

    def __init__(self, label: str = "", every: float = 10.0):
        self.label = f"{label}: " if label else ""
        self.every = every
        self.waiting: dict[str, float] = {}
        self.last_beat = 0.0
        self.warned: set[str] = set()

    def __call__(self, ev: dict, t0: float) -> str | None:
        now = time.monotonic() - t0
        kind = ev.get("type")
        addr = ((ev.get("hook") or {}).get("resource") or {}).get("addr", "")
        stamp = f"  [{now:5.1f} s] {self.label}"
        if kind == "apply_start":
            self.waiting[addr] = now
            return None
        if kind in ("apply_complete", "apply_errored"):
            self.waiting.pop(addr, None)
            return stamp + ev.get("@message", "")
        if kind == "apply_progress":
            if now - self.last_beat >= self.every and self.waiting:
                self.last_beat = now
                names = sorted({a.rsplit(".", 1)[0].split(".")[-1] for a in self.waiting})
                return stamp + f"still working on {len(self.waiting)} resource(s): {', '.join(names)}"
            return None
        if kind == "change_summary":
            return stamp + ev.get("@message", "")
        if kind == "diagnostic" and (ev.get("diagnostic") or {}).get("severity") == "warning":
            text = warning_text(ev["diagnostic"])
            if text in self.warned:  # Terraform repeats a warning for every instance: once is enough
                return None
            self.warned.add(text)
            return stamp + text
        return None


def warning_text(d: dict) -> str:
    """One warning in a line: ``Warning: <summary> (<file> line N): <first line of the detail>``."""
    rng = d.get("range") or {}
    where = f" ({rng.get('filename')} line {(rng.get('start') or {}).get('line')})" if rng.get("filename") else ""
    detail = (d.get("detail") or "").strip().split("\n")[0]
    return f"Warning: {d.get('summary', '').strip()}{where}" + (f": {detail}" if detail else "")
