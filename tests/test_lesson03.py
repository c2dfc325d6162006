"""Lesson 03 (cost awareness): the cost model without the lab, and the checks against it.

Pure tests run anywhere in well under a second each. Tests marked ``lab`` need the running
lab (``make test`` starts one) and are skipped otherwise; they create only ``l03-t...`` resources
and remove them.
"""

from __future__ import annotations

import math

import matplotlib
import pytest

matplotlib.use("Agg")

import cloudlab  # noqa: E402
from cloudlab import cost  # noqa: E402

PRICES_TEXT = """
currency: USD
hours_per_month: 730
prices:
  ec2.on_demand:
    unit: USD per instance-hour
    source: https://aws.amazon.com/ec2/pricing/on-demand/
    as_of: 2025-06-01
    us-east-1: {m5.large: 0.096, m5.xlarge: 0.192}
  ebs.volume:
    unit: USD per GB-month
    source: https://aws.amazon.com/ebs/pricing/
    as_of: 2025-06-01
    us-east-1: {gp3: 0.08}
instance_types:
  source: https://aws.amazon.com/ec2/instance-types/
  as_of: 2025-06-01
  specs: {m5.large: [2, 8], m5.xlarge: [4, 16]}
"""


@pytest.fixture(scope="module")
def prices():
    return cost.load_prices()


def small(tmp_path, text=PRICES_TEXT):
    p = tmp_path / "prices.yaml"
    p.write_text(text)
    return cost.load_prices(p)


def inst(itype, region="us-east-1", **tags):
    return {
        "kind": "instance",
        "id": f"i-{itype}",
        "name": f"l03-{itype}",
        "region": region,
        "tags": tags,
        "type": itype,
    }


# ------------------------------------------------------------------ the shipped price table
def test_every_block_names_its_source_and_date(prices):
    for key, unit, source, as_of in prices.sources():
        assert source.startswith("https://aws.amazon.com/"), key
        assert unit and len(as_of) == 10, key


def test_every_priced_type_has_a_size_and_every_purchase_option(prices):
    for region in ("us-east-1", "eu-west-1"):
        types = {t for t, _ in prices.rows("ec2.on_demand", region)}
        assert types <= set(prices.specs)
        for key in ("ec2.reserved_1y", "ec2.savings_plan_1y", "ec2.spot"):
            assert {t for t, _ in prices.rows(key, region)} == types, (key, region)
        for t in types:  # commitments and spot are discounts, never surcharges
            od = prices.price("ec2.on_demand", region, t)
            assert prices.price("ec2.spot", region, t) < prices.price("ec2.reserved_1y", region, t) < od


# ------------------------------------------------------------------ bad price tables
def test_missing_price_names_the_item_block_and_region(prices):
    with pytest.raises(cost.MissingPrice) as e:
        cost.price_resources([inst("m5.large"), inst("p4d.24xlarge")], prices)
    msg = str(e.value)
    assert "'p4d.24xlarge' in ec2.on_demand (us-east-1)" in msg
    assert "m5.large" not in msg.split("\n")[1]  # only the missing one is listed as missing
    assert "lessons/03_cost-awareness/prices.yaml" in msg


def test_every_missing_price_is_listed_at_once(prices):
    res = [inst("x1.huge"), {"kind": "volume", "id": "vol-1", "region": "ap-south-1", "type": "gp3", "size_gb": 5}]
    with pytest.raises(cost.MissingPrice) as e:
        cost.price_resources(res, prices)
    assert [m[2] for m in e.value.missing] == ["x1.huge", "gp3"]
    assert "ap-south-1" in str(e.value)


def test_a_table_without_a_price_for_a_running_type(tmp_path):
    table = small(tmp_path, PRICES_TEXT.replace(", m5.xlarge: 0.192", ""))
    with pytest.raises(cost.MissingPrice, match=r"'m5.xlarge' in ec2.on_demand \(us-east-1\)"):
        cost.price_resources([inst("m5.xlarge")], table)
    with pytest.raises(cost.MissingPrice, match="m5.xlarge"):
        table.price("ec2.on_demand", "us-east-1", "m5.xlarge")


