"""The toolkit's errors: each says what is missing and the likely reason."""

from __future__ import annotations


class NoDataPoints(ValueError):
    """A metric (or a window of it) has nothing in it: say which, and the likely reason."""


class MalformedLogLine(ValueError):
    """A log line is not one JSON object with a timestamp."""
