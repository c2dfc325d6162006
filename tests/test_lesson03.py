"""Lesson 03 (cost awareness): the cost model without the lab, and the checks against it.

Pure tests run anywhere in well under a second each. Tests marked ``lab`` need the running
lab (``make test`` starts one) and are skipped otherwise; they create only ``l03-t...`` resources
and remove them.
"""

from __future__ import annotations

import math

import matplotlib
import pytest
from checktest import rejected as _rejected

matplotlib.use("Agg")

import cloudlab  # noqa: E402
from cloudlab import cost  # noqa: E402
from cloudlab.checks import CheckFailed  # noqa: E402

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
    blind = cost.recommend_size("m5.xlarge", 20, None, prices)
    assert blind.recommended == "m5.xlarge" and "no memory data" in blind.reason
    assert cost.recommend_size("m5.2xlarge", 5, None, prices).recommended == "m5.2xlarge"
    assert cost.recommend_size("m5.2xlarge", None, 5, prices).recommended == "m5.2xlarge"


@pytest.mark.parametrize("itype", ["t3.micro", "t3.large", "t3.xlarge"])
def test_burstable_types_are_kept_with_the_reason(prices, itype):
    # every t3 up to large has 2 vCPUs: a vCPU-ratio projection would call them all equal
    assert prices.spec("t3.micro")[0] == prices.spec("t3.large")[0] == 2
    r = cost.recommend_size(itype, 5, 5, prices)
    assert r.recommended == itype and r.saving == 0
    assert "burstable" in r.reason and f"baseline {cost.model.BURSTABLE_BASELINE[itype]} %" in r.reason


