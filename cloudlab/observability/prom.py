"""Prometheus and Alertmanager, the real ones: their configs, lab time, start and stop, their HTTP APIs.

Lab time: a lesson cannot wait an hour for a one-hour window, so the lab runs at ``SPEEDUP`` (60x): one
lab second stands for one real minute. Rule files and routing trees are written in real units (``[1h]``,
``for: 2m``, ``group_wait: 30s``) and tested in real units by promtool; the copies the live processes
load have EVERY duration divided by the same factor (:func:`compress_rules`, :func:`compress_routes`),
and so do the scrape and evaluation intervals (1 real minute -> 1 lab second). The ratios between
windows, ``for:`` and intervals stay exactly as written.

Both servers listen on 127.0.0.1 only (Alertmanager with ``--cluster.listen-address=`` so its cluster
port stays closed) and run through :mod:`cloudlab.procs`, so ``reset_lesson`` and ``make stop`` stop
them. Serves lesson 04 and the later lessons that watch a service (08, 09, 10).
"""

from __future__ import annotations

import copy
import hashlib
import re
import struct
import time
import urllib.parse

from .. import net, procs

SPEEDUP = 60  # one lab second = one real minute

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}
_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


class StackError(RuntimeError):
    """Prometheus or Alertmanager cannot do what was asked; the message says why and what to do."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class StackDown(StackError):
    """Prometheus or Alertmanager does not answer."""


# ------------------------------------------------------------------ durations and lab time
def parse_duration(text) -> int:
    """A Prometheus duration (``90s``, ``1h30m``, ``500ms``) in milliseconds; ValueError if it is none."""
    s = str(text).strip()
    parts = _PART.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"{text!r} is not a Prometheus duration (like 30s, 5m, 1h30m)")
    return sum(int(n) * _UNITS_MS[u] for n, u in parts)


def format_duration(ms: int) -> str:
    """Milliseconds as the shortest Prometheus duration: 300000 -> '5m', 2500 -> '2500ms'."""
    ms = int(round(ms))
    for unit in ("h", "m", "s"):
        if ms and ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def lab_duration(text, factor: float = SPEEDUP) -> str:
    """A real duration in lab time: ``lab_duration('5m') == '5s'`` at 60x."""
    return format_duration(max(1, parse_duration(text) / factor)) if parse_duration(text) else "0s"


_RANGE = re.compile(r"\[(\s*[0-9a-z]+\s*)(?::(\s*[0-9a-z]*\s*))?\]")
_OFFSET = re.compile(r"\boffset(\s+)(-?)([0-9a-z]+)\b")


def compress_expr(expr: str, factor: float = SPEEDUP) -> str:
    """Every range ``[5m]``, subquery ``[1h:1m]`` and ``offset 5m`` of a PromQL expression, in lab time."""

    def rng(m):
        out = lab_duration(m.group(1).strip(), factor)
        if m.group(2) is not None:
            step = m.group(2).strip()
            out += ":" + (lab_duration(step, factor) if step else "")
        return f"[{out}]"

    expr = _RANGE.sub(rng, str(expr))
    return _OFFSET.sub(lambda m: f"offset{m.group(1)}{m.group(2)}{lab_duration(m.group(3), factor)}", expr)


def compress_rules(data: dict, factor: float = SPEEDUP) -> dict:
    """A rule file (parsed YAML) in lab time: each ``expr``, ``for`` and group ``interval``."""
    out = copy.deepcopy(data)
    for group in out.get("groups") or []:
        if "interval" in group:
            group["interval"] = lab_duration(group["interval"], factor)
        for rule in group.get("rules") or []:
            if "expr" in rule:
                rule["expr"] = compress_expr(rule["expr"], factor)
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = lab_duration(rule[key], factor)
    return out


def compress_routes(route: dict, factor: float = SPEEDUP) -> dict:
    """An Alertmanager route tree in lab time: group_wait, group_interval, repeat_interval, at every level."""
    out = copy.deepcopy(route)
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in out:
            out[key] = lab_duration(out[key], factor)
    out["routes"] = [compress_routes(r, factor) for r in out.get("routes") or []]
    if not out["routes"]:
        del out["routes"]
    return out


def config_hash(data: bytes) -> float:
    """What Alertmanager reports as ``alertmanager_config_hash`` for a config file with these bytes."""
    return float(struct.unpack("<Q", hashlib.md5(data).digest()[:6] + b"\0\0")[0])


def format_le(bound: float) -> str:
    """A bucket bound as the ``le`` label value clients expose (0.25 -> '0.25', 1 -> '1.0')."""
    return repr(float(bound))


# ------------------------------------------------------------------ configuration
def prometheus_config(rule_files: str, targets_file: str, alertmanager: str, factor: float = SPEEDUP) -> dict:
    """Scrape the targets listed in ``targets_file`` (file service discovery), evaluate ``rule_files``
    and send alerts to ``alertmanager`` (host:port); one real minute of interval = one lab second."""
    interval = lab_duration("1m", factor)
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "orders", "file_sd_configs": [{"files": [targets_file]}]}],
    }


def prometheus_args(exe: str, config: str, data_dir: str, port: int, factor: float = SPEEDUP) -> list[str]:
    return [
        exe,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=6h",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}/",
        "--web.enable-lifecycle",  # POST /-/reload after a rule file changes
        f"--rules.alert.resend-delay={lab_duration('1m', factor)}",
    ]


def alertmanager_args(exe: str, config: str, data_dir: str, port: int) -> list[str]:
    return [
        exe,
        f"--config.file={config}",
        f"--storage.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}/",
        "--cluster.listen-address=",  # no cluster: otherwise it listens on 0.0.0.0:9094
    ]


def start_server(name: str, args: list[str], url: str, what: str, timeout: float = 20.0) -> procs.Proc:
    """Start a server through :mod:`cloudlab.procs` (stopping an older one of that name) and wait until ready."""
    port = urllib.parse.urlsplit(url).port
    procs.stop(name)
    if port and net.port_in_use(port):
        raise StackError(
            f"port {port} (for {what}) is already taken by another program, so {what} cannot start.\n"
            f"  `ss -ltnp 'sport = :{port}'` shows who holds it: stop that program, or move the lab's {what} "
            f"with CLOUDLAB_{what.upper()}_PORT=<another port> (then restart JupyterLab with `make lab`). "
            "Installing Debian's package starts a system Prometheus (and Alertmanager) on these ports: "
            "`sudo systemctl disable --now prometheus prometheus-alertmanager` stops them."
        )
    proc = procs.start(name, args, python=False, ready_url=url + "/-/healthy", timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if net.request("GET", url + "/-/ready", timeout=2).status == 200:
                return proc
        except OSError:
            pass
        if not proc.alive():
            break
        time.sleep(0.05)
    out = proc.output()[-1500:]
    procs.stop(name)
    raise StackError(f"{what} did not become ready within {timeout:.0f} s. Its log:\n{out}")


# ------------------------------------------------------------------ HTTP APIs
class _API:
    what = "the server"

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body=None, timeout: float = 5.0) -> net.Response:
        try:
            return net.request(method, self.url + path, body, timeout=timeout)
        except OSError as e:
            raise StackDown(
                f"{self.what} does not answer at {self.url} ({e}). Run the notebook's setup cell again: it starts "
                "Prometheus, Alertmanager and the receiver (`make stop` and a reset stop them)."
            ) from None

    def ready(self) -> bool:
        try:
            return net.request("GET", self.url + "/-/ready", timeout=1).status == 200
        except OSError:
            return False

    def reload(self) -> None:
        """Re-read the configuration file (and rule files); StackError with the server's reason if refused."""
        r = self._call("POST", "/-/reload", timeout=15)
        if r.status != 200:
            raise StackError(f"{self.what} refused the new configuration: {r.body.decode(errors='replace')[:800]}")


