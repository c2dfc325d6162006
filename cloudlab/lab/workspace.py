"""The learner's workspace: a git-ignored copy of the notebooks, where autosave and answers go.

JupyterLab opens ``workspace/`` (not the tracked notebooks), so a learner's edits never touch a
file git tracks and `git pull` of a course fix never conflicts. The layout mirrors the course::

    workspace/notebooks/NN_slug.ipynb             the lessons
    workspace/exercises/NN_slug.exercises.ipynb   your copy of the exercises (distinct tab titles)
    workspace/solutions/NN_slug.solutions.ipynb   the worked answers

:func:`sync` copies what is missing; :func:`update` (``make update``) pulls the course and then
refreshes every copy you have not edited, keeps every copy you have, and puts the new version next
to it as ``*.updated.ipynb``. Edits are detected by the cells' sources, so outputs alone (running a
notebook) do not count. Standard library only. Serves every lesson.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from . import ROOT, LabError, say

FOLDERS = {"notebooks": "", "exercises": ".exercises", "solutions": ".solutions"}
MANIFEST = ".workspace.json"


def root(lab=None) -> Path:
    """The learner's lab uses ``workspace/`` in the course folder; a test lab keeps its own under its state;
    ``CLOUDLAB_WORKSPACE`` names another (a learner's home on the workshop hub)."""
    if os.environ.get("CLOUDLAB_WORKSPACE"):
        return Path(os.environ["CLOUDLAB_WORKSPACE"])
    if lab is not None and lab.profile != "lab":
        return lab.state / "workspace"
    return ROOT / "workspace"


def target_name(folder: str, stem: str) -> str:
    return f"{stem}{FOLDERS[folder]}.ipynb"


def _retarget_links(text: str) -> str:
    """Links between the course folders point at the workspace's names."""

    def fix(m):
        folder, stem = m.group(1), m.group(2)
        return f"../{folder}/{target_name(folder, stem)}"

    return re.sub(r"\.\./(exercises|solutions|notebooks)/(\d\d_[a-z0-9-]+)\.ipynb", fix, text)


def source_hash(path: Path) -> str:
    """A hash of the cells' sources (and types): what a learner writes, not what running produces."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    parts = []
    for c in nb.get("cells", []):
        src = c.get("source", "")
        parts.append(c.get("cell_type", "") + "\0" + ("".join(src) if isinstance(src, list) else src))
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:16]


def _render(src: Path) -> str:
    nb = json.loads(src.read_text())
    for c in nb.get("cells", []):
        if c.get("cell_type") == "markdown":
            s = c.get("source", "")
            c["source"] = _retarget_links("".join(s) if isinstance(s, list) else s)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _manifest(ws: Path) -> dict:
    try:
        return json.loads((ws / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def sync(ws: Path | None = None, course_root: Path = ROOT) -> dict[str, list[str]]:
    """Copy what the workspace lacks; refresh unedited copies whose course version changed.

    Returns ``{"added": [...], "refreshed": [...], "kept": [...], "updated": [...]}`` (relative paths);
    ``kept`` are your edited copies whose course version changed: the new one is written next to
    them as ``*.updated.ipynb``.
    """
    ws = ws or root()
    ws.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(ws)
    report: dict[str, list[str]] = {"added": [], "refreshed": [], "kept": [], "updated": []}
    for folder in FOLDERS:
        for src in sorted((course_root / folder).glob("*.ipynb")):
            rel = f"{folder}/{target_name(folder, src.stem)}"
            dest = ws / rel
            text = _render(src)
            new_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
            entry = manifest.get(rel, {})
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text)
                report["added"].append(rel)
            elif entry.get("course") == new_hash:
                # The course did not change this notebook: nothing to do, and the manifest keeps describing the
                # copy as the course wrote it (recording your edited sources here would make the next course
                # change see an unedited copy and overwrite your answers).
                continue
            elif entry and source_hash(dest) == entry.get("sources"):
                dest.write_text(text)  # you did not edit it: take the new version
                report["refreshed"].append(rel)
            else:
                upd = dest.with_name(dest.name.replace(".ipynb", ".updated.ipynb"))
                upd.write_text(text)
                report["kept"].append(rel)
                report["updated"].append(str(upd.relative_to(ws)))
                continue  # the manifest keeps describing the copy you have
            manifest[rel] = {"course": new_hash, "sources": source_hash(dest)}
    (ws / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return report


CODE = ("cloudlab/", "app/", "pins/", "requirements.txt", "Makefile")


def _head(git: str, cwd: Path) -> str:
    out = subprocess.run([git, "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def update(ws: Path | None = None, course_root: Path = ROOT, pull: bool = True) -> dict[str, list[str]]:
    """`make update`: pull the course (fast-forward only), then :func:`sync` the workspace."""
    if pull:
        git = shutil.which("git")
        if git is None:
            raise LabError("git is not installed: install it, or download the course again")
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--untracked-files=no"], cwd=course_root, capture_output=True, text=True
        ).stdout.strip()
        if dirty:
            raise LabError(
                "tracked course files have local changes, so `git pull` could conflict:\n"
                f"{dirty}\n  Your work belongs in workspace/. Keep a copy of these files, then "
                "`git checkout -- <file>` (or `git stash`) and run `make update` again."
            )
        before = _head(git, course_root)
        out = subprocess.run([git, "pull", "--ff-only"], cwd=course_root, capture_output=True, text=True)
        if out.returncode != 0:
            raise LabError(f"`git pull --ff-only` failed:\n{(out.stdout + out.stderr).strip()[-1200:]}")
        say((out.stdout.strip().splitlines() or ["course updated"])[-1])
        changed = (
            subprocess.run(
                [git, "diff", "--name-only", before, "HEAD"], cwd=course_root, capture_output=True, text=True
            ).stdout.split()
            if before
            else []
        )
        if any(p.startswith(CODE) for p in changed):
            say(
                "the course's own code changed: restart your kernels (Kernel > Restart Kernel) and the lab "
                "(`make stop-all`, then `make lab`) to use it"
            )
    report = sync(ws, course_root)
    for what, items in report.items():
        for item in items:
            say(f"{what:<9} workspace/{item}")
    if report["kept"]:
        say("your edited copies stay as they are; the course's new versions are next to them as *.updated.ipynb")
    return report
