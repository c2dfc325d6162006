"""One Lambda execution environment: the AWS Lambda Runtime Interface Emulator (RIE) and the runtime it starts.

An :class:`Environment` is one ``aws-lambda-rie`` process on 127.0.0.1 (its invoke endpoint and its Runtime API
each on a port of their own, never the RIE's default 0.0.0.0:8080) running ``python -m awslambdaric module.fn``
in the function's code folder, as a lesson process (:mod:`cloudlab.procs`, named ``l12-...``). What the RIE
does, measured on this machine with the RIE of aws-sam-cli 1.170.0 and awslambdaric 4.2.2:

* the runtime starts at the FIRST invoke (INIT: interpreter, imports, module-level code), not before: that
  first invoke is the cold start; the next ones reuse the process (warm);
* ``AWS_LAMBDA_FUNCTION_TIMEOUT`` is enforced: the caller gets ``Task timed out after N.00 seconds`` and the
  runtime is killed, so the next invoke starts a new one (a cold start again);
* an exception in the handler comes back as ``{"errorType", "errorMessage", "requestId", "stackTrace"}``
  with HTTP 200 (the real Invoke API adds the header ``X-Amz-Function-Error: Unhandled``; the RIE does not);
* a runtime that dies mid-invoke (SIGKILL, out of memory) gives HTTP 502 ``Runtime.ExitError``; the next
  invoke starts a new runtime;
* ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` is only reported (``Memory Size``, and ``Max Memory Used`` is the same
  number): the RIE neither limits nor measures memory, so :attr:`Invocation.max_rss_mb` is read from /proc;
* one environment serves ONE invocation at a time, like Lambda's: a second invoke while one runs crashed the
  RIE (a nil-pointer panic), so :meth:`Environment.invoke` holds a lock. Concurrency is more environments
  (:mod:`.pool`).

Serves lesson 12 (serverless and managed services).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .. import net, procs
from ..lab import Lab, process, tools

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
_INIT_MS = re.compile(r"INIT REPORT\(durationMs: ([\d.]+)")
_REPORT = re.compile(r"^REPORT RequestId: (\S+)\s+(.*)$", re.M)
_FIELD = re.compile(r"(Init Duration|Duration|Billed Duration|Memory Size): ([\d.]+)")
_START = re.compile(r"^START RequestId: (\S+)", re.M)
_TIMED_OUT = re.compile(r"Task timed out after ([\d.]+) seconds")


class RuntimeMissing(tools.ToolMissing):
    """The emulator or the runtime interface client is not installed; the message says how to get it."""


def rie() -> str:
    """The emulator's executable (installed from the pinned aws-sam-cli wheel on first use)."""
    return tools.require("aws-lambda-rie", "12")