def test_lesson_fleet_right_sizes_three_of_six_and_the_notebook_says_so(prices):
    """The lesson's summary states what its own data gives (it once said two of six)."""
    import json
    from pathlib import Path

    from cloudlab import stats
    from cloudlab.lesson03 import FLEET, utilization_series

    changed = []
    for name, itype, region, _team, _env, profile in FLEET:
        cpu, mem = utilization_series(profile, seed=name)
        mem_p95 = None if name == "l03-ci-runner" else stats.percentile(mem)
        if cost.recommend_size(itype, stats.percentile(cpu), mem_p95, prices, region).recommended != itype:
            changed.append(name)
    assert changed == ["l03-web-1", "l03-web-2", "l03-api-stg"]
    nb = json.loads((Path(__file__).parent.parent / "notebooks" / "03_cost-awareness.ipynb").read_text())
    text = " ".join(c["source"] for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "three of six" in text.replace("\n", " ") and "two of six" not in text
    assert "l03-api-stg" in text


def test_high_resolution_alarms_are_priced_as_such(prices):
    alarm = {"kind": "alarm", "id": "arn:x", "name": "l03-a", "region": "us-east-1", "tags": {}}
    standard, high = cost.price_resources([alarm, {**alarm, "resolution": "high_resolution"}], prices)
    assert (standard.unit_price, high.unit_price) == (0.10, 0.30)
    assert (standard.item, high.item) == ("standard", "high_resolution")


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


# ------------------------------------------------------------------ 03.1's instances: every shortcut shows
def _p95_methods(values):
    import statistics

    from cloudlab import stats

    vals = sorted(values)
    return {
        "linear (numpy's default, stats.percentile)": stats.percentile(vals, 95),
        "nearest rank": vals[math.ceil(0.95 * len(vals)) - 1],
        "statistics.quantiles (exclusive)": statistics.quantiles(vals, n=20)[-1],
        "statistics.quantiles (inclusive)": statistics.quantiles(vals, n=20, method="inclusive")[-1],
    }


@pytest.mark.parametrize("seed", ["a", "b", "l03-chk-0f0f0f", "l03-example"])
def test_check_cases_do_not_depend_on_alignment_or_percentile_method(prices, seed):
    from cloudlab.lesson03 import cases

    for case in cases.make_cases(seed):
        want = cases.expected(case, prices)
        for offset in range(cases.PER_HOUR):  # the learner's hours may start at any 10 minutes
            assert cases.expected(case, prices, offset) == want, (case.key, offset)
        mem = None if case.mem is None else cases.hourly(case.mem)
        for method, cpu_p95 in _p95_methods(cases.hourly(case.cpu)).items():
            mem_p95 = None if mem is None else _p95_methods(mem)[method]
            got = cost.recommend_size(case.instance_type, cpu_p95, mem_p95, prices, case.region).recommended
            assert got == want, (case.key, method)


@pytest.mark.parametrize("seed", ["a", "b", "l03-chk-0f0f0f"])
def test_every_shortcut_gives_a_wrong_size_on_some_case(prices, seed):
    from cloudlab.lesson03 import cases

    wrong_somewhere = set()
    for case in cases.make_cases(seed):
        want = cases.expected(case, prices)
        wrong_somewhere |= {m for m, size in cases.alternatives(case, prices).items() if size != want}
    assert wrong_somewhere == set(cases.alternatives(cases.make_cases(seed)[0], prices))


def test_the_four_cases_want_different_things(prices):
    from cloudlab.lesson03 import cases

    got = {c.key: (c.instance_type, cases.expected(c, prices)) for c in cases.make_cases("x")}
    assert got == {
        "web": ("m5.2xlarge", "m5.large"),
        "batch": ("c5.2xlarge", "c5.xlarge"),
        "cache": ("r5.xlarge", "r5.xlarge"),
        "blind": ("m5.xlarge", "m5.xlarge"),
    }


# ------------------------------------------------------------------ the queue policy real AWS needs
QARN = "arn:aws:sqs:us-east-1:000000000000:l03-p"
TOPIC = "arn:aws:sns:us-east-1:000000000000:l03-p"


def _policy(**statement):
    import json

    st = {
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": QARN,
        "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC}},
    }
    st.update(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": [{k: v for k, v in st.items() if v is not None}]})


@pytest.mark.parametrize(
    "policy",
    [
        _policy(),
        _policy(Principal="*"),
        _policy(Principal={"AWS": "*"}),
        _policy(Action=["sqs:*"]),
        _policy(Resource="*"),
        _policy(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:sns:us-east-1:000000000000:l03-*"}}),
    ],
)
def test_queue_policy_that_real_aws_accepts(policy):
    from cloudlab import pager

    assert pager.queue_policy_problems(policy, QARN, TOPIC) == []


@pytest.mark.parametrize(
    "policy, says",
    [
        (None, "has no policy"),
        ("", "has no policy"),
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        (_policy(Condition=None), "also lets other topics"),
        (_policy(Principal="*", Condition=None), "also lets other topics"),
        (_policy(Condition={"StringEquals": {"aws:SourceAccount": "000000000000"}}), "also lets other topics"),
        (_policy(Condition={"ArnEquals": {"aws:SourceArn": TOPIC + "-old"}}), "does not let the topic deliver"),
        (_policy(Action="sqs:ReceiveMessage"), "does not let the topic deliver"),
        (_policy(Principal={"Service": "events.amazonaws.com"}), "does not let the topic deliver"),
        (_policy(Resource=QARN + "-other"), "does not let the topic deliver"),
        (_policy(Effect="Deny"), "denies"),
    ],
)
def test_queue_policy_problems(policy, says):
    from cloudlab import pager

    problems = pager.queue_policy_problems(policy, QARN, TOPIC)
    assert len(problems) == 1 and says in problems[0], problems


# ------------------------------------------------------------------ the checks, against the lab
# Each check: the worked solution (read from solutions/03_cost-awareness.ipynb) passes, and plausible wrong
# answers are rejected with a [missing] line that says what is wrong, and a hint.
def _solution() -> dict:
    import ast
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parent.parent / "solutions" / "03_cost-awareness.ipynb").read_text())
    ns: dict = {}
    exec(
        "import cloudlab, json, datetime as dt\nfrom cloudlab import cost, lesson03, stats\n"
        "PRICES = cost.load_prices()\ns3 = cloudlab.client('s3')",
        ns,
    )
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "### BEGIN SOLUTION" not in cell["source"]:
            continue
        tree = ast.parse(cell["source"])
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=defs, type_ignores=[]), "solution", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def sol():
    return _solution()


