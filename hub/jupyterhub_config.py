# The workshop hub's JupyterHub configuration (`make hub` starts JupyterHub with it, as root).
# Everything comes from the course's own code: ports and folders from cloudlab.hub.Hub (the CLOUDLAB_* variables
# `python3 -m cloudlab.hub up` sets), the per-learner settings from cloudlab/hub/settings.py (the same ones
# hub/k8s/values.yaml gives Zero to JupyterHub). docs/instructors/room.md explains each choice.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloudlab.hub import INSTRUCTOR, Hub, settings  # noqa: E402
from cloudlab.lab import venvs  # noqa: E402

c = get_config()  # noqa: F821  (JupyterHub's config loader defines it)
hub = Hub.from_env()
kernel_py = str(venvs.venv_python(hub.lab, "kernel"))

# --- where it listens: the public proxy on 127.0.0.1 unless the room was exposed on purpose (cloudlab.hub.cli)
c.JupyterHub.bind_url = f"http://{hub.public_ip}:{hub.ports['hub_public']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub.ports['hub_api']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub.ports['hub_proxy_api']}"
# The proxy runs on its own (`make hub` starts it, cloudlab.hub.cli): a hub restart never touches it, so the
# learners' open notebooks keep talking to their servers while the hub is down.
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.auth_token = (hub.state / "proxy-auth-token").read_text().strip()

# --- state: one private folder (0700, root): the database (bcrypt hashes, tokens), the cookie secret
c.JupyterHub.db_url = f"sqlite:///{hub.db}"
c.JupyterHub.cookie_secret_file = str(hub.state / "jupyterhub_cookie_secret")
# A hub restart (an upgrade, a crash) leaves every learner's server and the proxy running: nobody loses work.
c.JupyterHub.cleanup_servers = False

# --- login: accounts made in advance by `make hub-accounts` (bcrypt hashes in the hub's database)
c.JupyterHub.authenticator_class = "native"
c.NativeAuthenticator.enable_signup = False  # nobody makes an account at the door
c.NativeAuthenticator.open_signup = False
c.NativeAuthenticator.check_common_password = True
c.NativeAuthenticator.minimum_password_length = 12
c.NativeAuthenticator.allowed_failed_logins = 5  # then 60 s before the next try
c.NativeAuthenticator.seconds_before_next_try = 60
c.Authenticator.allow_all = True  # NativeAuthenticator only lets in accounts it authorised (all made by us)
c.Authenticator.admin_users = {INSTRUCTOR}
c.JupyterHub.admin_access = False  # the instructor starts and stops servers, never opens a learner's

# --- each learner's server: their system user, their namespaces, their lab (cloudlab/hub/launch.py)
c.JupyterHub.spawner_class = "cloudlab.hub.spawner.LabSpawner"
c.Spawner.cmd = [sys.executable, "-m", "cloudlab.hub.launch"]
c.Spawner.default_url = settings.DEFAULT_URL
c.Spawner.mem_limit = settings.MEM_LIMIT  # enforced by the learner's memory cgroup
c.Spawner.mem_guarantee = settings.MEM_GUARANTEE
c.Spawner.cpu_limit = settings.CPU_LIMIT
c.Spawner.cpu_guarantee = settings.CPU_GUARANTEE
c.Spawner.start_timeout = settings.START_TIMEOUT
c.Spawner.http_timeout = settings.HTTP_TIMEOUT
c.Spawner.poll_interval = 5  # a crashed server shows as stopped within seconds (JupyterHub's default: 30)
c.LocalProcessSpawner.interrupt_timeout = 25  # the learner's lab stops cleanly in that time
c.JupyterHub.concurrent_spawn_limit = 0  # 0: no limit; a room starts together at 9:00
c.JupyterHub.last_activity_interval = 60

# --- services: the instructor's roster (admin only) and the idle culler (settings.CULL)
roster_env = {k: v for k, v in hub.env().items()}
roster_env.update({"PYTHONPATH": str(hub.config.parent.parent)})
c.JupyterHub.services = [
    {
        "name": "roster",
        "url": f"http://127.0.0.1:{hub.ports['hub_roster']}",
        "command": [kernel_py, "-m", "cloudlab.hub.roster"],
        "environment": roster_env,
        "oauth_no_confirm": True,
        "display": True,
    },
]
if settings.CULL["enabled"]:
    c.JupyterHub.services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={settings.CULL['timeout']}",
                f"--cull-every={settings.CULL['every']}",
                f"--max-age={settings.CULL['maxAge']}",
            ]
            + (["--cull-users"] if settings.CULL["users"] else []),
        }
    )
c.JupyterHub.load_roles = [
    {
        "name": "roster",
        "services": ["roster"],
        "scopes": ["list:users", "read:users", "read:servers", "read:users:activity", "read:roles:users"],
    },
    {
        "name": "idle-culler",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    },
]

# The course's own admin service: `python3 -m cloudlab.hub status|down` and the tests use its token (a 0600 file
# in the hub's private folder, made by `make hub`), never a learner's or the instructor's password.
_token_file = Path(hub.state) / "admin-api-token"
if _token_file.exists():
    c.JupyterHub.services.append({"name": "cloudlab-admin", "api_token": _token_file.read_text().strip()})
    c.JupyterHub.load_roles.append(
        {
            "name": "cloudlab-admin",
            "services": ["cloudlab-admin"],
            "scopes": ["admin:users", "admin:servers", "list:users", "read:users", "read:servers"],
        }
    )
