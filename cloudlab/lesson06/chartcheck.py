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


def render(
    r, release: str = RELEASE, namespace: str = EX_NAMESPACE, set_values: dict | None = None, validate: bool = True
) -> k8s.Manifest:
    """The chart's objects for one release, valid, with one Deployment; else a [missing] line and stop.
    ``set_values``: values the notebook never used (``helm template --set``)."""
    chart = exercise_chart()
    try:
        m = k8s.helm_template(chart.path, release, namespace, set_values=set_values, quiet=True)
    except k8s.RenderError as e:
        r.fail(f"helm could not render your chart ({chart.path}): {str(e).splitlines()[-1][:300]}")
    problems = k8s.validate(m) if validate else []
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


def renders(r, set_values: dict | None = None) -> tuple[k8s.Manifest, k8s.Manifest]:
    """(the notebook's render, a render as a release and namespace the chart has never seen, with ``set_values``)."""
    m = render(r)
    nonce = secrets.token_hex(3)
    release, namespace = f"shop-{nonce}", f"l06-chk-{nonce}"
    fresh = render(r, release, namespace, set_values)
    given = ", ".join(f"{k}={v}" for k, v in (set_values or {}).items())
    r.expect(
        True,
        f"`helm template` renders {len(m)} objects, all valid for Kubernetes {k8s.K8S_VERSION} (strict), as release "
        f"{RELEASE} and again as release {release} in namespace {namespace}"
        + (f" with {given}" if given else "")
        + " (inputs your chart has not seen)",
        "",
    )
    same_namespace(r, fresh, namespace)
    return m, fresh


def twin(r, m: k8s.Manifest) -> k8s.Manifest:
    """The chart as a second release in the namespace of ``m`` (a canary, a second tenant): what it would create."""
    namespace = k8s.meta(m.get("Deployment")).get("namespace")
    return render(r, f"twin-{secrets.token_hex(3)}", namespace, validate=False)


def clashes(m: k8s.Manifest, other: k8s.Manifest, kinds=None) -> list[str]:
    """``kind/name`` of the objects two renders in one namespace would both create (helm refuses the second)."""

    def names(objs):
        return {(o.get("kind"), k8s.meta(o).get("name")) for o in objs if kinds is None or o.get("kind") in kinds}

    return [f"{k}/{n}" for k, n in sorted(names(m) & names(other), key=str)]


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
