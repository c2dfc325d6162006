"""Lesson 04's observability stack: the order service under steady load, a real Prometheus scraping it,
a real Alertmanager routing its alerts to the lab's pager (a webhook receiver, and the SNS -> SQS pager
of :mod:`cloudlab.pager`), everything in lab time (:data:`cloudlab.observability.prom.SPEEDUP`).

Processes (all on 127.0.0.1, all named ``l04-...`` so a reset and ``make stop`` stop them):
``l04-service`` (the order service), ``l04-load`` (steady traffic), ``l04-prometheus``,
``l04-alertmanager``, ``l04-receiver``. On the Docker path, Prometheus and Alertmanager are compose
services that share JupyterLab's network (``CLOUDLAB_PROMETHEUS_URL`` / ``CLOUDLAB_ALERTMANAGER_URL``
are set there): the lesson then writes their files and reloads them instead of starting them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import aws, cleanup, pager, procs
from ..lab import REGION, ROOT, Lab, tools
from ..observability import prom, receiver
from .service import SERVICE, find_service, setup_backing, start_service, work_dir

PROMETHEUS, ALERTMANAGER, RECEIVER, LOAD = "l04-prometheus", "l04-alertmanager", "l04-receiver", "l04-load"
PAGER_TOPIC, PAGER_QUEUE = "l04-alerts", "l04-pager"
LESSON_DIR = ROOT / "lessons" / "04_observability"
RUNBOOK = "lessons/04_observability/runbook.md"


class RuleFileError(prom.StackError):
    """A rule or routing file that its checker refuses; the message has the checker's own words."""


@dataclass
class Stack:
    """Where the lesson's stack answers, and the files it reads."""

    dir: Path
    prometheus: prom.Prometheus
    alertmanager: prom.Alertmanager
    receiver_url: str
    external: bool

    @property
    def rules_dir(self) -> Path:
        return self.dir / "prometheus" / "rules"

    @property
    def receiver_file(self) -> Path:
        return self.dir / "receiver.jsonl"

    @property
    def alertmanager_config(self) -> Path:
        return self.dir / "alertmanager" / "alertmanager.yml"

    @property
    def load_file(self) -> Path:
        return self.dir / "load.jsonl"

    @property
    def fault_flag(self) -> Path:
        return self.dir / "flags" / "fault_rate"

    def delivered(self, since: float | None = None) -> list[dict]:
        """Notifications the receiver got (oldest first)."""
        return receiver.read(self.receiver_file, since)


def stack_dir() -> Path:
    return work_dir() / "stack"


def current() -> Stack:
    """The lesson's stack (its URLs and files), whether or not it runs right now."""
    lab = Lab.from_env()
    prom_url = os.environ.get("CLOUDLAB_PROMETHEUS_URL") or f"http://127.0.0.1:{lab.port('prometheus')}"
    am_url = os.environ.get("CLOUDLAB_ALERTMANAGER_URL") or f"http://127.0.0.1:{lab.port('alertmanager')}"
    return Stack(
        stack_dir(),
        prom.Prometheus(prom_url),
        prom.Alertmanager(am_url),
        f"http://127.0.0.1:{lab.port('pager')}",
        bool(os.environ.get("CLOUDLAB_PROMETHEUS_URL")),
    )


def _ports() -> dict:
    """The service's two ports, chosen once per stack so restarts keep the scrape target."""
    f = stack_dir() / "ports.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        from .. import net

        ports = {"port": net.free_port(), "metrics_port": net.free_port()}
        while ports["metrics_port"] == ports["port"]:
            ports["metrics_port"] = net.free_port()
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(ports))
        return ports


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or REGION


def lab_receivers(st: Stack, topic_arn: str, sns_endpoint: str | None = None) -> list[dict]:
    """The two receivers of the lab: ``pager`` (webhook + SNS topic) and ``tickets`` (webhook)."""
    endpoint = sns_endpoint or aws.endpoint_for("sns")
    return [
        {
            "name": "pager",
            "webhook_configs": [{"url": f"{st.receiver_url}/pager", "send_resolved": True}],
            "sns_configs": [
                {
                    "api_url": endpoint,
                    "topic_arn": topic_arn,
                    "sigv4": {"region": topic_arn.split(":")[3], "access_key": "test", "secret_key": "test"},
                    "subject": "{{ .Status }}: {{ .CommonLabels.alertname }}",
                    "message": '{"status": "{{ .Status }}", "alertname": "{{ .CommonLabels.alertname }}", '
                    '"severity": "{{ .CommonLabels.severity }}", "slo": "{{ .CommonLabels.slo }}", '
                    '"alerts": {{ len .Alerts }}}',
                }
            ],
        },
        {"name": "tickets", "webhook_configs": [{"url": f"{st.receiver_url}/tickets", "send_resolved": True}]},
    ]


