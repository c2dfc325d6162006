"""Helper package of the cloud-mindset course.

Notebooks start with::

    import cloudlab
    cloudlab.connect()          # safety guard + readiness, in plain words

and then use plain boto3 through ``cloudlab.client("s3")``.  Nothing here is
imported eagerly, so ``python -m cloudlab.lab`` works before boto3 exists.
"""
from __future__ import annotations

__all__ = ["connect", "client", "resource", "session", "CheckFailed", "progress", "reset_lesson"]


def __getattr__(name):  # lazy re-exports (PEP 562)
    if name in ("connect", "client", "resource", "session", "RealAWSRefused", "guard"):
        from . import aws
        return getattr(aws, name)
    if name in ("CheckFailed", "progress"):
        from . import checks
        return getattr(checks, name)
    if name in ("reset_lesson",):
        from . import cleanup
        return getattr(cleanup, name)
    if name in ("wait_for_services", "EmulatorDown"):
        from . import ready
        return getattr(ready, name)
    raise AttributeError(f"module 'cloudlab' has no attribute {name!r}")
