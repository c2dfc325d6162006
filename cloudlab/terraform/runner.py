"""The runner: ``terraform init/plan/apply/destroy ...`` in a working directory, shown and parsed."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .. import net
from ..lab import ROOT, process
from .env import LAB_DOWN_HINT, LabDown, TerraformError, terraform_env
from .results import Progress, Result, explain, parse_plan_json, summary_from_events, warning_text


class Terraform:
    """One Terraform working directory, driven from Python.

    >>> tf = Terraform(path)                 # doctest: +SKIP
    >>> tf.init(); tf.plan(); tf.apply()     # doctest: +SKIP
    """

    def __init__(
        self,
        workdir,
        env: dict | None = None,
        parallelism: int = 10,
        quiet: bool = False,
        timeout: float = 300.0,
        record: bool = True,
    ):
        """``record=False``: do not add this handle's runs to the directory's run log (a check's own plan
        must never count as the learner's)."""
        self.workdir = Path(workdir)
        self.record = record
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
        if url and not net.answers(url.rstrip("/") + "/"):
            raise LabDown(
                f"the emulator at {url} does not answer, so Terraform cannot plan or apply: "
                f"the lab is down. {LAB_DOWN_HINT}"
            )

    def _log(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def command_line(self, args) -> str:
        """The command as you would type it from the repository root, in a shell with the lab's variables
        (``python3 -m cloudlab.lab env`` prints them): ``terraform -chdir=<dir> <args>``."""
        try:
            where = str(self.workdir.resolve().relative_to(ROOT.resolve()))
        except ValueError:
            where = str(self.workdir)
        ws = self.extra_env.get("TF_WORKSPACE")
        return (f"TF_WORKSPACE={shlex.quote(ws)} " if ws else "") + shlex.join(["terraform", f"-chdir={where}", *args])

    def run(
        self,
        *args: str,
        check: bool = True,
        ok_codes=(0,),
        show: Callable | None = None,
        env: dict | None = None,
        echo: bool = True,
    ) -> Result:
        """Run ``terraform <args>`` in the working directory; parse ``-json`` lines; raise on failure.

        Prints the real command first (``echo``), so it can be repeated outside Jupyter."""
        exe = shutil.which("terraform")
        if exe is None:
            raise TerraformError(
                "the `terraform` command is not installed (or not on PATH). Install Terraform "
                "1.11 or newer: https://developer.hashicorp.com/terraform/install, then restart the kernel."
            )
        full_env = self.env()
        full_env.update(env or {})
        if echo:
            self._log("$ " + self.command_line(args))
        cmd = [exe, *args]
        t0 = time.monotonic()
        events, raw = [], []
        streaming = "-json" in args and args[0] in ("init", "plan", "apply", "destroy", "refresh")
        proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def watchdog():  # a run that prints nothing can still hang: stop it from outside
            timed_out.set()
            process.stop_pid(proc.pid, grace=15.0, sig=signal.SIGINT, popen=proc)

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
            # SIGINT: Terraform finishes the current step and releases the state lock; SIGKILL after 15 s
            process.stop_pid(proc.pid, grace=15.0, sig=signal.SIGINT, popen=proc)
            raise
        finally:
            timer.cancel()
        if timed_out.is_set():
            raise TerraformError(
                f"`terraform {' '.join(args[:1])}` took longer than {self.timeout:.0f} s and was "
                "stopped. Is the lab overloaded? `make status` shows what runs."
            )
        result = Result(
            list(args),
            code,
            time.monotonic() - t0,
            events,
            "".join(ev.get("@message", "") + "\n" for ev in events) if events else "".join(raw),
        )
        self.history.append(result)
        if self.record:
            self._record(result)
        if check and code not in ok_codes:
            raise explain(result, self.endpoint)
        return result

    def _record(self, result: Result) -> None:
        """Append the run to ``.cloudlab-runs.jsonl`` in the working directory (checks read it)."""
        row = {
            "args": result.args,
            "exit_code": result.exit_code,
            "seconds": round(result.seconds, 2),
            "at": time.time(),
            "workspace": self.current_workspace(),
        }
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
        warnings = list(dict.fromkeys(warning_text(d) for d in diags if d.get("severity") == "warning"))
        self.warnings = warnings
        self._log("valid" + "".join(f"\n  {w}" for w in warnings))

    def plan(
        self,
        var: dict | None = None,
        detailed_exitcode: bool = False,
        refresh: bool = True,
        destroy: bool = False,
        lock_timeout: str | None = None,
        out: str | None = "tfplan",
        show: bool = True,
        details: bool = False,
        raw: bool = False,
        lock: bool = True,
    ) -> Result:
        """Plan, save it to ``out``, and summarise it (``result.plan``). Exit code 2 = changes (detailed_exitcode).

        ``details=True`` also reads the saved plan with ``terraform show -json`` to name the attributes
        that change (a few seconds more: it loads the provider's schema). ``raw=True`` prints Terraform's
        own words instead of the summary (what changed outside Terraform, attribute by attribute);
        ``result.plan`` is then None. ``out=None`` saves no plan file; ``lock=False`` reads the state
        without taking the lock (for a look that must not get in anyone's way).
        """
        self.check_lab()
        args = ["plan"] + ([] if raw else ["-json"]) + ["-no-color"]
        args += ([f"-out={out}"] if out else []) + [f"-parallelism={self.parallelism}"] + self._vars(var)
        if detailed_exitcode:
            args.append("-detailed-exitcode")
        if not refresh:
            args.append("-refresh=false")
        if destroy:
            args.append("-destroy")
        if not lock:
            args.append("-lock=false")
        if lock_timeout:
            args.append(f"-lock-timeout={lock_timeout}")
        r = self.run(*args, ok_codes=(0, 2) if detailed_exitcode else (0,), echo=show)
        if raw:
            if show:
                lines = r.output.strip().splitlines()
                shown = [ln for ln in lines if not ln.rstrip().endswith("]") or ": Refreshing state..." not in ln]
                gone = len(lines) - len(shown)
                note = [f"({gone} lines 'Refreshing state...' left out: Terraform read each resource)"] if gone else []
                self._log("\n".join(note + shown).strip())
            return r
        r.plan = summary_from_events(r.events)
        if details and out:
            shown = self.run("show", "-json", "-no-color", out, echo=show)
            try:
                r.plan = parse_plan_json(json.loads(shown.output))
            except ValueError:
                pass
        if show:
            self._log(str(r.plan))
            if detailed_exitcode:
                self._log(
                    f"exit code {r.exit_code}: " + {0: "no changes", 2: "changes pending"}.get(r.exit_code, "error")
                )
        return r

    def apply(
        self,
        var: dict | None = None,
        plan_file: str | None = None,
        refresh: bool = True,
        lock_timeout: str | None = None,
    ) -> Result:
        """Apply (a saved plan, or a fresh one with -auto-approve), printing progress as it goes."""
        self.check_lab()
        args = ["apply", "-json", "-no-color", f"-parallelism={self.parallelism}"]
        if lock_timeout:
            args.append(f"-lock-timeout={lock_timeout}")
        if plan_file:
            args.append(plan_file)
        else:
            args += ["-auto-approve"] + self._vars(var) + ([] if refresh else ["-refresh=false"])
        return self._apply_like(args)

    def destroy(self, var: dict | None = None, refresh: bool = True) -> Result:
        self.check_lab()
        args = ["destroy", "-json", "-no-color", "-auto-approve", f"-parallelism={self.parallelism}"] + self._vars(var)
        if not refresh:
            args.append("-refresh=false")
        return self._apply_like(args)

    def _apply_like(self, args: list[str]) -> Result:
        ws = self.extra_env.get("TF_WORKSPACE", "")
        return self.run(*args, show=Progress(ws))

    def output(self, name: str | None = None):
        r = self.run("output", "-json", "-no-color", *([name] if name else []))
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

    def with_workspace(self, name: str) -> Terraform:
        """A second handle on the same directory that works in workspace ``name`` (via TF_WORKSPACE)."""
        env = dict(self.extra_env, TF_WORKSPACE=name)
        return Terraform(
            self.workdir,
            env=env,
            parallelism=self.parallelism,
            quiet=self.quiet,
            timeout=self.timeout,
            record=self.record,
        )

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


def copy_template(src: Path, dest: Path, fresh: bool = True, overwrite: bool = True) -> Path:
    """Copy a template directory's .tf files into a working directory (``fresh``: wipe it first;
    ``overwrite=False``: keep the files already there, copy only the missing ones)."""
    if fresh and dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(src).iterdir():
        target = dest / f.name
        if f.is_dir():
            if f.name not in (".terraform",) and (overwrite or not target.exists()):
                shutil.copytree(f, target, dirs_exist_ok=True)
        elif f.suffix in (".tf", ".tfvars", ".yaml", ".json", ".hcl") and f.name != ".terraform.lock.hcl":
            if overwrite or not target.exists():
                shutil.copy2(f, target)
    return dest
