"""Run real Terraform against the lab: init, fmt, validate, plan, apply, destroy, in plain words.

Every run gets the same environment:

* the lab's AWS variables (``AWS_ENDPOINT_URL`` ...), after the real-AWS safety guard;
* ``TF_IN_AUTOMATION=1``, ``TF_INPUT=0``, ``CHECKPOINT_DISABLE=1`` (never prompt, never phone home);
* a plugin cache shared by all working directories (``<state>/terraform/plugin-cache``);
* when the machine has a filesystem mirror of the providers (``CLOUDLAB_TF_MIRROR``, or found on
  disk), a CLI config of the course's own that installs from it; otherwise Terraform downloads
  providers as usual.

Working directories live under the lab's state directory (``<state>/terraform/...``), so
``.terraform/``, lock files and state never land in the repository, and ``make reset`` wipes them.

Terraform's machine-readable output (``-json``) is parsed, so a failure becomes a
:class:`TerraformError` that names the file, the line and the fix, and a plan becomes a short
list of ``+ create`` / ``~ update`` / ``- destroy`` lines a learner can read.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

MIRROR_ENV = "CLOUDLAB_TF_MIRROR"
# Where machine images usually put a provider mirror; searched before walking the disk.
MIRROR_GUESSES = ("/opt/tf-plugins", "/usr/share/terraform/plugins", "/usr/local/share/terraform/plugins",
                  "/opt/terraform/plugins", "/var/lib/terraform/plugins")
_WALK_SKIP = {".terraform", "plugin-cache", ".git", "node_modules", ".venv", "venvs", ".lab", "__pycache__",
              "site-packages"}
_WALK_SKIP_ROOTS = {"/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/snap", "/boot"}
LAB_DOWN_HINT = "Run `make lab` in a terminal (or `docker compose up`), then re-run this cell. Nothing is lost."


class TerraformError(RuntimeError):
    """Terraform failed; the message says where and what to do. ``.result`` holds the full run."""

    def __init__(self, message: str, result: "Result | None" = None):
        super().__init__(message)
        self.result = result

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mTerraformError\x1b[0m: {self}"]


class LabDown(TerraformError):
    """The emulator does not answer, so Terraform would only retry for minutes."""

    def _render_traceback_(self):
        return [f"\x1b[31mLabDown\x1b[0m: {self}"]


# ------------------------------------------------------------------ environment
def _lab():
    from .lab import Lab
    return Lab.from_env()


def tf_root() -> Path:
    """Where the course's Terraform working directories, CLI config and plugin cache live."""
    return _lab().state / "terraform"


def _is_mirror(path: Path) -> bool:
    """A filesystem mirror holds <host>/<namespace>/<type>/<version>/<os_arch>/ (or zip files)."""
    reg = path / "registry.terraform.io"
    return reg.is_dir() and any(reg.glob("hashicorp/*/*"))


def _walk_for_mirror(root: str = "/", max_depth: int = 5, budget: float = 5.0) -> Path | None:
    t0 = time.monotonic()
    root_dev = os.stat(root).st_dev
    stack = [(root, 0)]
    while stack and time.monotonic() - t0 < budget:
        path, depth = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for e in entries:
            try:
                if not e.is_dir(follow_symlinks=False) or e.name in _WALK_SKIP or e.path in _WALK_SKIP_ROOTS:
                    continue
                if e.stat(follow_symlinks=False).st_dev != root_dev:  # like find -xdev
                    continue
            except OSError:
                continue
            if e.name == "registry.terraform.io":
                if _is_mirror(Path(path)):
                    return Path(path)
                continue
            if depth + 1 < max_depth:
                stack.append((e.path, depth + 1))
    return None


@functools.lru_cache(maxsize=None)
def find_mirror(environ_value: str | None = None, cache_file: str | None = None) -> Path | None:
    """The provider mirror directory, or None (then Terraform downloads providers normally).

    ``CLOUDLAB_TF_MIRROR`` wins (set it to an empty string to force downloads). Otherwise a few usual
    places, then a bounded walk of the root file system; the answer is cached in ``cache_file``.
    """
    if environ_value is not None:
        return Path(environ_value) if environ_value and _is_mirror(Path(environ_value)) else None
    cache = Path(cache_file) if cache_file else None
    if cache and cache.exists():
        text = cache.read_text().strip()
        if text == "" or _is_mirror(Path(text)):
            return Path(text) if text else None
    found = next((Path(g) for g in MIRROR_GUESSES if _is_mirror(Path(g))), None) or _walk_for_mirror()
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(f"{found or ''}\n")
    return found