# 03.1 ---------------------------------------------------------------
def _recommender(
    statistic="Average", period=3600, agg="p95", memory="read", use_region=True, result="type", window=None
):
    """recommend_for as learners write it, right or with one mistake."""
    import datetime as dt

    from cloudlab import stats

    def recommend_for(instance_id, instance_type, region="us-east-1"):
        cw = cloudlab.client("cloudwatch", region_name=region if use_region else "us-east-1")
        end = dt.datetime.now(dt.UTC)
        got = {}
        for namespace, metric in (("AWS/EC2", "CPUUtilization"), ("CWAgent", "mem_used_percent")):
            points = cw.get_metric_statistics(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
                StartTime=end - (window or dt.timedelta(hours=48)),
                EndTime=end,
                Period=period,
                Statistics=[statistic],
            )["Datapoints"]
            values = [p[statistic] for p in points]
            if agg == "p95":
                got[metric] = stats.percentile(values, 95)
            elif agg == "p95-as-fraction":
                got[metric] = stats.percentile(values, 0.95)
            elif agg == "mean":
                got[metric] = sum(values) / len(values) if values else None
            else:
                got[metric] = max(values, default=None)
        mem = got["mem_used_percent"]
        if memory == "ignored":
            mem = 0.0
        elif memory == "zero-if-missing" and mem is None:
            mem = 0.0
        rec = cost.recommend_size(instance_type, got["CPUUtilization"], mem, cost.load_prices(), region)
        return rec if result == "object" else rec.recommended

    return recommend_for


@pytest.mark.lab
def test_rightsizing_check_accepts_the_solution(sol):
    from cloudlab import lesson03

    lesson03.check_rightsizing({"recommend_for": sol["recommend_for"]})
    lesson03.check_rightsizing({"recommend_for": _recommender()})  # the test's own right answer too


@pytest.mark.lab
@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"statistic": "Maximum"}, "a web server with a short spike every hour (m5.2xlarge) should become m5.large"),
        ({"period": 86400}, "a batch box busy four hours a night, in eu-west-1 (c5.2xlarge) should become c5.xlarge"),
        ({"agg": "mean"}, "its busy hours vanish in a daily average, a mean or a median"),
        ({"agg": "max"}, "the maximum instead of the 95th percentile"),
        ({"memory": "ignored"}, "a memory-bound cache (r5.xlarge) should become r5.xlarge"),
        ({"memory": "zero-if-missing"}, "pass None for memory (never 0)"),
        ({"use_region": False}, "ask CloudWatch in the instance's region"),
        ({"agg": "p95-as-fraction"}, "raised ValueError: percentile(0.95) asks for the 0.95th percentile"),
        ({"result": "object"}, "returned a whole Recommendation: return its .recommended"),
        # time: timedelta(48) is 48 DAYS, so the busy migration before the two days counts too
        ({"window": __import__("datetime").timedelta(48)}, "more than the last two days"),
        ({"window": __import__("datetime").timedelta(weeks=1)}, "more than the last two days"),
    ],
)
def test_rightsizing_check_rejects_shortcuts(kwargs, says):
    from cloudlab import lesson03

    _rejected(lesson03.check_rightsizing, {"recommend_for": _recommender(**kwargs)}, says)


