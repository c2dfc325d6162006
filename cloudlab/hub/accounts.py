"""Workshop accounts made in advance: a system user and a generated password per learner, login cards to print.

Runs in the hub's environment (``python3 -m cloudlab.hub accounts`` starts it there): the password's bcrypt
hash goes into NativeAuthenticator's table of the hub's database (what it checks at login), the JupyterHub
user into the hub's own table (so the admin page and the roster list every learner before they log in).
The only plain copy of a password is the printed card: ``login-cards.html`` in the hub's private folder
(0600, root), to print and delete. Serves the workshop hub.
"""

from __future__ import annotations

import html
import json
import os
import pwd
import secrets
import subprocess
import sys
from pathlib import Path

from . import INSTRUCTOR, NAME, Hub, say

ROLE_LINE = {True: "instructor: admin of the hub and the roster", False: "your lab is yours alone"}
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # pragma: allowlist secret (an alphabet: no 0/o, 1/l/i on a card)


def password(groups: int = 3, size: int = 4) -> str:
    """``k7mp-x2qd-9fzt``: 12 random characters of 31 (about 59 bits), easy to type from a card."""
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(size)) for _ in range(groups))


def names_from(seats: int = 0, listfile: str | None = None, prefix: str = "seat") -> list[str]:
    """``seat01`` ... from a number of seats, or the names in a file (one a line; # comments)."""
    if listfile:
        raw = [ln.split("#")[0].strip().lower() for ln in Path(listfile).read_text().splitlines()]
        names = [n for n in raw if n]
    else:
        names = [f"{prefix}{i:02d}" for i in range(1, seats + 1)]
    bad = [n for n in names if not NAME.fullmatch(n) or n == INSTRUCTOR]
    if bad:
        raise ValueError(
            f"not a workshop name: {', '.join(map(repr, bad[:5]))} (lowercase letters, digits and dashes, "
            f"starting with a letter, at most 20; {INSTRUCTOR!r} is the instructor's)"
        )
    if len(set(names)) != len(names):
        raise ValueError("a name appears twice in the list")
    return names


def system_user(hub: Hub, name: str) -> pwd.struct_passwd:
    """The learner's system user (made once): their own group, a home only they can enter, no password."""
    user = hub.sysuser(name)
    try:
        return pwd.getpwnam(user)
    except KeyError:
        pass
    hub.homes.mkdir(parents=True, exist_ok=True)
    os.chmod(hub.homes, 0o711)  # enter a home by its name, never list them
    cmd = ["useradd", "--create-home", "--home-dir", str(hub.home(name)), "--shell", "/bin/bash"]
    cmd += ["--user-group", "--key", "UMASK=0077", "--comment", f"cloudlab workshop {name}", user]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")
    os.chmod(hub.home(name), 0o700)
    return pwd.getpwnam(user)


def remove_system_user(hub: Hub, name: str) -> None:
    subprocess.run(["userdel", "--remove", hub.sysuser(name)], capture_output=True)


def _session(hub: Hub):
    from jupyterhub import orm
    from nativeauthenticator.orm import UserInfo

    hub.state.mkdir(parents=True, exist_ok=True)
    os.chmod(hub.state, 0o700)
    session = orm.new_session_factory(f"sqlite:///{hub.db}")()
    UserInfo.__table__.create(session.get_bind(), checkfirst=True)
    os.chmod(hub.db, 0o600)
    return session


def store(hub: Hub, passwords: dict[str, str], admins: set[str] = frozenset()) -> None:
    """bcrypt hashes into NativeAuthenticator's table; the users into JupyterHub's (hub stopped or running)."""
    import bcrypt
    from jupyterhub import orm
    from nativeauthenticator.orm import UserInfo

    db = _session(hub)
    for name, pw in passwords.items():
        hashed = bcrypt.hashpw(pw.encode(), bcrypt.gensalt())
        info = UserInfo.find(db, name)
        if info is None:
            db.add(UserInfo(username=name, password=hashed, is_authorized=True))
        else:
            info.password, info.is_authorized = hashed, True
        if orm.User.find(db, name) is None:
            db.add(orm.User(name=name, admin=name in admins))
    db.commit()


