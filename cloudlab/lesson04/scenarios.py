"""The traffic the rule checks replay through promtool: synthetic counters, in real minutes, shaped so
that every plausible wrong rule gives a different answer from the right one.

Every minute the orders service answers 100 requests: 2 of them are 404s (the client's fault, never an
error of ours), ``errors[i]`` are server errors (two thirds 500s, one third 503s, so a rule that counts only
500s is wrong), the rest succeed. A second job, ``payments``, answers 100 a minute with one 502 among them,
so a rule that forgets to aggregate ``by (job)`` mixes it in, and a rule that names ``job="orders"`` instead
of recording per job leaves it out. The expected
answers are written here in plain numbers; ``tests/test_lesson04.py`` proves the lesson's reference
rules give exactly these, so a check can never disagree with the lesson itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..observability.promtool import counter_values

PER_MINUTE = 100
CLIENT_ERRORS = 2
RECORDS = {
    "5m": "job:slo_errors_per_request:ratio_rate5m",
    "30m": "job:slo_errors_per_request:ratio_rate30m",
    "1h": "job:slo_errors_per_request:ratio_rate1h",
    "6h": "job:slo_errors_per_request:ratio_rate6h",
}
PAGE, TICKET = "OrdersErrorBudgetFastBurn", "OrdersErrorBudgetSlowBurn"
SLO_NAME = "orders-availability"


PAYMENTS_ERRORS = 1  # 502s per minute of the second job


def unavailable(e: int) -> int:
    """How many of a minute's ``e`` server errors are 503s (the rest are 500s)."""
    return e // 3