class Prometheus(_API):
    """Prometheus's HTTP API (``/api/v1``): instant and range queries, rules, alerts, targets."""

    what = "Prometheus"

    def _data(self, path: str, **params):
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        r = self._call("GET", f"/api/v1/{path}" + (f"?{q}" if q else ""), timeout=10)
        data = r.json({})
        if r.status != 200 or data.get("status") != "success":
            raise StackError(f"Prometheus answered {r.status}: {data.get('error') or r.body[:300]!r}")
        return data["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query: [{'metric': {labels}, 'value': float}] (an empty list when nothing matches)."""
        res = self._data("query", query=expr, time=at)
        if res.get("resultType") == "scalar":
            return [{"metric": {}, "value": float(res["result"][1])}]
        return [{"metric": s["metric"], "value": float(s["value"][1])} for s in res.get("result", [])]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value of ``expr`` (None when it has no result)."""
        res = self.query(expr, at)
        return res[0]["value"] if res else None

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        """[{'metric': {labels}, 't': [epoch s], 'v': [floats]}], one per series."""
        res = self._data("query_range", query=expr, start=start, end=end, step=step)
        return [
            {"metric": s["metric"], "t": [float(t) for t, _ in s["values"]], "v": [float(v) for _, v in s["values"]]}
            for s in res.get("result", [])
        ]

    def rules(self, kind: str | None = None) -> list[dict]:
        """The loaded rule groups, each with its file, rules, health and last error."""
        return self._data("rules", type=kind)["groups"]

    def alerts(self) -> list[dict]:
        """Alerts that are pending or firing now: labels, state, activeAt, value."""
        return self._data("alerts")["alerts"]

    def targets(self) -> list[dict]:
        return self._data("targets")["activeTargets"]


class Alertmanager(_API):
    """Alertmanager's HTTP API (``/api/v2``): alerts, silences, its status (and loaded configuration)."""

    what = "Alertmanager"

    def _json(self, method: str, path: str, body=None, ok=(200,)):
        r = self._call(method, f"/api/v2/{path}", body)
        if r.status not in ok:
            raise StackError(f"Alertmanager refused {method} /api/v2/{path}: {r.status} {r.body[:400]!r}")
        return r.json()

    def alerts(self, **labels) -> list[dict]:
        """Alerts it holds (active, suppressed: silenced or inhibited), optionally those with ``labels``."""
        q = urllib.parse.urlencode([("filter", f'{k}="{v}"') for k, v in labels.items()])
        return self._json("GET", "alerts" + (f"?{q}" if q else "")) or []

    def post_alerts(self, alerts: list[dict]) -> None:
        """Send alerts the way Prometheus does (``amtool alert add`` does the same)."""
        self._json("POST", "alerts", alerts)

    def silences(self) -> list[dict]:
        return self._json("GET", "silences") or []

    def silence(self, silence_id: str) -> dict | None:
        r = self._call("GET", f"/api/v2/silence/{urllib.parse.quote(str(silence_id))}")
        return r.json() if r.status == 200 else None

    def expire(self, silence_id: str) -> None:
        self._call("DELETE", f"/api/v2/silence/{urllib.parse.quote(str(silence_id))}")

    def status(self) -> dict:
        """Its version, uptime and the configuration it runs (``config.original``)."""
        return self._json("GET", "status") or {}

    def config_hash(self) -> float | None:
        """The hash of the configuration file it loaded last (compare with :func:`config_hash`)."""
        from .metrics import parse_exposition

        r = self._call("GET", "/metrics")
        samples = [x for x in parse_exposition(r.body.decode()) if x.name == "alertmanager_config_hash"]
        return samples[0].value if samples else None


# ------------------------------------------------------------------ the golden signals, from Prometheus
def golden_signals(
    prometheus: Prometheus, start: float, end: float, step: float = 1.0, window: str = "10s", job: str = "orders"
) -> dict[str, list[float]]:
    """Latency percentiles, traffic, errors and saturation of ``job`` between ``start`` and ``end``, as
    :func:`cloudlab.observability.plots.plot_dashboard` draws them; a missing point is NaN."""
    sel = f'job="{job}"'
    queries = {
        "rps": f"sum(rate(orders_requests_total{{{sel}}}[{window}]))",
        "error_pct": f'100 * (sum(rate(orders_requests_total{{{sel}, status=~"5.."}}[{window}])) or vector(0))'
        f" / sum(rate(orders_requests_total{{{sel}}}[{window}]))",
        "in_flight": f"sum(orders_requests_in_flight{{{sel}}})",
        "cpu_pct": f"100 * sum(rate(process_cpu_seconds_total{{{sel}}}[{window}]))",
    }
    buckets = f"sum by (le) (rate(orders_request_duration_seconds_bucket{{{sel}}}[{window}]))"
    for q in (50, 95, 99):
        queries[f"p{q}"] = f"histogram_quantile({q / 100}, {buckets})"
    n = int((end - start) // step) + 1
    times = [start + i * step for i in range(n)]
    out: dict[str, list[float]] = {"t": times}
    for key, expr in queries.items():
        got = prometheus.query_range(expr, start, end, step)
        by_t = dict(zip(got[0]["t"], got[0]["v"], strict=False)) if got else {}
        out[key] = [by_t.get(t, float("nan")) for t in times]
    return out
