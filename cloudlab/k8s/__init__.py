"""Kubernetes toolkit: render, validate and question manifests offline; read the live cluster when one answers.

Serves lesson 06 (Kubernetes) and lesson 07 (RBAC, Secrets). The parts:

* ``render``  ``helm_template``, ``helm_lint``, ``kustomize``, ``load`` -> a :class:`Manifest` (list of dicts);
  ``validate`` / ``check_valid`` (kubernetes-validate strict schemas; removed APIs fail); ``K8S_VERSION``;
  ``scan`` (checkov's Kubernetes rules over rendered objects, through :func:`cloudlab.scanners.checkov`);
* ``objects`` questions about objects: selectors, pod templates, ports, quantities, QoS, probes,
  security contexts, immutable images, the HPA formula, rollout bounds;
* ``netpol``  NetworkPolicy semantics: would a connection be allowed?
* ``rbac``    RBAC semantics: ``can`` this ServiceAccount do that (``kubectl auth can-i``, offline)?
* ``secrets`` how a workload's pods get Secrets (``secret_use``); ``encryption_problems`` of an
  EncryptionConfiguration (Secrets encrypted at rest in etcd);
* ``live``    the course's kind cluster (context ``kind-cloudlab`` only): ``mode()``, ``live()``, ``Cluster``.

Policy scans go through :func:`cloudlab.scanners.checkov` with ``framework="kubernetes"`` (or ``"helm"``);
``scan`` writes rendered objects to a folder and runs it there.
"""

from .live import Cluster, NoCluster, live, mode, skip_unless_live  # noqa: F401
from .netpol import Endpoint, allowed, policy_types, selected_pods  # noqa: F401
from .objects import (  # noqa: F401
    WORKLOADS,
    container,
    container_ports,
    containers,
    dig,
    hpa_desired,
    image_problem,
    mib,
    pod_labels,
    pod_spec,
    pod_template,
    probe_budget,
    probe_target,
    qos_class,
    quantity,
    rollout_bounds,
    security,
    selector_matches,
    split_image,
)
from .rbac import can  # noqa: F401
from .render import (  # noqa: F401
    K8S_VERSION,
    REMOVED_APIS,
    InvalidManifest,
    K8sError,
    Manifest,
    RenderError,
    check_valid,
    helm_lint,
    helm_template,
    kustomize,
    load,
    meta,
    run,
    scan,
    shown,
    validate,
)
from .secrets import encryption_problems, secret_use  # noqa: F401