def traffic(errors: list[int]) -> dict[str, str]:
    """promtool input series for ``len(errors)`` minutes: orders with ``errors[i]`` 5xx in minute i."""
    good = [PER_MINUTE - CLIENT_ERRORS - e for e in errors]
    post = [g * 3 // 4 for g in good]
    get = [g - p for g, p in zip(good, post, strict=True)]
    base = 'orders_requests_total{{job="{job}", instance="127.0.0.1:8001", method="{m}", route="{r}", status="{s}"}}'
    n = len(errors)
    return {
        base.format(job="orders", m="POST", r="/orders", s="201"): counter_values(post),
        base.format(job="orders", m="POST", r="/orders", s="500"): counter_values([e - unavailable(e) for e in errors]),
        base.format(job="orders", m="POST", r="/orders", s="503"): counter_values([unavailable(e) for e in errors]),
        base.format(job="orders", m="GET", r="/orders/{id}", s="200"): counter_values(get),
        base.format(job="orders", m="GET", r="/orders/{id}", s="404"): counter_values([CLIENT_ERRORS] * n),
        base.format(job="payments", m="POST", r="/pay", s="200"): counter_values([PER_MINUTE - PAYMENTS_ERRORS] * n),
        base.format(job="payments", m="POST", r="/pay", s="502"): counter_values([PAYMENTS_ERRORS] * n),
    }


# ------------------------------------------------------------------ recording rules
def recording_errors() -> list[int]:
    """Seven hours whose four windows all differ at minute 420 (and at 410: a second look)."""
    e = [0] * 60 + [3] * 300 + [12] * 30 + [6] * 25 + [20, 25, 30, 35, 40]
    assert len(e) == 420
    return e


def window_ratio(errors: list[int], end_minute: int, minutes: int) -> float:
    """The error ratio over ``minutes`` before ``end_minute`` (what rate()/rate() gives on 1-minute samples)."""
    inside = errors[max(0, end_minute - minutes) : end_minute]
    return sum(inside) / (PER_MINUTE * len(inside))


RECORDING_TIMES = (420, 410)


PAYMENTS_RATIO = PAYMENTS_ERRORS / PER_MINUTE  # the payments job's ratio over every window


def recording_expected() -> dict[tuple[str, int], float]:
    """(window, minute) -> the orders job's error ratio the rules must record."""
    e = recording_errors()
    mins = {"5m": 5, "30m": 30, "1h": 60, "6h": 360}
    return {(w, t): window_ratio(e, t, m) for w, m in mins.items() for t in RECORDING_TIMES}


def recording_groups() -> list[dict]:
    probes = [(RECORDS[w], t) for w in RECORDS for t in RECORDING_TIMES]
    return [{"series": traffic(recording_errors()), "probes": probes}]


# ------------------------------------------------------------------ alerting rules
@dataclass
class Probe:
    minute: int
    page: bool
    ticket: bool
    why: str


@dataclass
class AlertCase:
    name: str
    story: str
    errors: list[int]
    probes: list[Probe] = field(default_factory=list)

    def expr(self) -> str:
        # a matcher on a label no series has matches every ALERTS series, and makes the probe unique
        return f'ALERTS{{alertstate="firing", zz_{self.name}=""}}'


H = 360  # six healthy hours before every incident: the 6 h window starts clean


def alert_cases() -> list[AlertCase]:
    incident = AlertCase("incident", "10 % of requests fail for an hour", [0] * H + [10] * 60)
    incident.probes = [
        Probe(H + 30, False, False, "30 min into a 10 % incident the 1 h window is at 5 %: below 14.4 x 0.5 % = 7.2 %"),
        Probe(H + 55, True, False, "55 min into a 10 % incident both page windows are above 7.2 %: it pages"),
    ]
    blip = AlertCase("blip", "one minute of 98 % errors, then healthy", [0] * H + [98] + [0] * 20)
    blip.probes = [
        Probe(H + k, False, False, f"{k} min after a one-minute blip: nobody is paged") for k in range(1, 11)
    ]
    recovery = AlertCase("recovery", "20 % errors for an hour, then healthy", [0] * H + [20] * 60 + [0] * 15)
    recovery.probes = [
        Probe(H + 58, True, False, "58 min into a 20 % incident it pages (the ticket's 6 h window is not there yet)"),
        Probe(
            H + 72,
            False,
            True,
            "12 min after recovery the page has resolved (the 5 min window is clean); "
            "the slow-burn ticket fires (6 h and 30 min windows still above 3 %)",
        ),
    ]
    slow = AlertCase("slowburn", "4 % errors for seven hours, then healthy", [0] * H + [4] * 420 + [0] * 20)
    slow.probes = [
        Probe(H + 120, False, False, "2 h into a 4 % burn the 6 h window is at 1.3 %: no ticket yet"),
        Probe(
            H + 400,
            False,
            True,
            "after 6 h at 4 % both ticket windows are above 6 x 0.5 % = 3 %: a ticket, never a page (4 % < 7.2 %)",
        ),
        Probe(
            H + 426,
            False,
            True,
            "6 min after the slow burn stopped, the 30 min window is still at 3.2 %: the ticket stays",
        ),
        Probe(H + 440, False, False, "20 min after the slow burn stopped, the 30 min window is at 1.3 %: resolved"),
    ]
    return [incident, blip, recovery, slow]


WINDOW_MINUTES = {"5m": 5, "30m": 30, "1h": 60, "6h": 360}


def recorded(errors: list[int]) -> dict[str, str]:
    """The four recorded error ratios of the orders job, minute by minute, as promtool input series.

    Alert rules are tested on these (what correct recording rules give), so an alert check neither
    depends on the learner's recording rules nor spends seconds recomputing six-hour rates.
    """
    out = {}
    for w, minutes in WINDOW_MINUTES.items():
        values = [window_ratio(errors, m, minutes) for m in range(1, len(errors) + 1)]
        out[f'{RECORDS[w]}{{job="orders"}}'] = "_ " + run_length(values)
    return out


def run_length(values: list[float]) -> str:
    """promtool's expanding notation: equal neighbours become 'v+0xN' (N more of the same)."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        v = f"{values[i]:.10g}"
        out.append(v if j == i else f"{v}+0x{j - i}")
        i = j + 1
    return " ".join(out)


def alert_groups(cases: list[AlertCase] | None = None) -> list[dict]:
    cases = cases or alert_cases()
    return [{"series": recorded(c.errors), "probes": [(c.expr(), p.minute) for p in c.probes]} for c in cases]


# ------------------------------------------------------------------ mutants of the page rule
PAGE_THRESHOLD = "(14.4 * 0.005)"
PAGE_EXPR = f"{RECORDS['1h']} > {PAGE_THRESHOLD} and {RECORDS['5m']} > {PAGE_THRESHOLD}"
MUTANTS = {
    "long window only": f"{RECORDS['1h']} > {PAGE_THRESHOLD}",
    "short window only": f"{RECORDS['5m']} > {PAGE_THRESHOLD}",
    "no error-budget factor": f"{RECORDS['1h']} > 14.4 and {RECORDS['5m']} > 14.4",
    "a page that comes an hour late": PAGE_EXPR,
}
MUTANT_HOLD = {"a page that comes an hour late": "1h"}  # the mutant's `for:` (the others keep the rule's own)
MUTANT_HINTS = {
    "long window only": "add a case that checks the page RESOLVES a few minutes after the errors stop "
    "(exp_alerts: [] once the 5 min window is clean)",
    "short window only": "add a one-minute blip and check that nothing pages during the next minutes",
    "no error-budget factor": "add an incident and check that the page FIRES (exp_alerts with severity page)",
    "a page that comes an hour late": "check that the page fires while the incident is still going on (at most an "
    "hour into it): a test that looks only hours later passes a page that waits an hour before anyone hears",
}
