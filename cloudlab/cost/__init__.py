"""The cost toolkit: pure functions, no emulator needed. Serves lesson 03 (cost awareness) and the
cost reviews of later lessons (08, 09, 10).

* the pinned price table (``lessons/03_cost-awareness/prices.yaml``) and its loader;
* the pretend bill: resources x hours x price, allocated by tags;
* right-sizing from utilization percentiles;
* purchase options (on-demand, spot, reserved, savings plan) and their break-even;
* what S3 lifecycle rules do to a year of storage cost;
* plots (matplotlib; each returns a closed figure, so a notebook shows it exactly once).

Everything that talks to the lab lives in :mod:`cloudlab.lesson03`.

The parts: ``prices`` (the table and its errors), ``model`` (bill, right-sizing, purchase options,
lifecycle projection), ``plots``, ``widget`` (the interactive purchase-option calculator), ``targets`` (lesson 12:
Lambda, Fargate, EKS and VMs priced for a traffic profile, the crossover)."""

from .model import (  # noqa: F401
    OPTIONS,
    RISKS,
    LifecyclePlan,
    LineItem,
    OptionsResult,
    Recommendation,
    StorageProjection,
    allocate,
    bill_text,
    break_even_hours,
    compare_options,
    format_table,
    option_cost,
    plan_from_rules,
    price_resources,
    project_storage,
    recommend_size,
    rightsizing_text,
    total,
)
from .plots import (  # noqa: F401
    plot_allocation,
    plot_options,
    plot_rightsizing,
    plot_storage,
    plot_utilization,
)
from .prices import (  # noqa: F401
    HOURS_PER_MONTH,
    PRICE_FILE,
    ROOT,
    STORAGE_CLASSES,
    UNTAGGED,
    InputError,
    MissingPrice,
    PriceBlock,
    PriceTable,
    PriceTableError,
    as_number,
    load_prices,
    parse_prices,
)
from .widget import Calculator, calculator  # noqa: F401
