"""Where should a service run? Lambda, a container service (ECS on Fargate), Kubernetes (EKS) or VMs, priced.

The prices come from the pinned tables: lesson 12's (``lessons/12_serverless/prices.yaml``: Lambda, Fargate,
EKS, API Gateway, RDS) and lesson 03's (EC2 instances, the load balancer). The model is deliberately small and
says what it assumes:

* Lambda costs requests + GB-seconds (memory in MB / 1024 x billed seconds); API Gateway's HTTP API in front;
* an always-on target is sized for the PEAK (average requests per second x ``peak_to_average``) with at least
  two copies in two zones, runs every hour of the month, and has a load balancer in front (its hourly price;
  capacity units left out);
* ``rps_per_vcpu`` is what one vCPU of the service handles at its target utilisation: measure it (lesson 04's
  load test), do not guess it.

Data transfer, logs, NAT and the people who run each option are not in it: the lesson lists them. Serves
lesson 12 (and any later cost review).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from .prices import PRICE_FILE, ROOT, PriceTable, load_prices

LESSON12_PRICES = ROOT / "lessons" / "12_serverless" / "prices.yaml"
REGION = "us-east-1"
TARGETS = ("Lambda", "ECS on Fargate", "EKS on EC2", "EC2 VMs")


@functools.lru_cache(maxsize=1)
def prices() -> PriceTable:
    """Lesson 03's table and lesson 12's, as one table (blocks by key; lesson 12 adds, never overrides)."""
    base, more = load_prices(PRICE_FILE), load_prices(LESSON12_PRICES)
    clash = set(base.blocks) & set(more.blocks)
    if clash:
        raise ValueError(f"{LESSON12_PRICES.name} repeats blocks of {PRICE_FILE.name}: {sorted(clash)}")
    return PriceTable({**base.blocks, **more.blocks}, base.specs, base.currency, base.hours_per_month, "both tables")


def lambda_monthly(
    requests: float, billed_ms: float, memory_mb: float, table: PriceTable | None = None, arch: str = "x86_64"
) -> float:
    """Lambda's monthly bill: ``requests`` invokes of ``billed_ms`` each (the average) at ``memory_mb``."""
    t = table or prices()
    gb_seconds = requests * (billed_ms / 1000.0) * (memory_mb / 1024.0)
    return requests / 1e6 * t.price("lambda.requests", REGION, "per_million") + gb_seconds * t.price(
        "lambda.duration", REGION, arch
    )


def fargate_monthly(tasks: int, vcpu: float, memory_gb: float, table: PriceTable | None = None) -> float:
    t = table or prices()
    hourly = vcpu * t.price("fargate.ondemand", REGION, "vcpu_hour") + memory_gb * t.price(
        "fargate.ondemand", REGION, "gb_hour"
    )
    return tasks * hourly * t.hours_per_month


def ec2_monthly(instance_type: str, count: int, table: PriceTable | None = None) -> float:
    t = table or prices()
    return count * t.price("ec2.on_demand", REGION, instance_type) * t.hours_per_month


def balancer_monthly(table: PriceTable | None = None) -> float:
    t = table or prices()
    return t.price("elb.application", REGION, "hour") * t.hours_per_month


@dataclass(frozen=True)
class Traffic:
    """A service's traffic and shape: what every target is priced for."""

    requests_per_month: float
    avg_ms: float = 60.0  # billed time of one request in the function
    memory_mb: int = 512  # the function's memory setting
    peak_to_average: float = 5.0  # the busiest minute, as a multiple of the month's average
    rps_per_vcpu: float = 40.0  # requests per second one vCPU serves at its target utilisation
    task_vcpu: float = 0.5  # one Fargate task / pod
    task_gb: float = 1.0
    node_type: str = "m5.large"  # EKS worker nodes
    vm_type: str = "c5.large"  # the VM option

    @property
    def peak_rps(self) -> float:
        return self.requests_per_month / (30 * 24 * 3600) * self.peak_to_average


@dataclass
class Priced:
    target: str
    usd: float
    sized: str  # what was priced, in words


