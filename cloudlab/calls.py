"""Show the real boto3 calls behind a helper, so a learner can repeat them outside Jupyter.

    with cloudlab.calls.shown():
        ids = lesson03.launch_fleet()

prints each AWS API call the helper made, as the boto3 line you would type (``ec2.run_instances(...)``),
with repeated calls folded into one line. It listens on boto3's default session, which
:func:`cloudlab.connect` protects first thing (:func:`cloudlab.aws.protect`): clients made after that
are seen, whoever makes them. Serves every lesson that hides boto3 calls in a helper (01, 03 ...).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from . import aws


@dataclass
class Call:
    """One API call: the client's service and region, the boto3 method and the parameters it got."""

    service: str
    method: str
    params: dict
    region: str = ""

    def line(self, width: int = 60) -> str:
        args = ", ".join(f"{k}={_short(v, width)}" for k, v in self.params.items())
        return f"{self.service}.{self.method}({args})"


@dataclass
class Recording:
    calls: list[Call] = field(default_factory=list)

    def folded(self) -> list[tuple[Call, int]]:
        """Consecutive calls of the same method folded: (the first call, how many in a row)."""
        out: list[tuple[Call, int]] = []
        for c in self.calls:
            if out and (out[-1][0].service, out[-1][0].method, out[-1][0].region) == (c.service, c.method, c.region):
                out[-1] = (out[-1][0], out[-1][1] + 1)
            else:
                out.append((c, 1))
        return out

    def text(self, limit: int = 12, width: int = 60) -> str:
        import os

        rows = self.folded()
        home = os.environ.get("AWS_DEFAULT_REGION", "")
        lines = [f"boto3 calls made: {len(self.calls)} (cloudlab.client(x) is boto3.client(x) after the safety guard)"]
        for c, n in rows[:limit]:
            where = f"  # in {c.region}" if c.region and c.region != home else ""
            more = f"  (x{n}, the first shown)" if n > 1 else ""
            lines.append(f"  {c.line(width)}{more}{where}")
        if len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more kinds of call")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


def _short(value, width: int) -> str:
    """``repr(value)``, cut to about ``width`` characters (a long list of tags is not the point)."""
    text = repr(value)
    if len(text) <= width:
        return text
    return text[: width - 4] + " ..." + ({"[": "]", "{": "}", "(": ")"}.get(text[0], ""))


@contextlib.contextmanager
def recording():
    """Record the boto3 calls made inside the ``with`` block (nothing is printed)."""
    rec = Recording()

    def listen(model, params, context):
        import botocore

        rec.calls.append(
            Call(
                model.service_model.service_name,
                botocore.xform_name(model.name),
                dict(params or {}),
                str(context.get("client_region") or ""),
            )
        )

    aws.protect()
    aws.CALL_LISTENERS.append(listen)
    try:
        yield rec
    finally:
        aws.CALL_LISTENERS.remove(listen)


@contextlib.contextmanager
def shown(limit: int = 12, width: int = 60):
    """Like :func:`recording`, and print the calls when the block ends (also when it fails)."""
    with recording() as rec:
        try:
            yield rec
        finally:
            print(rec.text(limit, width))