@pytest.mark.lab
def test_rightsizing_check_leaves_no_instances_running():
    from cloudlab import lesson03

    with pytest.raises(CheckFailed):
        lesson03.check_rightsizing({"recommend_for": lambda *a: "m5.large"})
    for region in lesson03.REGIONS:
        ec2 = cloudlab.client("ec2", region_name=region)
        live = ec2.describe_instances(
            Filters=[
                {"Name": "tag:Name", "Values": ["l03-chk-*"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]
        assert live == [], region


# 03.2 ---------------------------------------------------------------
def _rules(
    prefix="logs/",
    ia=30,
    glacier=90,
    expire=365,
    status="Enabled",
    extra_filter=None,
    bucket=None,
    keep_others=True,
    replace_own=True,
):
    """add_log_rules as learners write it: by default it keeps the bucket's other rules and replaces its own."""

    def add_log_rules(b):
        f = {"Prefix": prefix} if prefix is not None else {}
        if extra_filter:
            f = {"And": {"Prefix": prefix, "Tags": [extra_filter]}}
        rule = {
            "ID": "r",
            "Filter": f,
            "Status": status,
            "Transitions": [{"Days": ia, "StorageClass": "STANDARD_IA"}, {"Days": glacier, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": expire},
        }
        s3 = cloudlab.client("s3")
        from cloudlab import lesson03

        rules = lesson03.lifecycle_rules(bucket or b) if keep_others else []
        rules = [x for x in rules if not (replace_own and x.get("ID") == "r")]
        s3.put_bucket_lifecycle_configuration(Bucket=bucket or b, LifecycleConfiguration={"Rules": [*rules, rule]})

    return add_log_rules


@pytest.fixture
def log_bucket():
    s3 = cloudlab.client("s3")
    s3.create_bucket(Bucket="l03-tlogs")
    yield "l03-tlogs"
    from cloudlab import cleanup

    cleanup.empty_and_delete_bucket(s3, "l03-tlogs")


@pytest.mark.lab
def test_lifecycle_check_accepts_the_solution(sol, log_bucket):
    from cloudlab import lesson03

    sol["add_log_rules"](log_bucket)
    lesson03.check_lifecycle({"add_log_rules": sol["add_log_rules"], "LOG_BUCKET": log_bucket})


@pytest.mark.lab
@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"ia": 45}, "should move to STANDARD_IA after 30 days"),
        ({"glacier": 180}, "should move to GLACIER after 90 days"),
        ({"expire": 366}, "should expire after 365 days"),
        ({"prefix": "logs"}, "also move or expire objects under logs-archive/"),
        ({"prefix": ""}, "also move or expire objects under invoices/"),
        ({"status": "Disabled"}, "the enabled rules for logs/ say none"),
        ({"extra_filter": {"Key": "class", "Value": "log"}}, "only apply to some objects (a tag or size filter)"),
        ({"bucket": "l03-tlogs"}, "the bucket it was given has no lifecycle rules of yours (use the `bucket`"),
        # doing more widely: the put replaces every rule the bucket had, another team's too
        ({"keep_others": False}, "another team's rule on the bucket (tmp/ expires after 7 days) is gone"),
        # run twice: a second copy of its own rule (same ID: real S3 refuses, the emulator takes it)
        ({"replace_own": False}, "the ID 'r' twice"),
    ],
)
def test_lifecycle_check_rejects_wrong_rules(log_bucket, kwargs, says):
    from cloudlab import lesson03

    _rules()(log_bucket)
    _rejected(lesson03.check_lifecycle, {"add_log_rules": _rules(**kwargs), "LOG_BUCKET": log_bucket}, says)


@pytest.mark.lab
def test_lifecycle_check_wants_the_log_bucket_done_too(sol, log_bucket):
    from cloudlab import lesson03

    _rejected(
        lesson03.check_lifecycle,
        {"add_log_rules": sol["add_log_rules"], "LOG_BUCKET": log_bucket},
        "does not have these rules yet: run add_log_rules(LOG_BUCKET)",
    )


# 03.3 ---------------------------------------------------------------
def _sweeper(
    filter_prefix=True,
    honour_dry_run=True,
    force=False,
    returns="ids",
    real_returns=True,
    contains=False,
    default=True,
    fixed_prefix=None,
):
    def sweep_volumes(ec2, prefix, dry_run=default):
        prefix = fixed_prefix or prefix
        filters = [{"Name": "tag:Name", "Values": [prefix + "*"]}] if filter_prefix and not contains else []
        vols = ec2.describe_volumes(Filters=filters)["Volumes"]
        if contains:  # "the name has the prefix in it"
            vols = [v for v in vols if prefix in {t["Key"]: t["Value"] for t in v.get("Tags", [])}.get("Name", "")]
        targets = [v for v in vols if force or v["State"] == "available"]
        if not dry_run or not honour_dry_run:
            for v in targets:
                if v["State"] == "in-use":
                    ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
                ec2.delete_volume(VolumeId=v["VolumeId"])
        if not dry_run and not real_returns:
            return None
        return targets if returns == "dicts" else [v["VolumeId"] for v in targets]

    return sweep_volumes


@pytest.mark.lab
def test_sweep_check_accepts_the_solution(sol):
    from cloudlab import lesson03

    lesson03.check_sweep({"sweep_volumes": sol["sweep_volumes"]})
    lesson03.check_sweep({"sweep_volumes": _sweeper()})


@pytest.mark.lab
@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"honour_dry_run": False}, "it deleted volumes"),
        ({"force": True}, "the dry run should list the 2 unattached volumes"),
        ({"filter_prefix": False}, "whose name does not start with the prefix"),
        ({"returns": "dicts"}, "not the volume descriptions"),
        ({"real_returns": False}, "should return the ids it deleted, should return a list of volume ids, not NoneType"),
        ({"contains": True}, "it contains the prefix but does not start with it"),  # substring, not "starts with"
        ({"default": False}, "called as sweep_volumes(ec2, prefix), without dry_run, it deleted volumes"),
        ({"fixed_prefix": "l03-example"}, "the dry run should list the 2 unattached volumes"),  # today's prefix
    ],
)
def test_sweep_check_rejects_wrong_sweeps(kwargs, says):
    from cloudlab import lesson03

    _rejected(lesson03.check_sweep, {"sweep_volumes": _sweeper(**kwargs)}, says)