def _write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=1000))
    return path


def read_yaml(path) -> dict:
    """A YAML file as a dict; RuleFileError in plain words when it is missing or not YAML."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError:
        raise RuleFileError(f"{path.name} does not exist next to this notebook: run the %%writefile cell") from None
    except yaml.YAMLError as e:
        raise RuleFileError(f"{path.name} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RuleFileError(f"{path.name} should hold a YAML mapping, not {type(data).__name__}")
    return data


DOCKER_ROOT = "/home/learner/course"  # the repository inside the compose containers (docker-compose.yml)


def docker_configs() -> dict[str, dict]:
    """What the Docker path's Prometheus and Alertmanager start with (``lessons/04_observability/docker/``):
    the same configs the lab writes, with the paths and hosts of the compose services (they share
    JupyterLab's network, so 127.0.0.1 is the notebook's loopback). ``tests/test_lesson04.py`` keeps the
    committed files equal to this."""
    work = f"{DOCKER_ROOT}/.lab/work/l04/stack"
    st = Stack(
        Path(work),
        prom.Prometheus("http://127.0.0.1:9090"),
        prom.Alertmanager("http://127.0.0.1:9093"),
        "http://127.0.0.1:9097",
        True,
    )
    topic = f"arn:aws:sns:{REGION}:000000000000:{PAGER_TOPIC}"
    routes = read_yaml(LESSON_DIR / "alertmanager.yml")
    return {
        "prometheus.yml": prom.prometheus_config(
            f"{work}/prometheus/rules/*.yml", f"{work}/prometheus/targets/*.json", "127.0.0.1:9093"
        ),
        "alertmanager.yml": alertmanager_config(st, routes, topic, "http://localstack:4566"),
    }


# ------------------------------------------------------------------------ start and stop
def start_stack(fault_rate: float = 0.0, rate: float = 12, quiet: bool = False, **service) -> Stack:
    """Start (or restart) everything: the service, its load, Prometheus, Alertmanager, the receiver.

    ``service``: more settings of the service (buckets, inventory_ms (default 40), slow_queue_ms ...).
    Safe to run again. Rules are loaded separately (:func:`load_rules`); routing is the lesson's own
    (``lessons/04_observability/alertmanager.yml``) until :func:`apply_routes` loads another.
    """
    st = current()
    if not st.external:
        prom_exe = tools.require("prometheus", "04")
        tools.require("alertmanager", "04")
        am_exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    for name in (LOAD, RECEIVER) + (() if st.external else (PROMETHEUS, ALERTMANAGER)):
        procs.stop(name)
    for sub in ("prometheus", "alertmanager"):
        shutil.rmtree(st.dir / sub, ignore_errors=True)
    st.receiver_file.unlink(missing_ok=True)
    st.load_file.unlink(missing_ok=True)
    st.rules_dir.mkdir(parents=True, exist_ok=True)

    backing = setup_backing()
    wired = pager.wire_pager(aws.client("sns"), aws.client("sqs"), PAGER_TOPIC, PAGER_QUEUE)
    ports = _ports()  # known before the service runs: Prometheus can start first (it finds targets ~5 s later)
    targets = st.dir / "prometheus" / "targets" / "orders.json"
    targets.parent.mkdir(parents=True, exist_ok=True)
    targets.write_text(
        json.dumps([{"targets": [f"127.0.0.1:{ports['metrics_port']}"], "labels": {"service": "orders"}}])
    )
    routes = read_yaml(LESSON_DIR / "alertmanager.yml")
    write_alertmanager_config(st, routes, wired["topic_arn"])
    am_host = st.alertmanager.url.split("//", 1)[1]
    config = prom.prometheus_config(str(st.rules_dir / "*.yml"), str(targets.parent / "*.json"), am_host)
    _write_yaml(st.dir / "prometheus" / "prometheus.yml", config)
    t0 = time.monotonic()
    if st.external:
        st.prometheus.reload()
        st.alertmanager.reload()
        commands = [
            f"(the Docker path's servers, reloaded: POST {st.prometheus.url}/-/reload, {st.alertmanager.url}/-/reload)"
        ]
    else:
        am = prom.alertmanager_args(
            am_exe, st.alertmanager_config, st.dir / "alertmanager" / "data", _port(st.alertmanager)
        )
        prom.start_server(ALERTMANAGER, am, st.alertmanager.url, "Alertmanager")
        args = prom.prometheus_args(
            prom_exe, st.dir / "prometheus" / "prometheus.yml", st.dir / "prometheus" / "data", _port(st.prometheus)
        )
        prom.start_server(PROMETHEUS, args, st.prometheus.url, "Prometheus")
        commands = [_shown(args), _shown(am)]
    started = time.monotonic() - t0
    procs.start(
        RECEIVER,
        [
            "-m",
            "cloudlab.observability.receiver",
            "--port",
            st.receiver_url.rsplit(":", 1)[1],
            "--file",
            st.receiver_file,
        ],
        ready_url=st.receiver_url + "/health",
        cwd=str(ROOT),
    )
    service.setdefault("inventory_ms", 40)
    set_fault_rate(fault_rate, quiet=True)
    svc = start_service(fault_rate=fault_rate, backing=backing, fault_flag=st.fault_flag, **service, **ports)
    procs.start(
        LOAD,
        ["-m", "cloudlab.observability.load", svc.url, "--rate", rate, "--results", st.load_file],
        cwd=str(ROOT),
    )
    if not quiet:
        for c in commands:
            print(f"$ {c}")
        print(f"order service  {svc.url} (metrics {svc.metrics_url}), FAULT_RATE={fault_rate}, {rate:g} requests/s")
        print(f"Prometheus     {st.prometheus.url}   (open it in a browser: Graph, Alerts, Status > Rules)")
        print(f"Alertmanager   {st.alertmanager.url}   receiver (the lab's pager) {st.receiver_url}")
        print(f"both ready in {started:.1f} s; lab time: 1 s here stands for 1 min ({prom.SPEEDUP}x)")
    return st


def _shown(args: list) -> str:
    """A command line as a learner would type it: the program's name, paths relative to the repository."""
    words = [Path(str(args[0])).name]
    for a in args[1:]:
        words.append(str(a).replace(str(ROOT) + "/", ""))
    return " ".join(words)


