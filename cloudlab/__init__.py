"""Helper package of the cloud-mindset course.

Notebooks start with::

    import cloudlab
    cloudlab.connect()          # safety guard + readiness, in plain words

and then use plain boto3 through ``cloudlab.client("s3")``.  Nothing here is
imported eagerly, so ``python -m cloudlab.lab`` works before boto3 exists.

The layers (CONTRIBUTING.md has the whole map):

* runtime, for notebooks: ``aws`` (guard, clients), ``ready`` (connect, probes), ``checks``,
  ``cleanup`` (``reset_lesson``), ``procs``, ``pager``, ``net``, ``stats``;
* topic toolkits: ``terraform``, ``cost``, ``observability`` (and one per later topic);
* one module per lesson: ``lesson00`` ... (its helpers, reset hook and checks);
* ``lab``: the local cloud itself (standard library only; ``make lab``);
* ``authoring``: the generator, the nbval plugin, the test runner. Never imported by a notebook.
"""

from __future__ import annotations

__all__ = ["connect", "client", "resource", "session", "CheckFailed", "progress", "reset_lesson"]

_EXPORTS = {
    "client": "aws",
    "resource": "aws",
    "session": "aws",
    "RealAWSRefused": "aws",
    "guard": "aws",
    "connect": "ready",
    "wait_for_services": "ready",
    "EmulatorDown": "ready",
    "CheckFailed": "checks",
    "progress": "checks",
    "reset_lesson": "cleanup",
}


def __getattr__(name):  # lazy re-exports (PEP 562)
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'cloudlab' has no attribute {name!r}")
