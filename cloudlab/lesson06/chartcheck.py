"""What every lesson 06 check does first: render YOUR chart with the real helm and validate it (strict schemas of
the course's Kubernetes version, removed APIs fail); and, when the course's cluster answers, install it there.

Every check renders the chart twice: as the notebook does (release ``orders`` in ``l06-ex``), and again as a
release and in a namespace the chart has never seen (``shop-<random>`` in ``l06-chk-<random>``). The checks read
the meaning from the second render, so a template that names today's release or namespace instead of
``{{ .Release.Name }}`` / ``{{ .Release.Namespace }}`` fails."""

from __future__ import annotations

import secrets

from .. import k8s
from . import EX_NAMESPACE, IMAGE_TAG, RELEASE, exercise_chart, live_backing

_LIVE_DONE: dict[str, bool] = {}


def render(r, release: str = RELEASE, namespace: str = EX_NAMESPACE) -> k8s.Manifest:
    """The chart's objects for one release, valid, with one Deployment; else a [missing] line and stop."""
    chart = exercise_chart()
    try:
        m = k8s.helm_template(chart.path, release, namespace, quiet=True)
    except k8s.RenderError as e:
        r.fail(f"helm could not render your chart ({chart.path}): {str(e).splitlines()[-1][:300]}")
    problems = k8s.validate(m)
    if problems:
        r.fail(
            "the rendered objects do not validate: "
            + "; ".join(f"{w}: {msg[:140]}" for w, msg in problems[:4])
            + (" ..." if len(problems) > 4 else "")
        )
    deployments = m.all("Deployment")
    if len(deployments) != 1:
        r.fail(f"{len(deployments)} Deployments rendered, expected exactly 1")
    return m


def renders(r) -> tuple[k8s.Manifest, k8s.Manifest]:
    """(the notebook's render, a render as a release and namespace the chart has never seen)."""
    m = render(r)
    nonce = secrets.token_hex(3)
    release, namespace = f"shop-{nonce}", f"l06-chk-{nonce}"
    fresh = render(r, release, namespace)
    r.expect(
        True,
        f"`helm template` renders {len(m)} objects, all valid for Kubernetes {k8s.K8S_VERSION} (strict), as release "
        f"{RELEASE} and again as release {release} in namespace {namespace} (names your chart has not seen)",
        "",
    )
    same_namespace(r, fresh, namespace)
    return m, fresh


def same_namespace(r, m: k8s.Manifest, namespace: str) -> None:
    away = [o for o in m if k8s.meta(o).get("namespace") not in (None, namespace)]
    if away:
        names = ", ".join(f"{o.get('kind')}/{k8s.meta(o).get('name')}" for o in away[:3])
        r.fail(
            f"installed into namespace {namespace}, your chart still puts {names} into "
            f"{k8s.meta(away[0]).get('namespace')!r}: use {{{{ .Release.Namespace }}}}, not a fixed namespace"
        )


def live(r, m, pin_image: bool = True) -> k8s.Cluster | None:
    """Live mode: install the chart (helm upgrade --install --wait) and expect it to roll out.

    ``pin_image``: install the image `make cluster` loaded (the exercise chart starts with `latest`, which kind
    cannot pull); 06.6 installs the learner's own tag instead."""
    cluster = k8s.live()
    if cluster is None:
        return None
    if not _LIVE_DONE.get("backing"):
        live_backing(cluster)
        _LIVE_DONE["backing"] = True
    pinned = {"image.tag": IMAGE_TAG} if pin_image else None
    ok, out = cluster.helm_upgrade(RELEASE, exercise_chart().path, EX_NAMESPACE, set_values=pinned, quiet=True)
    r.expect(
        ok,
        "live: helm upgrade --install rolled out (every pod ready)",
        f"live: the release did not roll out: {out[-300:]}",
    )
    return cluster
