"""The course kernel's manners: short messages with the fix instead of traceback walls.

Installed in every kernel the lab starts (an IPython startup file written by `make lab`, see
:func:`startup_file`) and again by ``cloudlab.connect()``, so it also works in a kernel started
some other way. Two cases:

* any boto3 call that cannot reach an emulator (LocalStack or moto stopped, laptop slept):
  one paragraph that says which endpoint did not answer and what to run, instead of ~200 lines
  from ``ConnectionRefusedError`` to ``EndpointConnectionError``. The next cell works again after
  `make lab`, without a kernel restart: boto3 reconnects by itself.
* a ``NameError`` after a kernel restart: the usual error, plus how to get the variables back.

Serves every lesson.
"""

from __future__ import annotations

import os
from pathlib import Path

_INSTALLED: set[int] = set()


def _connection_errors() -> tuple[type, ...]:
    try:
        from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError
    except ImportError:  # pragma: no cover - boto3 is in the kernel
        return ()
    return (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError)


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
        "`make logs` why something stopped), or `docker compose up` on the Docker path. Then re-run this "
        "cell: your variables and your code are still here, no kernel restart needed."
    )


def _handler(shell, etype, evalue, tb, tb_offset=None):
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
    shell.set_custom_exc((*_connection_errors(), NameError), _handler)
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
