"""The interactive purchase-option calculator (ipywidgets) of lesson 03, on top of :mod:`cloudlab.cost.model`."""

from __future__ import annotations

import html

from .model import OptionsResult, compare_options
from .plots import plot_options
from .prices import InputError, MissingPrice, PriceTable, as_number


# ------------------------------------------------------------------ the calculator widget
class Calculator:
    """Purchase options, interactively: a type, hours per month, how many, spot re-work.

    Built on :func:`compare_options` (the plain path CI runs). Bad input shows a message in the
    widget instead of raising. ``draw=False`` skips the plot (tests).
    """

    def __init__(self, table: PriceTable, region: str = "us-east-1", draw: bool = True):
        import ipywidgets as w

        self.table, self.region, self.draw = table, region, draw
        types = [t for t, _ in table.rows("ec2.on_demand", region)]
        style = {"description_width": "120px"}
        self.type = w.Dropdown(
            options=types,
            value="m5.large" if "m5.large" in types else types[0],
            description="instance type",
            style=style,
        )
        self.hours = w.Text(value="730", description="hours / month", style=style)
        self.count = w.Text(value="1", description="instances", style=style)
        self.rework = w.Text(value="10", description="spot re-work %", style=style)
        self.message = w.HTML()
        self.out = w.Output()
        self.result: OptionsResult | None = None
        for x in (self.type, self.hours, self.count, self.rework):
            x.observe(self.update, names="value")
        self.widget = w.VBox(
            [w.HBox([self.type, self.hours]), w.HBox([self.count, self.rework]), self.message, self.out]
        )
        self.update()

    def update(self, change=None) -> None:
        try:
            rework = as_number("spot re-work %", self.rework.value, 0, 100) / 100
            res = compare_options(self.type.value, self.hours.value, self.table, self.region, self.count.value, rework)
        except (InputError, MissingPrice) as e:
            self.result = None
            self.message.value = f"<p style='color:#b00020'><b>Cannot compute:</b> {html.escape(str(e))}</p>"
            self.out.clear_output()
            return
        self.result = res
        self.message.value = ""
        if not self.draw:
            return
        from IPython.display import display

        self.out.clear_output(wait=True)
        with self.out:
            display(plot_options(res, self.table))
            print(res.text())

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def calculator(table: PriceTable, region: str = "us-east-1"):
    """The interactive calculator, or a plain note when ipywidgets is not installed."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        print("ipywidgets is not installed: use compare_options(...) (the cell above) instead.")
        return None
    return Calculator(table, region)