@pytest.mark.lab
def test_sweep_check_cleans_up_after_itself():
    from cloudlab import lesson03

    with pytest.raises(CheckFailed):
        lesson03.check_sweep({"sweep_volumes": _sweeper(honour_dry_run=False)})
    left = cloudlab.client("ec2").describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["l03-chk-*"]}])["Volumes"]
    assert left == []


# 03.4 ---------------------------------------------------------------
def _wired_by_the_course(name):
    from cloudlab import pager

    p = pager.wire_pager(cloudlab.client("sns"), cloudlab.client("sqs"), name, name)  # the lesson's helper
    return p["topic_arn"], p["queue_url"]


def _pager(policy="right", filter_policy=False, swap=False):
    import json

    def create_pager(name):
        sns, sqs = cloudlab.client("sns"), cloudlab.client("sqs")
        topic = sns.create_topic(Name=name)["TopicArn"]
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        st = {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage"}
        if policy == "right":
            st.update(Resource=qarn, Condition={"ArnEquals": {"aws:SourceArn": topic}})
        elif policy == "open":
            st.update(Principal="*", Resource=qarn)
        if policy:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [st]})})
        attrs = {"FilterPolicy": json.dumps({"severity": ["critical"]})} if filter_policy else {}
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes=attrs)
        return (url, topic) if swap else (topic, url)

    return create_pager


def _alarm(**change):
    def cost_alarm(name, topic_arn, threshold):
        kw = dict(
            AlarmName=name,
            Namespace="L03/Billing",
            MetricName="EstimatedCharges",
            Dimensions=[{"Name": "Currency", "Value": "USD"}],
            Statistic="Maximum",
            Period=10,
            EvaluationPeriods=1,
            Threshold=float(threshold),
            ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[topic_arn],
        )
        kw.update({k: (v(topic_arn) if callable(v) else v) for k, v in change.items()})
        cloudlab.client("cloudwatch").put_metric_alarm(**{k: v for k, v in kw.items() if v is not None})

    return cost_alarm