@dataclass
class FunctionSpec:
    """What a function IS (its configuration): code folder, handler, timeout, memory, environment variables.

    Lambda's defaults: 3 s timeout, 128 MB memory."""

    name: str
    code_dir: Path
    handler: str
    timeout: float = 3.0
    memory_mb: int = 128
    env: dict = field(default_factory=dict)
    python: str = sys.executable  # the runtime: this kernel's Python, which has awslambdaric and Powertools

    def environment(self, runtime_api: str = "") -> dict[str, str]:
        """The variables the environment gets: the lab's AWS endpoints, Lambda's own, the function's."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **Lab.from_env().aws_env(),
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(int(self.memory_mb)),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": f"{self.timeout:g}",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "PYTHONPATH": str(self.code_dir),
        }
        env.update({k: str(v) for k, v in self.env.items()})
        return env


@dataclass
class Invocation:
    """What one invoke returned and what the environment's log says about it."""

    status: int  # the HTTP status of the RIE's answer (200 even for a handler's exception)
    payload: object  # the decoded JSON the handler returned (or the error object); text when not JSON
    environment: str = ""
    request_id: str = ""
    cold: bool = False  # this invoke ran INIT (a new runtime process)
    init_ms: float | None = None  # INIT: interpreter + imports + module code, from the RIE's own report
    duration_ms: float | None = None  # the RIE's REPORT Duration (on a cold invoke it includes INIT)
    billed_ms: float | None = None
    memory_mb: int | None = None  # the configured size (the RIE measures nothing)
    client_ms: float = 0.0  # what the caller waited, measured here
    max_rss_mb: float | None = None  # the runtime's peak resident memory, from /proc (None once it is gone)
    logs: list[str] = field(default_factory=list)  # the function's own output during this invoke
    raw: str = ""

    @property
    def error_type(self) -> str | None:
        p = self.payload
        if isinstance(p, dict) and "errorType" in p and "errorMessage" in p:
            return str(p["errorType"])
        if self.timed_out:
            return "Sandbox.Timedout"
        return None

    @property
    def error_message(self) -> str:
        p = self.payload
        if isinstance(p, dict) and "errorMessage" in p:
            return str(p["errorMessage"])
        return self.raw if self.timed_out else ""

    @property
    def timed_out(self) -> bool:
        return isinstance(self.payload, str) and bool(_TIMED_OUT.search(self.payload))

    @property
    def function_error(self) -> str | None:
        """'Unhandled' when the invoke failed (exception, timeout, runtime exit), like the Invoke API's header."""
        return "Unhandled" if (self.error_type or self.status >= 500) else None

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def summary(self) -> str:
        what = "cold" if self.cold else "warm"
        init = f", init {self.init_ms:.0f} ms" if self.init_ms is not None else ""
        err = f", {self.error_type}" if self.error_type else ""
        billed = f", billed {self.billed_ms:.0f} ms" if self.billed_ms is not None else ""
        return f"{self.environment}: {what}{init}, caller waited {self.client_ms:.0f} ms{billed}{err}"


def parse_report(text: str, request_id: str = "") -> dict:
    """The fields of the REPORT line of ``request_id`` (or the last one): durations in ms, memory in MB."""
    rows = [(rid, rest) for rid, rest in _REPORT.findall(text) if not request_id or rid == request_id]
    if not rows:
        return {}
    return {k: float(v) for k, v in _FIELD.findall(rows[-1][1])}


