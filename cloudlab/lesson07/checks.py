"""Lesson 07's exercise checks: git history and hooks, the secret store, injection (07.1-07.4).

Rotation (07.5) is in :mod:`.checks_rotation`; least privilege (07.6 IAM, 07.7 Kubernetes RBAC) in
:mod:`.checks_access`.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import uuid
from pathlib import Path

from .. import iam, scanners
from ..checks import check
from . import repo as repos

IAM_NAME = "l07-iam"


def nonce() -> str:
    return uuid.uuid4().hex[:8]


def _quiet_call(r, fn, *args):
    """Call the learner's function with its printed output captured: (result, what it printed)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        result = r.call(fn, *args)
    return result, buf.getvalue()


def _repo(r, ns) -> Path:
    path = Path(r.need(ns, "REPO", (str, Path), "path to the exercise repository"))
    st = repos.state(path)
    r.require(st["ok"], f"the repository is on branch {st['branch']} with a clean working tree", st["problem"])
    return path


# ------------------------------------------------------------------ 07.1
@check(
    "07.1",
    "The leaked key is rotated, and gone from the history",
    hints=[
        "Two jobs, in this order: first make the leaked key useless (a new key for l07-deploy-bot, then delete "
        "the old one in the enforcing IAM emulator), then rewrite the history so no commit contains it.",
        "Rotate: `iam_admin.create_access_key(UserName=...)`, then `delete_access_key(...)` of the leaked id. "
        "Rewrite: `git filter-repo --replace-text <file> --force` with a file listing the key id and its secret; "
        "a new commit that deletes the file does not change the old commits.",
        "After filter-repo nothing else is needed; after `git filter-branch`, also delete refs/original and expire "
        "the reflog (`git reflog expire --expire=now --all`). Keep the other commits (README.md, app.py, deploy/).",
    ],
)
def check_history(r, ns):
    path = _repo(r, ns)
    leak = repos.load_leak(path)
    r.require(
        leak is not None,
        "the repository is the one the setup cell made",
        f"{path} was not made by `lesson07.setup_exercises()`: run the setup cell at the top again",
    )
    e = iam.running(IAM_NAME)
    r.require(
        e is not None,
        "the enforcing IAM emulator runs",
        "the enforcing IAM emulator (l07-iam) is not running, so nobody can tell whether the key still works. "
        "Run the setup cell again (it starts the emulator and makes a new leaky repository: redo both steps).",
    )
    a = e.client("iam")
    try:
        keys = a.list_access_keys(UserName=leak.user)["AccessKeyMetadata"]
    except a.exceptions.NoSuchEntityException:
        r.fail(f"the user {leak.user} is gone: rotate its key, do not delete the identity the deploy job uses")
    old = [k for k in keys if k["AccessKeyId"] == leak.key_id and k["Status"] == "Active"]
    works = e.key_works(iam.Creds(leak.user, leak.key_id, leak.secret))
    r.expect(
        not old and works.denied,
        f"the leaked key {leak.key_id[:8]}... no longer works (a real call with it: {works})",
        f"the leaked key {leak.key_id[:8]}... still works (a real call with it was {works}): anyone who cloned the "
        "repository can use it. Delete it (or at least make it Inactive) in the emulator.",
    )
    policies = a.list_user_policies(UserName=leak.user)["PolicyNames"]
    attached = a.list_attached_user_policies(UserName=leak.user)["AttachedPolicies"]
    r.expect(
        bool(policies or attached),
        f"{leak.user} keeps its permissions (the identity stays, only its key changed)",
        f"{leak.user} has no policy any more: it was deleted and made again (or its policy removed). Rotate the "
        "key, do not rebuild the identity: everything that trusted it (its policy, resource policies) is gone",
    )
    fresh = [k for k in keys if k["AccessKeyId"] != leak.key_id and k["Status"] == "Active"]
    r.expect(
        bool(fresh),
        f"{leak.user} has a new active key, so the deploy job keeps working",
        f"{leak.user} has no new active key: rotating means replacing the key (create the new one first), "
        "not just disabling the deploy",
    )
    hits = repos.history_hits(path, leak.key_id) + (repos.history_hits(path, leak.secret) if leak.secret else [])
    backups = [ref for ref in repos.refs(path) if ref.startswith("refs/original/")]
    here = f"refs/heads/{repos.state(path)['branch']}"
    others = [ref for ref in repos.refs(path) if ref.startswith(("refs/heads/", "refs/tags/")) and ref != here]
    r.expect(
        not hits,
        "no commit reachable from any branch, tag, stash, backup ref or the reflog contains the key",
        f"the key is still in the history: {', '.join(sorted(set(hits))[:3])}"
        + (f" (kept alive by {backups[0]}: delete the backup refs)" if backups else "")
        + (f" (other refs: {', '.join(others[:3])}: a backup branch keeps the old commits too)" if others else "")
        + ". A commit that deletes the file leaves every older commit as it was.",
    )
    try:
        scan = scanners.trufflehog(path, quiet=True, lesson="07")
    except scanners.ScanError as err:
        r.fail(f"trufflehog could not scan the repository: {err}")
    r.expect(
        not scan["findings"],
        f"trufflehog finds nothing in {scan['commits']} commits",
        f"trufflehog still finds {len(scan['findings'])} key(s) in the history: "
        + ", ".join(f"{f['path']} in {f['commit']}" for f in scan["findings"][:3]),
    )
    files = repos.tree_files(path)
    wanted = {"README.md", "app.py", "deploy/settings.py", "deploy/deploy.sh"}
    r.expect(
        wanted <= files and repos.commit_count(path) >= 3,
        "the rest of the history survived (README.md, app.py, deploy/ and at least 3 commits)",
        f"the history was thrown away or files are missing ({', '.join(sorted(wanted - files)) or 'too few commits'}):"
        " rewrite only the secret, keep the project's history",
    )


