"""Run real Terraform against the lab: init, fmt, validate, plan, apply, destroy, in plain words.

Every run gets the same environment:

* the lab's AWS variables (``AWS_ENDPOINT_URL`` ...), after the real-AWS safety guard;
* ``TF_IN_AUTOMATION=1``, ``TF_INPUT=0``, ``CHECKPOINT_DISABLE=1`` (never prompt, never phone home);
* ``GOGC=400`` unless set: Terraform and the provider collect garbage less often (less CPU per run);
* a plugin cache shared by all working directories (``<state>/terraform/plugin-cache``);
* when the machine has a filesystem mirror of the providers (``CLOUDLAB_TF_MIRROR``, or found on
  disk), a CLI config of the course's own that installs from it; otherwise Terraform downloads
  providers as usual.

Working directories live under the lab's state directory (``<state>/terraform/...``), so
``.terraform/``, lock files and state never land in the repository, and ``make reset`` wipes them.

Terraform's machine-readable output (``-json``) is parsed, so a failure becomes a
:class:`TerraformError` that names the file, the line and the fix, and a plan becomes a short
list of ``+ create`` / ``~ update`` / ``- destroy`` lines a learner can read.

Serves lesson 02 (infrastructure as code) and the lessons that build on Terraform (07).
The parts: ``env`` (the environment of every run, the provider mirror, the S3 backend),
``results`` (plans, diagnostics and errors in plain words), ``runner`` (the :class:`Terraform` runner)."""

from .env import (  # noqa: F401
    LAB_DOWN_HINT,
    MIRROR_ENV,
    MIRROR_GUESSES,
    LabDown,
    TerraformError,
    backend_config,
    cli_config_text,
    find_mirror,
    mirror,
    terraform_env,
    tf_root,
)
from .results import (  # noqa: F401
    Change,
    PlanSummary,
    Progress,
    Result,
    describe_diagnostic,
    explain,
    parse_plan_json,
    summary_from_events,
)
from .runner import (  # noqa: F401
    Terraform,
    copy_template,
)
