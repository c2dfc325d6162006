"""Lesson 03's cost model: pure functions, no emulator needed.

* the pinned price table (``lessons/03_cost-awareness/prices.yaml``) and its loader;
* the pretend bill: resources x hours x price, allocated by tags;
* right-sizing from utilization percentiles;
* purchase options (on-demand, spot, reserved, savings plan) and their break-even;
* what S3 lifecycle rules do to a year of storage cost;
* plots (matplotlib; each returns a closed figure, so a notebook shows it exactly once).

Everything that talks to the lab lives in :mod:`cloudlab.lesson03`.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
        super().__init__("the price table has no price for:\n" + "\n".join(lines) +
                         ("\n" + hint if hint else ""))


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
        return (f"Add it to {self.path or 'the table'} with its source ({block.source}), "
                f"or use one of: {', '.join(sorted(known))}.")

    def source(self, key: str) -> str:
        return self.blocks[key].source

    def spec(self, instance_type: str) -> tuple[int, float]:
        """(vCPU, memory GiB) of an instance type."""
        try:
            return self.specs[instance_type]
        except KeyError:
            raise MissingPrice([("instance_types", "any", instance_type)],
                               f"Known types: {', '.join(sorted(self.specs))}.") from None

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
            raise PriceTableError(f"{where}: prices.{key}.source should be the public AWS pricing page "
                                  f"(https://aws.amazon.com/...), got {raw['source']!r}")
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
        blocks[key] = PriceBlock(key, str(raw["unit"]), str(raw["source"]), _date(raw["as_of"], f"prices.{key}"), regions)
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


# ------------------------------------------------------------------ the bill
@dataclass
class LineItem:
    kind: str           # instance, volume, snapshot, public_ip, load_balancer, alarm
    id: str
    name: str
    region: str
    team: str
    env: str
    item: str           # what is priced: m5.large, gp3, address ...
    quantity: float     # GB for storage, 1 for the rest
    hours: float
    unit_price: float
    cost: float
    price_key: str = ""


# kind -> (price block, what the item is, quantity field, price is per month instead of per hour)
_PRICING = {
    "instance": ("ec2.on_demand", "type", None, False),
    "volume": ("ebs.volume", "type", "size_gb", True),
    "snapshot": ("ebs.snapshot", None, "size_gb", True),
    "public_ip": ("vpc.public_ipv4", None, None, False),
    "load_balancer": ("elb.application", None, None, False),
    "alarm": ("cloudwatch.alarm", None, None, True),
}
_DEFAULT_ITEM = {"snapshot": "standard", "public_ip": "address", "load_balancer": "hour", "alarm": "standard"}


def price_resources(resources: list[dict], table: PriceTable, hours: float | None = None) -> list[LineItem]:
    """Price each resource for ``hours`` (a month by default): quantity x hours x unit price.

    A resource is a dict: kind, id, name, region, tags, and type / size_gb where they apply.
    Every missing price is collected first, so the error lists them all at once.
    """
    hours = as_number("hours", table.hours_per_month if hours is None else hours)
    missing, lines = [], []
    for r in resources:
        kind = r["kind"]
        if kind not in _PRICING:
            raise PriceTableError(f"no pricing rule for a resource of kind {kind!r} ({r.get('id')})")
        key, item_field, qty_field, monthly = _PRICING[kind]
        item = r.get(item_field) if item_field else _DEFAULT_ITEM[kind]
        region = r.get("region", "us-east-1")
        if not table.has(key, region, str(item)):
            missing.append((key, region, str(item)))
            continue
        unit = table.price(key, region, str(item))
        qty = float(r.get(qty_field, 0)) if qty_field else 1.0
        cost = qty * unit * (hours / table.hours_per_month if monthly else hours)
        tags = r.get("tags") or {}
        lines.append(LineItem(kind, r["id"], r.get("name", ""), region, tags.get("team") or UNTAGGED,
                              tags.get("env") or UNTAGGED, str(item), qty, hours, unit, cost, key))
    if missing:
        uniq = list(dict.fromkeys(missing))
        hint = (f"Add {'it' if len(uniq) == 1 else 'them'} to {table.path or 'the price table'} with a source and date, "
                "or check the resource's type for a typo.")
        raise MissingPrice(uniq, hint)
    return lines


def total(lines: list[LineItem]) -> float:
    return sum(x.cost for x in lines)


def allocate(lines: list[LineItem], by=("team", "env")) -> dict[tuple, float]:
    """Cost per tag combination, e.g. {('web', 'prod'): 312.5, ('(untagged)', 'dev'): 61.0}."""
    out: dict[tuple, float] = defaultdict(float)
    for x in lines:
        out[tuple(getattr(x, k) for k in by)] += x.cost
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def by_kind(lines: list[LineItem]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for x in lines:
        out[x.kind] += x.cost
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def format_table(rows: list[tuple], headers: tuple, money: tuple[int, ...] = ()) -> str:
    """A plain-text table (deterministic, so notebook outputs can be compared)."""
    def fmt(i, v):
        if i in money:
            return f"{v:,.2f}"
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)
    cells = [tuple(headers)] + [tuple(fmt(i, v) for i, v in enumerate(r)) for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = set(money)
    line = lambda r: "  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(cells[0]), "  ".join("-" * x for x in w)] + [line(r) for r in cells[1:]])


def bill_text(lines: list[LineItem]) -> str:
    rows = [(x.name or x.id, x.kind, x.region, x.item, x.team, x.env, x.cost)
            for x in sorted(lines, key=lambda x: (-x.cost, x.name, x.id))]
    rows.append(("TOTAL", "", "", "", "", "", total(lines)))
    return format_table(rows, ("resource", "kind", "region", "priced as", "team", "env", "USD/month"), money=(6,))


# ------------------------------------------------------------------ right-sizing
def percentile(values, q: float = 95.0) -> float | None:
    """The q-th percentile (linear interpolation); None for no data."""
    vals = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not vals:
        return None
    q = as_number("percentile", q, 0, 100)
    pos = (len(vals) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


@dataclass
class Recommendation:
    current: str
    recommended: str
    cpu_p95: float | None
    mem_p95: float | None
    projected_cpu: float | None
    projected_mem: float | None
    monthly_now: float
    monthly_new: float
    reason: str
    id: str = ""
    name: str = ""

    @property
    def saving(self) -> float:
        return self.monthly_now - self.monthly_new


def recommend_size(instance_type: str, cpu_p95: float | None, mem_p95: float | None, table: PriceTable,
                   region: str = "us-east-1", target: float = 70.0) -> Recommendation:
    """The smallest type of the same family whose projected p95 CPU and memory stay under ``target`` %.

    Projection: utilization scales with capacity (p95 x old vCPU / new vCPU). Without memory data
    (no CloudWatch agent) we do not shrink memory below what runs today: we cannot see it.
    """
    target = as_number("target utilization", target, 1, 100)
    vcpu, mem = table.spec(instance_type)
    now = table.price("ec2.on_demand", region, instance_type) * table.hours_per_month
    if cpu_p95 is None:
        return Recommendation(instance_type, instance_type, None, mem_p95, None, None, now, now,
                              "no CPU data: keep it until there is a week of metrics")
    choice, proj, blind = instance_type, (cpu_p95, mem_p95), False
    for cand in table.family(instance_type):
        c_vcpu, c_mem = table.spec(cand)
        if (c_vcpu, c_mem) >= (vcpu, mem):
            break
        p_cpu = cpu_p95 * vcpu / c_vcpu
        if mem_p95 is None:
            ok_mem, p_mem = c_mem >= mem, None
            blind = blind or (p_cpu <= target and not ok_mem)
        else:
            p_mem = mem_p95 * mem / c_mem
            ok_mem = p_mem <= target
        if p_cpu <= target and ok_mem and table.has("ec2.on_demand", region, cand):
            choice, proj = cand, (p_cpu, p_mem)
            break
    new = table.price("ec2.on_demand", region, choice) * table.hours_per_month
    if choice == instance_type:
        busiest = "memory" if (mem_p95 or 0) > cpu_p95 else "CPU"
        reason = f"keep: a smaller {instance_type.split('.')[0]} would run {busiest} above {target:g}%"
        if table.family(instance_type)[0] == instance_type:
            reason = "keep: already the smallest size of its family"
        elif blind:
            reason = "keep: CPU would fit a smaller size, but there is no memory data (no CloudWatch agent)"
    else:
        reason = f"p95 CPU {cpu_p95:.0f}%" + (f", memory {mem_p95:.0f}%" if mem_p95 is not None else "") + \
                 f" -> about {proj[0]:.0f}% CPU on {choice}"
    return Recommendation(instance_type, choice, cpu_p95, mem_p95, proj[0], proj[1], now, new, reason)


def rightsizing_text(recs: list[Recommendation]) -> str:
    rows = [(r.name or r.id, r.current, "-" if r.cpu_p95 is None else f"{r.cpu_p95:.0f}%",
             "-" if r.mem_p95 is None else f"{r.mem_p95:.0f}%", r.recommended, r.monthly_now, r.monthly_new, r.saving)
            for r in recs]
    rows.append(("TOTAL", "", "", "", "", sum(r.monthly_now for r in recs), sum(r.monthly_new for r in recs),
                 sum(r.saving for r in recs)))
    return format_table(rows, ("instance", "type", "p95 CPU", "p95 mem", "recommended", "USD/month now", "after",
                               "saving"), money=(5, 6, 7))


# ------------------------------------------------------------------ purchase options
OPTIONS = ("on-demand", "spot", "savings plan 1y", "reserved 1y")
_OPTION_KEY = {"on-demand": "ec2.on_demand", "spot": "ec2.spot", "savings plan 1y": "ec2.savings_plan_1y",
               "reserved 1y": "ec2.reserved_1y"}
RISKS = {
    "on-demand": "no commitment; you pay only for the hours you run",
    "spot": "can be taken back with a 2-minute warning: only for work that can stop and restart",
    "savings plan 1y": "you commit to a $/hour spend for a year, used or not; any type or region",
    "reserved 1y": "you pay every hour of the year, used or not; one type in one region",
}


@dataclass
class OptionsResult:
    instance_type: str
    region: str
    hours: float
    count: int
    rework: float
    monthly: dict[str, float]
    break_even_hours: dict[str, float]
    hourly: dict[str, float] = field(default_factory=dict)

    @property
    def cheapest(self) -> str:
        return min(self.monthly, key=self.monthly.get)

    def text(self) -> str:
        od = self.monthly["on-demand"]
        rows = []
        for o in OPTIONS:
            be = self.break_even_hours.get(o)
            rows.append((o, self.monthly[o], (od - self.monthly[o]),
                         "-" if be is None else f"{be:.0f} h", RISKS[o]))
        head = (f"{self.count} x {self.instance_type} in {self.region}, {self.hours:g} h/month"
                f" (spot re-work {self.rework:.0%}); cheapest: {self.cheapest}")
        return head + "\n" + format_table(rows, ("option", "USD/month", "vs on-demand", "break-even", "risk"),
                                          money=(1, 2))


def option_cost(option: str, hourly: float, hours: float, hpm: int, rework: float = 0.0) -> float:
    """Monthly cost of one instance: pay-per-hour options scale with use, commitments do not."""
    if option == "on-demand":
        return hourly * hours
    if option == "spot":
        return hourly * hours * (1 + rework)
    return hourly * hpm  # reserved and savings plans: every hour of the term


def compare_options(instance_type: str, hours_per_month, table: PriceTable, region: str = "us-east-1",
                    count=1, spot_rework=0.10) -> OptionsResult:
    """Monthly cost of each purchase option for ``count`` instances used ``hours_per_month`` hours.

    The plain-function path of the calculator (CI and the notebooks call this). Inputs may be
    strings from a text box; bad ones raise :class:`InputError` with a plain message.
    """
    hpm = table.hours_per_month
    hours = as_number("hours per month", hours_per_month, 0, hpm)
    n = as_number("number of instances", count, 1)
    if n != int(n):
        raise InputError(f"number of instances must be a whole number, got {count!r}")
    rework = as_number("spot re-work share", spot_rework, 0, 1)
    hourly = {o: table.price(_OPTION_KEY[o], region, instance_type) for o in OPTIONS}
    monthly = {o: int(n) * option_cost(o, hourly[o], hours, hpm, rework) for o in OPTIONS}
    be = {o: hpm * hourly[o] / hourly["on-demand"] for o in ("savings plan 1y", "reserved 1y")}
    return OptionsResult(instance_type, region, hours, int(n), rework, monthly, be, hourly)


def break_even_hours(on_demand_hourly, committed_hourly, hours_per_month: int = HOURS_PER_MONTH) -> float:
    """Hours of use per month above which a commitment is cheaper than on-demand."""
    od = as_number("on-demand price", on_demand_hourly)
    if od == 0:
        raise InputError("on-demand price must be above zero to compare against it")
    return hours_per_month * as_number("committed price", committed_hourly) / od


# ------------------------------------------------------------------ S3 lifecycle
@dataclass
class LifecyclePlan:
    transitions: list[tuple[int, str]]   # (age in days, storage class), sorted
    expire_days: int | None

    def storage_class_at(self, age_days: float) -> str | None:
        """The class an object of this age is in; None once expired."""
        if self.expire_days is not None and age_days >= self.expire_days:
            return None
        cls = "STANDARD"
        for day, c in self.transitions:
            if age_days >= day:
                cls = c
        return cls


def plan_from_rules(rules: list[dict] | None, prefix: str = "") -> LifecyclePlan:
    """The lifecycle of objects under ``prefix``, from rules as S3 returns them."""
    transitions: dict[int, str] = {}
    expire = None
    for rule in rules or []:
        if rule.get("Status") != "Enabled":
            continue
        rp = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", "")) or ""
        if "And" in (rule.get("Filter") or {}):
            rp = rule["Filter"]["And"].get("Prefix", "") or ""
        if not prefix.startswith(rp):
            continue
        for t in rule.get("Transitions", []):
            if "Days" in t:
                transitions[int(t["Days"])] = t["StorageClass"]
        exp = (rule.get("Expiration") or {}).get("Days")
        if exp is not None:
            expire = int(exp) if expire is None else min(expire, int(exp))
    return LifecyclePlan(sorted(transitions.items()), expire)


@dataclass
class StorageProjection:
    months: list[int]
    without: list[float]
    with_rules: list[float]
    gb_by_class: list[dict[str, float]]

    @property
    def saving(self) -> float:
        return sum(self.without) - sum(self.with_rules)


def project_storage(new_gb_per_month, plan: LifecyclePlan, table: PriceTable, region: str = "us-east-1",
                    months: int = 12, objects_per_gb=100) -> StorageProjection:
    """Monthly S3 cost for ``months`` months, with and without the lifecycle ``plan``.

    Each month adds ``new_gb_per_month`` of new objects (a cohort); at the end of month m a cohort
    that arrived in month k is (m - k) x 30 days old. Transitions also cost a fee per 1,000 objects.
    """
    g = as_number("new GB per month", new_gb_per_month)
    per_gb = as_number("objects per GB", objects_per_gb)
    months = int(as_number("months", months, 1, 120))
    price = {c: table.price("s3.storage", region, c) for c in STORAGE_CLASSES}
    without, with_rules, classes = [], [], []
    for m in range(months):
        without.append(g * (m + 1) * price["STANDARD"])
        gb: dict[str, float] = defaultdict(float)
        fee = 0.0
        for k in range(m + 1):
            age = (m - k) * 30
            cls = plan.storage_class_at(age)
            if cls is not None:
                gb[cls] += g
            before = plan.storage_class_at(age - 30) if age > 0 else "STANDARD"
            if cls is not None and cls != before and cls != "STANDARD":
                fee += g * per_gb / 1000 * table.price("s3.transition", region, cls)
        with_rules.append(sum(v * price[c] for c, v in gb.items()) + fee)
        classes.append(dict(gb))
    return StorageProjection(list(range(1, months + 1)), without, with_rules, classes)


# ------------------------------------------------------------------ plots
def _plt():
    import matplotlib.pyplot as plt
    return plt


def plot_allocation(alloc: dict[tuple, float], title: str = "Monthly run rate by team and env"):
    """Stacked bars: one bar per team, one colour per env."""
    plt = _plt()
    teams = sorted({k[0] for k in alloc}, key=lambda t: (t == UNTAGGED, t))
    envs = sorted({k[1] for k in alloc}, key=lambda e: (e == UNTAGGED, e))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bottom = [0.0] * len(teams)
    for env in envs:
        vals = [alloc.get((t, env), 0.0) for t in teams]
        ax.bar(teams, vals, bottom=bottom, label=env)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, b in enumerate(bottom):
        ax.text(i, b, f"${b:,.0f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("USD per month")
    ax.set_title(title)
    ax.legend(title="env", fontsize=8)
    ax.set_ylim(0, max(bottom + [1.0]) * 1.15)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_utilization(series: dict[str, list[float]], title: str, limit: float | None = 70.0):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, vals in series.items():
        ax.plot(range(len(vals)), vals, label=name, linewidth=1)
    if limit is not None:
        ax.axhline(limit, color="grey", linestyle="--", linewidth=1)
    ax.set_ylim(0, 100)
    ax.set_xlabel("hour (0 = the oldest point, on the right: now)")
    ax.set_ylabel("%")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_rightsizing(recs: list[Recommendation]):
    plt = _plt()
    names = [r.name or r.id for r in recs]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = range(len(recs))
    ax.bar([i - 0.2 for i in x], [r.monthly_now for r in recs], width=0.4, label="today")
    ax.bar([i + 0.2 for i in x], [r.monthly_new for r in recs], width=0.4, label="right-sized")
    ax.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax.set_ylabel("USD per month")
    ax.set_title(f"Right-sizing saves ${sum(r.saving for r in recs):,.0f} per month")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_options(res: OptionsResult, table: PriceTable):
    """Cost per month against hours used, one line per option, with the chosen hours marked."""
    plt = _plt()
    hpm = table.hours_per_month
    xs = list(range(0, hpm + 1, 10)) + [hpm]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for o in OPTIONS:
        ys = [res.count * option_cost(o, res.hourly[o], h, hpm, res.rework) for h in xs]
        ax.plot(xs, ys, label=f"{o}: ${res.monthly[o]:,.0f}")
    ax.axvline(res.hours, color="black", linestyle=":", linewidth=1)
    for o, h in res.break_even_hours.items():
        ax.plot([h], [res.count * res.hourly["on-demand"] * h], "o", color="grey")
    ax.set_xlabel("hours used per month")
    ax.set_ylabel("USD per month")
    ax.set_title(f"{res.count} x {res.instance_type}: cheapest at {res.hours:g} h is {res.cheapest}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_storage(proj: StorageProjection, title: str = "S3 cost over 12 months"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(proj.months, proj.without, marker="o", label=f"all STANDARD: ${sum(proj.without):,.0f}/year")
    ax.plot(proj.months, proj.with_rules, marker="o", label=f"with lifecycle rules: ${sum(proj.with_rules):,.0f}/year")
    ax.set_xlabel("month")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("USD per month")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig
