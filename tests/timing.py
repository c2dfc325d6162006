"""Tests of what a lesson shows on timers (the retry storm's waves): the CPU a learner's own machine gives them.

``make test`` runs seven shards on two cores, so a demo on 125 ms timers waits its turn behind six other shards
and its waves bunch up: a claim about the learner's machine (to itself, running one notebook) would then be
tested on a machine no learner has. :func:`first_in_line` gives the threads of this test and of the lesson's
processes a higher scheduling priority (nice -10, as root) for the length of the test, and puts it back.
Linux keeps a nice value per thread, and a new thread starts with its creator's: the test's worker threads and a
server's handler threads inherit it. Without the right to raise priority, the test runs as it is.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

BOOST = -10


def _threads(pid: int) -> list[int]:
    try:
        return [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return []


@contextlib.contextmanager
def first_in_line(*pids: int):
    """Threads of ``pids`` and the calling thread at nice -10 inside the block; their own values after it."""
    tids = [threading.get_native_id(), *(t for pid in pids for t in _threads(pid))]
    before = {}
    for tid in tids:
        try:
            before[tid] = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, BOOST)
        except OSError:  # not allowed (not root), or the thread ended
            before.pop(tid, None)
    try:
        yield sorted(before)
    finally:
        for tid, nice in before.items():
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, nice)