def _port(api) -> int:
    return int(api.url.rsplit(":", 1)[1])


SETTINGS = ("fault_rate", "buckets", "inventory_ms", "inventory_hook", "slow_queue_ms", "slow_queue_rate", "fault_flag")


def restart_service(**changes):
    """A config change: restart the service with some settings changed (the others stay; same ports, so the
    scraping goes on). ``restart_service(fault_rate=0.3)`` starts an incident, ``fault_rate=0`` ends it.
    Settings: fault_rate, buckets, inventory_ms, inventory_hook, slow_queue_ms, slow_queue_rate."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise TypeError(f"restart_service() knows {', '.join(SETTINGS)}; not {', '.join(unknown)}")
    svc = find_service(SERVICE)
    settings = {k: getattr(svc, k) for k in SETTINGS} if svc else {}
    if "buckets" in settings:
        settings["buckets"] = settings["buckets"] or None
    if "buckets" in changes:
        changes["buckets"] = _bucket_bounds(changes["buckets"])
    before = dict(settings)
    settings.update(changes)
    try:
        return start_service(**settings, **_ports())
    except RuntimeError as e:  # the service refused these settings and exited: bring back the last good ones
        if before:
            start_service(**before, **_ports())
        last = str(e).strip().splitlines()[-1:] or [""]
        raise prom.StackError(
            f"the service did not start with {changes}: {last[0][-300:]}; it runs again with its previous settings"
        ) from None


def _bucket_bounds(buckets) -> tuple[float, ...] | None:
    """Histogram bounds as the service takes them: increasing positive seconds (StackError otherwise)."""
    if buckets is None:
        return None
    try:
        bounds = tuple(float(b) for b in buckets)
    except (TypeError, ValueError):
        raise prom.StackError(
            f"buckets should be numbers of seconds, such as (0.05, 0.1, 0.25), not {buckets!r:.80}"
        ) from None
    if not bounds or any(b <= 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
        raise prom.StackError(f"buckets should be positive and increasing, each bound once: {bounds!r:.100}")
    return bounds


def set_fault_rate(rate: float, quiet: bool = False) -> None:
    """Flip the service's feature flag: from now on ``rate`` of new orders fail (no restart: the running
    service reads the flag file, and logs the change)."""
    if not 0 <= float(rate) <= 1:
        raise ValueError(f"a fault rate is a share of requests from 0 to 1, not {rate!r}")
    f = current().fault_flag
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(f"{float(rate)}\n")
    tmp.replace(f)  # atomic: the service never reads half a number
    if not quiet:
        print(f"$ echo {float(rate)} > {f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}   # the FAULT_RATE flag")


# ------------------------------------------------------------------------ routing
def alertmanager_config(st: Stack, routes: dict, topic_arn: str | None = None, sns_endpoint: str | None = None) -> dict:
    """The live Alertmanager config: ``routes`` (route and inhibit_rules, in real units) in lab time, with the
    lab's receivers."""
    topic_arn = topic_arn or f"arn:aws:sns:{region()}:000000000000:{PAGER_TOPIC}"
    route = routes.get("route") if isinstance(routes.get("route"), dict) else {}
    return {
        "global": {"resolve_timeout": prom.lab_duration("5m")},
        "route": prom.compress_routes(route),
        "inhibit_rules": routes.get("inhibit_rules") or [],
        "receivers": lab_receivers(st, topic_arn, sns_endpoint),
    }


