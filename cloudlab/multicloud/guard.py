"""The real-cloud guard for Google Cloud and Azure: the counterpart of :mod:`cloudlab.aws` (lesson 11).

Google's client libraries talk to an emulator when its standard variable is set (``PUBSUB_EMULATOR_HOST``,
``FIRESTORE_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``), and then need no credentials at all. Without the
variable they look for real credentials (a key file in ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's
application-default login, the metadata server) and go to Google. Azure's storage SDK goes wherever its
connection string points, signed with the key in it. So, before any client is made:

* every Google variable must name a loopback emulator, and no key file may be set;
* the Azure connection string must use Azurite's well-known development account only (its name and key are
  published by Microsoft, and the SDK itself holds them: we read them from there, never from our files),
  with every endpoint on loopback.

Anything else is refused with :class:`RealCloudRefused`, whose message says what to unset. No lesson needs
a real account, so there is no opt-in. Every Azure client the course makes also carries a pipeline policy
that checks each request's host before it leaves the machine (:class:`LoopbackOnly`).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from ..lab import process

GCP_VARS = {
    "pubsub": "PUBSUB_EMULATOR_HOST",
    "firestore": "FIRESTORE_EMULATOR_HOST",
    "storage": "STORAGE_EMULATOR_HOST",
}
AZURE_VAR = "AZURE_STORAGE_CONNECTION_STRING"
KEY_FILE_VAR = "GOOGLE_APPLICATION_CREDENTIALS"
LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


class RealCloudRefused(RuntimeError):
    """Raised instead of making a Google Cloud or Azure client that could reach a real account."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mRealCloudRefused\x1b[0m: {self}"]


def is_local(host: str | None) -> bool:
    host = (host or "").strip("[]").lower()
    return host in LOCAL_HOSTS or process.is_loopback(host)


def _host_of(value: str) -> str:
    """The host of ``127.0.0.1:8085`` or ``http://127.0.0.1:4443``."""
    return urlparse(value if "://" in value else f"//{value}").hostname or ""


def gcp_endpoint(service: str, environ=None) -> str:
    """The emulator address for ``service`` (pubsub, firestore, storage), or :class:`RealCloudRefused`."""
    env = os.environ if environ is None else environ
    var = GCP_VARS[service]
    if env.get(KEY_FILE_VAR):
        raise RealCloudRefused(
            f"{KEY_FILE_VAR} is set ({env[KEY_FILE_VAR]}): that is a real Google Cloud key file, and a client could "
            "use it to reach a real project. The emulators need no credentials: unset it in this shell "
            f"(`unset {KEY_FILE_VAR}`) and restart the kernel."
        )
    value = env.get(var, "")
    if not value:
        raise RealCloudRefused(
            f"{var} is not set, so the {service} client would talk to REAL Google Cloud. Run the lesson's setup "
            "cell (it starts the emulators and sets the variables), or set it to the emulator's 127.0.0.1:PORT."
        )
    if not is_local(_host_of(value)):
        raise RealCloudRefused(
            f"{var}={value} is not on this machine (127.0.0.1): refusing, it could be a real endpoint. "
            "The lesson's emulators listen on 127.0.0.1 only."
        )
    return value


def _dev_account() -> tuple[str, str]:
    """Azurite's well-known development account, as the Azure SDK itself ships it."""
    from azure.storage.blob._shared.parser import DEVSTORE_ACCOUNT_KEY, DEVSTORE_ACCOUNT_NAME

    return DEVSTORE_ACCOUNT_NAME, DEVSTORE_ACCOUNT_KEY


def parse_connection_string(text: str) -> dict[str, str]:
    parts = {}
    for item in (text or "").split(";"):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            parts[key.strip()] = value.strip()
    return parts


def azurite_connection_string(blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    """The connection string of Azurite's development account on the given ports (the key comes from the SDK)."""
    name, key = _dev_account()
    return (
        f"DefaultEndpointsProtocol=http;AccountName={name};AccountKey={key};"
        f"BlobEndpoint=http://{host}:{blob_port}/{name};QueueEndpoint=http://{host}:{queue_port}/{name};"
        f"TableEndpoint=http://{host}:{table_port}/{name};"
    )


def azure_connection_string(environ=None) -> str:
    """The Azurite connection string from the environment, or :class:`RealCloudRefused` saying why not."""
    env = os.environ if environ is None else environ
    text = env.get(AZURE_VAR, "")
    if not text:
        raise RealCloudRefused(
            f"{AZURE_VAR} is not set. Run the lesson's setup cell: it starts Azurite and sets it to Azurite's "
            "development account on 127.0.0.1."
        )
    parts = parse_connection_string(text)
    if parts.get("UseDevelopmentStorage", "").lower() == "true":  # the SDK's shortcut: Azurite's default ports
        return azurite_connection_string(10000, 10001, 10002)
    name, key = _dev_account()
    if parts.get("AccountName") != name or "SharedAccessSignature" in parts:
        raise RealCloudRefused(
            f"{AZURE_VAR} names the account {parts.get('AccountName', '?')!r}, not Azurite's development account "
            f"{name!r}: that looks like a real storage account. Unset it; the lab sets the development account."
        )
    if parts.get("AccountKey") != key:
        raise RealCloudRefused(
            f"{AZURE_VAR} carries an account key that is not Azurite's published development key: it could be a "
            "real credential. Never paste a real key into a notebook; unset it and re-run the setup cell."
        )
    endpoints = {k: v for k, v in parts.items() if k.endswith("Endpoint")}
    if not endpoints:
        raise RealCloudRefused(f"{AZURE_VAR} has no BlobEndpoint/QueueEndpoint: it would go to *.core.windows.net")
    for k, v in endpoints.items():
        if not is_local(urlparse(v).hostname):
            raise RealCloudRefused(f"{AZURE_VAR}: {k}={v} is not on this machine: refusing (it could be real Azure)")
    return text


def refuse_remote_url(url: str) -> None:
    """Raise :class:`RealCloudRefused` unless ``url`` goes to this machine."""
    if not is_local(urlparse(url).hostname):
        raise RealCloudRefused(f"a request to {url} was stopped before it left this machine: it is not an emulator")


def loopback_policy():
    """An azure-core pipeline policy that refuses, request by request, any host that is not loopback."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class LoopbackOnly(SansIOHTTPPolicy):
        def on_request(self, request):
            refuse_remote_url(request.http_request.url)

    return LoopbackOnly()


# ------------------------------------------------------------------ guarded clients
def storage_client():
    """``google.cloud.storage.Client()`` on the emulator of ``STORAGE_EMULATOR_HOST`` (anonymous)."""
    gcp_endpoint("storage")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=project(), credentials=AnonymousCredentials())


def publisher():
    gcp_endpoint("pubsub")
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


def subscriber():
    gcp_endpoint("pubsub")
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient()


def firestore_client():
    gcp_endpoint("firestore")
    from google.cloud import firestore

    return firestore.Client(project=project())


def project(environ=None) -> str:
    env = os.environ if environ is None else environ
    return env.get("GOOGLE_CLOUD_PROJECT") or "demo-cloudlab"


def blob_service():
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azure_connection_string(), per_call_policies=[loopback_policy()])


def queue_service():
    from azure.storage.queue import QueueServiceClient

    return QueueServiceClient.from_connection_string(azure_connection_string(), per_call_policies=[loopback_policy()])


def table_service():
    from azure.data.tables import TableServiceClient

    return TableServiceClient.from_connection_string(azure_connection_string(), per_call_policies=[loopback_policy()])
