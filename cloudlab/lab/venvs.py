"""The course's virtual environments, created with uv (pinned), or with pip where uv cannot be had.

Each environment installs its requirement files *constrained by a full lock file* in ``pins/``,
so what gets installed is exactly what the course was tested with (``tests/test_venvs.py``
compares). They are separate because their dependencies clash: the kernel (boto3 of today),
LocalStack (Python 3.13 and its own boto3), moto, and checkov (an old boto3).

Core environments (kernel, LocalStack, moto) are made by ``make lab``; the others when a lesson
first needs them (:func:`ensure_venv` via :mod:`cloudlab.lab.tools`), or all at once by
``make setup ALL=1`` (what CI does). An environment whose pins have not changed is never touched.
Serves every lesson.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import ROOT, Lab, LabError, say

PINS = ROOT / "pins"
UV_VERSION = "0.13.9"  # one uv for everyone; bump it together with a re-test of every environment
INSTALLER_ENV = "CLOUDLAB_INSTALLER"  # "pip" forces the fallback (to compare, or where uv misbehaves)


@dataclass(frozen=True)
class VenvSpec:
    """One environment: acceptable Pythons, what to install, the lock it must match, and when."""

    name: str
    pythons: tuple[str, ...]
    requirements: tuple[Path, ...]
    constraints: tuple[Path, ...]
    lock: Path
    purpose: str
    core: bool = True  # made by `make lab`; False: on first use (or `make setup ALL=1`)
    editable: bool = False  # the course package itself, editable (the kernel)

    @property
    def files(self) -> tuple[Path, ...]:
        return self.requirements + self.constraints


VENVS = {
    "kernel": VenvSpec(
        "kernel",
        ("3.11", "3.12", "3.13"),
        (ROOT / "requirements.txt",),
        (PINS / "kernel-lock.txt",),
        PINS / "kernel-lock.txt",
        "the notebooks' kernel",
        editable=True,
    ),
    "localstack": VenvSpec(
        "localstack",
        ("3.13",),
        (PINS / "localstack-lock.txt",),
        (PINS / "localstack-constraints.txt",),
        PINS / "localstack-lock.txt",
        "LocalStack 4.14",
    ),
    "moto": VenvSpec(
        "moto", ("3.11", "3.12", "3.13"), (PINS / "moto-lock.txt",), (), PINS / "moto-lock.txt", "moto server"
    ),
    "checkov": VenvSpec(
        "checkov",
        ("3.11", "3.12"),
        (PINS / "checkov-lock.txt",),
        (),
        PINS / "checkov-lock.txt",
        "checkov, the policy-as-code scanner (lessons 02, 05, 06)",
        core=False,
    ),
    "chaostoolkit": VenvSpec(
        "chaostoolkit",
        ("3.11", "3.12", "3.13"),
        (PINS / "chaostoolkit-lock.txt",),
        (),
        PINS / "chaostoolkit-lock.txt",
        "Chaos Toolkit 1.19, chaos experiments (lesson 09)",
        core=False,
    ),
    "secrets": VenvSpec(
        "secrets",
        ("3.11", "3.12"),
        (PINS / "secrets-lock.txt",),
        (),
        PINS / "secrets-lock.txt",
        "secret scanners and IAM linter: detect-secrets, trufflehog, pre-commit, parliament (lesson 07)",
        core=False,
    ),
    "functions": VenvSpec(
        "functions",
        ("3.11", "3.12", "3.13"),
        (PINS / "functions-lock.txt",),
        (),
        PINS / "functions-lock.txt",
        "Google's functions-framework and the Cloud Storage client: the Cloud Function of lesson 11",
        core=False,
    ),
    # The workshop hub (cloudlab.hub, `make hub`): JupyterHub and its authenticator run as root beside the
    # learners' servers, never in the kernel the learners run code in.
    "hub": VenvSpec(
        "hub",
        ("3.11", "3.12", "3.13"),
        (PINS / "hub-lock.txt",),
        (),
        PINS / "hub-lock.txt",
        "JupyterHub 5.5, NativeAuthenticator and the idle culler (the workshop hub)",
        core=False,
    ),
}
CORE = tuple(n for n, s in VENVS.items() if s.core)


# ------------------------------------------------------------------ Pythons
def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys,venv;print('%d.%d'%sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python(versions: tuple[str, ...]) -> str | None:
    """The first interpreter of one of ``versions``: PATH, then pyenv, then uv's own Pythons."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    uv_root = os.environ.get("UV_PYTHON_INSTALL_DIR", os.path.expanduser("~/.local/share/uv/python"))
    for v in versions:
        cands = [shutil.which(f"python{v}")]
        cands += sorted(glob.glob(f"{pyenv_root}/versions/{v}*/bin/python{v}"), reverse=True)
        cands += sorted(glob.glob(f"{uv_root}/cpython-{v}*/bin/python{v}"), reverse=True)
        for c in cands:
            if c and os.access(c, os.X_OK) and _version_of(c) == v:
                return c
    return None


