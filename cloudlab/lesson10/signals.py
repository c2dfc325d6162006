"""What a responder reads and does during the drill: the pager, the change log, logs, traces, metrics, the bill.

Each helper is a thin layer over the real thing, and says which: the pager is the webhook receiver that
Alertmanager posts to (an acknowledgement is a POST to it, as a paging tool's API would take); the change log is
what the release and config pipelines recorded; logs are the JSON lines each process wrote; spans are what the
service exported; Prometheus and Alertmanager are queried over their HTTP APIs. Serves lesson 10.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import net, procs
from ..observability import prom, receiver
from ..tables import Table
from . import fleet, system

PAGE_ALERTS = ("OrdersErrorBudgetFastBurn", "FulfilmentErrorBudgetFastBurn")


def when(t: float | None) -> str:
    """An epoch time as the timeline writes it: ``2026-12-06 04:14:31`` (UTC)."""
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------ the watchers
def prometheus() -> prom.Prometheus:
    return prom.Prometheus(f"http://127.0.0.1:{system.state()['ports']['prometheus']}")


def alertmanager() -> prom.Alertmanager:
    return prom.Alertmanager(f"http://127.0.0.1:{system.state()['ports']['alertmanager']}")


def pager_url() -> str:
    return f"http://127.0.0.1:{system.state()['ports']['pager']}"


def pager_log(since: float | None = None) -> list[dict]:
    """Everything the pager received (Alertmanager's notifications and the acknowledgements), oldest first."""
    return receiver.read(system.drill_dir() / "pager.jsonl", since)


@dataclass(frozen=True)
class Page:
    """One alert as a notification delivered it."""

    alertname: str
    status: str  # firing or resolved
    fingerprint: str
    received_at: float
    path: str  # /pager (wakes someone) or /tickets
    severity: str
    summary: str
    starts_at: str

    def __str__(self):
        return f"{when(self.received_at)} {self.path} {self.status}: {self.alertname} ({self.summary})"


def alerts_delivered(pager: list[dict] | None = None) -> list[Page]:
    """Every alert of every notification, in the order they arrived."""
    out = []
    for n in pager if pager is not None else pager_log():
        payload = n.get("payload") if isinstance(n.get("payload"), dict) else {}
        for a in payload.get("alerts") or []:
            labels = a.get("labels") or {}
            out.append(
                Page(
                    labels.get("alertname", "?"),
                    a.get("status", ""),
                    a.get("fingerprint", ""),
                    n.get("received_at", 0.0),
                    n.get("path", ""),
                    labels.get("severity", ""),
                    (a.get("annotations") or {}).get("summary", ""),
                    a.get("startsAt", ""),
                )
            )
    return out


def pages(status: str = "firing") -> list[Page]:
    """The alerts delivered to the pager (``/pager``: the ones that wake someone) with this status, since the drill
    started."""
    since = system.state().get("started_at", 0)
    return [p for p in alerts_delivered() if p.path == "/pager" and p.status == status and p.received_at >= since]


def wait_for_page(timeout: float = 90.0) -> Page:
    """Block until the pager rings (the first firing page), and return it.

    It returns once the release pipeline has also shipped the release train the drill planned (seconds after the
    start; at rest long before the page). On a machine whose cores are busy elsewhere a deploy can outlast the alert,
    and the pipeline's next deploy would then meet the responder's rollback on the same colour.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pages()
        if got:
            _wait_for_the_train(deadline)
            return got[0]
        time.sleep(0.25)
    raise system.DrillError(f"no page within {timeout:.0f} s: is the drill running? `lesson10.status()` says what runs")


def _wait_for_the_train(deadline: float) -> None:
    """Until every planned release has shipped, the platform is gone, or ``deadline`` (the page goes out then)."""
    train = [f"release {r.id}" for r in system.the_scenario().releases if r.at is not None]
    while time.monotonic() < deadline and procs.running(system.PLATFORM) is not None:
        if all(step in system.read_json("happened.json", {}) for step in train):
            return
        time.sleep(0.25)


def acknowledge(page: Page, by: str) -> dict:
    """Acknowledge a page: ``POST <pager>/ack`` with its fingerprint and who takes it (the pager records it)."""
    if not isinstance(page, Page):
        raise system.DrillError(f"acknowledge() takes a page (from lesson10.pages()), not {type(page).__name__}")
    if not str(by).strip():
        raise system.DrillError("say who takes the page: acknowledge(page, by='your name or role')")
    body = {"fingerprint": page.fingerprint, "alertname": page.alertname, "by": str(by)}
    print(f'$ curl -X POST {pager_url()}/ack -d \'{{"fingerprint": "{page.fingerprint}", "by": "{by}"}}\'')
    r = net.request("POST", pager_url() + "/ack", body, timeout=5)
    if r.status != 200:
        raise system.DrillError(f"the pager refused the acknowledgement: HTTP {r.status}")
    return body


def acks() -> list[dict]:
    """The acknowledgements the pager recorded: {received_at, fingerprint, alertname, by}."""
    return [
        {"received_at": n["received_at"], **n["payload"]}
        for n in pager_log()
        if n.get("path") == "/ack" and isinstance(n.get("payload"), dict)
    ]


def firing(prometheus_api: prom.Prometheus | None = None) -> list[str]:
    """The alerts Prometheus has firing right now."""
    return sorted(
        {a["labels"]["alertname"] for a in (prometheus_api or prometheus()).alerts() if a.get("state") == "firing"}
    )


def wait_resolved(*alertnames: str, timeout: float = 60.0) -> float:
    """Wait until the named alerts (default: every page) are no longer firing in Prometheus and the pager got
    their "resolved"; returns the seconds waited. Each real second is a minute of lab time."""
    names = alertnames or PAGE_ALERTS
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        open_ = [n for n in names if n in firing() or unresolved(n)]
        if not open_:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise system.DrillError(
        f"still not resolved after {timeout:.0f} s: {', '.join(open_)}. Is its cause fixed? "
        "Look at its burn rate in Prometheus."
    )


def unresolved(alertname: str) -> bool:
    """Did the pager get a "firing" for this alert whose last notification is not "resolved"?"""
    last = [p for p in alerts_delivered() if p.alertname == alertname and p.path in ("/pager", "/tickets")]
    return bool(last) and last[-1].status != "resolved"


# ------------------------------------------------------------------ the change log
def changes(kind: str | None = None) -> list[dict]:
    """What the pipelines changed, oldest first: deploys, switches, scaling policies."""
    return [e for e in system.events(kind) if e.get("kind") != "drill_started"]


def changes_table() -> Table:
    rows = []
    for e in changes():
        what = {
            "deploy": lambda e: f"release {e['release']} on {e['colour']}: {'; '.join(e.get('notes', []))}",
            "switch": lambda e: f"traffic {e['was']} -> {e['to']} ({e.get('release')})",
            "scaling_policy": lambda e: f"scaling policy v{e['version']}: {e.get('note', '')}",
        }
        rows.append((when(e["t"]), e["kind"], e.get("by", ""), what.get(e["kind"], str)(e)))
    return Table(("time (UTC)", "change", "by", "what"), rows, title="the change log")


# ------------------------------------------------------------------ logs and traces
def logs(component: str, since: float | None = None) -> list[dict]:
    """The JSON log lines of ``blue``, ``green`` (every release that ran there), ``worker`` or ``platform``."""
    if component not in ("blue", "green", "worker", "platform"):
        raise system.DrillError("logs() reads blue, green, worker or platform")
    files = sorted((system.drill_dir() / "logs").glob(f"{component}-*.log")) if component in ("blue", "green") else []
    files.append(procs.log_path(f"l10-{component}"))
    out = []
    for f in files:
        release = f.stem.split("-", 1)[1] if f.parent.name == "logs" else None
        for rec in system.read_lines(Path(f)):
            if release:
                rec.setdefault("release", release)
            out.append(rec)
    if since is not None:
        out = [r for r in out if _ts(r) >= since]
    return out


def _ts(rec: dict) -> float:
    try:
        return datetime.fromisoformat(str(rec.get("ts"))).timestamp()
    except ValueError:
        return 0.0


def spans(colour: str | None = None) -> list[dict]:
    """The spans the service exported, each with the release and colour that made it."""
    out = []
    for f in sorted((system.drill_dir() / "spans").glob("*.jsonl")):
        col, release = f.stem.split("-", 1)
        if colour and col != colour:
            continue
        for s in system.read_lines(f):
            s["release"], s["colour"] = release, col
            out.append(s)
    return out


# ------------------------------------------------------------------ the bill
def bill() -> Table:
    """The pretend bill now: each instance priced for a month (lesson 03's cost model and price table)."""
    lines = fleet.bill()
    rows = [(x.name, x.item, x.team, x.env, round(x.cost, 2)) for x in sorted(lines, key=lambda x: (-x.cost, x.name))]
    return Table(
        ("instance", "type", "team", "env", "USD/month"),
        rows[:12],
        title=f"run rate {fleet.run_rate(lines):,.2f} USD/month, {len(lines)} instances",
        notes=[f"... and {len(rows) - 12} more" if len(rows) > 12 else "all of them"],
    )


def bill_history(start: float | None = None, end: float | None = None) -> list[tuple[float, float]]:
    """The run rate over time, from Prometheus (the cost meter's ``lab_cost_usd_per_month``): [(t, USD/month)]."""
    st = system.state()
    start = start or st.get("started_at", time.time()) - 15
    end = end or time.time()
    got = prometheus().query_range('sum(lab_cost_usd_per_month{team="orders"})', start, end, 1.0)
    return list(zip(got[0]["t"], got[0]["v"], strict=True)) if got else []


def run_rate() -> float | None:
    """The run rate Prometheus has now (USD per month, the cost meter's latest sample), or None."""
    return prometheus().value('sum(lab_cost_usd_per_month{team="orders"})')


def wait_for(fn, timeout: float = 30.0, every: float = 0.5):
    """Call ``fn()`` until it returns something truthy (returned), at most ``timeout`` seconds (then DrillError)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise system.DrillError(f"still not true after {timeout:.0f} s: {getattr(fn, '__name__', 'the condition')}")
        time.sleep(every)


def status() -> Table:
    """What the drill runs, and whether each part answers."""
    rows = []
    for p in sorted(procs._dir().glob("l10-*.pid")):
        proc = procs.running(p.stem)
        rows.append((p.stem, proc.pid if proc else "-", "running" if proc and proc.alive() else "stopped"))
    return Table(("process", "pid", "state"), rows, title="the drill's processes")
