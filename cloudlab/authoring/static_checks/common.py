"""Shared constants and image-reference rules of the static checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent.parent

LOCALSTACK_TAG = "4.14.0"  # the last community image; later tags need a paid auth token
LOCALSTACK_REPO = "localstack/localstack"
MOTO_REPO = "motoserver/moto"
LOCALSTACK_NETWORK_PORT = 4566
MOTO_NETWORK_PORT = 5000
LOOPBACK = "127.0.0.1"
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
HEALTHY = "service_healthy"


# ------------------------------------------------------------------------------ images
@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None


def parse_image(ref: str) -> ImageRef:
    """Split ``registry:port/repo:tag@sha256:...`` into repository, tag and digest."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a ':' after the last '/' starts the tag (before it: a registry port)
        return ImageRef(name[:colon], name[colon + 1 :], digest or None)
    return ImageRef(name, None, digest or None)


def image_problems(ref: str, where: str = "image") -> list[str]:
    """An image must name an exact version (``x.y.z`` in its tag); ``latest`` or no tag is refused."""
    if not isinstance(ref, str) or not ref.strip():
        return [f"{where}: no image reference"]
    img = parse_image(ref.strip())
    if img.tag is None:
        return [f"{where}: {ref!r} has no tag, which means `latest`: pin an exact version"]
    if img.tag == "latest":
        return [f"{where}: {ref!r} uses `latest`, which changes under you: pin an exact version"]
    if "$" in img.tag:
        return [f"{where}: {ref!r} takes its tag from a variable: write the exact version"]
    if not EXACT_VERSION.search(img.tag):
        return [f"{where}: {ref!r} has the floating tag {img.tag!r}: pin an exact x.y.z version"]
    return []