def _decode(raw: bytes) -> object:
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Environment:
    """One execution environment of a function: an RIE process on 127.0.0.1, one invocation at a time."""

    def __init__(self, spec: FunctionSpec, index: int = 1):
        self.spec = spec
        self.index = index
        self.name = f"{spec.name}.{index}"
        self.port = 0
        self.api_port = 0
        self.proc: procs.Proc | None = None
        self.lock = threading.Lock()
        self.invocations = 0
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{net.LOOPBACK}:{self.port}{INVOKE_PATH}"

    def command(self) -> list[str]:
        return [
            rie(),
            "--runtime-interface-emulator-address",
            f"{net.LOOPBACK}:{self.port}",
            "--runtime-api-address",
            f"{net.LOOPBACK}:{self.api_port}",
            self.spec.python,
            "-m",
            "awslambdaric",
            self.spec.handler,
        ]

    def shown_command(self) -> str:
        """The command as a learner would type it (the emulator by its short name)."""
        cmd = self.command()
        cmd[0] = "aws-lambda-rie"
        cmd[cmd.index(self.spec.python)] = "python"
        return " ".join(cmd)

    def start(self, timeout: float = 10.0) -> Environment:
        """Start the emulator (the runtime itself starts at the first invoke). Idempotent."""
        if self.alive():
            return self
        if not Path(self.spec.code_dir, *self.spec.handler.split(".")[:-1]).with_suffix(".py").exists():
            raise FileNotFoundError(
                f"the handler {self.spec.handler!r} names a module that is not in {self.spec.code_dir}"
            )
        self.port, self.api_port = net.free_port(), net.free_port()
        while self.api_port == self.port:
            self.api_port = net.free_port()
        self.proc = procs.start(
            self.name, self.command(), env=self.spec.environment(), python=False, cwd=str(self.spec.code_dir)
        )
        deadline = time.monotonic() + timeout
        while not net.port_in_use(self.port):
            if not self.proc.alive() or time.monotonic() > deadline:
                out = self.proc.output()[-800:]
                self.stop()
                raise RuntimeError(f"the Lambda emulator {self.name} did not listen on {self.port}:\n{out}")
            time.sleep(0.01)
        self.started_at = time.monotonic()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def runtime_pid(self) -> int | None:
        """The PID of the runtime (``python -m awslambdaric``), or None between a reset and the next invoke."""
        if self.proc is None:
            return None
        kids = process.descendants(self.proc.pid) - {self.proc.pid}
        return min(kids) if kids else None

    def listening(self) -> list[tuple[str, int, int]]:
        """The TCP sockets this environment listens on (address, port, pid), read from /proc."""
        if self.proc is None:
            return []
        return process.listening(process.descendants(self.proc.pid))

    def rss_mb(self) -> float | None:
        """Peak resident memory of the runtime process (VmHWM), in MB."""
        pid = self.runtime_pid()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError, TypeError):
            pass
        return None

    def kill_runtime(self, sig: int = signal.SIGKILL) -> int | None:
        """Kill the runtime process (a crash: out of memory, a segfault); the emulator stays. Returns its PID."""
        pid = self.runtime_pid()
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pid

    def _log_size(self) -> int:
        try:
            return self.proc.log.stat().st_size if self.proc else 0
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.proc.log, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def invoke(self, event=None, timeout: float | None = None) -> Invocation:
        """POST ``event`` to the invoke endpoint and wait for the answer (one invocation at a time)."""
        with self.lock:
            if not self.alive():
                self.start()
            offset = self._log_size()
            body = json.dumps(event if event is not None else {}).encode()
            wait = timeout if timeout is not None else self.spec.timeout + 15.0
            t0 = time.monotonic()
            try:
                resp = net.request("POST", self.url, body=body, timeout=wait)
            except OSError as e:
                resp = net.Response(599, json.dumps({"errorType": "Lab.NoAnswer", "errorMessage": str(e)}).encode())
            client_ms = (time.monotonic() - t0) * 1000
            self.invocations += 1
            rss = self.rss_mb()
            text = self._log_since(offset)
            rid = (_START.findall(text) or [""])[-1]
            deadline = time.monotonic() + 0.5
            while rid and f"REPORT RequestId: {rid}" not in text and time.monotonic() < deadline:
                time.sleep(0.01)
                text = self._log_since(offset)
            return self._result(resp, text, rid, client_ms, rss)

    def _result(self, resp: net.Response, text: str, rid: str, client_ms: float, rss) -> Invocation:
        report = parse_report(text, rid)
        init = _INIT_MS.findall(text)
        logs = [
            ln
            for ln in text.splitlines()
            if ln.strip() and "(rapid)" not in ln and not ln.startswith(("START RequestId", "END RequestId", "REPORT"))
        ]
        return Invocation(
            status=resp.status,
            payload=_decode(resp.body),
            environment=self.name,
            request_id=rid or str(uuid.uuid4()),
            cold=bool(init),
            init_ms=float(init[-1]) if init else None,
            duration_ms=report.get("Duration"),
            billed_ms=report.get("Billed Duration"),
            memory_mb=int(report["Memory Size"]) if "Memory Size" in report else self.spec.memory_mb,
            client_ms=round(client_ms, 1),
            max_rss_mb=rss,
            logs=logs,
            raw=resp.body.decode(errors="replace")[:2000],
        )

    def log_text(self) -> str:
        return self.proc.output() if self.proc else ""

    def stop(self) -> None:
        procs.stop(self.name, grace=2.0)
        self.proc = None
