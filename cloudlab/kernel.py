"""The course kernel's manners: short messages with the fix instead of traceback walls.

Installed in every kernel the lab starts (an IPython startup file written by `make lab`, see
:func:`startup_file`) and again by ``cloudlab.connect()``, so it also works in a kernel started
some other way. Two cases:

* any boto3 call that cannot reach an emulator (LocalStack or moto stopped, laptop slept):
  one paragraph that says which endpoint did not answer and what to run, instead of ~200 lines
  from ``ConnectionRefusedError`` to ``EndpointConnectionError``. The next cell works again after
  `make lab`, without a kernel restart: boto3 reconnects by itself.
* a ``NameError`` after a kernel restart: the usual error, plus how to get the variables back.
* an AWS error that says a resource does not exist (``ResourceNotFoundException``, ``NoSuchBucket``,
  ``QueueDoesNotExist`` ...) when the emulator that answered was started AFTER this notebook's setup cell ran
  (`make stop` + `make lab`, `make reset`): the emulators keep no state across a restart, so the resource is
  gone, and the message says so and what brings it back. Any other such error is the learner's and is left
  alone. The lab records each emulator's start (:func:`cloudlab.lab.emulators.started_at`); the setup cell's
  ``cloudlab.connect()`` records when the notebook set up (:func:`mark_setup`).
* a refused connection to a lesson process (haproxy, a fleet ...) after `make stop` stopped them (the lab
  records when, :func:`cloudlab.lab.emulators.stopped_at`): the same kind of message.

Serves every lesson.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

_INSTALLED: set[int] = set()
_SETUP_AT: list[float] = []  # when this kernel last ran the setup cell (cloudlab.connect())

# Error codes that mean "no such resource" across the services the course uses (S3, SQS, DynamoDB, Logs, KMS,
# Secrets Manager, SNS, IAM, SSM, ECS, ELB ...); plus any code ending in NotFound / NotFoundException.
GONE_CODES = {
    "NoSuchBucket", "NoSuchKey", "NoSuchEntity", "NoSuchUpload", "NoSuchLifecycleConfiguration",
    "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NotFound", "ParameterNotFound",
    "ResourceNotFound", "ResourceNotFoundException", "NotFoundException",
}  # fmt: skip


def mark_setup(at: float | None = None) -> None:
    """Record that this notebook's setup cell ran now (``cloudlab.connect()`` calls it)."""
    _SETUP_AT[:] = [time.time() if at is None else at]


def _gone(exc: BaseException) -> str:
    """The AWS error code when ``exc`` says a resource does not exist, else ''."""
    err = getattr(exc, "response", None)
    if not isinstance(err, dict):
        return ""
    code = str(err.get("Error", {}).get("Code", ""))
    message = str(err.get("Error", {}).get("Message", ""))
    if code in GONE_CODES or code.endswith(("NotFound", "NotFoundException", "NotFoundFault")):
        return code
    if code == "ValidationError" and "does not exist" in message:  # CloudFormation: "Stack with id X does not exist"
        return code
    return ""


def _client(tb):
    """The botocore client whose call raised (found in the traceback's frames), or None."""
    try:
        from botocore.client import BaseClient
    except ImportError:  # pragma: no cover
        return None
    for frame, _ in traceback.walk_tb(tb):
        obj = frame.f_locals.get("self")
        if isinstance(obj, BaseClient):
            return obj
    return None


def restart_message(exc: BaseException, tb=None) -> str | None:
    """The plain-words message when ``exc`` is a "no such resource" error from an emulator that restarted after
    this notebook's setup cell ran; None otherwise (the learner's own error, shown as usual)."""
    code = _gone(exc)
    if not code or not _SETUP_AT:
        return None
    from .lab import EMULATOR_NAMES, Lab, emulators

    lab = Lab.from_env()
    client = _client(tb if tb is not None else exc.__traceback__)
    url = getattr(getattr(client, "meta", None), "endpoint_url", "") or ""
    ports = {f":{lab.localstack_port}": "localstack", f":{lab.moto_port}": "moto"}
    names = [n for suffix, n in ports.items() if url.rstrip("/").endswith(suffix)] or list(EMULATOR_NAMES)
    started = [(emulators.started_at(lab, n) or 0.0, n) for n in names]
    when, name = max(started)
    if when <= _SETUP_AT[0]:
        return None
    op = getattr(exc, "operation_name", "") or "the call"
    service = getattr(getattr(client, "meta", None), "service_model", None)
    what = f"{op} on {service.service_name}" if service else op
    return (
        f"{code}: {what} found no such resource: this resource is gone because the local cloud restarted "
        "(emulators keep no state across a restart): re-run the notebook from its setup cell (Run ▸ Run All Above "
        f"Selected Cell). {EMULATOR_NAMES[name]} started at {time.strftime('%H:%M:%S', time.localtime(when))}, after "
        f"this notebook's setup cell ran at {time.strftime('%H:%M:%S', time.localtime(_SETUP_AT[0]))}. Your code, "
        "variables, workspace files and progress are kept."
    )


