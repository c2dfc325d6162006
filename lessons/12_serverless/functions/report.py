"""The report function: the mean of some values (almost every request) or a small chart of them (a rare one).

It imports numpy and matplotlib at module level, so every new execution environment pays for them in INIT,
also the ones that will only ever compute a mean."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def handler(event, context):
    values = np.array(event.get("values", [1, 2, 3]), dtype=float)
    if event.get("chart"):
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot(values)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return {"png_bytes": len(buf.getvalue())}
    return {"mean": float(values.mean())}
