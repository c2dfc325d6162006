"""What a lab creates outside its state folder, all named after the lab, all removed by its stop and reset.

Some things cannot live under ``.lab/``: the lab's dockerd needs a short exec root (containerd's socket
paths are limited to 108 bytes), PostgreSQL run as the ``postgres`` user cannot reach a repository under
/root, LocalStack's scratch is faster in RAM, and network namespaces live in /run/netns. Each carries the
lab's tag (a hash of its state folder), so two labs on one machine never share or delete each other's:

* :func:`private_dir`: ``/tmp/cloudlab-<tag>-<what>`` (or under /dev/shm), made by this process, owned by
  this user, not a link, writable by nobody else: the ONE way the course makes a runtime folder in a shared
  place (a predictable name in /tmp is otherwise an invitation to a symlink attack);
* :func:`netns_prefix`: ``lNN-<tag6>-`` for the network namespaces a lesson makes (lesson 09);
* :func:`clean`: unmounts what is still mounted under the lab's folders (an engine killed mid-stop leaves
  nsfs and overlay mounts), deletes the lab's namespaces and removes its private folders.

Standard library only. Serves the lab (dockerd), lessons 04-09 (PostgreSQL, namespaces, LocalStack's scratch).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

from . import Lab, LabError

TMP = Path("/tmp")
SHM = Path("/dev/shm")
NETNS_DIR = Path("/run/netns")


def tag(lab: Lab, n: int = 10) -> str:
    """A short, stable tag of the lab: the same state folder always gets the same tag."""
    return hashlib.sha256(str(lab.state).encode()).hexdigest()[:n]


def name(lab: Lab, what: str) -> str:
    return f"cloudlab-{tag(lab)}-{what}"


def private_dir(lab: Lab, what: str, base: Path = TMP, mode: int = 0o700) -> Path:
    """``<base>/cloudlab-<tag>-<what>``, created if missing, and refused unless it is this user's own real
    folder that nobody else can write to (:class:`LabError` says what to remove). ``mode`` 0o755 lets
    another user of the lab's (``postgres``) in; 0o700 keeps everyone else out."""
    path = base / name(lab, what)
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        pass
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise LabError(
            f"{path} is not this lab's own folder (a link, another owner, or writable by others): "
            "remove it (`sudo rm -rf` it, after a look) and try again"
        )
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)  # mkdir applied the umask
    return path


def private_dirs(lab: Lab, bases=(TMP, SHM)) -> list[Path]:
    """Every private folder of this lab that exists now (links are listed, never followed), including those
    of older versions of the course (``cl-docker-<tag>``, ``cloudlab-pg-<tag>``, LocalStack's ``cloudlab-<sha1>``)."""
    old_shm = hashlib.sha1(str((lab.state / "localstack").resolve()).encode()).hexdigest()[:12]
    patterns = (f"{name(lab, '')}*", f"cl-docker-{tag(lab)}", f"cloudlab-pg-{tag(lab)}", f"cloudlab-{old_shm}")
    return sorted({p for base in bases if base.is_dir() for pat in patterns for p in base.glob(pat)})


def netns_prefix(lab: Lab, lesson: str) -> str:
    """``lNN-<tag6>-``: the names of the network namespaces lesson NN makes in this lab."""
    return f"l{int(lesson):02d}-{tag(lab, 6)}-"


def namespaces(lab: Lab) -> list[str]:
    """This lab's network namespaces (of any lesson) that exist now."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(
        p.name for p in NETNS_DIR.iterdir() if p.name[:1] == "l" and p.name[3:].startswith(f"-{tag(lab, 6)}-")
    )


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts_under(*roots: Path) -> list[str]:
    """Mount points at or below ``roots`` (from /proc/self/mountinfo), deepest first."""
    wanted = [str(Path(r)) for r in roots]
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = set()
    for ln in lines:
        fields = ln.split()
        point = _unescape(fields[4]) if len(fields) > 4 else ""
        if any(point == r or point.startswith(r + "/") for r in wanted):
            found.add(point)
    return sorted(found, key=lambda p: (-p.count("/"), p))


def unmount(paths: list[str]) -> list[str]:
    """``umount -l`` each (deepest first); returns those that are gone."""
    done = []
    exe = shutil.which("umount") or "/bin/umount"
    for p in paths:
        if subprocess.run([exe, "-l", p], capture_output=True).returncode == 0:
            done.append(p)
    return done


def delete_namespaces(lab: Lab) -> list[str]:
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.path.exists(p)), None)
    gone = []
    for ns in namespaces(lab):
        if ip and subprocess.run([ip, "netns", "del", ns], capture_output=True).returncode == 0:
            gone.append(ns)
    return gone


def clean(lab: Lab) -> dict[str, list[str]]:
    """Once the lab's processes have stopped: unmount what is still mounted under its private folders and its
    engine's folder, delete its namespaces, remove its private folders. The lab's dockerd, if it still runs
    (`make reset` keeps it), keeps its folder and mounts. Returns what it removed."""
    from . import process

    engine = name(lab, "docker")
    engine_runs = process.read_pidfile(lab.pidfile("docker")) is not None
    folders = [p for p in private_dirs(lab) if not (engine_runs and p.name == engine)]
    unmounted = unmount(mounts_under(*folders, *(() if engine_runs else (lab.state / "docker",))))
    removed = []
    for p in folders:
        if p.is_symlink() or not p.is_dir():
            p.unlink(missing_ok=True)
        else:
            shutil.rmtree(p, ignore_errors=True)
        if not p.exists():
            removed.append(str(p))
    return {"unmounted": unmounted, "namespaces": delete_namespaces(lab), "folders": removed}
