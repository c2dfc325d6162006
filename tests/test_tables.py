"""cloudlab.tables: one table, shown as HTML in a notebook and as aligned text elsewhere."""

import re
from html.parser import HTMLParser

import pytest

from cloudlab import tables
from cloudlab.tables import Table, TableText


class _Cells(HTMLParser):
    """The header and body cells of an HTML table, with their alignment."""

    def __init__(self):
        super().__init__()
        self.rows, self.align, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
            self.align.append([])
        if tag in ("td", "th"):
            self._in = True
            self.rows[-1].append("")
            style = dict(attrs).get("style") or ""
            self.align[-1].append("right" if "right" in style else "left")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in = False

    def handle_data(self, data):
        if self._in:
            self.rows[-1][-1] += data


def html_cells(t):
    p = _Cells()
    p.feed(t._repr_html_())
    return p


def text_cells(t):
    """Split the text form on runs of 2+ spaces (cells here hold no double spaces)."""
    lines = str(t).splitlines()
    body = [ln for ln in lines if ln.strip() and not set(ln.strip()) <= {"-", " "}]
    if t.title:
        body = body[1:]
    if t.notes:
        body = body[: -len(t.notes)]
    return [re.split(r" {2,}", ln.strip()) for ln in body]


def sample():
    return Table(
        ("resource", "kind", "USD/month"),
        [("l03-web", "instance", 70.08), ("l03-old-disk", "volume", 8), ("l03-ip", "public_ip", 3.6)],
        title="The bill",
        notes=["3 resources"],
    )


def test_html_escapes_every_cell_title_and_note():
    t = Table(("a<b", "c"), [("<script>alert(1)</script>", "x & y")], title="<b>t</b>", notes=['"n" <i>'])
    out = t._repr_html_()
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "x &amp; y" in out and "a&lt;b" in out
    assert "&lt;b&gt;t&lt;/b&gt;" in out and "&quot;n&quot; &lt;i&gt;" in out
    assert "<style" not in out and "<link" not in out and "<script" not in out  # nothing from elsewhere


def test_numbers_align_right_text_left():
    t = sample()
    lines = str(t).splitlines()
    assert lines[0] == "The bill"
    assert lines[1] == "resource      kind       USD/month"
    assert lines[2] == "------------  ---------  ---------"
    assert lines[3] == "l03-web       instance       70.08"
    assert lines[4] == "l03-old-disk  volume             8"
    assert lines[-1] == "3 resources"
    cells = html_cells(t)
    assert cells.align[0] == ["left", "left", "right"]
    assert all(a == ["left", "left", "right"] for a in cells.align)


def test_right_can_be_named_and_the_html_still_aligns_numbers():
    t = Table(("name", "n", "usd"), [("a", 3, "1,234.50"), ("TOTAL", "", "9.00")], right=("usd",))
    assert str(t).splitlines()[2] == "a      3  1,234.50"  # n stays left in the text, as asked
    assert html_cells(t).align[1] == ["left", "right", "right"]  # the HTML aligns every column of numbers


def test_empty_table_says_no_rows():
    t = Table(("a", "b", "c"), [], title="Findings")
    assert str(t) == "Findings\n(no rows)"
    assert "(no rows)" in t._repr_html_()
    assert "<table" not in t._repr_html_()


def test_text_and_html_have_the_same_cells():
    t = sample()
    assert text_cells(t) == html_cells(t).rows
    assert html_cells(t).rows[0] == ["resource", "kind", "USD/month"]
    assert html_cells(t).rows[1] == ["l03-web", "instance", "70.08"]


def test_cells_format_none_and_floats():
    t = Table(("x", "y", "z"), [(None, 0.5, 1e-7)])
    assert t.cells() == [["", "0.5", "1e-07"]]


def test_a_row_of_the_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Table(("a", "b", "c"), [(1, 2)])


def test_indent_shifts_the_text_only():
    t = Table(("a", "b", "c"), [("x", "y", "z")], indent=2)
    assert all(ln.startswith("  ") for ln in str(t).splitlines())
    assert repr(t) == str(t)


def test_text_is_a_str_that_renders_as_html():
    t = sample()
    s = t.text()
    assert isinstance(s, str) and isinstance(s, TableText)
    assert s == str(t) and "TOTAL" not in s
    assert s._repr_html_() == t._repr_html_()


def test_show_prints_the_text_outside_a_kernel(capsys):
    tables.show(sample())
    assert capsys.readouterr().out == str(sample()) + "\n"


def test_table_text_reads_as_a_table_in_plain_text_output_too():
    from IPython.lib.pretty import pretty

    from cloudlab.tables import Table

    text = Table(("k", "v"), [("a", 1)]).text()
    assert pretty(text) == str(text) and "\\n" not in pretty(text)
