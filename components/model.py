"""The validated stack configuration: plain frozen dataclasses, no Pulumi types.

`components.config.parse_mesh_config` builds these from raw stack config and is the only
place that validates; everything downstream may trust them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_HUB_INSTANCE_TYPE = "t3.small"
DEFAULT_LEAF_MACHINE_TYPE = "e2-small"
DEFAULT_LEAF_IMAGE = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
DEFAULT_POLL_INTERVAL = 60
DEFAULT_MESSAGE_SIZE_LIMIT = 25 * 1024 * 1024
# Canonical's AWS account; the hub's default AMI is the newest Ubuntu 24.04 LTS it publishes.
CANONICAL_OWNER_ID = "099720109477"
UBUNTU_2404_AMI_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"


@dataclass(frozen=True)
class Relay:
    """Outbound smarthost for the hub; username/password enable SASL."""

    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class HubConfig:
    name: str  # UUCP node name and FQDN (Postfix myhostname)
    admin_cidrs: tuple[str, ...]
    instance_type: str = DEFAULT_HUB_INSTANCE_TYPE
    image: str | None = None  # None: look up the newest Ubuntu 24.04 LTS AMI
    inbound: bool = True
    relay: Relay | None = None
    message_size_limit: int = DEFAULT_MESSAGE_SIZE_LIMIT


@dataclass(frozen=True)
class LeafConfig:
    name: str  # UUCP node name and FQDN
    zone: str
    domains: tuple[str, ...]
    machine_type: str = DEFAULT_LEAF_MACHINE_TYPE
    image: str = DEFAULT_LEAF_IMAGE
    key_version: int = 1

    @property
    def region(self) -> str:
        """GCE region of the zone: 'europe-west1-b' -> 'europe-west1'."""
        return self.zone.rsplit("-", 1)[0]

    @property
    def resource_name(self) -> str:
        """The name as a GCE resource name (no dots allowed there)."""
        return resource_name(self.name)


@dataclass(frozen=True)
class MeshConfig:
    hub: HubConfig
    leaves: tuple[LeafConfig, ...]
    key_seed: str = field(repr=False)
    poll_interval: int = DEFAULT_POLL_INTERVAL


def resource_name(node_name: str) -> str:
    """Cloud resource names allow no dots: 'mx.example.org' -> 'mx-example-org'."""
    return node_name.replace(".", "-")