def mirror() -> Path | None:
    return find_mirror(os.environ.get(MIRROR_ENV), str(tf_root() / "mirror-path.txt"))


def cli_config_text(mirror_dir: Path, cache_dir: Path) -> str:
    return (
        "# Written by cloudlab.terraform: install providers from this machine's mirror (offline).\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror_dir))}\n"
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
        f"plugin_cache_dir = {json.dumps(str(cache_dir))}\n")


def terraform_env(extra: dict | None = None, environ: dict | None = None) -> dict[str, str]:
    """The environment of every Terraform subprocess (see the module docstring)."""
    from . import aws
    env = dict(os.environ if environ is None else environ)
    if env.get(aws.OPT_IN) != aws.OPT_IN_VALUE:
        for k, v in aws.lab_defaults().items():
            env.setdefault(k, v)
    env.update(extra or {})
    aws.guard("s3", env)  # refuse to point Terraform at a real account by accident
    root = tf_root()
    cache = root / "plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1",
                "TF_PLUGIN_CACHE_DIR": str(cache)})
    env.pop("TF_LOG", None)
    m = mirror()
    if m is not None:
        cfg = root / "cli.tfrc"
        text = cli_config_text(m, cache)
        if not cfg.exists() or cfg.read_text() != text:
            cfg.write_text(text)
        env["TF_CLI_CONFIG_FILE"] = str(cfg)
    elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).exists():
        env.pop("TF_CLI_CONFIG_FILE")  # a missing file only adds a warning to every command
    return env


def endpoint_answers(url: str, timeout: float = 2.0) -> bool:
    """Does anything answer HTTP at ``url``? (Any HTTP status counts; refused or silent does not.)"""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, urllib.error.URLError, ValueError):
        return False


def backend_config(key: str, bucket: str, endpoint: str | None = None, region: str | None = None) -> dict[str, str]:
    """``-backend-config`` settings of the S3 backend on the lab: the bucket, the key, locking, the endpoint."""
    from . import aws
    endpoint = endpoint or aws.endpoint_for("s3") or ""
    region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return {
        "bucket": bucket,
        "key": key,
        "region": region,
        "use_lockfile": "true",  # Terraform's own lock: a <key>.tflock object next to the state
        "endpoints": '{s3="%s"}' % endpoint,
        "use_path_style": "true",
        "skip_credentials_validation": "true",
        "skip_requesting_account_id": "true",
        "skip_metadata_api_check": "true",
        "skip_region_validation": "true",
    }


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
    action: str                       # create, update, delete, replace, read, no-op
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
        return sum(1 for c in self.changes if c.action == action or (action in ("create", "delete") and c.action == "replace"))

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
        lines.append(f"Plan: {self.count('create')} to add, {self.count('update')} to change, "
                     f"{self.count('delete')} to destroy.")
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
    events: list[dict] = field(default_factory=list)   # -json UI events (when the command has -json)
    output: str = ""                                    # plain text output (or the raw lines)
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
    return (f"  held by: {fields.get('Who', '?')} ({fields.get('Operation', '?').replace('OperationType', '').lower()}"
            f", since {fields.get('Created', '?')[:19]})\n  lock: {fields.get('Path', '?')}  id {fields.get('ID', '?')}")


def explain(result: Result, endpoint: str | None = None) -> TerraformError:
    """The right error, in plain words, for a failed run."""
    errs = result.errors
    cmd = "terraform " + " ".join(a for a in result.args if not a.startswith("-"))
    blob = "\n".join((d.get("summary", "") + " " + (d.get("detail") or "")) for d in errs) + result.output[-3000:]
    if re.search(r"connection refused|dial tcp|no such host|i/o timeout|connect: ", blob, flags=re.I):
        return LabDown(f"`{cmd}` could not reach the emulator{' at ' + endpoint if endpoint else ''}: "
                       f"the lab is down. {LAB_DOWN_HINT}", result)
    lock = next((d for d in errs if "state lock" in d.get("summary", "").lower()), None)
    if lock is not None:
        return TerraformError(
            f"`{cmd}` stopped: the state is locked by another Terraform run, so this one did not touch "
            f"anything.\n{_lock_info(lock.get('detail') or '')}\n  Wait for that run to finish and retry "
            "(or pass lock_timeout='60s' to wait). Only if that run really died: "
            "`terraform force-unlock <id>`.", result)
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
        if kind == "change_summary" or (kind == "diagnostic" and
                                        ev.get("diagnostic", {}).get("severity") == "warning"):
            return stamp + ev.get("@message", "")
        return None


