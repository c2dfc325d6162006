"""Lesson 08 (CI/CD and deployment strategies): the pipeline project, the releases behind haproxy,
the migrations, and the exercise checks.

The tools are toolkits: :mod:`cloudlab.pipelines` (gitlab-ci-local, the workflow linters),
:mod:`cloudlab.deploy` (versions, blue-green, canary), :mod:`cloudlab.haproxy`,
:mod:`cloudlab.database` (PostgreSQL). The parts: ``release`` (paths, backing services, pipeline
runs with the lab's settings, cleanup), ``migrations`` (two app versions and a plan runner), ``checks``.
"""

from .checks import (  # noqa: F401
    check_migrations,
    check_pipeline,
    check_workflow,
)
from .migrations import (  # noqa: F401
    COUPLED_PLAN,
    VERSIONS,
    run_plan,
    seed,
    show_plan,
)
from .release import (  # noqa: F401
    ASSETS,
    BUCKET,
    COURSE_WORKFLOW,
    PROJECT,
    QUEUE,
    WORKFLOW,
    backing,
    database,
    failing_test,
    image_settings,
    pipeline_variables,
    plot_timelines,
    prepare,
    work_dir,
)
from .traffic_checks import (  # noqa: F401
    check_blue_green,
    check_canary,
)
