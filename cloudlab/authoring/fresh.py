"""pytest plugin (``-p cloudlab.authoring.fresh``): every lesson's first run starts on a freshly reset lab.

A workshop may start at any lesson, on a lab where no earlier lesson ran. ``make test`` proves it: with
``CLOUDLAB_FRESH_LESSONS=1`` (set by :mod:`.testrun`), before the first cell of each ``notebooks/NN_*.ipynb`` the
first time the session meets it, the plugin resets the shard's lab as ``make reset`` does (lesson processes
stopped, emulator data wiped by a restart, Terraform state and lesson scratch removed; caches such as the Docker
engine's images, the environments and the base image stay), so the lesson runs with nothing any earlier lesson or
unit test left behind. The second pass (the notebooks again, against the same lab) is left as it was.

Each reset's seconds go to ``$CLOUDLAB_STATE_DIR/fresh-resets.json``: what the proof costs. The reset runs before
pytest sets the notebook up, so the previous notebook's kernel has stopped and the new one starts after it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

_seen: set[str] = set()
_resets: list[dict] = []


def _enabled() -> bool:
    return os.environ.get("CLOUDLAB_FRESH_LESSONS") == "1"


def lesson_notebook(path: str) -> str | None:
    """The lesson id of a ``notebooks/NN_slug.ipynb`` path, else None (solutions, exercises, retry notebooks)."""
    p = Path(path)
    m = re.match(r"^(\d\d)_.+\.ipynb$", p.name)
    return m.group(1) if m and p.parent.name == "notebooks" else None


def reset_lab(lesson: str, config=None) -> float:
    """``make reset`` on this process's lab (the shard's test lab, from its environment); returns the seconds.
    Its lines go to the shard's log as they happen (not into the captured output of the next cell)."""
    import contextlib

    from ..lab import Lab, cli

    capman = config.pluginmanager.getplugin("capturemanager") if config is not None else None
    quiet = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with quiet:
        t0 = time.monotonic()
        print(f"\n[fresh] resetting the lab before lesson {lesson}'s first run", flush=True)
        cli.reset(Lab.from_env())
        took = time.monotonic() - t0
        print(f"[fresh] lab reset in {took:.1f} s", flush=True)
    return took


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Runs before pytest sets the item's notebook up (its kernel starts in that setup)."""
    if not _enabled():
        return
    path = str(getattr(item, "path", ""))
    lesson = lesson_notebook(path)
    if lesson is None or path in _seen:
        return
    _seen.add(path)
    _resets.append({"lesson": lesson, "seconds": round(reset_lab(lesson, item.config), 1)})


def pytest_sessionfinish(session):
    state = os.environ.get("CLOUDLAB_STATE_DIR")
    if not _enabled() or not state or not _resets:
        return
    total = sum(r["seconds"] for r in _resets)
    print(
        f"\n[fresh] {len(_resets)} lesson(s) started on a freshly reset lab; the resets took {total:.0f} s", flush=True
    )
    try:
        (Path(state) / "fresh-resets.json").write_text(json.dumps(_resets, indent=1))
    except OSError:
        pass
