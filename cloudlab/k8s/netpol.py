"""NetworkPolicy semantics, offline: would this connection be allowed?

The rules of the Kubernetes API (networking.k8s.io/v1), for pods described by their namespace and labels:

* a pod is isolated for ingress (egress) when some policy in its namespace selects it and has Ingress
  (Egress) in ``policyTypes`` (default: Ingress, plus Egress when the policy has egress rules);
* an isolated pod accepts (sends) a connection when ANY such policy has a rule whose peers AND ports match;
  a connection needs both sides to allow it: the sender's egress and the receiver's ingress;
* a peer with only ``podSelector`` means pods of the policy's own namespace; with ``namespaceSelector``
  pods of the matching namespaces (every namespace carries ``kubernetes.io/metadata.name``); an empty
  peer list (or none) means everyone; ``ipBlock`` matches addresses outside the cluster only here (pod
  IPs are not known offline, and a real CNI treats pod IPs in ipBlocks inconsistently anyway);
* a named port (``port: http``) means the port of that name on the receiving pod.

What this does not model: the CNI (a cluster without NetworkPolicy support ignores every policy: kind's
default CNI, kindnet, enforces them since kind 0.24), Services (policies see pod ports, not Service ports)
and host-network pods.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .objects import selector_matches
from .render import meta


@dataclass
class Endpoint:
    """One side of a connection: a pod (namespace + labels + its named ports) or an outside address."""

    namespace: str = ""
    labels: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)  # {name: number} of the pod's container ports
    ip: str | None = None  # set for an address outside the cluster
    namespace_labels: dict | None = None

    @property
    def is_pod(self) -> bool:
        return self.ip is None

    def ns_labels(self) -> dict:
        return {"kubernetes.io/metadata.name": self.namespace, **(self.namespace_labels or {})}


def policy_types(policy: dict) -> list[str]:
    spec = policy.get("spec") if isinstance(policy.get("spec"), dict) else {}
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        return [t for t in types if t in ("Ingress", "Egress")]
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def _selects(policy: dict, pod: Endpoint) -> bool:
    if not pod.is_pod or meta(policy).get("namespace", "default") != pod.namespace:
        return False
    sel = (policy.get("spec") or {}).get("podSelector")
    return selector_matches(sel if sel is not None else {}, pod.labels)


def _peer_matches(peer, policy_ns: str, other: Endpoint) -> bool:
    if not isinstance(peer, dict):
        return False
    if "ipBlock" in peer:
        block = peer.get("ipBlock") or {}
        if other.is_pod:
            return False
        try:
            addr = ipaddress.ip_address(other.ip)
            if addr not in ipaddress.ip_network(str(block.get("cidr")), strict=False):
                return False
            return not any(addr in ipaddress.ip_network(str(x), strict=False) for x in block.get("except") or [])
        except ValueError:
            return False
    if not other.is_pod or ("podSelector" not in peer and "namespaceSelector" not in peer):
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer.get("namespaceSelector") or {}, other.ns_labels()):
            return False
    elif other.namespace != policy_ns:
        return False
    return selector_matches(peer.get("podSelector") or {}, other.labels) if "podSelector" in peer else True


def _port_matches(rule_ports, port, protocol: str, receiver: Endpoint) -> bool:
    if not rule_ports:
        return True
    number = receiver.ports.get(port, port) if isinstance(port, str) else port
    for p in rule_ports if isinstance(rule_ports, list) else []:
        if not isinstance(p, dict) or p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None:
            return True
        want = receiver.ports.get(want) if isinstance(want, str) else want
        end = p.get("endPort", want)
        if isinstance(want, int) and isinstance(number, int) and want <= number <= (end or want):
            return True
    return False


def _side_allows(policies, pod: Endpoint, other: Endpoint, direction: str, port, protocol, receiver) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolating = [p for p in policies if _selects(p, pod) and direction in policy_types(p)]
    if not isolating:
        return True
    for pol in isolating:
        ns = meta(pol).get("namespace", "default")
        for rule in (pol.get("spec") or {}).get(key) or []:
            if not isinstance(rule, dict):
                continue
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(pe, ns, other) for pe in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol, receiver):
                return True
    return False


def allowed(policies, src: Endpoint, dst: Endpoint, port, protocol: str = "TCP") -> bool:
    """Would a connection from ``src`` to ``dst`` on ``port``/``protocol`` get through?"""
    policies = [p for p in policies if isinstance(p, dict) and p.get("kind") == "NetworkPolicy"]
    out_ok = not src.is_pod or _side_allows(policies, src, dst, "Egress", port, protocol, dst)
    in_ok = not dst.is_pod or _side_allows(policies, dst, src, "Ingress", port, protocol, dst)
    return out_ok and in_ok


def selected_pods(policy: dict, pods: list[Endpoint]) -> list[Endpoint]:
    """The pods a policy applies to (an empty list is the classic silent mistake)."""
    return [p for p in pods if _selects(policy, p)]
