"""The system under incident: the order service in two colours behind haproxy, the fulfilment worker, steady
traffic, the Terraform stack, the pretend fleet that the bill prices, and where the drill keeps its records.

Everything runs on 127.0.0.1 as lesson processes named ``l10-...`` (a reset and ``make stop`` stop them):
``l10-blue`` / ``l10-green`` (releases of ``app.observed``, :mod:`.release`), ``l10-lb`` (haproxy, blue-green by
lesson 08's map switch), ``l10-worker`` (:mod:`.worker`), ``l10-load`` (lesson 04's load generator),
``l10-platform`` (:mod:`.platform`: the autoscaler, the cost meter, and the incident itself) and the watchers of
:mod:`.stack`. The records, in ``<state>/work/l10/drill/``: ``drill.json`` (seed, ports, start), ``colours.json``
(what runs where), ``events.jsonl`` (the change log: deploys, switches, policy changes), ``pager.jsonl`` (what
the pager received, and the acknowledgements), ``load.jsonl`` (every request the traffic sent).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from .. import aws, deploy, haproxy, net, procs
from ..lab import ROOT, Lab
from ..terraform import Terraform, backend_config, copy_template, tf_root
from . import scenario as scenario_mod
from .stack import LESSON_DIR

LESSON = "10"
BUCKET, STATE_BUCKET, STATE_KEY = "l10-orders", "l10-tfstate", "orders/terraform.tfstate"
EVENTS_QUEUE, FULFILMENT_QUEUE, STAGING_QUEUE = "l10-order-events", "l10-fulfilment", "l10-fulfilment-staging"
LB, WORKER, LOAD, PLATFORM = "l10-lb", "l10-worker", "l10-load", "l10-platform"
COLOURS = ("blue", "green")
RATE, POST_SHARE = 8.0, 0.5  # requests per second through haproxy, share of them that create an order
CHECK_INTER_MS = 500  # haproxy's health checks (each one is a request to /health the service counts too)
L02_MODULE = ROOT / "lessons" / "02_infrastructure-as-code" / "modules" / "secure-bucket"


class DrillError(RuntimeError):
    """The drill cannot do what was asked; the message says why and what to do."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mDrillError\x1b[0m: {self}"]


# ------------------------------------------------------------------ where things are
def work_dir() -> Path:
    return Lab.from_env().work_dir(LESSON)


def drill_dir() -> Path:
    d = work_dir() / "drill"
    d.mkdir(parents=True, exist_ok=True)
    return d


def tf_dir() -> Path:
    """The drill's Terraform working directory (lesson 02's module sits at the same relative place as in the
    repository: ``../../02_infrastructure-as-code/modules/secure-bucket``)."""
    return tf_root() / "l10" / "lessons" / "10_capstone-incident-response" / "terraform"


