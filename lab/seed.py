"""What the lab writes into a node's root before boot.

The user-data goes in verbatim. Everything else here is a lab-only difference from a cloud
instance: the NoCloud meta-data and network-config stand for the cloud's metadata service,
and /etc/hosts and /etc/resolv.conf stand for the cloud's DNS.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from lab import paths
from lab.base import LAB_HOSTS

SEED_DIR = "var/lib/cloud/seed/nocloud"
HOSTS_TEMPLATE = "etc/cloud/templates/hosts.debian.tmpl"
# The lab's DNS (lab.dns) on the switch: lab names, and NXDOMAIN at once for the rest.
RESOLV_CONF = (
    f"# mmlab: the lab's DNS; it knows only lab names\n"
    f"nameserver {paths.SWITCH_ADDRESS}\noptions timeout:1 attempts:2\n"
)


def meta_data(instance_id: str, hostname: str) -> bytes:
    return yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname}).encode()


def network_config(address: str, prefixlen: int = paths.PREFIXLEN) -> bytes:
    """Netplan-style v2: a static address, no gateway, no nameservers (nothing to reach)."""
    config = {
        "version": 2,
        "ethernets": {paths.NODE_IFACE: {"addresses": [f"{address}/{prefixlen}"]}},
    }
    return yaml.safe_dump(config, sort_keys=False).encode()


def hosts_lines(hosts: Mapping[str, str]) -> str:
    """name -> address as /etc/hosts lines, one line per address."""
    by_address: dict[str, list[str]] = {}
    for name, address in hosts.items():
        by_address.setdefault(address, []).append(name)
    return "".join(f"{addr}\t{' '.join(names)}\n" for addr, names in by_address.items())


def write_seed(root: Path, user_data: bytes, meta: bytes, network: bytes) -> None:
    seed = root / SEED_DIR
    seed.mkdir(parents=True, exist_ok=True)
    (seed / "user-data").write_bytes(user_data)
    (seed / "meta-data").write_bytes(meta)
    (seed / "network-config").write_bytes(network)


def write_name_service(root: Path, base: Path, hosts: Mapping[str, str]) -> None:
    """Lab names in /etc/hosts, and in cloud-init's hosts template so that a user-data with
    `manage_etc_hosts: true` keeps them; resolv.conf pointing at the lab's DNS."""
    lines = "# mmlab: the lab's names (stand-in for DNS)\n" + hosts_lines(hosts)
    (root / "etc/hosts").write_text(LAB_HOSTS + lines)
    template = base / HOSTS_TEMPLATE
    if template.is_file():
        (root / HOSTS_TEMPLATE).write_text(template.read_text() + lines)
    (root / "etc/resolv.conf").write_text(RESOLV_CONF)
