"""The services map (lesson 11): the same building blocks on AWS, Google Cloud and Azure, from a data file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..tables import Table

SERVICES_FILE = Path(__file__).resolve().parent.parent.parent / "lessons" / "11_multi-cloud" / "services.toml"


def load(path: Path = SERVICES_FILE) -> list[dict]:
    return tomllib.loads(path.read_text())["service"]


def table(area: str | None = None) -> Table:
    rows = [
        (s["area"], s["block"], s["aws"], s["gcp"], s["azure"], s["local"])
        for s in load()
        if area is None or s["area"] == area
    ]
    return Table(
        ("area", "building block", "AWS", "Google Cloud", "Azure", "here"),
        rows,
        title="The services map (lessons/11_multi-cloud/services.toml)",
    )
