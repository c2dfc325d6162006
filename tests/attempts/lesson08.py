"""Lesson 08: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # The lesson's own pipeline copied over: its test job is called unit-test, and there is no job called test.
    "08.1": """
PIPELINE = (lesson08.PROJECT / ".gitlab-ci.yml").read_text()
""",
    # Pinned by SHA, the findings fixed, but to last year's majors: node20 actions the hosted runners no longer have.
    "08.2": '''
WORKFLOW_FIXED = """
name: release
on:
  pull_request:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: "3.11"
      - name: Announce the change
        env:
          TITLE: ${{ github.event.pull_request.title }}
        run: echo "Testing $TITLE"
      - name: Unit tests
        run: make test-unit
"""
''',
    # haproxy's UP taken at its word: right after green crashes it still says UP, and all traffic goes there.
    "08.3": """
lb.wait_status("green", "green", "UP", timeout=timeout)
lb.set_map("active", "live", "green")
""",
    # Shifts the traffic in steps and never looks: every version is promoted, the failing one too.
    "08.4": """
for pct in (5, 25, 100):
    deploy.set_canary(lb, pct)
return "promoted"
""",
    # Expand and contract in one migration, shipped with the deploy: v1 breaks while it still serves.
    "08.5": """
PLAN = [
    ("migrate", "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR'; "
                "ALTER TABLE orders DROP COLUMN note"),
    ("deploy", "v2"),
]
""",
}
