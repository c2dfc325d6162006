"""``python3 -m cloudlab.lab``: see :mod:`cloudlab.lab.cli`."""

import sys

from .cli import main

sys.exit(main())
