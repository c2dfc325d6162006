"""The cost model: the pretend bill, right-sizing, purchase options and S3 lifecycle projections."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..tables import Table
from .prices import (
    HOURS_PER_MONTH,
    STORAGE_CLASSES,
    UNTAGGED,
    InputError,
    MissingPrice,
    PriceTable,
    PriceTableError,
    as_number,
)


# ------------------------------------------------------------------ the bill
@dataclass
class LineItem:
    kind: str  # instance, volume, snapshot, public_ip, load_balancer, alarm
    id: str
    name: str
    region: str
    team: str
    env: str
    item: str  # what is priced: m5.large, gp3, address ...
    quantity: float  # GB for storage, 1 for the rest
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
    "alarm": ("cloudwatch.alarm", "resolution", None, True),  # high_resolution when the period is 10 or 30 s
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
        item = (r.get(item_field) if item_field else None) or _DEFAULT_ITEM.get(kind)
        region = r.get("region", "us-east-1")
        if not table.has(key, region, str(item)):
            missing.append((key, region, str(item)))
            continue
        unit = table.price(key, region, str(item))
        qty = float(r.get(qty_field, 0)) if qty_field else 1.0
        cost = qty * unit * (hours / table.hours_per_month if monthly else hours)
        tags = r.get("tags") or {}
        lines.append(
            LineItem(
                kind,
                r["id"],
                r.get("name", ""),
                region,
                tags.get("team") or UNTAGGED,
                tags.get("env") or UNTAGGED,
                str(item),
                qty,
                hours,
                unit,
                cost,
                key,
            )
        )
    if missing:
        uniq = list(dict.fromkeys(missing))
        hint = (
            f"Add {'it' if len(uniq) == 1 else 'them'} to {table.path or 'the price table'} with a source and date, "
            "or check the resource's type for a typo."
        )
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


def format_table(rows: list[tuple], headers: tuple, money: tuple[int, ...] = (), title: str | None = None) -> str:
    """A table as plain text (deterministic, so notebook outputs can be compared) that a notebook shows as HTML."""

    def fmt(i, v):
        if i in money:
            return f"{v:,.2f}"
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)

    cells = [tuple(fmt(i, v) for i, v in enumerate(r)) for r in rows]
    return Table(headers, cells, title=title, right=money).text()


def bill_text(lines: list[LineItem]) -> str:
    rows = [
        (x.name or x.id, x.kind, x.region, x.item, x.team, x.env, x.cost)
        for x in sorted(lines, key=lambda x: (-x.cost, x.name, x.id))
    ]
    rows.append(("TOTAL", "", "", "", "", "", total(lines)))
    return format_table(rows, ("resource", "kind", "region", "priced as", "team", "env", "USD/month"), money=(6,))


# ------------------------------------------------------------------ right-sizing
# Burstable families: their CPU is sold as a baseline share of each vCPU plus credits to burst above it.
# Baseline per vCPU, % (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/burstable-credits-baseline-concepts.html);
# in unlimited mode (the T3 default) an average above the baseline over 24 h costs $0.05 per vCPU-hour extra (Linux).
BURSTABLE_BASELINE = {
    "t3.nano": 5,
    "t3.micro": 10,
    "t3.small": 20,
    "t3.medium": 20,
    "t3.large": 30,
    "t3.xlarge": 40,
    "t3.2xlarge": 40,
}
BURSTABLE_FAMILIES = ("t2", "t3", "t3a", "t4g")


def is_burstable(instance_type: str) -> bool:
    return str(instance_type).split(".")[0] in BURSTABLE_FAMILIES


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
    region: str = ""

    @property
    def saving(self) -> float:
        return self.monthly_now - self.monthly_new


def recommend_size(
    instance_type: str,
    cpu_p95: float | None,
    mem_p95: float | None,
    table: PriceTable,
    region: str = "us-east-1",
    target: float = 70.0,
) -> Recommendation:
    """The smallest type of the same family whose projected p95 CPU and memory stay under ``target`` %.

    Projection: utilization scales with capacity (p95 x old vCPU / new vCPU). Without memory data
    (no CloudWatch agent) we do not shrink memory below what runs today: we cannot see it.

    Burstable types (t2, t3, t3a, t4g) are kept, with the reason: every t3 up to large has 2 vCPUs, so
    this projection would call t3.micro and t3.large equal on CPU, while what they really differ in is the
    baseline (10 % vs 30 % per vCPU) and the credits to burst above it. Size them from the 24-hour average
    against the baseline and from CPUSurplusCreditsCharged, which this model does not read.
    """
    target = as_number("target utilization", target, 1, 100)
    vcpu, mem = table.spec(instance_type)
    now = table.price("ec2.on_demand", region, instance_type) * table.hours_per_month
    if is_burstable(instance_type):
        base = BURSTABLE_BASELINE.get(instance_type)
        return Recommendation(
            instance_type,
            instance_type,
            cpu_p95,
            mem_p95,
            cpu_p95,
            mem_p95,
            now,
            now,
            "keep: burstable"
            + (f" (baseline {base} % of each vCPU)" if base else "")
            + ": size it from its 24-hour average CPU and CPU credits, not from a p95 target",
        )
    if cpu_p95 is None:
        return Recommendation(
            instance_type,
            instance_type,
            None,
            mem_p95,
            None,
            None,
            now,
            now,
            "no CPU data: keep it until there is a week of metrics",
        )
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
        reason = (
            f"p95 CPU {cpu_p95:.0f}%"
            + (f", memory {mem_p95:.0f}%" if mem_p95 is not None else "")
            + f" -> about {proj[0]:.0f}% CPU on {choice}"
        )
    return Recommendation(instance_type, choice, cpu_p95, mem_p95, proj[0], proj[1], now, new, reason)


def rightsizing_text(recs: list[Recommendation]) -> str:
    rows = [
        (
            r.name or r.id,
            r.current,
            "-" if r.cpu_p95 is None else f"{r.cpu_p95:.0f}%",
            "-" if r.mem_p95 is None else f"{r.mem_p95:.0f}%",
            r.recommended,
            r.monthly_now,
            r.monthly_new,
            r.saving,
        )
        for r in recs
    ]
    rows.append(
        (
            "TOTAL",
            "",
            "",
            "",
            "",
            sum(r.monthly_now for r in recs),
            sum(r.monthly_new for r in recs),
            sum(r.saving for r in recs),
        )
    )
    return format_table(
        rows,
        ("instance", "type", "p95 CPU", "p95 mem", "recommended", "USD/month now", "after", "saving"),
        money=(5, 6, 7),
    )


# ------------------------------------------------------------------ purchase options
OPTIONS = ("on-demand", "spot", "savings plan 1y", "reserved 1y")
_OPTION_KEY = {
    "on-demand": "ec2.on_demand",
    "spot": "ec2.spot",
    "savings plan 1y": "ec2.savings_plan_1y",
    "reserved 1y": "ec2.reserved_1y",
}
RISKS = {
    "on-demand": "no commitment; you pay only for the hours you run",
    "spot": "can be taken back with a 2-minute warning: only for work that can stop and restart",
    "savings plan 1y": "compute plan: $/hour committed for a year, used or not; any family, size, region",
    "reserved 1y": "every hour of the year, used or not; regional RI: its family and region, any size",
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
            rows.append((o, self.monthly[o], (od - self.monthly[o]), "-" if be is None else f"{be:.0f} h", RISKS[o]))
        head = (
            f"{self.count} x {self.instance_type} in {self.region}, {self.hours:g} h/month"
            f" (spot re-work {self.rework:.0%}); cheapest: {self.cheapest}"
        )
        return format_table(
            rows, ("option", "USD/month", "vs on-demand", "break-even", "risk"), money=(1, 2), title=head
        )


def option_cost(option: str, hourly: float, hours: float, hpm: int, rework: float = 0.0) -> float:
    """Monthly cost of one instance: pay-per-hour options scale with use, commitments do not."""
    if option == "on-demand":
        return hourly * hours
    if option == "spot":
        return hourly * hours * (1 + rework)
    return hourly * hpm  # reserved and savings plans: every hour of the term


def compare_options(
    instance_type: str, hours_per_month, table: PriceTable, region: str = "us-east-1", count=1, spot_rework=0.10
) -> OptionsResult:
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
    transitions: list[tuple[int, str]]  # (age in days, storage class), sorted
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


def project_storage(
    new_gb_per_month,
    plan: LifecyclePlan,
    table: PriceTable,
    region: str = "us-east-1",
    months: int = 12,
    objects_per_gb=100,
) -> StorageProjection:
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
