"""Multi-cloud toolkit (lesson 11): the same service on AWS, Google Cloud and Azure, each on its own emulator.

* ``guard``      the real-cloud guard for Google Cloud and Azure (emulator variables, Azurite's development
                 account only) and guarded clients;
* ``emulators``  the Pub/Sub and Firestore emulators (gcloud), fake-gcs-server, Azurite: lesson processes on
                 127.0.0.1, started side by side, measured;
* ``port``       the order service's port (ObjectStore, MessageQueue, Message, consume);
* ``adapters``   S3/SQS, Cloud Storage/Pub/Sub, Blob/Queue storage;
* ``contract``   one contract suite for every adapter;
* ``semantics``  where the clouds differ, by real calls; ``functions`` the Cloud Function (functions-framework);
* ``egress``     the dated egress price file; ``services`` the services map; ``relay`` a counting TCP relay.
"""

from __future__ import annotations

from .port import AlreadyExists, Message, consume  # noqa: F401