@pytest.mark.lab
def test_alarm_check_accepts_the_solution_with_real_data_and_no_forced_state(sol, monkeypatch):
    from cloudlab import lesson03

    forced = []
    original = cloudlab.client

    def client(service, **kw):  # fail the test if the check ever forces an alarm's state
        c = original(service, **kw)
        if service == "cloudwatch":
            c.set_alarm_state = lambda **a: forced.append(a)
        return c

    monkeypatch.setattr(lesson03.alerts.aws, "client", client)
    lesson03.check_alarm({"create_pager": sol["create_pager"], "cost_alarm": sol["cost_alarm"]})
    assert forced == []


@pytest.mark.lab
@pytest.mark.parametrize(
    "pager_kw, alarm_kw, says",
    [
        ({"policy": None}, {}, "the queue has no policy: LocalStack delivers anyway, real AWS does not"),
        ({"policy": "open"}, {}, "also lets other topics (or anyone) send to the pager"),
        ({"filter_policy": True}, {}, "the subscription has a filter policy"),
        ({}, {"Dimensions": []}, "its dimensions are none"),
        ({}, {"Dimensions": [{"Name": "currency", "Value": "usd"}]}, "a metric is found by namespace, name AND"),
        ({}, {"Statistic": "Average"}, "its statistic is Average: use Maximum"),
        ({}, {"Statistic": "Sum"}, "its statistic is Sum: use Maximum"),
        ({}, {"ComparisonOperator": "GreaterThanOrEqualToThreshold"}, "should fire when the value is greater than"),
        ({}, {"Period": 60}, "its period is 60 s"),
        ({}, {"EvaluationPeriods": 3}, "the task asks for 1 of 1"),
        ({}, {"Unit": "Percent"}, "its Unit is 'Percent'"),
        ({}, {"AlarmActions": None, "OKActions": lambda t: [t]}, "they should include the pager topic"),
        ({}, {"TreatMissingData": "breaching"}, "pages whenever the billing data is late"),
        ({}, {"Namespace": "AWS/Billing"}, "not L03/Billing EstimatedCharges"),
        ({}, {"Threshold": 500.0}, "it should fire when the value is greater than"),  # today's 500, hard-coded
        ({}, {"InsufficientDataActions": lambda t: [t]}, "its InsufficientDataActions page the pager"),  # more
        ({}, {"ActionsEnabled": False}, "its actions are disabled (ActionsEnabled=False)"),
    ],
)
def test_alarm_check_rejects_wrong_wiring_and_settings(pager_kw, alarm_kw, says):
    from cloudlab import lesson03

    _rejected(lesson03.check_alarm, {"create_pager": _pager(**pager_kw), "cost_alarm": _alarm(**alarm_kw)}, says)


@pytest.mark.lab
@pytest.mark.parametrize(
    "create_pager, says",
    [
        (_pager(swap=True), "second value should be the queue's URL"),
        (lambda name: (42, _pager()(name)[1]), "first value should be the topic's ARN"),
        (lambda name: None, "should return (topic_arn, queue_url)"),
        (lambda name: ("arn:aws:sns:us-east-1:000000000000:" + name, 42), "second value should be the queue's URL"),
    ],
)
def test_alarm_check_never_crashes_on_odd_values(create_pager, says):
    from cloudlab import lesson03

    _rejected(lesson03.check_alarm, {"create_pager": create_pager, "cost_alarm": _alarm()}, says)


@pytest.mark.lab
def test_alarm_check_wants_the_pager_wired_by_hand():
    from cloudlab import lesson03

    _rejected(
        lesson03.check_alarm,
        {"create_pager": _wired_by_the_course, "cost_alarm": _alarm()},
        "create_pager calls pager.wire_pager",
    )


@pytest.mark.lab
def test_alarm_check_cleans_up_after_itself():
    from cloudlab import lesson03

    with pytest.raises(CheckFailed):
        lesson03.check_alarm({"create_pager": _pager(policy=None), "cost_alarm": _alarm()})
    assert not cloudlab.client("sqs").list_queues(QueueNamePrefix="l03-chk-").get("QueueUrls")
    assert not cloudlab.client("cloudwatch").describe_alarms(AlarmNamePrefix="l03-chk-")["MetricAlarms"]


