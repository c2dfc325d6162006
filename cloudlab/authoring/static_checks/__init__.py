"""The course's rules for its Docker path and its CI workflow, checked without Docker or network.

Each rule is a function that takes parsed content (a dict from YAML, the text of a Dockerfile)
and returns a list of problems in plain words; an empty list means the rule holds.  The rules
serve the unit tests (``tests/test_static.py``) and the command line::

    python -m cloudlab.authoring.static_checks          # checks this repository, exit 1 on problems

The rules:

* every image is pinned to an exact version tag (``x.y.z``): no ``latest``, no missing tag;
* LocalStack is the last community release (:data:`LOCALSTACK_TAG`), moto the version of
  ``pins/moto-lock.txt``;
* every service has a health check, and ``depends_on`` waits for ``service_healthy``;
* every published port is bound to 127.0.0.1;
* the JupyterLab service routes to moto exactly the services :data:`cloudlab.lab.MOTO_SERVICES`
  names, on hosts the real-AWS guard accepts, with dummy credentials;
* the Dockerfile's ``FROM`` lines are pinned, it runs as a non-root ``USER``, has a
  ``HEALTHCHECK``, and verifies the checksum of everything it downloads;
* the workflow runs ``make test`` with read-only permissions, pinned actions and time limits;
* its ``kubernetes-live`` job runs lesson 06 on kind: actions pinned by commit, the node image by digest,
  ``make cluster`` first, and a cluster required (``CLOUDLAB_REQUIRE_CLUSTER=1``).

The parts: ``common`` (constants, image references), ``compose``, ``dockerfile``, ``workflow``
(with pins and schemas), and here: every rule on this repository's files."""

from .common import (  # noqa: F401
    EXACT_VERSION,
    HEALTHY,
    LOCALSTACK_NETWORK_PORT,
    LOCALSTACK_REPO,
    LOCALSTACK_TAG,
    LOOPBACK,
    MOTO_NETWORK_PORT,
    MOTO_REPO,
    ROOT,
    ImageRef,
    image_problems,
    parse_image,
)
from .compose import (  # noqa: F401
    compose_credentials_problems,
    compose_depends_on_problems,
    compose_healthcheck_problems,
    compose_image_problems,
    compose_localstack_problems,
    compose_moto_pin_problems,
    compose_port_problems,
    compose_routing_problems,
    compose_top_level_problems,
    environment,
    healthcheck_is_real,
    port_problems,
    service_with_image,
    services,
)
from .dockerfile import (  # noqa: F401
    DOWNLOAD,
    REQUIRED_IGNORES,
    VERIFY,
    Instruction,
    dockerfile_download_problems,
    dockerfile_from_problems,
    dockerfile_healthcheck_problems,
    dockerfile_installer_problems,
    dockerfile_problems,
    dockerfile_user_problems,
    dockerignore_problems,
    final_stage,
    parse_dockerfile,
)
from .repository import (  # noqa: F401
    check_repository,
    compose_problems,
    load_yaml,
    main,
)
from .workflow import (  # noqa: F401
    LIVE_JOB,
    MAKE_TEST,
    PINNED_REF,
    kind_job_problems,
    pinned_version,
    schema_problems,
    steps,
    workflow_problems,
    workflow_python_problems,
    workflow_python_versions,
)
