"""``make catchup L=NN``: give a lesson what an earlier lesson would have built, so a workshop can start there.

Every lesson sets itself up in its first cells (``cloudlab.reset_lesson("NN")`` and its own setup helpers), and
``make measure`` proves each one alone on a brand-new lab (``lessons/instructor/measured.json``). What a lesson uses
from an earlier one without building it is listed here, with the call that builds it. Catch-up only adds to the
lab (images in the Docker engine the lessons use): it never touches ``workspace/`` or the learner's progress.

Found by reading every lesson for what it takes from another and by running each alone on a new lab:

* lesson 06's live part (``make cluster``) loads the order service's image ``cloudlab/orders:sha-...``, which lesson
  05 builds; ``make cluster`` builds it too when it is missing, and so does this;
* lesson 07's "Images" cell searches the layers of lesson 05's images (``l05-...``) for the database password, and
  prints "skipped: no lesson 05 image" without them.

Serves lessons 06 and 07; ``make catchup`` with any other lesson says it needs nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def _orders_image() -> str:
    from . import lesson05

    return lesson05.build_orders(show=False).tag


def _lesson05_images() -> str:
    """The naive image and the fixed one (a build secret, nothing in the layers): what lesson 07 searches."""
    from . import lesson05

    project = lesson05.stage("catchup-naive", dockerignore=False, show=False)
    tags = [project.build("Dockerfile.naive", "l05-naive:v1", show=False).tag]
    fixed = lesson05.stage("catchup-fixed", dockerignore=True, junk=False, show=False)
    tags.append(fixed.build("Dockerfile.secret", "l05-secret:v1", secrets=fixed.secrets, show=False).tag)
    return ", ".join(tags)


CATCHUP: dict[str, list[tuple[str, Callable[[], str]]]] = {
    "06": [("the order service's image (lesson 05), for the live cluster part", _orders_image)],
    "07": [("lesson 05's images, whose layers the 'Images' cell searches for the password", _lesson05_images)],
}


def needs(lesson: str) -> list[str]:
    return [what for what, _ in CATCHUP.get(f"{int(lesson):02d}", [])]


def catch_up(lesson: str) -> list[str]:
    """Build what ``lesson`` uses from earlier lessons; returns one line per thing done."""
    lesson = f"{int(lesson):02d}"
    done = []
    for what, build in CATCHUP.get(lesson, []):
        t0 = time.monotonic()
        made = build()
        done.append(f"{what}: {made} ({time.monotonic() - t0:.1f} s)")
    return done


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: make catchup L=NN (the lesson a workshop starts at), e.g. make catchup L=07")
        return 2
    lesson = f"{int(args[0]):02d}"
    if lesson not in CATCHUP:
        print(f"[catchup] lesson {lesson} needs nothing from earlier lessons: its first cells set up everything it "
              "uses (proved on a brand-new lab by `make measure`). Start it on a fresh lab as it is.")  # fmt: skip
        return 0
    from .containers import EngineDown, EngineMissing

    try:
        for line in catch_up(lesson):
            print(f"[catchup] {line}")
    except (EngineMissing, EngineDown) as e:
        print(f"[catchup] lesson {lesson} would use a Docker engine for this, and none answers: {e}")
        print("[catchup] without one the lesson skips those cells and says so; nothing else is needed.")
        return 1
    print(f"[catchup] lesson {lesson} can start now; your workspace and progress were not touched.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
