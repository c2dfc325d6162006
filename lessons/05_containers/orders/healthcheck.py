"""The container's health check: exit 0 when the service answers GET /health on its port, else 1.

Standard library only (it runs inside the image): ``HEALTHCHECK CMD ["python", "/app/healthcheck.py"]``.
"""

import os
import sys
import urllib.request

try:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health"
    with urllib.request.urlopen(url, timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(f"unhealthy: {error}", file=sys.stderr)
    sys.exit(1)
