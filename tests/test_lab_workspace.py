"""`make update` and every JupyterLab start sync the workspace: a learner's edited copy is never overwritten,
whatever the order of edits, syncs, runs and course changes (a model checked over every short sequence)."""

import itertools
import json

from cloudlab.lab import workspace

REL = "exercises/01_a.exercises.ipynb"
UPDATED = "exercises/01_a.exercises.updated.ipynb"


def nb(*sources, outputs=()):
    cells = [
        {"cell_type": "code", "source": s, "metadata": {}, "outputs": list(outputs), "execution_count": None}
        for s in sources
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


def sources(path) -> str:
    return "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in json.loads(path.read_text())["cells"]
    )


class World:
    """A course folder, a workspace, and what the learner and the course did: the model of what must hold."""

    def __init__(self, tmp):
        self.course, self.ws = tmp / "course", tmp / "ws"
        for folder in ("notebooks", "exercises", "solutions"):
            (self.course / folder).mkdir(parents=True)
        self.version, self.edits, self.synced_once = 0, 0, False
        self.write_course()

    def write_course(self):
        text = nb(f"# course v{self.version}\nraise NotImplementedError()")
        (self.course / "exercises" / "01_a.ipynb").write_text(text)

    # the steps ---------------------------------------------------------------------------
    def sync(self):
        workspace.sync(self.ws, self.course)
        self.synced_once = True

    def edit(self):
        if not self.synced_once:
            return  # nothing to edit before the first sync
        self.edits += 1
        dest = self.ws / REL
        text = sources(dest)
        dest.write_text(nb(text + f"\nanswer = {self.edits}  # mine"))

    def run(self):  # running the notebook adds outputs: not an edit
        if not self.synced_once:
            return
        dest = self.ws / REL
        cells = json.loads(dest.read_text())["cells"]
        for c in cells:
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran"}]
        dest.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))

    def change(self):
        self.version += 1
        self.write_course()

    # what must hold ------------------------------------------------------------------------
    def check(self, steps):
        dest = self.ws / REL
        if not self.synced_once:
            return
        text = sources(dest)
        if self.edits:
            assert f"answer = {self.edits}  # mine" in text, f"{steps}: the learner's answer is gone:\n{text}"
            written = int(text.split("# course v")[1].split("\n")[0])
            if written != self.version and steps[-1] == "sync":
                upd = self.ws / UPDATED
                assert upd.exists(), f"{steps}: the course changed, the copy is edited, and no .updated copy"
                assert f"# course v{self.version}" in sources(upd), f"{steps}: .updated is not the newest course"
        elif steps[-1] == "sync":
            assert f"# course v{self.version}\n" in text, f"{steps}: an unedited copy did not take the new version"


STEPS = {"sync": World.sync, "edit": World.edit, "run": World.run, "change": World.change}


def play(tmp, steps):
    w = World(tmp)
    w.sync()
    done = ["sync"]
    for s in steps:
        STEPS[s](w)
        done.append(s)
        w.check(done)
    return w


def test_the_reported_sequence_keeps_the_answers(tmp_path):
    """Answers typed and saved, a no-op `make update`, another, a real course change, `make update`."""
    w = play(tmp_path, ["edit", "sync", "sync", "change", "sync"])
    assert (w.ws / UPDATED).exists()


def test_every_order_of_edit_sync_sync_change_sync(tmp_path):
    orders = set(itertools.permutations(["edit", "sync", "sync", "change", "sync"]))
    for i, order in enumerate(sorted(orders)):
        play(tmp_path / str(i), list(order))
    assert len(orders) == 20


def test_every_short_sequence_of_edits_runs_syncs_and_course_changes(tmp_path):
    n = 0
    for length in range(1, 5):
        for steps in itertools.product(STEPS, repeat=length):
            play(tmp_path / str(n), list(steps))
            n += 1
    assert n == 4 + 16 + 64 + 256
