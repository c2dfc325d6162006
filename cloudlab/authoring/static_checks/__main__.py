"""``python -m cloudlab.authoring.static_checks``: every rule on this repository."""

import sys

from .repository import main

sys.exit(main())