def _stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGINT (Terraform finishes the current step and releases its lock), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Terraform:
    """One Terraform working directory, driven from Python.

    >>> tf = Terraform(path)                 # doctest: +SKIP
    >>> tf.init(); tf.plan(); tf.apply()     # doctest: +SKIP
    """

    def __init__(self, workdir, env: dict | None = None, parallelism: int = 10, quiet: bool = False,
                 timeout: float = 300.0):
        self.workdir = Path(workdir)
        self.extra_env = dict(env or {})
        self.parallelism = parallelism
        self.quiet = quiet
        self.timeout = timeout
        self.history: list[Result] = []
        self.warnings: list[str] = []
        self.workdir.mkdir(parents=True, exist_ok=True)

    def __repr__(self):
        return f"Terraform({str(self.workdir)!r})"

    # -- plumbing ---------------------------------------------------------
    def env(self) -> dict[str, str]:
        return terraform_env(self.extra_env)

    @property
    def endpoint(self) -> str:
        env = self.env()
        return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""

    def check_lab(self) -> None:
        """Fail in a second, with the fix, when the emulator is down (not after minutes of retries)."""
        url = self.endpoint
        if url and not endpoint_answers(url):
            raise LabDown(f"the emulator at {url} does not answer, so Terraform cannot plan or apply: "
                          f"the lab is down. {LAB_DOWN_HINT}")

    def _log(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def run(self, *args: str, check: bool = True, ok_codes=(0,), show: Callable | None = None,
            env: dict | None = None) -> Result:
        """Run ``terraform <args>`` in the working directory; parse ``-json`` lines; raise on failure."""
        exe = shutil.which("terraform")
        if exe is None:
            raise TerraformError("the `terraform` command is not installed (or not on PATH). Install Terraform "
                                 "1.11 or newer: https://developer.hashicorp.com/terraform/install, then restart the kernel.")
        full_env = self.env()
        full_env.update(env or {})
        cmd = [exe, *args]
        t0 = time.monotonic()
        events, raw = [], []
        streaming = "-json" in args and args[0] in ("init", "plan", "apply", "destroy", "refresh")
        proc = subprocess.Popen(cmd, cwd=self.workdir, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        timed_out = threading.Event()

        def watchdog():  # a run that prints nothing can still hang: stop it from outside
            timed_out.set()
            _stop_group(proc)
        timer = threading.Timer(self.timeout, watchdog)
        timer.daemon = True
        timer.start()
        try:
            for line in proc.stdout:
                raw.append(line)
                if streaming and line.startswith("{"):
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    events.append(ev)
                    if show:
                        shown = show(ev, t0)
                        if shown:
                            self._log(shown)
            code = proc.wait()
        except KeyboardInterrupt:
            _stop_group(proc)  # Terraform stops cleanly on SIGINT and releases the state lock
            raise
        finally:
            timer.cancel()
        if timed_out.is_set():
            raise TerraformError(f"`terraform {' '.join(args[:1])}` took longer than {self.timeout:.0f} s and was "
                                 "stopped. Is the lab overloaded? `make status` shows what runs.")
        result = Result(list(args), code, time.monotonic() - t0, events,
                        "".join(ev.get("@message", "") + "\n" for ev in events) if events else "".join(raw))
        self.history.append(result)
        self._record(result)
        if check and code not in ok_codes:
            raise explain(result, self.endpoint)
        return result

    def _record(self, result: Result) -> None:
        """Append the run to ``.cloudlab-runs.jsonl`` in the working directory (checks read it)."""
        row = {"args": result.args, "exit_code": result.exit_code, "seconds": round(result.seconds, 2),
               "at": time.time(), "workspace": self.current_workspace()}
        try:
            with open(self.workdir / ".cloudlab-runs.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
        except OSError:
            pass

    @staticmethod
    def _vars(var: dict | None) -> list[str]:
        return [f"-var={k}={v}" for k, v in (var or {}).items()]

    # -- the commands -----------------------------------------------------
    def init(self, backend_config: dict | None = None, migrate: bool = False, reconfigure: bool = False) -> Result:
        # -migrate-state cannot be combined with -json (Terraform refuses): plain output then.
        args = ["init", "-no-color"] if migrate else ["init", "-json", "-no-color"]
        for k, v in (backend_config or {}).items():
            args.append(f"-backend-config={k}={v}")
        if migrate:
            args += ["-migrate-state", "-force-copy"]
        if reconfigure:
            args.append("-reconfigure")
        if backend_config:
            self.check_lab()
        r = self.run(*args)
        if backend_config:
            self._log("state in s3://{bucket}/{key} (locking: {use_lockfile})".format(**backend_config))
        return r

    def fmt(self, check: bool = False) -> list[str]:
        """Rewrite the .tf files in the canonical style (``check=True``: only list what would change)."""
        args = ["fmt", "-list=true", "-no-color"] + (["-check", "-write=false"] if check else [])
        r = self.run(*args, ok_codes=(0, 3) if check else (0,))
        files = [ln.strip() for ln in r.output.splitlines() if ln.strip().endswith(".tf")]
        if not check:
            self._log("fmt rewrote: " + ", ".join(files) if files else "fmt: every file is already formatted")
        return files

    def validate(self) -> None:
        """Check the configuration (syntax, types, references) without touching any cloud.

        Raises :class:`TerraformError` with file, line and fix; warnings land in ``self.warnings``."""
        r = self.run("validate", "-json", "-no-color", check=False)
        try:
            data = json.loads(r.output)
        except ValueError:
            data = {}
        diags = data.get("diagnostics", [])
        errs = [d for d in diags if d.get("severity") == "error"]
        if r.exit_code != 0 or errs:
            r.events = [{"type": "diagnostic", "diagnostic": d} for d in diags]
            raise explain(r, self.endpoint)
        warnings = [d.get("summary", "") for d in diags if d.get("severity") == "warning"]
        self.warnings = warnings
        self._log("valid" + (f" ({len(warnings)} warnings: {'; '.join(warnings)})" if warnings else ""))

    def plan(self, var: dict | None = None, detailed_exitcode: bool = False, refresh: bool = True,
             destroy: bool = False, lock_timeout: str | None = None, out: str = "tfplan",
             show: bool = True, details: bool = False) -> Result:
        """Plan, save it to ``out``, and summarise it (``result.plan``). Exit code 2 = changes (detailed_exitcode).

        ``details=True`` also reads the saved plan with ``terraform show -json`` to name the attributes
        that change (a few seconds more: it loads the provider's schema).
        """
        self.check_lab()
        args = ["plan", "-json", "-no-color", f"-out={out}", f"-parallelism={self.parallelism}"] + self._vars(var)
        if detailed_exitcode:
            args.append("-detailed-exitcode")
        if not refresh:
            args.append("-refresh=false")
        if destroy:
            args.append("-destroy")
        if lock_timeout:
            args.append(f"-lock-timeout={lock_timeout}")
        r = self.run(*args, ok_codes=(0, 2) if detailed_exitcode else (0,))
        r.plan = summary_from_events(r.events)
        if details:
            shown = self.run("show", "-json", "-no-color", out)
            try:
                r.plan = parse_plan_json(json.loads(shown.output))
            except ValueError:
                pass
        if show:
            self._log(str(r.plan))
            if detailed_exitcode:
                self._log(f"exit code {r.exit_code}: " + {0: "no changes", 2: "changes pending"}.get(r.exit_code, "error"))
        return r

    def apply(self, var: dict | None = None, plan_file: str | None = None, refresh: bool = True,
              lock_timeout: str | None = None) -> Result:
        """Apply (a saved plan, or a fresh one with -auto-approve), printing progress as it goes."""
        self.check_lab()
        args = ["apply", "-json", "-no-color", f"-parallelism={self.parallelism}"]
        if lock_timeout:
            args.append(f"-lock-timeout={lock_timeout}")
        if plan_file:
            args.append(plan_file)
        else:
            args += ["-auto-approve"] + self._vars(var) + ([] if refresh else ["-refresh=false"])
        return self._apply_like(args, "apply")

    def destroy(self, var: dict | None = None, refresh: bool = True) -> Result:
        self.check_lab()
        args = ["destroy", "-json", "-no-color", "-auto-approve", f"-parallelism={self.parallelism}"] + self._vars(var)
        if not refresh:
            args.append("-refresh=false")
        return self._apply_like(args, "destroy")

    def _apply_like(self, args: list[str], verb: str) -> Result:
        self._log(f"terraform {verb} in {self.workdir.name}" +
                  (f" (workspace {self.current_workspace()})" if self.current_workspace() != "default" else "") + " ...")
        ws = self.extra_env.get("TF_WORKSPACE", "")
        return self.run(*args, show=Progress(ws))

    def output(self, name: str | None = None):
        r = self.run("output", "-json", "-no-color", *( [name] if name else []))
        try:
            data = json.loads(r.output)
        except ValueError:
            return None
        if name:
            return data
        return {k: v.get("value") for k, v in data.items()}

    def state_list(self) -> list[str]:
        r = self.run("state", "list", "-no-color", check=False)
        return [ln.strip() for ln in r.output.splitlines() if ln.strip()] if r.exit_code == 0 else []

    # -- workspaces -------------------------------------------------------
    def current_workspace(self) -> str:
        if "TF_WORKSPACE" in self.extra_env:
            return self.extra_env["TF_WORKSPACE"]
        try:
            return (self.workdir / ".terraform" / "environment").read_text().strip() or "default"
        except OSError:
            return "default"

    def workspace(self, name: str) -> str:
        """Select workspace ``name``, creating it the first time."""
        self.run("workspace", "select", "-or-create", "-no-color", name)
        self._log(f"workspace: {name}")
        return name

    def workspaces(self) -> list[str]:
        r = self.run("workspace", "list", "-no-color")
        return [ln.strip(" *") for ln in r.output.splitlines() if ln.strip(" *")]

    def with_workspace(self, name: str) -> "Terraform":
        """A second handle on the same directory that works in workspace ``name`` (via TF_WORKSPACE)."""
        env = dict(self.extra_env, TF_WORKSPACE=name)
        return Terraform(self.workdir, env=env, parallelism=self.parallelism, quiet=self.quiet, timeout=self.timeout)

    # -- files ------------------------------------------------------------
    def files(self) -> list[str]:
        return sorted(p.name for p in self.workdir.glob("*.tf"))

    def read(self, name: str) -> str:
        return (self.workdir / name).read_text()

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        text = text.lstrip("\n")
        path.write_text(text if text.endswith("\n") else text + "\n")
        return path

    def edit(self, name: str, old: str, new: str) -> Path:
        """Replace ``old`` by ``new`` in one file (exactly once), like editing it in an editor."""
        text = self.read(name)
        if text.count(old) != 1:
            raise ValueError(f"{name}: expected to find {old!r} exactly once, found it {text.count(old)} times")
        return self.write(name, text.replace(old, new))

    def show_file(self, name: str) -> None:
        print(f"# --- {name} ---\n{self.read(name).rstrip()}")

    def runs(self) -> list[dict]:
        """The runs recorded in this directory (also by other kernels), oldest first."""
        try:
            lines = (self.workdir / ".cloudlab-runs.jsonl").read_text().splitlines()
        except OSError:
            return []
        out = []
        for ln in lines:
            try:
                out.append(json.loads(ln))
            except ValueError:
                pass
        return out


def copy_template(src: Path, dest: Path, fresh: bool = True) -> Path:
    """Copy a template directory's .tf files into a working directory (``fresh``: wipe it first)."""
    if fresh and dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(src).iterdir():
        if f.is_dir():
            if f.name not in (".terraform",):
                shutil.copytree(f, dest / f.name, dirs_exist_ok=True)
        elif f.suffix in (".tf", ".tfvars", ".yaml", ".json", ".hcl") and f.name != ".terraform.lock.hcl":
            shutil.copy2(f, dest / f.name)
    return dest


if __name__ == "__main__":  # pragma: no cover - a quick manual check: python -m cloudlab.terraform
    print("mirror:", mirror())
    print("env:", {k: v for k, v in terraform_env().items() if k.startswith(("TF_", "CHECKPOINT"))})
    sys.exit(0)