def forget(hub: Hub, names: list[str]) -> None:
    from jupyterhub import orm
    from nativeauthenticator.orm import UserInfo

    db = _session(hub)
    for name in names:
        for row in (UserInfo.find(db, name), orm.User.find(db, name)):
            if row is not None:
                db.delete(row)
    db.commit()


def cards_html(hub_url: str, passwords: dict[str, str], title: str = "Cloud mindset workshop") -> str:
    """One card per account (URL, name, password), eight to an A4 page, for scissors."""
    cards = "".join(
        f'<div class="card"><h2>{html.escape(title)}</h2><p class="url">{html.escape(hub_url)}</p>'
        f"<p>name <b>{html.escape(n)}</b></p><p>password <b class=pw>{html.escape(p)}</b></p>"
        f"<p class=small>{ROLE_LINE[n == INSTRUCTOR]}</p></div>"
        for n, p in passwords.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Login cards</title><style>"
        "body{font-family:sans-serif;margin:0}.grid{display:grid;grid-template-columns:1fr 1fr;gap:0}"
        ".card{border:1px dashed #888;padding:12mm 8mm;height:55mm;box-sizing:border-box;break-inside:avoid}"
        ".card h2{margin:0 0 3mm;font-size:14pt}.url{font-family:monospace;font-size:11pt}"
        ".pw{font-family:monospace;font-size:15pt;letter-spacing:1px}.small{font-size:9pt;color:#555}"
        "@media print{.note{display:none}}</style></head><body>"
        "<p class=note>Print this page (8 cards a sheet), then delete the file: it is the only plain copy of "
        "these passwords (the hub keeps bcrypt hashes).</p>"
        f"<div class=grid>{cards}</div></body></html>\n"
    )


def write_cards(hub: Hub, passwords: dict[str, str], url: str | None = None) -> Path:
    hub.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(hub.cards, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(cards_html(url or hub.url, passwords))
    return hub.cards


def main(argv: list[str]) -> int:
    """``python -m cloudlab.hub.accounts create|remove [--seats N | --names FILE] [--instructor] [--json]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="cloudlab.hub.accounts")
    ap.add_argument("action", choices=["create", "remove"])
    ap.add_argument("--seats", type=int, default=0)
    ap.add_argument("--names")
    ap.add_argument("--instructor", action="store_true", help="also (re)make the instructor's account")
    ap.add_argument("--json", action="store_true", help="print the passwords as JSON (automation; not the cards)")
    ap.add_argument("--url", help="the address printed on the cards (the room's https:// URL)")
    ap.add_argument("--no-system-users", action="store_true", help="Kubernetes: the hub pod has no learners' users")
    args = ap.parse_args(argv)
    hub = Hub.from_env()
    names = names_from(args.seats, args.names)
    if args.action == "remove":
        forget(hub, names)
        for n in names:
            remove_system_user(hub, n)
        say(f"removed {len(names)} accounts and their homes")
        return 0
    passwords = {INSTRUCTOR: password()} if args.instructor else {}
    passwords.update({n: password() for n in names})
    for n in names if not args.no_system_users else ():
        system_user(hub, n)
    store(hub, passwords, admins={INSTRUCTOR})
    path = write_cards(hub, passwords, args.url)
    if args.json:
        print(json.dumps(passwords))
    else:
        say(
            f"{len(names)} learner accounts{' and the instructor' if args.instructor else ''} ready (system users "
            f"{hub.sysuser(names[0]) if names else '-'} ..., homes in {hub.homes})"
        )
        say(f"login cards: {path} (0600): print it, then delete it; the hub keeps only bcrypt hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