@pytest.mark.parametrize(
    "change, words",
    [
        (("    source: https://aws.amazon.com/ebs/pricing/\n", ""), ["prices.ebs.volume", "'source'"]),
        (("as_of: 2025-06-01\n    us-east-1: {gp3", "as_of: soon\n    us-east-1: {gp3"), ["as_of", "soon"]),
        (("{gp3: 0.08}", "{gp3: cheap}"), ["prices.ebs.volume.us-east-1.gp3", "number", "cheap"]),
        (("{gp3: 0.08}", "{gp3: -0.08}"), ["gp3", "negative"]),
        (
            ("https://aws.amazon.com/ebs/pricing/", "https://example.com/prices"),
            ["ebs.volume", "public AWS pricing page"],
        ),
    ],
)
def test_malformed_tables_say_where(tmp_path, change, words):
    with pytest.raises(cost.PriceTableError) as e:
        small(tmp_path, PRICES_TEXT.replace(*change))
    for w in words:
        assert w in str(e.value)


def test_unreadable_table(tmp_path):
    with pytest.raises(cost.PriceTableError, match="cannot read"):
        cost.load_prices(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("prices: [")
    with pytest.raises(cost.PriceTableError, match="not valid YAML"):
        cost.load_prices(tmp_path / "bad.yaml")


# ------------------------------------------------------------------ the bill
def test_bill_is_quantity_times_hours_times_price(tmp_path):
    table = small(tmp_path)
    lines = cost.price_resources(
        [
            inst("m5.large", team="web", env="prod"),
            {
                "kind": "volume",
                "id": "vol-1",
                "name": "d",
                "region": "us-east-1",
                "tags": {"team": "web"},
                "type": "gp3",
                "size_gb": 100,
            },
        ],
        table,
    )
    assert lines[0].cost == pytest.approx(0.096 * 730)
    assert lines[1].cost == pytest.approx(100 * 0.08)
    half = cost.price_resources([inst("m5.large")], table, hours=365)
    assert half[0].cost == pytest.approx(0.096 * 365)
    assert cost.total(lines) == pytest.approx(0.096 * 730 + 8)


def test_allocation_by_tags_keeps_untagged_visible(tmp_path):
    table = small(tmp_path)
    lines = cost.price_resources([inst("m5.large", team="web", env="prod"), inst("m5.xlarge", env="dev")], table)
    alloc = cost.allocate(lines)
    assert alloc == {("(untagged)", "dev"): pytest.approx(0.192 * 730), ("web", "prod"): pytest.approx(0.096 * 730)}
    assert list(alloc)[0] == ("(untagged)", "dev")  # most expensive first
    assert "TOTAL" in cost.bill_text(lines)


def test_format_table_is_deterministic():
    out = cost.format_table([("a", 1.5), ("bb", 1234.567)], ("name", "usd"), money=(1,))
    assert out.splitlines() == ["name       usd", "----  --------", "a         1.50", "bb    1,234.57"]


# ------------------------------------------------------------------ right-sizing
def test_recommend_smaller_when_idle(prices):
    r = cost.recommend_size("m5.2xlarge", cpu_p95=12, mem_p95=10, table=prices)
    assert r.recommended == "m5.large" and r.projected_cpu == pytest.approx(48)
    assert r.saving == pytest.approx((0.384 - 0.096) * 730)


def test_memory_bound_instance_is_kept(prices):
    r = cost.recommend_size("r5.xlarge", cpu_p95=15, mem_p95=76, table=prices)
    assert r.recommended == "r5.xlarge" and "memory" in r.reason and r.saving == 0


def test_no_memory_data_never_shrinks_memory(prices):
    blind = cost.recommend_size("t3.large", 20, None, prices)
    assert blind.recommended == "t3.large" and "no memory data" in blind.reason
    assert cost.recommend_size("m5.2xlarge", 5, None, prices).recommended == "m5.2xlarge"
    assert cost.recommend_size("m5.2xlarge", None, 5, prices).recommended == "m5.2xlarge"


def test_one_step_when_two_would_overload(prices):
    assert cost.recommend_size("m5.2xlarge", 23, 32, prices).recommended == "m5.xlarge"
    assert cost.recommend_size("c5.xlarge", 67, 49, prices).recommended == "c5.xlarge"


# ------------------------------------------------------------------ purchase options
def test_always_on_favours_a_commitment(prices):
    res = cost.compare_options("m5.large", 730, prices)
    assert res.monthly["on-demand"] == pytest.approx(0.096 * 730)
    assert res.monthly["reserved 1y"] == pytest.approx(0.060 * 730)
    assert res.cheapest == "spot"  # cheapest on paper; the risk column says why you may not want it
    assert res.monthly["reserved 1y"] < res.monthly["savings plan 1y"] < res.monthly["on-demand"]


def test_part_time_use_makes_commitments_lose(prices):
    res = cost.compare_options("m5.large", "200", prices, count="4", spot_rework=0.15)
    assert res.monthly["reserved 1y"] > res.monthly["on-demand"]
    assert res.monthly["spot"] == pytest.approx(4 * 0.037 * 200 * 1.15)
    assert res.break_even_hours["reserved 1y"] == pytest.approx(730 * 0.060 / 0.096)
    assert "break-even" in res.text()


def test_break_even_hours():
    assert cost.break_even_hours(0.1, 0.05) == pytest.approx(365)
    with pytest.raises(cost.InputError, match="above zero"):
        cost.break_even_hours(0, 0.05)


@pytest.mark.parametrize(
    "hours, message",
    [
        ("-5", "hours per month cannot be negative"),
        (-1, "cannot be negative"),
        ("lots", "hours per month must be a number, got 'lots'"),
        ("", "must be a number"),
        (None, "must be a number"),
        (True, "must be a number"),
        (float("nan"), "finite"),
        (800, "cannot be more than 730"),
    ],
)
def test_calculator_rejects_bad_hours(prices, hours, message):
    with pytest.raises(cost.InputError, match=message):
        cost.compare_options("m5.large", hours, prices)


def test_calculator_rejects_bad_count_and_rework(prices):
    with pytest.raises(cost.InputError, match="whole number"):
        cost.compare_options("m5.large", 730, prices, count=1.5)
    with pytest.raises(cost.InputError, match="number of instances cannot be below 1"):
        cost.compare_options("m5.large", 730, prices, count=0)
    with pytest.raises(cost.InputError, match="re-work"):
        cost.compare_options("m5.large", 730, prices, spot_rework="-0.1")
    with pytest.raises(cost.MissingPrice, match="z9.mega"):
        cost.compare_options("z9.mega", 730, prices)


def test_as_number_accepts_what_people_type():
    assert cost.as_number("x", " 1,200 ") == 1200
    assert cost.as_number("x", "$0.5") == 0.5
    assert cost.as_number("x", 3) == 3.0


def test_widget_shows_the_message_instead_of_raising(prices):
    pytest.importorskip("ipywidgets")
    from cloudlab.cost import Calculator

    calc = Calculator(prices, draw=False)
    assert calc.result is not None and calc.message.value == ""
    calc.hours.value = "-5"  # the observer runs update(): it must not raise
    assert calc.result is None and "cannot be negative" in calc.message.value
    calc.hours.value = "abc"
    assert "must be a number" in calc.message.value and "abc" in calc.message.value
    calc.hours.value = "200"
    calc.rework.value = "150"
    assert "cannot be more than 100" in calc.message.value
    calc.rework.value = "10"
    assert calc.result is not None and calc.message.value == "" and calc.result.hours == 200
    calc.type.value = "t3.micro"
    assert calc.result.instance_type == "t3.micro"


# ------------------------------------------------------------------ lifecycle
RULES = [
    {
        "ID": "logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}, {"Days": 30, "StorageClass": "STANDARD_IA"}],
        "Expiration": {"Days": 365},
    },
    {"ID": "off", "Filter": {"Prefix": ""}, "Status": "Disabled", "Expiration": {"Days": 1}},
]


def test_plan_reads_rules_as_s3_returns_them():
    plan = cost.plan_from_rules(RULES, "logs/")
    assert plan.transitions == [(30, "STANDARD_IA"), (90, "GLACIER")] and plan.expire_days == 365
    assert [plan.storage_class_at(d) for d in (0, 29, 30, 89, 90, 364, 365)] == [
        "STANDARD",
        "STANDARD",
        "STANDARD_IA",
        "STANDARD_IA",
        "GLACIER",
        "GLACIER",
        None,
    ]
    other = cost.plan_from_rules(RULES, "invoices/")
    assert other.transitions == [] and other.expire_days is None  # the disabled rule is ignored
    assert cost.plan_from_rules(None).storage_class_at(1000) == "STANDARD"


def test_projection_with_and_without_rules(prices):
    none = cost.project_storage(100, cost.plan_from_rules([]), prices)
    assert none.saving == 0 and none.without[-1] == pytest.approx(12 * 100 * 0.023)
    proj = cost.project_storage(100, cost.plan_from_rules(RULES, "logs/"), prices)
    assert proj.saving > 0 and len(proj.with_rules) == 12
    assert proj.gb_by_class[4] == {"STANDARD": 100, "STANDARD_IA": 200, "GLACIER": 200}
    # month 2 pays the IA transition fee of the first cohort (100 GB x 100 objects/GB)
    assert proj.with_rules[1] == pytest.approx(100 * 0.023 + 100 * 0.0125 + 10000 / 1000 * 0.01)


def test_expiry_makes_storage_plateau(prices):
    plan = cost.plan_from_rules([{"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 90}}], "x")
    proj = cost.project_storage(10, plan, prices, months=12)
    assert proj.with_rules[5] == proj.with_rules[11] == pytest.approx(30 * 0.023)


def test_projection_rejects_bad_input(prices):
    with pytest.raises(cost.InputError, match="new GB per month"):
        cost.project_storage("-1", cost.plan_from_rules([]), prices)


# ------------------------------------------------------------------ plots
def test_plots_return_closed_figures(prices):
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    figs = [
        cost.plot_allocation({("web", "prod"): 10.0, ("(untagged)", "dev"): 5.0}),
        cost.plot_utilization({"a": [1.0, 50.0]}, "t"),
        cost.plot_rightsizing([cost.recommend_size("m5.2xlarge", 10, 10, prices)]),
        cost.plot_options(cost.compare_options("m5.large", 300, prices), prices),
        cost.plot_storage(cost.project_storage(10, cost.plan_from_rules(RULES, "logs/"), prices)),
    ]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)
    assert len(plt.get_fignums()) == before  # closed: a notebook shows each exactly once


# ------------------------------------------------------------------ checks are registered
def test_five_checks():
    from cloudlab import lesson03  # noqa: F401  (registers the checks)
    from cloudlab.checks import REGISTRY

    assert sorted(k for k in REGISTRY if k.startswith("03.")) == ["03.1", "03.2", "03.3", "03.4", "03.5"]


def test_utilization_series_is_deterministic_and_bounded():
    from cloudlab.lesson03 import utilization_series

    a = utilization_series((9, 14, 28), "seed", hours=48)
    assert a == utilization_series((9, 14, 28), "seed", hours=48)
    assert all(0 < v <= 100 for v in a[0] + a[1]) and len(a[0]) == 48
    assert not math.isclose(sum(a[0]), sum(utilization_series((9, 14, 28), "other", hours=48)[0]))


# ------------------------------------------------------------------ against the lab
def _passes(check, ns) -> bool:
    from cloudlab.checks import CheckFailed

    try:
        check(ns)
    except CheckFailed:
        return False
    return True


@pytest.mark.lab
def test_sweep_check_tells_right_from_wrong():
    import cloudlab
    from cloudlab import lesson03

    def good(ec2, prefix, dry_run=True):
        vols = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [prefix + "*"]}])["Volumes"]
        ids = [v["VolumeId"] for v in vols if v["State"] == "available"]
        for i in ids if not dry_run else []:
            ec2.delete_volume(VolumeId=i)
        return ids

    def ignores_dry_run(ec2, prefix, dry_run=True):
        return good(ec2, prefix, dry_run=False)

    def deletes_everything(ec2, prefix, dry_run=True):
        vols = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [prefix + "*"]}])["Volumes"]
        if not dry_run:
            for v in vols:
                if v["State"] == "in-use":
                    ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
                ec2.delete_volume(VolumeId=v["VolumeId"])
        return [v["VolumeId"] for v in vols if v["State"] == "available"]

    assert _passes(lesson03.check_sweep, {"sweep_volumes": good})
    assert not _passes(lesson03.check_sweep, {"sweep_volumes": ignores_dry_run})
    assert not _passes(lesson03.check_sweep, {"sweep_volumes": deletes_everything})
    left = cloudlab.client("ec2").describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["l03-chk-*"]}])["Volumes"]
    assert left == []  # the check cleans up after itself