# 03.5 ---------------------------------------------------------------
def _budget(percent=80, kinds=("ACTUAL", "FORECASTED"), threshold_type="PERCENTAGE", unit="USD",
            time_unit="MONTHLY", fixed_name=None, fixed_limit=None, extra=None):  # fmt: skip
    def create_monthly_budget(name, limit):
        limit = fixed_limit or limit

        def note(kind, p):
            n = {"NotificationType": kind, "ComparisonOperator": "GREATER_THAN", "Threshold": p}
            if threshold_type:
                n["ThresholdType"] = threshold_type
            return {"Notification": n, "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "a@example.com"}]}

        cloudlab.client("budgets").create_budget(
            AccountId=cloudlab.lesson03.account_id(),
            Budget={
                "BudgetName": fixed_name or name,
                "BudgetType": "COST",
                "TimeUnit": time_unit,
                "BudgetLimit": {"Amount": str(limit), "Unit": unit},
                **(extra() if extra else {}),
            },
            NotificationsWithSubscribers=[note(k, percent if k == "ACTUAL" else 100) for k in kinds],
        )

    return create_monthly_budget


def _next_month():
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    start = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return {"TimePeriod": {"Start": start, "End": start.replace(year=start.year + 1)}}


@pytest.fixture
def team_budget():
    from cloudlab import lesson03

    b, acct = cloudlab.client("budgets"), lesson03.account_id()
    if lesson03.describe_budget("l03-monthly"):  # left by a run of the solution notebook
        b.delete_budget(AccountId=acct, BudgetName="l03-monthly")
    _budget()("l03-monthly", 300)
    yield
    b.delete_budget(AccountId=acct, BudgetName="l03-monthly")
    assert not [
        x for x in b.describe_budgets(AccountId=acct).get("Budgets", []) if x["BudgetName"].startswith("l03-chk")
    ]


@pytest.mark.lab
def test_budget_check_accepts_the_solution(sol, team_budget):
    from cloudlab import lesson03

    lesson03.check_budget({"create_monthly_budget": sol["create_monthly_budget"], "BUDGET_USD": 300})


@pytest.mark.lab
@pytest.mark.parametrize(
    "kwargs, budget_usd, says",
    [
        ({"percent": 90}, 300, "missing a notification ACTUAL GREATER_THAN 80 PERCENTAGE"),
        ({"threshold_type": "ABSOLUTE_VALUE"}, 300, "ABSOLUTE_VALUE means dollars, not a share of the limit"),
        ({"kinds": ("ACTUAL",)}, 300, "missing a notification FORECASTED GREATER_THAN 100 PERCENTAGE"),
        ({"time_unit": "ANNUALLY"}, 300, "it should be MONTHLY / COST, it is ANNUALLY / COST"),
        ({"fixed_name": "l03-monthly-2"}, 300, "(use the `name` argument)"),
        ({}, 400, "run create_monthly_budget('l03-monthly', BUDGET_USD) once: its limit is 300"),
        ({"fixed_limit": 300}, 300, "(the `limit_usd` argument)"),  # today's 300, hard-coded
        ({"extra": lambda: {"CostFilters": {"Service": ["Amazon EC2"]}}}, 300, "it only watches part of the bill"),
        ({"extra": _next_month}, 300, "it does not cover this month"),  # a period that starts next month
    ],
)
def test_budget_check_rejects_wrong_budgets(team_budget, kwargs, budget_usd, says):
    from cloudlab import lesson03

    try:
        _rejected(lesson03.check_budget, {"create_monthly_budget": _budget(**kwargs), "BUDGET_USD": budget_usd}, says)
    finally:
        if kwargs.get("fixed_name"):
            cloudlab.client("budgets").delete_budget(AccountId=lesson03.account_id(), BudgetName=kwargs["fixed_name"])


# ------------------------------------------------------------------ the waste sweep of the lesson
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