def uv_python_install(version: str, uv: Path | None, timeout: float = 120.0) -> str | None:
    """Ask uv to download a Python (needs python-build-standalone's downloads: not every network has them)."""
    if uv is None:
        return None
    say(f"no Python {version} found on PATH or in pyenv: asking uv to install one (`uv python install {version}`) ...")
    try:
        out = subprocess.run([str(uv), "python", "install", version], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        say(f"uv could not install Python {version}: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
        return None
    found = subprocess.run([str(uv), "python", "find", version], capture_output=True, text=True)
    path = found.stdout.strip()
    return path if found.returncode == 0 and path and _version_of(path) == version else None


def missing_python_error(spec: VenvSpec) -> LabError:
    if spec.name == "localstack":
        return LabError(
            "LocalStack 4.14 needs Python 3.13, and none was found (looked on PATH, in pyenv and uv; "
            "`uv python install 3.13` did not work here).\n"
            "  Get one:  pyenv install 3.13   or   uv python install 3.13   or   apt install python3.13 (Debian 13)\n"
            "  Or use Docker instead:  docker compose up   (see README, 'The Docker path')"
        )
    return LabError(
        f"the {spec.name} environment needs Python {' or '.join(spec.pythons)}; none was found on PATH, "
        f"in pyenv or uv. Install one (`pyenv install {spec.pythons[0]}` or `uv python install "
        f"{spec.pythons[0]}`) and run the command again."
    )


# ------------------------------------------------------------------ the installer
_uv_lock = threading.Lock()


def installer_dir(lab: Lab) -> Path:
    return lab.venvs / ".installer"


def get_uv(lab: Lab) -> Path | None:
    """The pinned uv binary in the lab's own folder, fetched from PyPI once (None: use pip)."""
    if os.environ.get(INSTALLER_ENV, "uv") == "pip":
        return None
    target = installer_dir(lab) / f"uv-{UV_VERSION}" / "uv"
    with _uv_lock:
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            try:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--disable-pip-version-check",
                        "--only-binary=:all:",
                        f"uv=={UV_VERSION}",
                        "-d",
                        tmp,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=180,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                say(f"could not fetch uv {UV_VERSION} ({e}); using pip instead (slower)")
                return None
            wheels = glob.glob(f"{tmp}/uv-{UV_VERSION}-*.whl")
            if out.returncode != 0 or not wheels:
                why = (out.stderr.strip().splitlines() or ["no wheel for this platform"])[-1]
                say(f"could not fetch uv {UV_VERSION} from PyPI ({why}); using pip instead (slower)")
                return None
            with zipfile.ZipFile(wheels[0]) as z:
                member = next(n for n in z.namelist() if n.endswith("/scripts/uv"))
                (Path(tmp) / "uv").write_bytes(z.read(member))
            os.chmod(Path(tmp) / "uv", 0o755)
            os.replace(Path(tmp) / "uv", target)
    return target


# ------------------------------------------------------------------ environments
def venv_python(lab: Lab, name: str) -> Path:
    if name == "kernel":
        return Path(os.environ.get("CLOUDLAB_KERNEL_VENV") or ROOT / ".venv") / "bin" / "python"
    return lab.venvs / name / "bin" / "python"


def stamp(spec: VenvSpec) -> str:
    h = hashlib.sha256()
    for f in spec.files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _stampfile(py: Path) -> Path:
    return py.parent.parent / ".cloudlab-stamp"


def is_current(lab: Lab, name: str) -> bool:
    py = venv_python(lab, name)
    sf = _stampfile(py)
    return py.exists() and sf.exists() and sf.read_text().split()[-1:] == [stamp(VENVS[name])]


def lock_count(spec: VenvSpec) -> int:
    return sum(1 for ln in spec.lock.read_text().splitlines() if ln.strip() and not ln.startswith(("#", "-")))


def installed_count(py: Path) -> int:
    return len(glob.glob(str(py.parent.parent / "lib" / "python3.*" / "site-packages" / "*.dist-info")))


def _norm(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def unpinned(spec: VenvSpec, py: Path) -> list[str]:
    """Packages installed in the environment that its lock no longer names (a pin removed since it was made);
    an install only adds, so these are removed after it. The installer's own and the course package stay."""
    pinned = {_norm(ln.split("==")[0].split("[")[0].strip()) for ln in spec.lock.read_text().splitlines() if "==" in ln}
    keep = pinned | {"pip", "setuptools", "wheel", "cloudlab"}
    found = glob.glob(str(py.parent.parent / "lib" / "python3.*" / "site-packages" / "*.dist-info"))
    names = {Path(d).name[: -len(".dist-info")].rsplit("-", 1)[0] for d in found}
    return sorted(n for n in names if _norm(n) not in keep)


def _install_cmd(spec: VenvSpec, py: Path, uv: Path | None) -> list[str]:
    if uv is not None:
        cmd = [str(uv), "pip", "install", "--python", str(py)]
    else:
        cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    for r in spec.requirements:
        cmd += ["-r", str(r)]
    for c in spec.constraints:
        cmd += ["-c", str(c)]
    if spec.editable:
        cmd += ["-e", str(ROOT)]
    return cmd


def ensure_venv(lab: Lab, name: str, why: str = "") -> Path:
    """The environment's Python, installing (or updating) the environment first if its pins changed."""
    spec = VENVS[name]
    py = venv_python(lab, name)
    if is_current(lab, name):
        return py
    uv = get_uv(lab)
    python = find_python(spec.pythons)
    for v in spec.pythons if python is None else ():
        python = uv_python_install(v, uv)
        if python:
            break
    if python is None:
        raise missing_python_error(spec)
    vdir = py.parent.parent
    how = f"uv {UV_VERSION}" if uv else "pip (uv unavailable)"
    say(
        f"installing {name}{' ' + why if why else ''}: {spec.purpose}, {lock_count(spec)} pinned packages, "
        f"Python {_version_of(python)}, with {how} ..."
    )
    t0 = time.monotonic()
    if vdir.exists() and not py.exists():
        shutil.rmtree(vdir)
    if not py.exists():
        if uv is not None:
            cmd = [str(uv), "venv", "--quiet", "--python", python, str(vdir)] + (["--seed"] if spec.editable else [])
        else:
            cmd = [python, "-m", "venv", str(vdir)]
        subprocess.run(cmd, check=True, capture_output=True)
    log = lab.logfile(f"install-{name}")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    with open(log, "w") as fh:
        rc = subprocess.run(_install_cmd(spec, py, uv), stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = "".join([ln for ln in log.read_text().splitlines(True) if "is ignored: it is neither" not in ln][-15:])
        raise LabError(
            f"installing the {name} environment failed ({'uv' if uv else 'pip'} exit {rc}); full log: {log}\n{tail}"
        )
    extra = unpinned(spec, py)
    if extra:
        drop = [str(uv), "pip", "uninstall", "--python", str(py)] if uv else [str(py), "-m", "pip", "uninstall", "-y"]
        with open(log, "a") as fh:
            subprocess.run(drop + extra, stdout=fh, stderr=subprocess.STDOUT, env=env)
        say(f"{name}: removed {', '.join(extra)} (no longer in {spec.lock.name})")
    _stampfile(py).write_text(f"{python} {'uv' if uv else 'pip'} {stamp(spec)}\n")
    say(f"{name} ready: {installed_count(py)} packages in {time.monotonic() - t0:.1f} s ({how})")
    return py


def setup(lab: Lab, names=CORE) -> None:
    """Install the missing or stale environments side by side, with a progress line while they install."""
    todo = [n for n in names if not is_current(lab, n)]
    if not todo:
        return
    done = threading.Event()

    def progress():
        t0 = time.monotonic()
        while not done.wait(5):
            left = [n for n in todo if not is_current(lab, n)]
            if left:
                parts = [f"{n} {installed_count(venv_python(lab, n))}/{lock_count(VENVS[n])}" for n in left]
                say(f"... {time.monotonic() - t0:.0f} s, still installing: {', '.join(parts)} packages")

    threading.Thread(target=progress, daemon=True).start()
    try:
        get_uv(lab)  # once, before the threads race for it
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            futures = [pool.submit(ensure_venv, lab, n) for n in todo]
            errors = [f.exception() for f in futures if f.exception() is not None]
    finally:
        done.set()
    if errors:
        raise errors[0]
