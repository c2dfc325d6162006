"""Lesson 06 (Kubernetes): the sample service's chart, its exercise copy, the demos, the reset hook.

The toolkit :mod:`cloudlab.k8s` renders and validates; this module knows the lesson's files
(``lessons/06_kubernetes/``), the exercise chart (a copy in the lab's work folder), the service's
measured needs, and the live extras (the in-cluster backing services). The checks are in ``checks``,
``scaling`` (06.4) and ``policy`` (06.5, 06.6).
"""

from __future__ import annotations

import copy
import re
import shutil
import time
from pathlib import Path

import yaml

from .. import cleanup, k8s, net, procs, tables
from ..lab import ROOT, Lab, workspace
from ..lab import cluster as kind

LESSON = "06"
ASSETS = ROOT / "lessons" / "06_kubernetes"
CHART = ASSETS / "chart" / "orders"
OVERLAYS = ASSETS / "kustomize" / "overlays"
MESSY = ASSETS / "messy" / "orders.yaml"
STATEFULSET = ASSETS / "statefulset" / "postgres.yaml"
BROKEN_CHART = ASSETS / "broken" / "chart"
REMOVED_API = ASSETS / "broken" / "removed-api" / "pdb.yaml"
EXERCISE_TEMPLATE = ASSETS / "exercise" / "orders"
RELEASE = "orders"
EX_NAMESPACE = "l06-ex"
ENVS = ("dev", "staging", "prod")
IMAGE_TAG = kind.image_tag()  # the immutable tag `make cluster` builds: sha-<hash of the service's sources>
# What the order service needs, measured here (lesson 06 measures it again in its notebook):
MEASURED_RSS_MIB = 52  # resident memory after start and a few requests, on the 2-core CI machine
MEMORY_FLOOR_MIB = 64  # the measurement plus about 20 % headroom: less than this and it will be OOM-killed
HPA_SCENARIO = {"replicas": 4, "cpu_utilization": 90}  # exercise 4: "4 pods at 90 % of their CPU request"


def workdir() -> Path:
    return Lab.from_env().work_dir(LESSON)


# ------------------------------------------------------------------ rendering the lesson's chart
def values_files(env: str) -> list[Path]:
    return [CHART / f"values-{env}.yaml"]


def render_env(env: str, quiet: bool = False, **set_values) -> k8s.Manifest:
    """The chart for one environment: ``helm template orders chart -n l06-<env> -f values-<env>.yaml``."""
    return k8s.helm_template(CHART, RELEASE, f"l06-{env}", values_files(env), set_values or None, quiet)


def summary(manifest) -> list[tuple]:
    """One row per object: kind, name, and what matters for this lesson."""
    rows = []
    for o in manifest:
        kind_, name = o.get("kind"), k8s.meta(o).get("name")
        note = ""
        if kind_ in k8s.WORKLOADS:
            c = k8s.container(o)
            req = (c.get("resources") or {}).get("requests") or {}
            note = (
                f"replicas={o.get('spec', {}).get('replicas', '(HPA)')} image={c.get('image')} "
                f"requests={req or 'none'} QoS={k8s.qos_class(o)}"
            )
        elif kind_ == "HorizontalPodAutoscaler":
            s = o.get("spec", {})
            note = f"{s.get('minReplicas')}..{s.get('maxReplicas')} replicas"
        elif kind_ == "PodDisruptionBudget":
            s = o.get("spec", {})
            note = f"maxUnavailable={s.get('maxUnavailable')} minAvailable={s.get('minAvailable')}"
        rows.append((kind_, name, note))
    return rows


def show(manifest) -> None:
    """The rendered objects, one row each: a table in a notebook, text elsewhere."""
    tables.show(tables.Table(("kind", "name", "what matters"), summary(manifest), indent=2))


def diff_envs(a: k8s.Manifest, b: k8s.Manifest) -> list[str]:
    """What differs between two renders, object by object (added, removed, and changed fields). Lists of named
    items (containers, env, ports) are compared by name: ``env[ORDERS_QUEUE_URL].value: 'a' -> 'b'``."""

    def index(m):
        return {(o.get("kind"), k8s.meta(o).get("name")): o for o in m}

    ia, ib = index(a), index(b)
    out = [f"only in the first:  {k[0]}/{k[1]}" for k in ia if k not in ib]
    out += [f"only in the second: {k[0]}/{k[1]}" for k in ib if k not in ia]
    for k in ia.keys() & ib.keys():
        for path, va, vb in _changes(ia[k], ib[k]):
            if path == "metadata.namespace" or path.endswith(".host"):
                continue
            if path.endswith("]") and (va is None or vb is None):
                out.append(f"{k[0]}/{k[1]} {path}: " + ("removed" if vb is None else f"added {_short(vb)}"))
            else:
                out.append(f"{k[0]}/{k[1]} {path}: {_short(va)} -> {_short(vb)}")
    return sorted(out)


