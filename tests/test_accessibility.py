"""Accessibility: every figure says in words what it shows; check and table output means the same without colour.

Figures: a code cell that draws (it calls a function of ``cloudlab/`` that draws, or matplotlib itself:
:func:`cloudlab.authoring.outline.figure_functions`) must carry text: ``cloudlab.figures.show(fig, alt="...")``,
or a markdown cell right before or after it with a paragraph that starts with ``**Figure``. The figures that
still lack it are counted in ``LACKING``: the test of all figures is expected to fail until the lessons add them
(``xfail(strict=True)``), and the count may only go down (a new figure without text fails at once).
"""

from __future__ import annotations

import html
import json
import re

import pytest

from cloudlab import course, figures
from cloudlab.authoring import outline, packpages

LACKING = 0  # figures without alt text or a caption, outside OWNED_ELSEWHERE (docs/instructors/accessibility.md)
# Notebooks whose figures other people are finishing right now: their figures without text are listed on the page but
# not counted, each with the reason. An entry whose notebook has every figure described fails (remove it).
OWNED_ELSEWHERE: dict[str, str] = {}


def _elsewhere(nb: str) -> bool:
    return any(f"/{stem}.ipynb" in nb for stem in OWNED_ELSEWHERE)


def lacking() -> list[str]:
    return [f"{nb} code cell {f.code_index} ({', '.join(f.calls)}), in '{f.section}'"
            for nb, f in packpages.figures_lacking_text() if not _elsewhere(nb)]  # fmt: skip


def test_owned_elsewhere_is_not_stale():
    lacking_all = [nb for nb, _ in packpages.figures_lacking_text()]
    for stem, why in OWNED_ELSEWHERE.items():
        assert why, stem
        present = list(course.ROOT.glob(f"*/{stem}.ipynb"))
        if present:  # merged: it must still have a figure without text (before the merge there is nothing to check)
            assert any(f"/{stem}.ipynb" in nb for nb in lacking_all), f"{stem}: every figure has text: remove it"


@pytest.mark.xfail(LACKING > 0, strict=True, reason=f"{LACKING} figures still lack alt text or a caption")
def test_every_figure_says_what_it_shows():
    missing = lacking()
    assert not missing, f"{len(missing)} figures without text:\n" + "\n".join(missing)


def test_the_figures_lacking_text_only_get_fewer():
    missing = lacking()
    assert len(missing) <= LACKING, (
        f"{len(missing)} figures lack text, more than the {LACKING} known: a new figure needs "
        "figures.show(fig, alt=...) or a **Figure** caption next to it:\n" + "\n".join(missing)
    )
    assert len(missing) == LACKING, f"only {len(missing)} figures lack text now: set LACKING = {len(missing)}"


def test_the_scan_finds_every_figure_a_measured_run_drew():
    """Cells that really showed an image when `make measure` ran the notebook (nbcheck records it) are the cells the
    scan calls figures, for each notebook unchanged since it was measured."""
    measured = json.loads((course.ROOT / "lessons" / "instructor" / "measured.json").read_text())
    compared = 0
    for le in course.lessons():
        m = measured.get(le.id) or {}
        for key, cells in (m.get("figure_cells") or {}).items():
            path = course.ROOT / key
            if not path.exists() or m.get("sources", {}).get(key) != outline.sources_hash(path):
                continue
            found = {f.code_index for f in outline.read(path).figures}
            assert set(cells) <= found, f"{key}: cells {sorted(set(cells) - found)} drew a figure the scan missed"
            compared += 1
    assert compared, "no measured notebook to compare with: run `make measure`"


