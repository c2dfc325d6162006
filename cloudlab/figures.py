"""Show a figure with text that says what it shows: alt text for screen readers, and a caption for everyone.

Jupyter has no standard for alt text yet; this helper writes it where the tools that support it look (the
``alt`` metadata of the image output, which nbconvert's HTML export and Jupyter's accessibility proposal use), in
the output's plain-text form (what a screen reader or a terminal gets instead of the picture), and as a visible
caption under the figure::

    fig = cost.plot_allocation(alloc)
    figures.show(fig, "Monthly cost per team and environment: web prod is the largest bar, about 60 % of the total")

Say what the figure shows (the finding, not "a bar chart"). ``tests/test_accessibility.py`` requires every figure
of every notebook to have such a text (this helper's ``alt=``, or a markdown caption next to the cell that starts
with ``**Figure``). Serves every lesson that draws.
"""

from __future__ import annotations

import base64
import io

MIN_ALT = 20  # characters: "a chart" says nothing; a finding takes a sentence


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def bundle(fig, alt: str) -> tuple[dict, dict]:
    """The display data and metadata of the figure: PNG, its text form, and the ``alt`` metadata."""
    alt = " ".join(str(alt).split())
    if len(alt) < MIN_ALT:
        raise ValueError(f"alt text {alt!r} is too short: say what the figure shows (at least {MIN_ALT} characters)")
    data = {"image/png": base64.b64encode(png_bytes(fig)).decode(), "text/plain": f"[Figure] {alt}"}
    return data, {"image/png": {"alt": alt}}


def show(fig, alt: str, caption: bool = True) -> None:
    """Display ``fig`` with ``alt`` text (and, with ``caption``, the same text visibly under it), then close it
    so the notebook's backend does not show it a second time. Outside IPython: print the text."""
    data, metadata = bundle(fig, alt)
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except ImportError:  # pragma: no cover - a figure object came from somewhere
        pass
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover
        print(data["text/plain"])
        return
    if get_ipython() is None:
        print(data["text/plain"])
        return
    display(data, metadata=metadata, raw=True)
    if caption:
        display(Markdown(f"**Figure:** {data['text/plain'][len('[Figure] ') :]}"))
