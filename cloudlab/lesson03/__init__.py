"""Lesson 03 (cost awareness): the lab side (real resources in the emulators) and the checks.

The pure cost model (price table, bill, right-sizing, purchase options, lifecycle projection,
plots, the calculator widget) is the toolkit :mod:`cloudlab.cost`; this package creates, reads
and deletes the lesson's resources in the lab, and holds the exercise checks.

Who serves what here: EC2, CloudWatch, S3, SNS, SQS and STS come from LocalStack; ELBv2 and
Budgets from moto (LocalStack's free tier cannot serve them without Docker). Every resource is
named ``l03-...`` so ``cloudlab.reset_lesson("03")`` removes exactly this lesson's.

The parts: ``resources`` (the fleet, inventory, lifecycle, budgets, the pager, the reset hook),
``metrics`` (utilization in CloudWatch, right-sizing), ``waste`` (finding and deleting unused
resources), ``checks`` (the exercise checks)."""

from .checks import (  # noqa: F401
    check_alarm,
    check_budget,
    check_lifecycle,
    check_rightsizing,
    check_sweep,
    delete_budget,
    exercise_setup,
)
from .metrics import (  # noqa: F401
    fetch_utilization,
    publish_utilization,
    rightsize,
    utilization_series,
)
from .resources import (  # noqa: F401
    AMI,
    BILLING_NAMESPACE,
    CPU_NAMESPACE,
    DAYS,
    FLEET,
    MEM_NAMESPACE,
    PREFIX,
    REGIONS,
    SERVICES,
    account_id,
    add_storage_and_network,
    bill,
    describe_budget,
    emulators,
    inventory,
    launch_fleet,
    lifecycle_rules,
    nonce,
    publish_until_paged,
    put_charges,
    put_lifecycle,
)
from .waste import (  # noqa: F401
    Finding,
    Sweep,
    delete_waste,
    find_waste,
    waste_text,
)