def write_alertmanager_config(st: Stack, routes: dict, topic_arn: str | None = None) -> Path:
    return _write_yaml(st.alertmanager_config, alertmanager_config(st, routes, topic_arn))


# ------------------------------------------------------------------------ waiting and reading
def wait_for(fn, timeout: float, every: float = 0.25):
    """Call ``fn()`` until it returns something truthy (returned) or ``timeout`` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got or None
        time.sleep(every)


def wait_for_delivery(since: float, path: str = "/pager", status: str = "firing", timeout: float = 30) -> list[dict]:
    """The notifications to ``path`` (``/pager`` or ``/tickets``) with ``status`` received after ``since``;
    if none arrives within ``timeout`` s, StackError saying where the alert got stuck."""
    st = current()

    def arrived():
        return [
            n for n in st.delivered(since) if n["path"] == path and (n.get("payload") or {}).get("status") == status
        ]

    got = wait_for(arrived, timeout)
    if got:
        return got
    if not st.alertmanager.ready():
        raise prom.StackDown(
            f"nothing reached {path}: Alertmanager is not running at {st.alertmanager.url}. Prometheus keeps "
            "the alert and retries; run the setup cell again (it starts Alertmanager) and the notification follows."
        )
    try:
        alerts = st.prometheus.alerts()
    except prom.StackError as e:
        raise prom.StackDown(f"nothing reached {path}, and {e}") from None
    states = sorted({(a["labels"].get("alertname", "?"), a["state"]) for a in alerts})
    raise prom.StackError(
        f"nothing with status {status!r} reached {path} within {timeout:.0f} s. Prometheus has these alerts: "
        f"{states or 'none'}. None firing: is the rule loaded (Status > Rules), and does its expression return "
        "anything now (paste it into Graph)? Pending: its `for:` has not passed yet. Firing: check where "
        "Alertmanager routes it (`amtool config routes test ...`) and whether it is silenced or inhibited."
    )


def sns_pages(sqs=None) -> list[dict]:
    """What Alertmanager's SNS receiver delivered to the pager queue (each message once)."""
    sqs = sqs or aws.client("sqs")
    url = sqs.get_queue_url(QueueName=PAGER_QUEUE)["QueueUrl"]
    out = []
    for _ in range(3):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            try:
                out.append(json.loads(m["Body"]))
            except ValueError:
                out.append({"raw": m["Body"]})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def stop_stack() -> None:
    """Stop the load, the service, Prometheus, Alertmanager and the receiver (their data stays until a reset)."""
    names = [LOAD, SERVICE, RECEIVER] + ([] if current().external else [PROMETHEUS, ALERTMANAGER])
    stopped = [n for n in names if procs.running(n)]
    for n in names:
        procs.stop(n)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}; the setup cell starts everything again")


@cleanup.extra("04")
def _reset_stack() -> dict:
    """The generic sweep stops the l04-* processes; here: their files, and the compose servers' state."""
    st = current()
    removed = []
    if st.external:
        for f in st.rules_dir.glob("*.yml") if st.rules_dir.exists() else []:
            f.unlink()
            removed.append(f.name)
        for api in (st.prometheus,):
            try:
                api.reload()
            except prom.StackError:
                pass
    if stack_dir().exists():
        shutil.rmtree(stack_dir(), ignore_errors=True)
        removed.append("stack files")
    return {"observability stack": removed}
