"""The instructor's roster: every learner's progress in one view, live; a JupyterHub service, admin only.

``/services/roster/`` on the hub (the hub starts it: hub/jupyterhub_config.py): a table of learners (server
state, checks passed per lesson, tries, time since their last activity, memory, alerts), the checks most
learners are stuck on with their hints, a plot, refreshed every 5 s; ``roster.csv`` exports the table.

It reads what the learners' labs write, nothing else: ``~/.lab/progress.json`` (:mod:`cloudlab.checks`),
``~/.lab/hub-health.json`` (:mod:`cloudlab.hub.supervisor`), the learner's memory cgroup
(:mod:`cloudlab.hub.cgroups`) and the free space of the disk their homes are on. The facts are computed by
:mod:`cloudlab.hub.rosterdata`; this module is the web service (tornado, JupyterHub's HubOAuth). Serves the
workshop hub.
"""

from __future__ import annotations

import html
import json
import os

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from .. import net
from . import Hub, rosterdata

REFRESH_S = 5


def hub_api(path: str):
    url = os.environ["JUPYTERHUB_API_URL"].rstrip("/") + path
    return net.request("GET", url, headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"}).json()


class Base(HubOAuthenticated, web.RequestHandler):
    def admin_only(self) -> None:
        user = self.current_user
        model = hub_api(f"/users/{user['name']}") if user else None
        if not model or not model.get("admin"):
            raise web.HTTPError(403, "the roster is for the instructor (an admin of the hub)")

    def facts(self) -> dict:
        return rosterdata.collect(Hub.from_env(), hub_api("/users") or [])


class Page(Base):
    @web.authenticated
    def get(self):
        self.admin_only()
        token = self.xsrf_token
        self.write(rosterdata.page(self.facts(), REFRESH_S, token.decode() if isinstance(token, bytes) else token))


class Fragment(Base):
    @web.authenticated
    def get(self):
        self.admin_only()
        self.write(rosterdata.fragment(self.facts()))


class Csv(Base):
    @web.authenticated
    def get(self):
        self.admin_only()
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="roster.csv"')
        self.write(rosterdata.csv_text(self.facts()))


class Data(Base):
    @web.authenticated
    def get(self):
        self.admin_only()
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(self.facts(), default=str))


def main() -> None:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    app = web.Application(
        [
            (prefix, Page),
            (url_path_join(prefix, "fragment"), Fragment),
            (url_path_join(prefix, "roster.csv"), Csv),
            (url_path_join(prefix, "data.json"), Data),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            (r".*", web.RedirectHandler, {"url": prefix}),
        ],
        cookie_secret=os.urandom(32),
    )
    url = os.environ["JUPYTERHUB_SERVICE_URL"]
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    app.listen(int(port), address="127.0.0.1")
    print(f"[roster] listening on 127.0.0.1:{port} at {html.escape(prefix)}", flush=True)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
