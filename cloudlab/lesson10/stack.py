"""The drill's watchers: a real Prometheus and Alertmanager (lesson 04's toolkit, :mod:`cloudlab.observability.prom`,
in lab time) with lesson 04's availability SLO rules and routing, the drill's own rules, and the lab's pager (the
webhook receiver of :mod:`cloudlab.observability.receiver`).

Lesson 10 runs its own copies (``l10-prometheus``, ``l10-alertmanager``, ``l10-pager``) on ports it picks once per
drill, so it never disturbs lesson 04's (which may run in the same lab on the fixed ports 9090/9093/9097).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from .. import procs
from ..lab import ROOT, tools
from ..observability import prom

LESSON_DIR = ROOT / "lessons" / "10_capstone-incident-response"
L04_DIR = ROOT / "lessons" / "04_observability"
RULE_FILES = (L04_DIR / "slo-recording.yml", L04_DIR / "slo-alerts.yml", LESSON_DIR / "drill-rules.yml")
ROUTES_FILE = L04_DIR / "alertmanager.yml"
PROMETHEUS, ALERTMANAGER, PAGER = "l10-prometheus", "l10-alertmanager", "l10-pager"


def write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=1000))
    return path


def receivers(pager_url: str) -> list[dict]:
    """lesson 04's two receivers, both on the lab's pager: ``pager`` (wakes someone) and ``tickets``."""
    return [
        {"name": "pager", "webhook_configs": [{"url": f"{pager_url}/pager", "send_resolved": True}]},
        {"name": "tickets", "webhook_configs": [{"url": f"{pager_url}/tickets", "send_resolved": True}]},
    ]


def alertmanager_config(pager_url: str, routes_file: Path = ROUTES_FILE) -> dict:
    """Lesson 04's routing (``route`` and ``inhibit_rules``, real units) in lab time, with the drill's receivers."""
    routes = yaml.safe_load(routes_file.read_text())
    return {
        "global": {"resolve_timeout": prom.lab_duration("5m")},
        "route": prom.compress_routes(routes["route"]),
        "inhibit_rules": routes.get("inhibit_rules") or [],
        "receivers": receivers(pager_url),
    }


def prometheus_config(d: Path, alertmanager_host: str, ports: dict) -> dict:
    """lesson 04's scrape and rule settings (job ``orders`` from file discovery: the two colours, labelled with
    their release), plus the fulfilment worker and the platform (the autoscaler and the cost meter)."""
    config = prom.prometheus_config(str(d / "rules" / "*.yml"), str(d / "targets" / "*.json"), alertmanager_host)
    for job, port in (("fulfilment", ports["worker_metrics"]), ("platform", ports["platform"])):
        config["scrape_configs"].append({"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]})
    return config


def write_targets(d: Path, colours: dict[str, dict]) -> Path:
    """The order service's scrape targets: {colour: {"metrics_port": N, "release": id}} (file discovery: Prometheus
    picks a change up within a second)."""
    rows = [
        {
            "targets": [f"127.0.0.1:{c['metrics_port']}"],
            "labels": {"service": "orders", "colour": name, "release": c.get("release") or "none"},
        }
        for name, c in sorted(colours.items())
    ]
    path = d / "targets" / "orders.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    tmp.replace(path)  # atomic: Prometheus never reads half a file
    return path


def write_rules(d: Path) -> list[Path]:
    """Each rule file, checked by promtool as written (real units), loaded as its lab-time copy."""
    from ..observability.promtool import check_rules

    out = []
    for f in RULE_FILES:
        run = check_rules(f)
        if not run.ok:
            raise prom.StackError(f"`{run.command}` refused {f.name}:\n{run.output}")
        out.append(write_yaml(d / "rules" / f.name, prom.compress_rules(yaml.safe_load(f.read_text()))))
    return out


def start(d: Path, ports: dict, pager_file: Path) -> tuple[prom.Prometheus, prom.Alertmanager, str]:
    """Start Alertmanager, Prometheus and the pager (again: each restarts); returns their clients and the pager URL.
    ``d``: the folder for their configuration and data; ``pager_file``: where the pager records what it gets."""
    prom_exe = tools.require("prometheus", "10")
    tools.require("alertmanager", "10")
    am_exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    for sub in ("prometheus", "alertmanager"):
        shutil.rmtree(d / sub, ignore_errors=True)
    pager_url = f"http://127.0.0.1:{ports['pager']}"
    am_url, prom_url = f"http://127.0.0.1:{ports['alertmanager']}", f"http://127.0.0.1:{ports['prometheus']}"
    am_file = write_yaml(d / "alertmanager" / "alertmanager.yml", alertmanager_config(pager_url))
    prom_file = write_yaml(d / "prometheus" / "prometheus.yml", prometheus_config(d, am_url.split("//")[1], ports))
    write_rules(d)
    procs.start(
        PAGER,
        ["-m", "cloudlab.observability.receiver", "--port", ports["pager"], "--file", pager_file],
        ready_url=pager_url + "/health",
        cwd=str(ROOT),
    )
    am = prom.alertmanager_args(am_exe, am_file, d / "alertmanager" / "data", ports["alertmanager"])
    prom.start_server(ALERTMANAGER, am, am_url, "Alertmanager")
    args = prom.prometheus_args(prom_exe, prom_file, d / "prometheus" / "data", ports["prometheus"])
    prom.start_server(PROMETHEUS, args, prom_url, "Prometheus")
    return prom.Prometheus(prom_url), prom.Alertmanager(am_url), pager_url
