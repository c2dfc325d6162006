"""Tables for learners: an HTML table in a notebook, aligned text everywhere else (every lesson).

Padded text columns wrap mid-word in a browser as soon as a line is wider than the page, so a helper
that shows several columns builds a :class:`Table` and hands it to :func:`show` (the same
``display`` or ``print`` as :func:`cloudlab.checks.show`)::

    t = Table(("resource", "kind", "USD/month"), [("l03-web", "instance", 70.08)], title="The bill")
    show(t)  # a notebook gets the HTML table, a terminal or a test the text below
    print(t)  # The bill / resource  kind      USD/month / ...

A helper whose caller expects a string returns ``t.text()``: the same text, as a ``str`` that a
notebook still renders as HTML when it is the cell's value (``print()`` of it stays text).
No pandas, no CSS or JavaScript from elsewhere: the HTML is a plain ``<table>``, escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from .checks import show

__all__ = ["Table", "TableText", "show"]

EMPTY = "(no rows)"
_NUMBER = re.compile(r"^[-+]?\$?\d[\d,]*(\.\d+)?( ?%)?$")


def cell(value) -> str:
    """How one value reads in a table: floats as ``:g``, None as nothing, anything else as ``str``."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_NUMBER.match(value.strip()))


class Table:
    """Columns and rows, shown as HTML in a notebook and as aligned text by ``str()``/``repr()``.

    ``right`` names the columns (indices or names) aligned right in the text; by default every column
    whose cells are all numbers (the HTML always aligns those right). ``notes`` are lines shown under
    the table; ``indent`` shifts the text form.
    """

    def __init__(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence],
        title: str | None = None,
        notes: Iterable[str] = (),
        right: Iterable[int | str] | None = None,
        indent: int = 0,
    ):
        self.columns = [str(c) for c in columns]
        self.rows = [list(r) for r in rows]
        for r in self.rows:
            if len(r) != len(self.columns):
                raise ValueError(f"a row has {len(r)} cells for {len(self.columns)} columns: {r!r}")
        self.title = title
        self.notes = [str(n) for n in notes]
        self.indent = indent
        numbers = {
            i
            for i in range(len(self.columns))
            if any(r[i] not in (None, "") for r in self.rows)
            and all(_is_number(r[i]) for r in self.rows if r[i] not in (None, ""))
        }
        if right is None:
            self.right = numbers
        else:
            self.right = {c if isinstance(c, int) else self.columns.index(c) for c in right}
        self._html_right = self.right | numbers  # HTML right-aligns every column of numbers

    def cells(self) -> list[list[str]]:
        """The rows as the strings both forms show."""
        return [[cell(v) for v in r] for r in self.rows]

    # ---------------------------------------------------------------- text
    def __str__(self) -> str:
        pad = " " * self.indent
        out = [self.title] if self.title else []
        if not self.rows:
            out.append(pad + EMPTY)
        else:
            body = [self.columns] + self.cells()
            w = [max(len(r[i]) for r in body) for i in range(len(self.columns))]

            def line(r):
                return pad + "  ".join(c.rjust(w[i]) if i in self.right else c.ljust(w[i]) for i, c in enumerate(r))

            out += [line(body[0]).rstrip(), pad + "  ".join("-" * x for x in w)]
            out += [line(r).rstrip() for r in body[1:]]
        out += self.notes
        return "\n".join(out)

    __repr__ = __str__

    def text(self) -> TableText:
        """The text form as a ``str`` that still renders as this table's HTML in a notebook."""
        return TableText(self)

    # ---------------------------------------------------------------- HTML
    def _repr_html_(self) -> str:
        esc = html.escape
        out = ['<div class="cloudlab-table">']
        if self.title:
            out.append(f"<p style='margin:0 0 4px 0'><b>{esc(self.title)}</b></p>")
        if not self.rows:
            out.append(f"<p><i>{esc(EMPTY)}</i></p>")
        else:

            def td(tag, i, c):
                style = " style='text-align:right'" if i in self._html_right else " style='text-align:left'"
                return f"<{tag}{style}>{esc(c)}</{tag}>"

            head = "".join(td("th", i, c) for i, c in enumerate(self.columns))
            body = "".join("<tr>" + "".join(td("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in self.cells())
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        out += [f"<p style='margin:4px 0 0 0'>{esc(n)}</p>" for n in self.notes]
        return "".join(out) + "</div>"


class TableText(str):
    """A table's text (equal to ``str(table)``) that a notebook shows as the table's HTML."""

    def __new__(cls, table: Table):
        obj = super().__new__(cls, str(table))
        obj.table = table
        return obj

    def _repr_html_(self) -> str:
        return self.table._repr_html_()

    def _repr_pretty_(self, p, cycle) -> None:  # a console or a plain-text output: the table, not a quoted str
        p.text(str(self))