@contextlib.contextmanager
def _locked():
    with open(drill_dir() / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_json(name: str, default=None):
    try:
        return json.loads((drill_dir() / name).read_text())
    except (OSError, ValueError):
        return default


def write_json(name: str, data) -> None:
    path = drill_dir() / name
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def state() -> dict:
    """drill.json: seed, difficulty, ports, started_at; DrillError when no drill runs."""
    data = read_json("drill.json")
    if not data:
        raise DrillError("no drill has started in this lab: run the notebook's setup cell (lesson10.start()).")
    return data


def the_scenario() -> scenario_mod.Scenario:
    return scenario_mod.draw(state()["seed"], state()["difficulty"])


def record(kind: str, **fields) -> dict:
    """Append one entry to the change log (``events.jsonl``), as a deploy pipeline or a change tool would."""
    row = {"t": time.time(), "kind": kind, **fields}
    with _locked(), open(drill_dir() / "events.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")
    return row


def read_lines(path: Path) -> list[dict]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a half-written last line
        if isinstance(rec, dict):
            out.append(rec)
    return out


def events(kind: str | None = None) -> list[dict]:
    """The change log, oldest first (optionally only one ``kind``: deploy, switch, scaling_policy, drill_started)."""
    return [e for e in read_lines(drill_dir() / "events.jsonl") if kind is None or e.get("kind") == kind]


# ------------------------------------------------------------------ the balancer and the releases
def balancer(start: bool = False) -> haproxy.Balancer:
    """haproxy with backends blue and green and lesson 08's map switch (``deploy.SWITCH_RULE``)."""
    ports = state()["ports"]
    lb = haproxy.Balancer(
        LB,
        [haproxy.Backend(c, [haproxy.Server(c, ports[c])]) for c in COLOURS],
        rules=[deploy.SWITCH_RULE],
        maps={"active": {"live": "blue"}},
        port=ports["lb"],
        check_inter_ms=CHECK_INTER_MS,
        quiet=True,
    )
    return lb.start() if start else lb


def colours() -> dict:
    """{colour: {"release": id or None, "deployed_at": t}}: what each colour runs, as the deploys recorded it."""
    return read_json("colours.json", {c: {"release": None} for c in COLOURS})


def live_colour(lb: haproxy.Balancer | None = None) -> str:
    """The colour haproxy sends new requests to, as haproxy holds it in memory."""
    return deploy.live(lb or balancer())


def write_targets() -> None:
    from .stack import write_targets

    ports, cols = state()["ports"], colours()
    write_targets(
        drill_dir() / "watch",
        {c: {"metrics_port": ports[f"{c}_metrics"], "release": cols.get(c, {}).get("release")} for c in COLOURS},
    )


def release_env(release: scenario_mod.Release, colour: str, sc: scenario_mod.Scenario) -> dict:
    ports, d = state()["ports"], drill_dir()
    env = {
        "ORDERS_BUCKET": BUCKET,
        "ORDERS_QUEUE_URL": queue_url(EVENTS_QUEUE),
        "PORT": str(ports[colour]),
        "METRICS_PORT": str(ports[f"{colour}_metrics"]),
        "SPANS_FILE": str(d / "spans" / f"{colour}-{release.id}.jsonl"),
        "APP_VERSION": release.id,
        "FAULT_SEED": str(sc.seed % 100_000),
        "RELEASE_CHANGE": json.dumps(sc.change) if release.bad else "",
    }
    (d / "spans").mkdir(exist_ok=True)
    return env


def deploy_release(release_id: str, colour: str, by: str = "you", quiet: bool = False, **note) -> deploy.Instance:
    """Start release ``release_id`` on ``colour`` (its process restarts; the other colour is not touched) and wait
    until it answers /health. It gets no traffic until a switch sends it some. Recorded in the change log."""
    sc = the_scenario()
    known = {r.id: r for r in sc.releases}
    if release_id not in known:
        raise DrillError(f"there is no build of release {release_id!r}; the builds are: {', '.join(known)}")
    if colour not in COLOURS:
        raise DrillError(f"a colour is blue or green, not {colour!r}")
    release = known[release_id]
    name = f"l10-{colour}"
    old = procs.running(name)
    if old is not None and procs.log_path(name).exists():  # keep its log (a log collector would have shipped it)
        was = colours().get(colour, {}).get("release") or "unknown"
        (drill_dir() / "logs").mkdir(exist_ok=True)
        shutil.copyfile(procs.log_path(name), drill_dir() / "logs" / f"{colour}-{was}.log")
    env = release_env(release, colour, sc)
    began = time.time()
    procs.stop(name, grace=1.0)  # an idle slot: nothing to drain (a live one loses its requests: see switch())
    with _locked():  # label the slot's metrics with the new release before it answers a single request
        cols = colours()
        cols[colour] = {"release": release_id, "deployed_at": time.time()}
        write_json("colours.json", cols)
    write_targets()
    if not quiet:
        print(f"$ APP_VERSION={release_id} PORT={env['PORT']} python -m app.observed   # {name}, the {colour} slot")
    proc = procs.start(
        name,
        ["-m", "cloudlab.lesson10.release"],
        env=env,
        ready_url=f"http://127.0.0.1:{env['PORT']}/health",
        cwd=str(ROOT),
        timeout=30,
    )
    record("deploy", release=release_id, colour=colour, by=by, notes=list(release.notes), began=began, **note)
    return deploy.Instance(name, release_id, int(env["PORT"]), proc.pid)


def switch(to: str, by: str = "you", lb: haproxy.Balancer | None = None, quiet: bool = False, **note) -> float:
    """Blue-green: lesson 08's ``deploy.switch`` (waits for haproxy's health checks, then one map change moves
    every new request to ``to``), recorded in the change log. Returns the seconds waited for health."""
    if to not in COLOURS:
        raise DrillError(f"a colour is blue or green, not {to!r}")
    lb = lb or balancer()
    before = deploy.live(lb)
    if not quiet:
        print(f'$ echo "set map {lb.map_path("active")} live {to}" | socat stdio {lb.socket_path}')
    waited = deploy.switch(lb, to)
    record("switch", to=to, was=before, release=colours().get(to, {}).get("release"), by=by, **note)
    return waited


def live_release(lb: haproxy.Balancer | None = None) -> str:
    """The release that answers through haproxy right now (its X-App-Version, a real request)."""
    return deploy.version_of((lb or balancer()).url)


# ------------------------------------------------------------------ backing services and Terraform
def queue_url(name: str) -> str:
    sqs = aws.client("sqs")
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def queue_arn(name: str) -> str:
    sqs = aws.client("sqs")
    return sqs.get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def platform_queues() -> dict[str, str]:
    """The queues the platform's own stack owns (made here with boto3; the orders stack reads them)."""
    sqs = aws.client("sqs")
    return {q: sqs.create_queue(QueueName=q)["QueueUrl"] for q in (EVENTS_QUEUE, FULFILMENT_QUEUE, STAGING_QUEUE)}


def terraform(fresh: bool = False, quiet: bool = False) -> Terraform:
    """The orders stack's Terraform working directory, initialised with its remote state in s3://l10-tfstate.

    ``fresh``: copy the stack's code from the repository again (undoing edits to the working copy's .tf files;
    the state, the providers and a saved plan stay)."""
    root = tf_dir()
    if fresh or not (root / "main.tf").exists():
        copy_template(L02_MODULE, root.parent.parent / "02_infrastructure-as-code" / "modules" / "secure-bucket")
        copy_template(LESSON_DIR / "terraform", root, fresh=False, overwrite=True)
    tf = Terraform(root, quiet=quiet)
    if not (root / ".terraform").exists():
        tf.init(backend_config=backend_config(STATE_KEY, STATE_BUCKET))
    return tf


def bootstrap_state_bucket() -> None:
    s3 = aws.client("s3")
    try:
        s3.create_bucket(Bucket=STATE_BUCKET)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})


