"""Lesson 02 (infrastructure as code): working directories, remote state, the lock demo, drift,
CloudFormation, and the exercise checks.

Terraform itself is driven by the toolkit :mod:`cloudlab.terraform`; checkov by
:mod:`cloudlab.scanners`. Templates live in ``lessons/02_infrastructure-as-code/`` and are copied
into ``<state>/terraform/l02/<name>``. The parts: ``workdirs`` (working directories, state, the lock demo,
the reset hook), ``cloud`` (boto3: bucket settings, the state bucket, CloudFormation, the drift scenario),
``evidence`` (what the checks read besides the emulator: a directory's files, a fresh plan, the skip
policy) and ``checks``."""

from .checks import (  # noqa: F401
    check_drift,
    check_module,
    check_remote_state,
    check_scan,
    check_workspaces,
)
from .cloud import (  # noqa: F401
    APP_KMS_ALIAS,
    DRIFT_BUCKET,
    DRIFT_NOTE,
    DRIFT_PARAM,
    bootstrap_secrets_key,
    bootstrap_state_bucket,
    bucket_report,
    cfn_deploy,
    cfn_preview,
    drift_scenario,
    module_doc,
    show_buckets,
)
from .evidence import MAY_SKIP, reason_problem  # noqa: F401
from .workdirs import (  # noqa: F401
    EX_ENVS_KEY,
    EX_REPORTS_BUCKET,
    EX_SIZES,
    EX_STATE_KEY,
    EX_UPLOADS_BUCKET,
    LESSON,
    LOCK_HOLDER,
    PARAM_PREFIX,
    STATE_BUCKET,
    TEMPLATES,
    apply_workspaces,
    back_to_local_state,
    list_state_objects,
    read_state,
    remote,
    start_holder,
    state_key,
    state_resources,
    unreachable_endpoint,
    wait_for_lock,
    wait_holder,
    where_in_state,
    workdir,
    workroot,
)
