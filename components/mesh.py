"""The whole mesh from a validated `MeshConfig`: the hub, the leaves' firewall, each leaf.

`build_mesh` returns the stack outputs. None of them is secret or derived from a secret
(private keys, passwords and keySeed stay in resource inputs, marked secret).
"""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pulumi_gcp as gcp

from components import keys
from components.hub import Hub, HubArgs
from components.leaf import LEAF_TAG, Leaf, LeafArgs
from components.model import HubConfig, LeafConfig, MeshConfig
from components.render import compress_user_data, render_hub_user_data

HUB_NAME = "hub"
LEAF_FIREWALL_NAME = "leaf-deny-mail-ports"
DNS_TTL = 300


def hub_user_data_base64(config: MeshConfig) -> str:
    """The hub's user-data as EC2 gets it: gzip-compressed (the 16 KB limit counts after
    compression), base64-encoded. Depends on the hub and keySeed only, never on the leaves."""
    host_key = keys.hub_host_keypair(config.key_seed, config.hub.name)
    admin = keys.admin_keypair(config.key_seed, config.hub.name)
    user_data = render_hub_user_data(config.hub, host_key, admin.public_openssh)
    return base64.b64encode(compress_user_data(user_data)).decode()


def build_mesh(config: MeshConfig) -> dict[str, Any]:
    """Register every resource of the mesh; return the stack outputs by name."""
    hub_config = config.hub
    host_key = keys.hub_host_keypair(config.key_seed, hub_config.name)
    admin_key = keys.admin_keypair(config.key_seed, hub_config.name)

    hub = Hub(
        HUB_NAME,
        HubArgs(
            config=hub_config,
            # Holds the hub's host private key (and the relay password, if any).
            user_data_base64=pulumi.Output.secret(hub_user_data_base64(config)),
        ),
    )

    # Defence in depth: leaves listen on nothing from outside (UUCP leaves over SSH, outbound).
    gcp.compute.Firewall(
        LEAF_FIREWALL_NAME,
        network="default",
        direction="INGRESS",
        priority=900,  # before the default network's allow rules (priority 1000 and 65534)
        source_ranges=["0.0.0.0/0"],
        target_tags=[LEAF_TAG],
        denies=[gcp.compute.FirewallDenyArgs(protocol="tcp", ports=["25", "540"])],
        description="uucp-mailmesh: no SMTP or UUCP into the leaves",
    )

    admin_private_key = pulumi.Output.secret(admin_key.private_openssh)
    leaves: dict[str, Leaf] = {}
    for leaf_config in config.leaves:
        leaves[leaf_config.name] = Leaf(
            leaf_config.resource_name,
            LeafArgs(
                config=leaf_config,
                hub_config=hub_config,
                hub=hub,
                hub_host_public_key=host_key.public_openssh,
                key_seed=config.key_seed,
                poll_interval=config.poll_interval,
                admin_private_key=admin_private_key,
            ),
        )

    return {
        "hubAddress": hub.public_ip,
        "hubUucpName": hub_config.name,
        "leaves": {
            leaf_config.name: {
                "address": leaves[leaf_config.name].public_address,
                "publicKey": leaves[leaf_config.name].public_key,
                "domains": list(leaf_config.domains),
            }
            for leaf_config in config.leaves
        },
        "dnsRecords": hub.public_ip.apply(lambda ip: dns_records(hub_config, config.leaves, ip)),
    }


def dns_records(hub: HubConfig, leaves: tuple[LeafConfig, ...], hub_ip: str) -> list[str]:
    """Zone-file lines to publish: the hub's A record; MX and SPF for every leaf domain."""
    records = [f"{hub.name}. {DNS_TTL} IN A {hub_ip}"]
    for leaf in leaves:
        for domain in leaf.domains:
            records.append(f"{domain}. {DNS_TTL} IN MX 10 {hub.name}.")
            records.append(f'{domain}. {DNS_TTL} IN TXT "v=spf1 ip4:{hub_ip} -all"')
    return records