def _connection_errors() -> tuple[type, ...]:
    try:
        from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError
    except ImportError:  # pragma: no cover - boto3 is in the kernel
        return ()
    return (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError)


def stopped_message(exc: BaseException) -> str | None:
    """The plain-words message when nothing answers on a port because `make stop` stopped the lesson's processes
    after this notebook's setup cell ran (`make lab` does not restart them); None otherwise."""
    if not isinstance(exc, ConnectionRefusedError) or not _SETUP_AT:
        return None
    from .lab import Lab, emulators

    when = emulators.stopped_at(Lab.from_env())
    if when is None or when <= _SETUP_AT[0]:
        return None
    return (
        f"nothing answers: `make stop` stopped this lesson's processes (haproxy, PostgreSQL, a fleet ...) at "
        f"{time.strftime('%H:%M:%S', time.localtime(when))}, after this notebook's setup cell ran at "
        f"{time.strftime('%H:%M:%S', time.localtime(_SETUP_AT[0]))}, and `make lab` does not restart them: re-run "
        "the notebook from its setup cell (Run ▸ Run All Above Selected Cell). Your code, variables, workspace "
        "files and progress are kept."
    )


def _client_errors() -> tuple[type, ...]:
    try:
        from botocore.exceptions import ClientError
    except ImportError:  # pragma: no cover
        return ()
    return (ClientError,)


def emulator_message(exc: BaseException) -> str:
    """The plain-words message for an AWS call the local cloud did not answer."""
    from urllib.parse import urlparse

    from .lab import EMULATOR_NAMES, Lab

    url = getattr(exc, "kwargs", {}).get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL", "")
    port = urlparse(url).port if url else None
    lab = Lab.from_env()
    who = {lab.localstack_port: EMULATOR_NAMES["localstack"], lab.moto_port: EMULATOR_NAMES["moto"]}.get(port, "")
    where = f"{who} at {url}" if who else (url or "the emulator")
    return (
        f"the local cloud is not answering: {where} did not accept the connection.\n"
        "Fix: run `make lab` in a terminal (it starts what is missing; `make status` shows what runs, "
        "`make logs` why something stopped), or `docker compose up` on the Docker path. No kernel restart "
        "needed: your code, variables, workspace files and progress are kept. If the local cloud had stopped, "
        "it starts empty (emulators keep no state across a restart, lesson processes are not restarted): "
        "re-run this notebook from its setup cell."
    )


def _handler(shell, etype, evalue, tb, tb_offset=None):
    gone = (restart_message(evalue, tb) if _gone(evalue) else None) or stopped_message(evalue)
    if gone:
        stb = [f"\x1b[31m{etype.__name__}\x1b[0m: {gone}"]
        shell._showtraceback(etype, evalue, stb)
        return stb
    if isinstance(evalue, _connection_errors()):
        # An error output of our own: the cell still fails (so CI notices), in a few lines, not ~200.
        stb = [f"\x1b[31m{etype.__name__}\x1b[0m: {emulator_message(evalue)}"]
        shell._showtraceback(etype, evalue, stb)
        return stb
    if isinstance(evalue, NameError):
        shell.showtraceback((etype, evalue, tb), tb_offset=tb_offset)
        name = getattr(evalue, "name", None) or str(evalue).split("'")[1:2] or ["?"]
        name = name if isinstance(name, str) else name[0]
        print(
            f"\n\x1b[33mHint:\x1b[0m `{name}` is not defined in this kernel. If the kernel restarted (or you opened "
            "the notebook fresh), everything from earlier cells is gone: run the cells above first "
            "(Run ▸ Run All Above Selected Cell), starting with the setup cell at the top."
        )
        return None
    shell.showtraceback((etype, evalue, tb), tb_offset=tb_offset)
    return None


def install(shell=None) -> bool:
    """Install the handlers in the running IPython kernel (idempotent). False outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    if id(shell) in _INSTALLED:
        return True
    shell.set_custom_exc((*_connection_errors(), *_client_errors(), ConnectionRefusedError, NameError), _handler)
    _INSTALLED.add(id(shell))
    return True


STARTUP = """# Written by `make lab` (cloudlab.kernel.startup_file): short messages with the fix in course kernels.
try:
    import cloudlab.kernel as _cloudlab_kernel
    _cloudlab_kernel.install()
    del _cloudlab_kernel
except Exception:  # never stop a kernel from starting
    pass
"""


def startup_file(ipython_dir: Path) -> Path:
    """Write the IPython startup script that installs the handlers in every new kernel."""
    path = Path(ipython_dir) / "profile_default" / "startup" / "00-cloudlab.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != STARTUP:
        path.write_text(STARTUP)
    return path
