"""The roster's facts, from the learners' own files: progress, health, memory, disk; and how they are shown.

:func:`collect` reads every learner's ``~/.lab/progress.json`` (as written by :mod:`cloudlab.checks`) and
``~/.lab/hub-health.json`` safely (never following a link a learner planted, only files they own, at most
1 MB), their memory cgroup and the disk; :func:`page`, :func:`fragment` and :func:`csv_text` show them.
No web framework here, so it is tested without a hub. Serves the workshop hub (:mod:`cloudlab.hub.roster`).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import os
import pwd
import shutil
import time
from pathlib import Path

from . import cgroups

MAX_BYTES = 1 << 20
DISK_ALERT_FRACTION = 0.05  # under 5 % free (or 1 GiB) on the homes' disk: the roster says so
DISK_ALERT_BYTES = 1 << 30
COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


def read_learner_json(path: Path, uid: int | None) -> dict:
    """A learner's JSON file, or {}: no links, only their own file, at most 1 MB, never an error."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if (uid is not None and st.st_uid != uid) or st.st_size > MAX_BYTES or not os.path.stat.S_ISREG(st.st_mode):
            return {}
        data = json.loads(os.read(fd, MAX_BYTES).decode("utf-8", "replace"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)


def check_catalogue() -> dict[str, dict]:
    """Every check of every lesson: {id: {"title", "hints", "lesson"}} (imports the lesson modules)."""
    import importlib
    import pkgutil
    import re

    import cloudlab
    from cloudlab.checks import REGISTRY

    for mod in pkgutil.iter_modules(cloudlab.__path__):
        if re.fullmatch(r"lesson\d\d", mod.name):
            try:
                importlib.import_module(f"cloudlab.{mod.name}")
            except Exception:  # a lesson that cannot load here only loses its hints in the roster
                continue
    return {k: {"title": v.title, "hints": list(v.hints), "lesson": v.lesson} for k, v in REGISTRY.items()}


_CATALOGUE: dict[str, dict] | None = None


def catalogue() -> dict[str, dict]:
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = check_catalogue()
    return _CATALOGUE


def _ago(when: float | None, now: float) -> float | None:
    return None if when is None else max(0.0, now - when)


def _hub_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def learner(hub, user: dict, cat: dict, now: float) -> dict:
    name = user["name"]
    sysuser = hub.sysuser(name)
    try:
        pw = pwd.getpwnam(sysuser)
        uid, home = pw.pw_uid, Path(pw.pw_dir)
    except KeyError:
        uid, home = None, hub.home(name)
    progress = read_learner_json(home / ".lab" / "progress.json", uid)
    health = read_learner_json(home / ".lab" / "hub-health.json", uid)
    lessons: dict[str, dict] = {}
    tries = 0
    for cid, row in progress.items():
        if not isinstance(row, dict) or "." not in cid:
            continue
        lesson = cid.split(".")[0]
        d = lessons.setdefault(lesson, {"passed": 0, "tried": 0, "stuck": []})
        attempts = int(row.get("attempts") or 0)
        tries += attempts
        if row.get("passed_at"):
            d["passed"] += 1
        elif attempts:
            d["tried"] += 1
            d["stuck"].append(cid)
    server = (user.get("servers") or {}).get("") or {}
    state = "ready" if server.get("ready") else ("starting" if server.get("pending") else "stopped")
    try:
        mtime = (home / ".lab" / "progress.json").stat().st_mtime
    except OSError:
        mtime = None
    last = max([t for t in (_hub_time(user.get("last_activity")), mtime) if t is not None], default=None)
    mem = cgroups.stats(cgroups.path_for(sysuser))
    alerts = []
    if mem.get("oom_kills"):
        alerts.append(f"out of memory: {mem['oom_kills']} process(es) killed at the {_mib(mem.get('limit'))} limit")
    elif mem.get("limit") and mem.get("current") and mem["current"] > 0.9 * mem["limit"]:
        alerts.append(f"memory at {_mib(mem['current'])} of {_mib(mem['limit'])}")
    events = (health.get("events") or [])[-5:] if isinstance(health.get("events"), list) else []
    for ev in events:
        text = str(ev.get("event", ""))[:200] if isinstance(ev, dict) else ""
        if any(w in text for w in ("killed", "full disk", "did not start", "exited", "ended")):
            alerts.append(f"{ev.get('at', '')}: {text}")
    passed = sum(d["passed"] for d in lessons.values())
    return {
        "name": name,
        "server": state,
        "last_activity_s": _ago(last, now),
        "lessons": lessons,
        "passed": passed,
        "tries": tries,
        "memory": {k: mem.get(k) for k in ("current", "peak", "limit", "oom_kills")},
        "alerts": alerts,
    }


def _mib(n) -> str:
    return "-" if not n else f"{n / (1 << 20):.0f} MiB"


def collect(hub, users: list[dict], cat: dict | None = None, now: float | None = None) -> dict:
    cat = catalogue() if cat is None else cat
    now = time.time() if now is None else now
    rows = [learner(hub, u, cat, now) for u in sorted(users, key=lambda u: u["name"]) if not u.get("admin")]
    stuck: dict[str, dict] = {}
    for r in rows:
        for lesson in r["lessons"].values():
            for cid in lesson["stuck"]:
                s = stuck.setdefault(cid, {"check": cid, "learners": 0, "names": []})
                s["learners"] += 1
                s["names"].append(r["name"])
    for cid, s in stuck.items():
        s["title"] = cat.get(cid, {}).get("title", "")
        s["hints"] = cat.get(cid, {}).get("hints", [])
    totals: dict[str, int] = {}
    for c in cat.values():
        totals[c["lesson"]] = totals.get(c["lesson"], 0) + 1
    disk = {"path": str(hub.homes), "alert": None}
    try:
        du = shutil.disk_usage(hub.homes if hub.homes.exists() else hub.homes.parent)
        disk.update(free=du.free, total=du.total)
        if du.free < DISK_ALERT_BYTES or du.free < DISK_ALERT_FRACTION * du.total:
            disk["alert"] = f"the learners' disk is almost full: {du.free / (1 << 30):.1f} GiB free"
    except OSError as e:
        disk["alert"] = f"cannot read the learners' disk: {e}"
    lessons = sorted({k for r in rows for k in r["lessons"]} | set())
    return {
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "learners": rows,
        "stuck": sorted(stuck.values(), key=lambda s: (-s["learners"], s["check"]))[:10],
        "lessons": lessons,
        "totals": totals,
        "disk": disk,
    }


def _ago_text(s) -> str:
    if s is None:
        return "never"
    s = int(s)
    return f"{s} s" if s < 120 else (f"{s // 60} min" if s < 7200 else f"{s // 3600} h")


def plot_svg(facts: dict) -> str:
    """Checks passed per learner, one colour per lesson (an inline SVG: no plotting library, no script)."""
    rows, lessons = facts["learners"], facts["lessons"]
    if not rows:
        return "<p>No learners yet.</p>"
    most = max([r["passed"] for r in rows] + [1])
    bar_w, h = 420, 18
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{bar_w + 160}" height="{h * len(rows) + 40}" role="img">']
    parts.append("<title>checks passed per learner, by lesson</title>")
    for i, r in enumerate(rows):
        y = 10 + i * h
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(r["name"])}</text>')
        x = 100.0
        for j, lesson in enumerate(lessons):
            n = r["lessons"].get(lesson, {}).get("passed", 0)
            if n:
                w = bar_w * n / most
                colour = COLOURS[j % len(COLOURS)]
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h - 4}" fill="{colour}">'
                    f"<title>lesson {lesson}: {n} passed</title></rect>"
                )
                x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 13}" font-size="12">{r["passed"]}</text>')
    legend_y = 10 + len(rows) * h + 16
    for j, lesson in enumerate(lessons):
        parts.append(
            f'<rect x="{100 + j * 50}" y="{legend_y - 10}" width="10" height="10" '
            f'fill="{COLOURS[j % len(COLOURS)]}"/><text x="{114 + j * 50}" y="{legend_y}" font-size="11">'
            f"{lesson}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def fragment(facts: dict) -> str:
    e = html.escape
    out = [f"<p>Updated {e(facts['generated_at'])}.</p>"]
    if facts["disk"].get("alert"):
        out.append(f'<p class="alert">{e(facts["disk"]["alert"])}</p>')
    head = "".join(
        f"<th>{e(x)}</th>"
        for x in [
            "learner",
            "server",
            "last activity",
            *[f"lesson {ls}" for ls in facts["lessons"]],
            "passed",
            "tries",
            "memory (now / peak)",
            "alerts",
        ]
    )
    body = []
    for r in facts["learners"]:
        cells = [r["name"], r["server"], _ago_text(r["last_activity_s"])]
        for ls in facts["lessons"]:
            d = r["lessons"].get(ls)
            total = facts["totals"].get(ls)
            stuck = f" ({d['tried']} stuck)" if d and d["tried"] else ""
            cells.append("-" if not d else f"{d['passed']}/{total or '?'}{stuck}")
        m = r["memory"]
        cells += [str(r["passed"]), str(r["tries"]), f"{_mib(m.get('current'))} / {_mib(m.get('peak'))}"]
        alert = "; ".join(r["alerts"])
        row = "".join(f"<td>{e(c)}</td>" for c in cells) + f'<td class="{"alert" if alert else ""}">{e(alert)}</td>'
        body.append(f"<tr>{row}</tr>")
    out.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")
    out.append("<h2>Where learners are stuck</h2>")
    if facts["stuck"]:
        out.append("<table><tr><th>check</th><th>title</th><th>learners</th><th>who</th><th>hints</th></tr>")
        for s in facts["stuck"]:
            hints = "<ol>" + "".join(f"<li>{e(h)}</li>" for h in s["hints"]) + "</ol>"
            out.append(
                f"<tr><td>{e(s['check'])}</td><td>{e(s['title'])}</td><td>{s['learners']}</td>"
                f"<td>{e(', '.join(s['names']))}</td><td>{hints}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>Nobody is stuck on a check right now.</p>")
    out.append("<h2>Checks passed per learner</h2>" + plot_svg(facts))
    return "".join(out)


def page(facts: dict, refresh_s: int = 5, xsrf: str = "") -> str:
    """The whole page; its script fetches the fragment every ``refresh_s`` s (JupyterHub wants the xsrf token
    in a header on a fetch authenticated by cookie)."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Roster</title><style>"
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}"
        ".alert{background:#ffe0e0;color:#900}</style></head><body><h1>Roster</h1>"
        "<p><a href='roster.csv'>Download CSV</a> · refreshes every "
        f"{refresh_s} s</p><div id=roster>{fragment(facts)}</div><script>"
        f"const XSRF={json.dumps(xsrf)};const rosterGet=u=>fetch(u,{{headers:{{'X-XSRFToken':XSRF}}}});"
        f"setInterval(async()=>{{const r=await rosterGet('fragment');if(r.ok)document.getElementById('roster')"
        f".innerHTML=await r.text();}},{refresh_s * 1000});</script></body></html>"
    )


def csv_text(facts: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    lessons = facts["lessons"]
    w.writerow(
        [
            "learner",
            "server",
            "last_activity_seconds",
            *[f"lesson_{ls}_passed" for ls in lessons],
            "passed",
            "tries",
            "memory_peak_mib",
            "alerts",
        ]
    )
    for r in facts["learners"]:
        peak = r["memory"].get("peak")
        w.writerow(
            [
                r["name"],
                r["server"],
                "" if r["last_activity_s"] is None else int(r["last_activity_s"]),
                *[r["lessons"].get(ls, {}).get("passed", 0) for ls in lessons],
                r["passed"],
                r["tries"],
                "" if not peak else round(peak / (1 << 20)),
                "; ".join(r["alerts"]),
            ]
        )
    return buf.getvalue()