# ------------------------------------------------------------------ 07.2
@check(
    "07.2",
    "A pre-commit hook blocks a commit that adds a secret",
    hints=[
        "Three pieces, all in the repository: a `.pre-commit-config.yaml` with a `repo: local` hook that runs "
        "`detect-secrets-hook --baseline .secrets.baseline`, a baseline file, and the hook installed in .git/hooks.",
        "The hook entry: `id: detect-secrets`, `name: detect-secrets`, `entry: detect-secrets-hook`, "
        "`args: ['--baseline', '.secrets.baseline']`, `language: system`. Make the baseline with "
        "`detect-secrets scan > .secrets.baseline`, install with `pre-commit install`.",
        "Commit the config and the baseline (the check needs a clean tree). The check tries commits in a copy: "
        "a key in a .env file must be refused too, so no `files:` filter, no `|| true`, no `verbose`-only hook.",
    ],
)
def check_hook(r, ns):
    path = _repo(r, ns)
    tracked = repos.tree_files(path)
    r.expect(
        ".pre-commit-config.yaml" in tracked,
        ".pre-commit-config.yaml is committed (everyone who clones gets it)",
        ".pre-commit-config.yaml is not committed: write it in the repository and commit it",
    )
    r.expect(
        ".secrets.baseline" in tracked,
        ".secrets.baseline is committed",
        ".secrets.baseline is not committed: `detect-secrets scan > .secrets.baseline`, then commit it",
    )
    hook = path / ".git" / "hooks" / "pre-commit"
    r.require(
        hook.exists() and "pre-commit" in hook.read_text(errors="replace"),
        "the hook is installed in .git/hooks/pre-commit",
        "no pre-commit hook is installed in this clone: run `pre-commit install` in the repository",
    )
    kid, secret = repos.fake_aws_key()
    # detect-secrets skips a quoted value that starts with "-" (1 token_urlsafe in 64 does): start with letters
    pw = "Pw" + secrets.token_urlsafe(16).replace("-", "x")
    tries = repos.try_commits(
        path,
        {
            "deploy/prod.env": f"AWS_ACCESS_KEY_ID={kid}\nAWS_SECRET_ACCESS_KEY={secret}\n",
            "deploy/db_settings.py": f'DB_PASSWORD = "{pw}"\n',
            "docs/notes.md": "Nothing secret here: the password comes from Secrets Manager.\n",
        },
    )
    env_try, py_try, ok_try = tries
    r.expect(
        not env_try.landed,
        "a commit adding an AWS key in deploy/prod.env is refused",
        "a commit adding an AWS key in deploy/prod.env went through: the hook does not look at it, or only warns. "
        f"Hook output: {env_try.output.strip()[-300:] or '(none: the hook did not run)'}",
    )
    r.expect(
        not py_try.landed,
        "a commit adding a password in a .py file is refused",
        f'a commit adding DB_PASSWORD = "..." in a .py file went through. Hook output: {py_try.output.strip()[-300:]}',
    )
    r.expect(
        ok_try.landed,
        "a harmless commit still goes through (the hook does not block everything)",
        f"a harmless commit (docs/notes.md) was refused too: the hook fails on everything. Its output: "
        f"{ok_try.output.strip()[-400:]}",
    )
