"""What registering a leaf on the hub sends: the commands and the stdin payload (pure).

The hub's `mailmesh-register` (cloud-init/hub/mailmesh-register.py) reads the payload on
stdin, never from argv or the environment, because it carries the leaf's UUCP password.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

ADMIN_USER = "mailmesh-admin"
REGISTER_TOOL = "/usr/local/sbin/mailmesh-register"
# Remote commands that run before cloud-init has finished find no tool and no uucp user.
CREATE_COMMAND = f"cloud-init status --wait >/dev/null; sudo {REGISTER_TOOL} register"


def registration_id(
    leaf: str,
    address: str,
    domains: Sequence[str],
    public_key: str,
    instance_id: str,
    hub_instance_id: str,
) -> str:
    """Names one registration; deregistering with a superseded id is a no-op.

    Everything that makes a registration new goes in; the password does not (the id is
    printed in plain text in the delete command).
    """
    fields = {
        "leaf": leaf,
        "address": address,
        "domains": list(domains),
        "publicKey": public_key,
        "instanceId": instance_id,
        "hubInstanceId": hub_instance_id,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def registration_payload(
    leaf: str,
    address: str,
    domains: Sequence[str],
    public_key: str,
    password: str,
    instance_id: str,
    hub_instance_id: str,
) -> str:
    """The JSON document `mailmesh-register register` reads on stdin."""
    payload = {
        "leaf": leaf,
        "address": address,
        "domains": list(domains),
        "publicKey": public_key,
        "password": password,
        "instanceId": instance_id,
        "hubInstanceId": hub_instance_id,
        "registrationId": registration_id(
            leaf, address, domains, public_key, instance_id, hub_instance_id
        ),
    }
    return json.dumps(payload, sort_keys=True) + "\n"


def delete_command(leaf: str, registration: str) -> str:
    """Undo exactly one registration (see registration_id)."""
    return f"sudo {REGISTER_TOOL} deregister {leaf} {registration}"
