"""Small statistics the lessons share. One convention for percentiles, everywhere in the course:
``percentile(values, 95)`` takes q in 0-100 and interpolates linearly between the two nearest
values (numpy's default). Serves lessons 03 (right-sizing), 04 (latency) and later ones.
"""

from __future__ import annotations

import math


def percentile(values, q: float = 95.0) -> float | None:
    """The q-th percentile (q from 0 to 100, linear interpolation) of ``values``; None when there are none.

    Values need not be sorted; ``None`` and NaN are ignored.
    """
    try:
        q = float(q)
    except (TypeError, ValueError):
        raise ValueError(f"the percentile must be a number from 0 to 100, not {q!r}") from None
    if not 0 <= q <= 100:
        raise ValueError(f"the percentile must be from 0 to 100, not {q:g}")
    if 0 < q < 1:
        raise ValueError(
            f"percentile({q:g}) asks for the {q:g}th percentile, almost the minimum: "
            f"q is in percent, so the 95th is percentile(values, 95)"
        )
    vals = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not vals:
        return None
    pos = (len(vals) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)
