"""Lesson 10 (capstone: incident response): a graded incident drill on the course's own order service.

The lesson runs what the earlier lessons built, one of each: lesson 01's order service (as lesson 04's
instrumented ``app.observed``) in two colours behind lesson 08's haproxy blue-green switch, a fulfilment worker
fed by S3 event notifications, the orders stack in Terraform (lesson 02's runner, remote state and secure-bucket
module), Prometheus and Alertmanager with lesson 04's SLO rules and routing and the lab's pager, lesson 09's
autoscaling formula, lesson 03's price table and pretend bill. The parts: ``scenario`` (the incident from a seed),
``system`` (the parts and their records), ``stack`` (the watchers), ``fleet`` (EC2, the bill, the scaling policy),
``platform`` (the autoscaler, the cost meter and the incident, as a process), ``release`` and ``worker`` (the two
programs), ``drill`` (start), ``signals`` (what a responder reads), ``postmortem`` (the write-up's parser) and the
checks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import cleanup, procs
from ..terraform import tf_root
from . import fleet, system


@cleanup.extra("10")
def _reset() -> dict:
    """The generic sweep stops the l10-* processes and deletes the l10- buckets and queues; here: the drill's
    instances in the emulator, its Terraform working directory and its records."""
    removed: dict[str, list[str]] = {"instances": [], "drill records": []}
    procs.stop_all("l10-")
    try:
        ids = [i["id"] for i in fleet.instances()]
        fleet.terminate(ids)
        removed["instances"] = ids
    except Exception:  # EC2 unavailable: the emulator's data goes with `make reset` anyway
        pass
    shutil.rmtree(tf_root() / "l10", ignore_errors=True)
    (Path.cwd() / "l10_postmortem.md").unlink(missing_ok=True)  # the exercise writes it again from its cell
    d = system.work_dir() / "drill"
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)
        removed["drill records"].append("drill")
    return removed


from .checks import check_evidence, check_mitigation, check_triage  # noqa: E402,F401
from .checks_fix import check_cost, check_drift, install_audit  # noqa: E402,F401
from .checks_review import check_postmortem, check_times  # noqa: E402,F401
from .drill import start, stop  # noqa: E402,F401
from .fleet import deploy_policy, instances, policy_versions  # noqa: E402,F401
from .fleet import policy as scaling_policy  # noqa: E402,F401
from .plots import plot_bill, plot_timeline  # noqa: E402,F401
from .postmortem import TEMPLATE  # noqa: E402,F401
from .signals import (  # noqa: E402,F401
    acknowledge,
    acks,
    alertmanager,
    alerts_delivered,
    bill,
    bill_history,
    changes,
    changes_table,
    firing,
    logs,
    pager_log,
    pages,
    prometheus,
    run_rate,
    spans,
    status,
    wait_for,
    wait_for_page,
    wait_resolved,
    when,
)
from .system import (  # noqa: E402,F401
    BUCKET,
    DrillError,
    colours,
    deploy_release,
    live_colour,
    live_release,
    switch,
    terraform,
)