def _short(value, width: int = 64) -> str:
    if value is None:
        return "(none)"
    text = repr(value) if not isinstance(value, (dict, list)) else yaml.safe_dump(value, default_flow_style=True)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 4] + " ..."


def _named(items) -> dict | None:
    """{name: item} for a list of dicts that all have a distinct name (env, containers, ports), else None."""
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) and "name" in i for i in items):
        return None
    named = {i["name"]: i for i in items}
    return named if len(named) == len(items) else None


def _changes(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            yield from _changes(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    elif _named(a) is not None and _named(b) is not None:
        na, nb = _named(a), _named(b)
        for name in [n for n in na if n not in nb] + [n for n in nb if n not in na]:
            yield f"{path}[{name}]", na.get(name), nb.get(name)
        for name in [n for n in na if n in nb]:
            yield from _changes(na[name], nb[name], f"{path}[{name}]")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _changes(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b


# ------------------------------------------------------------------ the service's real needs
def measure_service(bucket: str, queue_url: str, requests_: int = 20) -> dict:
    """Start the order service locally (as a pod would run it), serve a few requests, read its memory.

    Returns {'start_seconds', 'rss_mib', 'health', 'ready'}: the figures the requests, limits and
    startup probe are chosen from.
    """
    port = net.free_port()
    t0 = time.monotonic()
    p = procs.start(
        "l06-measure",
        ["-m", "app.service"],
        env={"ORDERS_BUCKET": bucket, "ORDERS_QUEUE_URL": queue_url, "PORT": str(port)},
        ready_url=f"http://127.0.0.1:{port}/health",
        cwd=str(ROOT),
    )
    start = time.monotonic() - t0
    base = f"http://127.0.0.1:{port}"
    for i in range(requests_):
        net.request("POST", f"{base}/orders", {"item": f"book-{i}", "qty": 1})
    health = net.request("GET", f"{base}/health").status
    ready = net.request("GET", f"{base}/ready").status
    rss = _rss_mib(p.pid)
    procs.stop("l06-measure")
    return {"start_seconds": round(start, 2), "rss_mib": rss, "health": health, "ready": ready}


def _rss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    m = re.search(r"VmHWM:\s+(\d+) kB", text) or re.search(r"VmRSS:\s+(\d+) kB", text)
    return round(int(m.group(1)) / 1024, 1) if m else float("nan")


def probe_paths(bucket: str, queue_url: str, paths, make_bucket=None) -> dict:
    """Start the service against ``bucket`` and GET each path: {path: status} with the bucket missing,
    then (after ``make_bucket()``) {path: status} with it there. What a kubelet's probes would see."""
    port = net.free_port()
    procs.start(
        "l06-probe-target",
        ["-m", "app.service"],
        env={"ORDERS_BUCKET": bucket, "ORDERS_QUEUE_URL": queue_url, "PORT": str(port)},
        ready_url=f"http://127.0.0.1:{port}/health",
        cwd=str(ROOT),
    )
    try:
        before = {p: _status(port, p) for p in paths}
        if make_bucket is not None:
            make_bucket()
        after = {p: _status(port, p) for p in paths}
    finally:
        procs.stop("l06-probe-target")
    return {"dependency down": before, "dependency up": after}


def _status(port: int, path) -> int:
    if not isinstance(path, str) or not path.startswith("/"):
        return 0
    try:  # whether it answers 200 or 503, not how fast: /ready asks LocalStack, which a busy machine slows (over 5 s
        # measured in make test, where seven labs share two cores); a kubelet's own timeout is the probe's business
        return net.request("GET", f"http://127.0.0.1:{port}{path}", timeout=20).status
    except OSError:
        return 0


# ------------------------------------------------------------------ the exercise chart
class ExerciseChart:
    """Your copy of the exercise chart, in your workspace (``l06-chart/orders`` in JupyterLab's file browser).

    ``write(path, text)`` replaces a file, ``update_values({...})`` merges into values.yaml, ``render()``
    runs ``helm template``. The checks render this folder themselves.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def __repr__(self):
        return f"ExerciseChart({self.path})"

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text()

    def write(self, rel: str, text: str) -> Path:
        target = (self.path / rel).resolve()
        if self.path.resolve() not in target.parents:
            raise ValueError(f"{rel!r} is outside the chart folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.lstrip("\n"))
        print(f"wrote {target.relative_to(self.path.parent)}")
        return target

    @property
    def values(self) -> dict:
        data = yaml.safe_load(self.read("values.yaml")) or {}
        return data if isinstance(data, dict) else {}

    def update_values(self, changes: dict) -> dict:
        """Merge ``changes`` into values.yaml (nested dicts merge; anything else replaces)."""
        merged = _merge(copy.deepcopy(self.values), changes)
        self.write("values.yaml", yaml.safe_dump(merged, sort_keys=False))
        return merged

    def render(self, quiet: bool = False) -> k8s.Manifest:
        return k8s.helm_template(self.path, RELEASE, EX_NAMESPACE, quiet=quiet)

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file())


def _merge(base: dict, changes: dict) -> dict:
    for k, v in (changes or {}).items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = _merge(base[k], v)
        else:
            base[k] = v
    return base


def chart_home() -> Path:
    """Where the exercise chart lives: in the learner's workspace, the folder JupyterLab opens (``l06-chart/``),
    so it can be opened and edited in the file browser. A lab with a state folder of its own (a test) keeps it
    there instead, never in the course folder's workspace."""
    lab = Lab.from_env()
    if lab.profile != "lab" or lab.state == (ROOT / ".lab").resolve():
        return workspace.root(lab) / "l06-chart"
    return workdir() / "ex"


def exercise_chart(fresh: bool = False) -> ExerciseChart:
    """The exercise chart, ``l06-chart/orders`` in your workspace (copied from the lesson's template if missing).

    ``fresh``: start again from the template; your previous copy is kept next to it as ``orders.previous``."""
    home = chart_home()
    target = home / "orders"
    if fresh and target.exists():
        kept = home / "orders.previous"
        shutil.rmtree(kept, ignore_errors=True)
        target.rename(kept)
        print(f"a fresh exercise chart; your previous copy is kept in {kept}")
    if not target.exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copytree(EXERCISE_TEMPLATE, target)
    return ExerciseChart(target)


# ------------------------------------------------------------------ live extras
def live_backing(cluster: k8s.Cluster) -> None:
    """Live only: moto as the backing S3/SQS in namespace l06-backing, and the bucket and queue in it."""
    cluster.apply(k8s.load((ASSETS / "live" / "backing.yaml").read_text()))
    cluster.kubectl("rollout", "status", "deployment/backing", "-n", "l06-backing", "--timeout=120s")
    code = (
        "import boto3; s3 = boto3.client('s3'); sqs = boto3.client('sqs'); "
        "s3.create_bucket(Bucket='l06-orders'); sqs.create_queue(QueueName='l06-orders')"
    )
    cluster.kubectl(
        "run",
        f"l06-bootstrap-{int(time.time()) % 100000}",
        "-n",
        "l06-backing",
        "--rm",
        "-i",
        "--restart=Never",
        f"--image={kind.image()}",
        "--env=AWS_ENDPOINT_URL=http://backing:5000",
        "--env=AWS_ACCESS_KEY_ID=test",
        "--env=AWS_SECRET_ACCESS_KEY=test",
        "--env=AWS_DEFAULT_REGION=us-east-1",
        "--command",
        "--",
        "python",
        "-c",
        code,
        timeout=180,
    )


@cleanup.extra(LESSON)
def _reset() -> dict:
    removed = {"work folders": [], "namespaces": []}
    d = Lab.from_env().work / f"l{LESSON}"
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)
        removed["work folders"].append(str(d.name))
    ok, _ = kind.cluster_status(2)
    if ok:
        removed["namespaces"] = k8s.Cluster().delete_namespaces("l06-ex")
    return removed


from .checks import check_probes, check_resources, check_service  # noqa: E402, F401
from .policy import check_hardening, check_netpol  # noqa: E402, F401
from .scaling import check_hpa  # noqa: E402, F401
