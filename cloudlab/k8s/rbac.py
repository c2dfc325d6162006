"""RBAC, offline: may this ServiceAccount do that? Answered from Roles, ClusterRoles and their bindings
the way the API server's RBAC authorizer answers ``kubectl auth can-i``.

Serves lesson 07 (least privilege on Kubernetes). The rules it applies:

* RBAC only adds: a request is allowed when ANY rule of ANY role bound to the subject matches it; there is
  no deny rule;
* a RoleBinding grants in its own namespace only (also when it binds a ClusterRole); a ClusterRoleBinding
  grants in every namespace;
* a rule matches when its apiGroups, resources and verbs each hold the request's value or ``*``;
* a rule with ``resourceNames`` matches only a request that names one of them, so it never allows
  ``list``/``watch`` of the whole collection, nor ``create`` (there is no name to match yet).

What this does not model: User and Group subjects (``system:serviceaccounts:<ns>`` included), aggregated
ClusterRoles, ``nonResourceURLs``, and the default roles a real cluster already has. Every function takes
plain dicts and never raises on a strange value.
"""

from __future__ import annotations

from .render import meta


def _match(values, want) -> bool:
    values = values if isinstance(values, list) else []
    return "*" in values or want in values


def _roles(objects) -> dict:
    """{(kind, namespace or None, name): role} of every Role and ClusterRole."""
    out = {}
    for o in objects:
        if isinstance(o, dict) and o.get("kind") in ("Role", "ClusterRole"):
            ns = meta(o).get("namespace") if o["kind"] == "Role" else None
            out[(o["kind"], ns, meta(o).get("name"))] = o
    return out


def _binds(binding: dict, sa: str, namespace: str) -> bool:
    """Does the binding name ServiceAccount ``namespace/sa`` among its subjects?"""
    bns = meta(binding).get("namespace")
    subjects = binding.get("subjects")
    return any(
        isinstance(s, dict)
        and s.get("kind") == "ServiceAccount"
        and s.get("name") == sa
        and s.get("namespace", bns) == namespace
        for s in (subjects if isinstance(subjects, list) else [])
    )


def can(objects, sa: str, namespace: str, verb: str, resource: str, name: str | None = None, group: str = "") -> bool:
    """May ServiceAccount ``namespace/sa`` do ``verb`` on ``resource`` (named ``name``) of API group ``group``
    in its own namespace, according to the Roles, ClusterRoles and bindings in ``objects``? Like
    ``kubectl auth can-i VERB RESOURCE[/NAME] -n NAMESPACE --as system:serviceaccount:NAMESPACE:SA``."""
    objects = [o for o in objects if isinstance(o, dict)]
    roles = _roles(objects)
    for b in objects:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        bns = meta(b).get("namespace")
        if b["kind"] == "RoleBinding" and bns != namespace:
            continue
        if not _binds(b, sa, namespace):
            continue
        ref = b.get("roleRef") if isinstance(b.get("roleRef"), dict) else {}
        role = roles.get((ref.get("kind"), bns if ref.get("kind") == "Role" else None, ref.get("name"))) or {}
        rules = role.get("rules")
        for rule in rules if isinstance(rules, list) else []:
            if not isinstance(rule, dict):
                continue
            if not (_match(rule.get("apiGroups"), group) and _match(rule.get("resources"), resource)):
                continue
            if not _match(rule.get("verbs"), verb):
                continue
            names = rule.get("resourceNames")
            if names and (name is None or name not in names):
                continue
            return True
    return False
