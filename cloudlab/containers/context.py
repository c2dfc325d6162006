"""The build context: what the engine receives, what ``.dockerignore`` keeps out, the wheelhouse that
brings Python packages in without network, and a content digest for immutable tags.

``.dockerignore`` is read with Docker's own rules (moby's pattern matcher): ``*`` and ``?`` stay within
one path segment, ``**`` crosses segments, a pattern also excludes everything below a matching folder,
``!`` re-includes, and the last matching line wins. Serves lessons 05 and 08.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..lab import docker as labdocker

PYTHON_VERSION = "3.11"  # the images' Python (python:3.11-slim-bookworm, or Debian bookworm's python3)


class WheelhouseError(RuntimeError):
    """The wheelhouse could not be filled (pip download failed); the message says why."""

    def _render_traceback_(self):
        return [f"\x1b[31mWheelhouseError\x1b[0m: {self}"]


# ------------------------------------------------------------------ .dockerignore
def pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (already cleaned) as an anchored regular expression."""
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if i + 1 == len(pattern):
                    out.append(".*")
                elif pattern[i + 1] == "/":
                    out.append("(.*/)?")
                    i += 1
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                out.append(pattern[i : end + 1].replace("[!", "[^"))
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def parse_dockerignore(text: str) -> list[tuple[bool, re.Pattern, str]]:
    """(is_exception, regex, pattern) for each rule, in file order."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pat = line[1:].strip() if exception else line
        pat = os.path.normpath(pat).replace(os.sep, "/")
        if len(pat) > 1 and pat.startswith("/"):
            pat = pat[1:]
        if pat == ".":
            continue
        rules.append((exception, pattern_regex(pat), pat))
    return rules


def is_ignored(rel: str, rules) -> bool:
    """Does .dockerignore keep ``rel`` (a path relative to the context, with ``/``) out of the context?"""
    parts = rel.strip("/").split("/")
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    ignored = False
    for exception, rx, _ in rules:
        if any(rx.match(c) for c in candidates):
            ignored = not exception
    return ignored


def context_files(context) -> list[str]:
    """Every file the engine receives from ``context`` (relative paths), after .dockerignore."""
    context = Path(context)
    ignore = context / ".dockerignore"
    rules = parse_dockerignore(ignore.read_text()) if ignore.exists() else []
    out = []
    for root, dirs, names in os.walk(context):
        dirs.sort()
        for n in sorted(names):
            rel = os.path.relpath(os.path.join(root, n), context).replace(os.sep, "/")
            if not is_ignored(rel, rules):
                out.append(rel)
    return out


def context_size(context) -> int:
    """Bytes the engine receives from ``context`` (after .dockerignore)."""
    return sum((Path(context) / f).stat().st_size for f in context_files(context))


def context_digest(context, dockerfile: str = "Dockerfile", build_args: dict | None = None) -> str:
    """A sha256 over the Dockerfile, every file sent (path, executable bit, content) and the build arguments:
    same inputs, same digest; any change, a new one. It names the build's INPUTS, not the image that comes out
    (the base an ARG points at, or a package a RUN step fetches, can change the image and not this digest):
    a source-hash tag. What a deploy pins is the image's own digest."""
    context = Path(context)
    h = hashlib.sha256()
    h.update((context / dockerfile).read_bytes())
    for rel in context_files(context):
        p = context / rel
        h.update(f"\0{rel}\0{os.access(p, os.X_OK):d}\0".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    for key, value in sorted((build_args or {}).items()):
        h.update(f"\0--build-arg {key}={value}".encode())
    return h.hexdigest()


def content_tag(repository: str, context, dockerfile: str = "Dockerfile", build_args: dict | None = None) -> str:
    """``repository:<first 12 hex of the context digest>``: a source-hash tag (never ``latest``). Pass the build
    arguments (``{"BASE": ...}``) so that the same sources on another base get another tag."""
    return f"{repository}:{context_digest(context, dockerfile, build_args)[:12]}"


# ------------------------------------------------------------------ the wheelhouse
def wheelhouse(requirements, dest, show: bool = True) -> list[str]:
    """Fill ``dest`` with wheels for ``requirements`` (Python 3.11), downloaded on the host once and cached.

    The build then installs with ``pip install --no-index --find-links`` and needs no network."""
    requirements = Path(requirements)
    key = hashlib.sha256(requirements.read_bytes() + PYTHON_VERSION.encode()).hexdigest()[:10]
    cache = labdocker.cache_dir() / f"wheels-{key}"
    cmd = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", "--python-version", PYTHON_VERSION, "-r", str(requirements),
    ]  # fmt: skip
    if show:
        print(
            f"$ python -m pip download --only-binary=:all: --python-version {PYTHON_VERSION} "
            f"-r {requirements.name} -d wheels" + ("   (cached on this machine)" if cache.exists() else "")
        )
    if not cache.exists():
        tmp = cache.with_name(cache.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        out = subprocess.run([*cmd, "-d", str(tmp)], capture_output=True, text=True, timeout=600)
        if out.returncode != 0 or not any(tmp.glob("*.whl")):
            shutil.rmtree(tmp, ignore_errors=True)
            why = "\n".join(ln for ln in out.stderr.splitlines() if "is ignored" not in ln)[-1200:]
            raise WheelhouseError(
                f"pip could not download the wheels for {requirements.name} (it needs PyPI once; then they are "
                f"cached in {cache}):\n{why}"
            )
        os.replace(tmp, cache)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for whl in sorted(cache.glob("*.whl")):
        target = dest / whl.name
        if not target.exists():
            try:
                os.link(whl, target)
            except OSError:
                shutil.copy2(whl, target)
        names.append(whl.name)
    return names