def notification() -> dict:
    """The orders bucket's event notification as S3 reports it now (one queue configuration, or {})."""
    s3 = aws.client("s3")
    got = s3.get_bucket_notification_configuration(Bucket=BUCKET).get("QueueConfigurations", [])
    if not got:
        return {}
    q = got[0]
    rules = {r["Name"].lower(): r["Value"] for r in q.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
    return {
        "id": q.get("Id"),
        "queue_arn": q["QueueArn"],
        "events": sorted(q.get("Events", [])),
        "filter_prefix": rules.get("prefix", ""),
        "filter_suffix": rules.get("suffix", ""),
    }


def state_serial() -> int | None:
    """The serial of the orders stack's remote state (Terraform increments it each time its apply changes something)."""
    s3 = aws.client("s3")
    try:
        return json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=STATE_KEY)["Body"].read()).get("serial")
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket, ValueError):
        return None


def state_written() -> float | None:
    """When Terraform last wrote the orders stack's state (the S3 object's LastModified)."""
    s3 = aws.client("s3")
    try:
        return s3.head_object(Bucket=STATE_BUCKET, Key=STATE_KEY)["LastModified"].timestamp()
    except s3.exceptions.ClientError:
        return None


def free_ports(n: int) -> list[int]:
    got: list[int] = []
    while len(got) < n:
        p = net.free_port()
        if p not in got:
            got.append(p)
    return got