@pytest.mark.lab
def test_lifecycle_check_tells_right_from_wrong():
    import cloudlab
    from cloudlab import lesson03

    s3 = cloudlab.client("s3")
    s3.create_bucket(Bucket="l03-tlogs")

    def rules(days):
        def add(bucket):
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "r",
                            "Filter": {"Prefix": "logs/"},
                            "Status": "Enabled",
                            "Transitions": [
                                {"Days": days, "StorageClass": "STANDARD_IA"},
                                {"Days": 90, "StorageClass": "GLACIER"},
                            ],
                            "Expiration": {"Days": 365},
                        }
                    ]
                },
            )

        return add

    try:
        rules(30)("l03-tlogs")
        assert _passes(lesson03.check_lifecycle, {"add_log_rules": rules(30), "LOG_BUCKET": "l03-tlogs"})
        assert not _passes(lesson03.check_lifecycle, {"add_log_rules": rules(45), "LOG_BUCKET": "l03-tlogs"})
        assert not _passes(lesson03.check_lifecycle, {"add_log_rules": lambda b: None, "LOG_BUCKET": "l03-tlogs"})
    finally:
        s3.delete_bucket(Bucket="l03-tlogs")


@pytest.mark.lab
def test_alarm_and_budget_checks_reject_wrong_settings():
    import cloudlab
    from cloudlab import lesson03

    def pager(name):
        from cloudlab.pager import wire_pager

        p = wire_pager(cloudlab.client("sns"), cloudlab.client("sqs"), name, name)
        return p["topic_arn"], p["queue_url"]

    def alarm(op):
        def make(name, topic, threshold):
            cloudlab.client("cloudwatch").put_metric_alarm(
                AlarmName=name,
                Namespace="L03/Billing",
                MetricName="EstimatedCharges",
                Dimensions=[{"Name": "Currency", "Value": "USD"}],
                Statistic="Maximum",
                Period=10,
                EvaluationPeriods=1,
                Threshold=float(threshold),
                ComparisonOperator=op,
                AlarmActions=[topic],
            )

        return make

    assert _passes(lesson03.check_alarm, {"create_pager": pager, "cost_alarm": alarm("GreaterThanThreshold")})
    assert not _passes(lesson03.check_alarm, {"create_pager": pager, "cost_alarm": alarm("LessThanThreshold")})

    def budget(percent):
        def make(name, limit):
            def note(kind, p):
                return {
                    "Notification": {
                        "NotificationType": kind,
                        "ComparisonOperator": "GREATER_THAN",
                        "Threshold": p,
                        "ThresholdType": "PERCENTAGE",
                    },
                    "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "a@example.com"}],
                }

            cloudlab.client("budgets").create_budget(
                AccountId=lesson03.account_id(),
                Budget={
                    "BudgetName": name,
                    "BudgetType": "COST",
                    "TimeUnit": "MONTHLY",
                    "BudgetLimit": {"Amount": str(limit), "Unit": "USD"},
                },
                NotificationsWithSubscribers=[note("ACTUAL", percent), note("FORECASTED", 100)],
            )

        return make

    b = cloudlab.client("budgets")
    acct = lesson03.account_id()
    if lesson03.describe_budget("l03-monthly"):  # left by a run of the solution notebook
        b.delete_budget(AccountId=acct, BudgetName="l03-monthly")
    try:
        budget(80)("l03-monthly", 300)
        assert _passes(lesson03.check_budget, {"create_monthly_budget": budget(80), "BUDGET_USD": 300})
        assert not _passes(lesson03.check_budget, {"create_monthly_budget": budget(90), "BUDGET_USD": 300})
        assert not _passes(lesson03.check_budget, {"create_monthly_budget": budget(80), "BUDGET_USD": 400})
    finally:
        b.delete_budget(AccountId=acct, BudgetName="l03-monthly")
    assert not [
        x for x in b.describe_budgets(AccountId=acct).get("Budgets", []) if x["BudgetName"].startswith("l03-chk")
    ]


@pytest.mark.lab
def test_waste_detector_deletes_exactly_what_the_dry_run_listed():
    from cloudlab import lesson03

    prices = cost.load_prices()
    cloudlab.reset_lesson("03", quiet=True)
    try:
        ids = lesson03.launch_fleet(lesson03.FLEET[:1])
        lesson03.add_storage_and_network({"l03-web-1": ids["l03-web-1"]})
        found = lesson03.find_waste(prices, regions=("us-east-1",))
        names = {f.name for f in found if f.deletable}
        assert names == {"l03-old-reports", "l03-scratch", "l03-export-final", "l03-spare-ip", "l03-promo-alb"}
        before = {r["name"] for r in lesson03.inventory(("us-east-1",))}
        assert names <= before  # the dry run deleted nothing
        sweep = lesson03.delete_waste([f for f in found if f.name != "l03-scratch"])
        after = {r["name"] for r in lesson03.inventory(("us-east-1",))}
        assert before - after == names - {"l03-scratch"}  # exactly what was listed, nothing else
        assert {"l03-web-data", "l03-web-ip", "l03-web-alb", "l03-web-data-backup", "l03-scratch"} <= after
        assert len(sweep.deleted) == 4
    finally:
        cloudlab.reset_lesson("03", quiet=True)