def price_all(traffic: Traffic, table: PriceTable | None = None) -> list[Priced]:
    """Every target's monthly cost for ``traffic`` (see the module's assumptions)."""
    t = table or prices()
    tr = traffic
    out = []
    lam = lambda_monthly(tr.requests_per_month, tr.avg_ms, tr.memory_mb, t)
    api = tr.requests_per_month / 1e6 * t.price("apigateway.http", REGION, "per_million")
    out.append(Priced("Lambda", lam + api, f"{tr.memory_mb} MB x {tr.avg_ms:g} ms per request + HTTP API"))
    vcpus = tr.peak_rps / tr.rps_per_vcpu
    tasks = max(2, math.ceil(vcpus / tr.task_vcpu))
    lb = balancer_monthly(t)
    fg = fargate_monthly(tasks, tr.task_vcpu, tr.task_gb, t) + lb
    out.append(Priced("ECS on Fargate", fg, f"{tasks} tasks of {tr.task_vcpu:g} vCPU / {tr.task_gb:g} GB + ALB"))
    node_vcpu, node_gb = t.spec(tr.node_type)
    per_node = max(1, min(int((node_vcpu - 0.25) // tr.task_vcpu), int((node_gb * 0.8) // tr.task_gb)))
    nodes = max(2, math.ceil(tasks / per_node))
    eks = t.price("eks.cluster", REGION, "hour") * t.hours_per_month + ec2_monthly(tr.node_type, nodes, t) + lb
    out.append(Priced("EKS on EC2", eks, f"control plane + {nodes} x {tr.node_type} ({tasks} pods) + ALB"))
    vm_vcpu, _ = t.spec(tr.vm_type)
    vms = max(2, math.ceil(vcpus / vm_vcpu))
    out.append(Priced("EC2 VMs", ec2_monthly(tr.vm_type, vms, t) + lb, f"{vms} x {tr.vm_type} + ALB"))
    return out


def cheapest(traffic: Traffic, table: PriceTable | None = None) -> Priced:
    return min(price_all(traffic, table), key=lambda p: p.usd)


def break_even_requests(billed_ms: float, memory_mb: float, always_on_usd: float, table=None) -> float:
    """Monthly requests at which Lambda (without API Gateway) costs ``always_on_usd``: above it, always-on wins."""
    per_request = lambda_monthly(1e6, billed_ms, memory_mb, table) / 1e6
    return always_on_usd / per_request


def sweep(traffic: Traffic, levels, table: PriceTable | None = None) -> dict[str, list[float]]:
    """{target: monthly USD at each request level}, everything else as in ``traffic``."""
    out: dict[str, list[float]] = {name: [] for name in TARGETS}
    for n in levels:
        for p in price_all(Traffic(**{**traffic.__dict__, "requests_per_month": n}), table):
            out[p.target].append(p.usd)
    return out


def plot_crossover(traffic: Traffic, levels=None, table: PriceTable | None = None):
    """Monthly cost of every target as traffic rises (log axes); returns a closed figure."""
    import matplotlib.pyplot as plt

    levels = list(levels or [10 ** (4 + i / 4) for i in range(21)])  # 10 thousand to 1 billion a month
    costs = sweep(traffic, levels, table)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for name, ys in costs.items():
        ax.plot(levels, ys, label=name, lw=2 if name == "Lambda" else 1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests per month")
    ax.set_ylabel("USD per month")
    ax.set_title(
        f"{traffic.memory_mb} MB x {traffic.avg_ms:g} ms per request, peak {traffic.peak_to_average:g}x average"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def priced_table(traffic: Traffic, table: PriceTable | None = None):
    """Every target's monthly cost for ``traffic``, cheapest first, as a table."""
    from ..tables import Table

    rows = sorted(price_all(traffic, table), key=lambda p: p.usd)
    title = (
        f"{traffic.requests_per_month:,.0f} requests/month, {traffic.memory_mb} MB x {traffic.avg_ms:g} ms, "
        f"peak {traffic.peak_to_average:g}x average ({traffic.peak_rps:.0f} requests/s)"
    )
    return Table(("target", "USD/month", "what was priced"), [(p.target, round(p.usd, 2), p.sized) for p in rows],
                 title=title)  # fmt: skip
