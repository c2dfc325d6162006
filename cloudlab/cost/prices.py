"""The pinned price table (``lessons/03_cost-awareness/prices.yaml``), its loader and its errors."""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PRICE_FILE = ROOT / "lessons" / "03_cost-awareness" / "prices.yaml"
HOURS_PER_MONTH = 730
UNTAGGED = "(untagged)"
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "GLACIER", "DEEP_ARCHIVE")


# ------------------------------------------------------------------ errors
class PriceTableError(ValueError):
    """The price table is malformed; the message names the block and the item."""

    def _render_traceback_(self):
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class MissingPrice(PriceTableError):
    """A resource needs a price the table does not have; the message names every missing item."""

    def __init__(self, missing: list[tuple[str, str, str]], hint: str = ""):
        self.missing = list(missing)
        lines = [f"  - {item!r} in {key} ({region})" for key, region, item in self.missing]
        super().__init__("the price table has no price for:\n" + "\n".join(lines) + ("\n" + hint if hint else ""))


class InputError(ValueError):
    """A calculator input is not usable (not a number, negative, out of range)."""

    def _render_traceback_(self):
        return [f"\x1b[31mInputError\x1b[0m: {self}"]


def as_number(name: str, value, low: float = 0.0, high: float | None = None) -> float:
    """``value`` as a float in [low, high], or :class:`InputError` saying what is wrong with it."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{name} must be a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip().replace(",", "").lstrip("$")
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{name} must be a number, got {value!r}") from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if number < low:
        raise InputError(f"{name} cannot be {'negative' if low == 0 else f'below {low:g}'}: got {number:g}")
    if high is not None and number > high:
        raise InputError(f"{name} cannot be more than {high:g}: got {number:g}")
    return number


# ------------------------------------------------------------------ price table
@dataclass
class PriceBlock:
    key: str
    unit: str
    source: str
    as_of: _dt.date
    regions: dict[str, dict[str, float]]


@dataclass
class PriceTable:
    blocks: dict[str, PriceBlock]
    specs: dict[str, tuple[int, float]]
    currency: str = "USD"
    hours_per_month: int = HOURS_PER_MONTH
    path: str = ""

    def price(self, key: str, region: str, item: str) -> float:
        """One price, or :class:`MissingPrice` naming exactly what is missing."""
        try:
            return self.blocks[key].regions[region][item]
        except KeyError:
            raise MissingPrice([(key, region, item)], self._hint(key, region)) from None

    def has(self, key: str, region: str, item: str) -> bool:
        return item in self.blocks.get(key, PriceBlock(key, "", "", _dt.date.min, {})).regions.get(region, {})

    def _hint(self, key: str, region: str) -> str:
        block = self.blocks.get(key)
        if block is None:
            return f"{self.path or 'The table'} has no block {key!r}; blocks: {', '.join(sorted(self.blocks))}."
        known = block.regions.get(region)
        if known is None:
            return f"{key} has prices for {', '.join(sorted(block.regions))}, not {region}."
        return (
            f"Add it to {self.path or 'the table'} with its source ({block.source}), "
            f"or use one of: {', '.join(sorted(known))}."
        )

    def source(self, key: str) -> str:
        return self.blocks[key].source

    def spec(self, instance_type: str) -> tuple[int, float]:
        """(vCPU, memory GiB) of an instance type."""
        try:
            return self.specs[instance_type]
        except KeyError:
            raise MissingPrice(
                [("instance_types", "any", instance_type)], f"Known types: {', '.join(sorted(self.specs))}."
            ) from None

    def family(self, instance_type: str) -> list[str]:
        """The types of the same family (m5, t3 ...), smallest first."""
        fam = instance_type.split(".")[0]
        same = [t for t in self.specs if t.split(".")[0] == fam]
        return sorted(same, key=lambda t: (self.specs[t][0], self.specs[t][1]))

    def rows(self, key: str, region: str) -> list[tuple[str, float]]:
        return sorted(self.blocks[key].regions.get(region, {}).items(), key=lambda kv: kv[1])

    def sources(self) -> list[tuple[str, str, str, str]]:
        """(key, unit, source, as_of) of every block: what the bill is based on."""
        return [(b.key, b.unit, b.source, b.as_of.isoformat()) for b in self.blocks.values()]


def _date(value, where: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise PriceTableError(f"{where}: as_of must be a date like 2025-06-01, got {value!r}") from None


def parse_prices(data, path: str = "") -> PriceTable:
    """Validate a loaded price document; every problem names the block and the item."""
    where = path or "the price table"
    if not isinstance(data, dict) or not isinstance(data.get("prices"), dict):
        raise PriceTableError(f"{where}: needs a top-level 'prices:' mapping")
    blocks = {}
    for key, raw in data["prices"].items():
        if not isinstance(raw, dict):
            raise PriceTableError(f"{where}: prices.{key} must be a mapping")
        for meta in ("unit", "source", "as_of"):
            if not raw.get(meta):
                raise PriceTableError(f"{where}: prices.{key} has no {meta!r} (every price needs its source and date)")
        if not re.match(r"^https://aws\.amazon\.com/", str(raw["source"])):
            raise PriceTableError(
                f"{where}: prices.{key}.source should be the public AWS pricing page "
                f"(https://aws.amazon.com/...), got {raw['source']!r}"
            )
        regions = {}
        for region, items in raw.items():
            if region in ("unit", "source", "as_of", "note"):
                continue
            if not isinstance(items, dict) or not items:
                raise PriceTableError(f"{where}: prices.{key}.{region} must map items to prices")
            clean = {}
            for item, value in items.items():
                try:
                    clean[str(item)] = as_number(f"prices.{key}.{region}.{item}", value)
                except InputError as e:
                    raise PriceTableError(f"{where}: {e}") from None
            regions[region] = clean
        if not regions:
            raise PriceTableError(f"{where}: prices.{key} has no region with prices")
        blocks[key] = PriceBlock(
            key, str(raw["unit"]), str(raw["source"]), _date(raw["as_of"], f"prices.{key}"), regions
        )
    specs = {}
    types = data.get("instance_types") or {}
    for t, pair in (types.get("specs") or {}).items():
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise PriceTableError(f"{where}: instance_types.specs.{t} must be [vCPU, memory GiB]")
        specs[str(t)] = (int(as_number(f"vCPU of {t}", pair[0], 1)), as_number(f"memory of {t}", pair[1], 0.5))
    hours = int(as_number("hours_per_month", data.get("hours_per_month", HOURS_PER_MONTH), 1, 744))
    return PriceTable(blocks, specs, str(data.get("currency", "USD")), hours, path)


def load_prices(path: str | Path | None = None) -> PriceTable:
    """Load and validate the pinned price table (the course's own by default)."""
    import yaml

    p = Path(path) if path else PRICE_FILE
    try:
        text = p.read_text()
    except OSError as e:
        raise PriceTableError(f"cannot read the price table {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PriceTableError(f"{p} is not valid YAML: {e}") from None
    shown = str(p.relative_to(ROOT)) if p.is_absolute() and ROOT in p.parents else str(p)
    return parse_prices(data, shown)