def test_the_figure_helper_writes_alt_text_and_a_caption(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.bar(["web", "api"], [3, 1])
    data, meta = figures.bundle(fig, "Monthly cost per team: web costs three times what api costs")
    assert data["image/png"] and data["text/plain"].startswith("[Figure] Monthly cost per team")
    assert meta == {"image/png": {"alt": "Monthly cost per team: web costs three times what api costs"}}
    with pytest.raises(ValueError, match="too short"):
        figures.bundle(fig, "a chart")
    figures.show(fig, "Monthly cost per team: web costs three times what api costs")  # no IPython here: text
    assert "[Figure] Monthly cost per team" in capsys.readouterr().out
    p = course.ROOT / "notebooks" / "03_cost-awareness.ipynb"
    nb = json.loads(p.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[9]["source"] = 'figures.show(cost.plot_allocation(alloc), alt="Cost per team and environment, web first")'
    described = {f.code_index: f.described for f in _outline_of(nb, tmp_name="03_alt.ipynb")}
    assert described[9]


def _outline_of(nb: dict, tmp_name: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / tmp_name
        path.write_text(json.dumps(nb))
        return outline.read(path).figures


# ------------------------------------------------------------------ no meaning in colour alone
# Every place in cloudlab/ whose HTML output uses a colour, and where the same meaning is in words.
REVIEWED = {
    "cloudlab/checks.py": "the green box of a passed check says PASS; a failure says 'not yet' and [missing]",
    "cloudlab/lesson00.py": "each row's colour repeats its state, written as [OK], [AUTO], [OPT] or [FAIL]",
    "cloudlab/cost/widget.py": "the red message starts with 'Cannot compute:'",
    "cloudlab/hub/accounts.py": "grey small print on the login cards: no meaning",
    "cloudlab/hub/rosterdata.py": "alerts are text; the SVG's colours are lessons, named in its legend and titles",
}
COLOUR = re.compile(r"""(?:color\s*:|background\s*:|fill=|style=.*#[0-9a-fA-F]{3,6})""")


def test_html_output_with_colour_is_reviewed():
    found = set()
    for p in sorted((course.ROOT / "cloudlab").rglob("*.py")):
        if "authoring" in p.parts or p.name == "plots.py":
            continue
        text = p.read_text()
        strings = re.findall(r"""(["'])(?:(?!\1).)*\1""", text)
        if any(COLOUR.search(s) for s in strings if "<" in s or "{" in s or "style" in s):
            found.add(str(p.relative_to(course.ROOT)))
    new = found - set(REVIEWED)
    assert not new, f"HTML with colour in {sorted(new)}: say the same in words and add the file to REVIEWED"


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def test_a_check_says_pass_or_not_yet_in_words(tmp_path, monkeypatch):
    from cloudlab.checks import CheckFailed, Passed, check

    monkeypatch.setenv("CLOUDLAB_PROGRESS_FILE", str(tmp_path / "progress.json"))

    @check("98.1", "words, not colour", hints=["a hint"])
    def check_words(r, ns):
        r.expect(ns.get("x") == 1, "x is 1", "x is not 1")

    assert "PASS 98.1" in _text(Passed(["PASS 98.1 words, not colour"])._repr_html_())
    with pytest.raises(CheckFailed) as e:
        check_words({"x": 2})
    text = "".join(e.value._render_traceback_())
    assert "not yet" in text and "[missing] x is not 1" in text and "Hint 1/1" in text


def test_tables_need_no_colour():
    from cloudlab.checks import ProgressTable
    from cloudlab.lesson00 import Row, Table
    from cloudlab.tables import Table as Plain

    rows = [Row("tool", "a", True, "ok"), Row("tool", "b", False, "missing", "install it"),
            Row("tool", "c", False, "later", state="AUTO"), Row("tool", "d", False, "opt", state="OPT")]  # fmt: skip
    text = _text(Table(rows)._repr_html_())
    for state in ("[OK]", "[FAIL]", "[AUTO]", "[OPT]"):
        assert state in text
    assert "color" not in Plain(("a", "b"), [(1, 2)])._repr_html_()
    progress = ProgressTable({"01.1": {"title": "t", "attempts": 2, "passed_at": "x"}, "01.2": {"attempts": 1}})
    assert "passed" in _text(progress._repr_html_()) and "tried" in _text(progress._repr_html_())
