"""Stands in for a private package index that wants a token (no network is used).

    python tools/private_index.py --token TOKEN
    python tools/private_index.py --token-file /run/secrets/index_token

It checks that the token looks like one (a GitHub-style personal access token), then "installs" the
private package by writing /usr/local/share/orders-private/index.json, which records the package and a
fingerprint of the token (the first 8 hex digits of its SHA-256: proof the build had the token, and
no way back to it). A real index would download the package with the token instead.
"""

import argparse
import hashlib
import json
import pathlib
import re
import sys

parser = argparse.ArgumentParser()
group = parser.add_mutually_exclusive_group(required=True)
group.add_argument("--token")
group.add_argument("--token-file")
args = parser.parse_args()
token = args.token if args.token is not None else pathlib.Path(args.token_file).read_text().strip()
if not re.fullmatch(r"ghp_[A-Za-z0-9]{36}", token or ""):
    sys.exit("private index: 401 Unauthorized (no token, or not a token)")
out = pathlib.Path("/usr/local/share/orders-private/index.json")
out.parent.mkdir(parents=True, exist_ok=True)
record = {"package": "orders-pricing==1.2.0", "token_fingerprint": hashlib.sha256(token.encode()).hexdigest()[:8]}
out.write_text(json.dumps(record) + "\n")
print(f"private index: installed {record['package']}")
