"""Egress: what moving data out of a cloud costs, from the dated price file (lesson 11).

``lessons/11_multi-cloud/egress-prices.toml`` holds each provider's internet egress tiers with the date they were
read and where. :func:`monthly_cost` prices one month's volume: the free allowance first, then each tier's price
on the GB inside that tier only. The source cloud pays; ingress is free everywhere.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..cost.prices import as_number

PRICE_FILE = Path(__file__).resolve().parent.parent.parent / "lessons" / "11_multi-cloud" / "egress-prices.toml"
GB_PER_TB = 1024


@dataclass(frozen=True)
class Tier:
    lower_gb: float
    upper_gb: float  # inf for the last tier
    usd_per_gb: float


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    source: str
    free_gb: float
    tiers: tuple[Tier, ...]


def load(path: Path = PRICE_FILE) -> tuple[dict, dict[str, Provider]]:
    """(the file's header: checked, currency; {provider key: Provider})."""
    data = tomllib.loads(path.read_text())
    out = {}
    for key, p in data["providers"].items():
        tiers, lower = [], 0.0
        for t in p["tiers"]:
            upper = float(t.get("up_to_gb", float("inf")))
            tiers.append(Tier(lower, upper, float(t["usd_per_gb"])))
            lower = upper
        out[key] = Provider(key, p["name"], p["source"], float(p.get("free_gb", 0)), tuple(tiers))
    return {k: v for k, v in data.items() if k != "providers"}, out


def monthly_cost(provider: str, gb) -> float:
    """USD for ``gb`` GB leaving ``provider`` (aws, gcp, azure) in one month."""
    gb = as_number("gb", gb)
    _, providers = load()
    if provider not in providers:
        raise KeyError(f"unknown provider {provider!r}; the price file has {', '.join(providers)}")
    p = providers[provider]
    return tiered(gb, p.free_gb, p.tiers)


def tiered(gb: float, free_gb: float, tiers) -> float:
    """USD for ``gb`` through ``tiers`` (Tier: lower_gb, upper_gb, usd_per_gb), the first ``free_gb`` free."""
    total = 0.0
    for t in tiers:
        start = max(t.lower_gb, free_gb)
        inside = min(gb, t.upper_gb) - start
        if inside > 0:
            total += inside * t.usd_per_gb
    return round(total, 2)


def move_cost(source: str, destination: str, gb) -> float:
    """A one-time move of ``gb`` GB in one month from ``source`` to ``destination``: the source's egress."""
    _, providers = load()
    if destination not in providers:
        raise KeyError(f"unknown provider {destination!r}")
    return monthly_cost(source, gb)


def tier_table():
    from ..tables import Table

    header, providers = load()
    rows = []
    for p in providers.values():
        free = f"first {p.free_gb:g} GB free" if p.free_gb else "no free allowance modelled"
        for t in p.tiers:
            upto = "and above" if t.upper_gb == float("inf") else f"{t.upper_gb / GB_PER_TB:g} TB"
            rows.append((p.key, f"{t.lower_gb / GB_PER_TB:g} TB", upto, t.usd_per_gb, free))
    return Table(
        ("from", "from volume", "up to", "USD/GB", "free"),
        rows,
        title=f"Internet egress list prices (read {header['checked']}; sources in the price file)",
    )


def comparison(volumes_tb=(1, 10, 50, 200)):
    from ..tables import Table

    _, providers = load()
    rows = [[f"{tb:g} TB"] + [f"{monthly_cost(k, tb * GB_PER_TB):,.0f}" for k in providers] for tb in volumes_tb]
    return Table(["moved in a month", *(f"out of {k} (USD)" for k in providers)], rows)
