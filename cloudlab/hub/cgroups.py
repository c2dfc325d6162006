"""A memory cgroup per learner: the limit the hub sets, the peak their lab reached, out-of-memory kills.

Made below the hub's own cgroup (``<hub's cgroup>/cloudlab-hub/<system user>``), so it stays inside whatever
limits the machine already puts on the hub. cgroup v1 (``memory.limit_in_bytes`` ...) and v2 (``memory.max``
...) both work; where neither can be written (a v2 hub cgroup that holds processes cannot delegate the memory
controller, or no root), :func:`create` says why and the hub runs without limits: the roster then shows
that, and memory from the processes' RSS instead. Standard library only. Serves the workshop hub.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE = Path("/sys/fs/cgroup")
GROUP = "cloudlab-hub"


def own(proc_self: Path = Path("/proc/self/cgroup"), base: Path = BASE) -> tuple[str, Path] | None:
    """("v1" | "v2", the memory cgroup folder of this process), or None without a memory controller."""
    try:
        lines = proc_self.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(",") and (base / "memory").is_dir():
            return "v1", base / "memory" / path.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            try:
                if "memory" in (base / "cgroup.controllers").read_text().split():
                    return "v2", base / line[3:].lstrip("/")
            except OSError:
                return None
    return None


def path_for(sysuser: str, where: tuple[str, Path] | None = None) -> tuple[str, Path] | None:
    where = where if where is not None else own()
    return None if where is None else (where[0], where[1] / GROUP / sysuser)


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def create(sysuser: str, limit_bytes: int | None, where=None) -> tuple[tuple[str, Path] | None, str]:
    """Make (or reuse) the learner's cgroup with ``limit_bytes``; return ((version, folder) or None, why not)."""
    target = path_for(sysuser, where)
    if target is None:
        return None, "no memory cgroup controller on this machine"
    version, folder = target
    try:
        if version == "v2":
            for parent in (folder.parent.parent, folder.parent):
                parent.mkdir(exist_ok=True)
                if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                    _write(parent / "cgroup.subtree_control", "+memory")
        folder.mkdir(parents=True, exist_ok=True)
        if limit_bytes:
            _write(folder / ("memory.max" if version == "v2" else "memory.limit_in_bytes"), str(limit_bytes))
        if version == "v1":  # the peak of this run, not of an earlier one
            _write(folder / "memory.max_usage_in_bytes", "0")
    except OSError as e:
        return None, f"cannot set a memory limit here ({folder}: {e.strerror or e})"
    return target, ""


def join(target: tuple[str, Path] | None, pid: int = 0) -> None:
    """Move ``pid`` (0: this process) into the cgroup; its children are born there."""
    if target is not None:
        _write(target[1] / "cgroup.procs", str(pid or os.getpid()))


def _read_int(path: Path) -> int | None:
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    if raw == "max":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _kv(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def stats(target: tuple[str, Path] | None) -> dict:
    """current, peak and limit in bytes (None when unknown or unlimited), oom_kills, pids in the cgroup."""
    if target is None or not target[1].is_dir():
        return {}
    version, folder = target
    if version == "v2":
        current, peak = _read_int(folder / "memory.current"), _read_int(folder / "memory.peak")
        limit, ooms = _read_int(folder / "memory.max"), _kv(folder / "memory.events").get("oom_kill", 0)
    else:
        current, peak = _read_int(folder / "memory.usage_in_bytes"), _read_int(folder / "memory.max_usage_in_bytes")
        limit = _read_int(folder / "memory.limit_in_bytes")
        limit = None if limit is not None and limit >= 1 << 62 else limit
        ooms = _kv(folder / "memory.oom_control").get("oom_kill", 0)
    try:
        pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        pids = []
    return {"current": current, "peak": peak, "limit": limit, "oom_kills": ooms, "pids": pids}
