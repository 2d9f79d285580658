"""The lab's network: a switch netns with a bridge, one netns per node plugged into it.

Everything is made inside namespaces the lab owns: veths are created with both ends already
in their target namespaces, so nothing ever appears in the host's own network namespace.
There is no default route anywhere and no forwarding: nodes reach only each other and the
switch address (the package repository).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lab import paths
from lab.shell import run

NETNS_DIR = Path("/run/netns")


def netns_exists(netns: str) -> bool:
    return paths.netns_path(netns).exists()


def lab_netns() -> list[str]:
    """Every netns the lab made (a prefix match: these names are ours)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.glob(f"{paths.PREFIX}-*"))


def delete_netns(netns: str) -> None:
    """Deleting a netns destroys its veths and their peers."""
    if netns_exists(netns):
        run(["ip", "netns", "delete", netns], check=False)


def _in_switch(*args: str) -> None:
    run(["ip", "-n", paths.SWITCH_NETNS, *args])


def switch_ready() -> bool:
    if not netns_exists(paths.SWITCH_NETNS):
        return False
    proc = run(
        ["ip", "-n", paths.SWITCH_NETNS, "-br", "addr", "show", "dev", paths.BRIDGE], check=False
    )
    return proc.returncode == 0 and f"{paths.SWITCH_ADDRESS}/" in proc.stdout.decode()


def ensure_switch() -> None:
    """The switch netns with its bridge at SWITCH_ADDRESS; idempotent."""
    if switch_ready():
        return
    delete_netns(paths.SWITCH_NETNS)
    run(["ip", "netns", "add", paths.SWITCH_NETNS])
    _in_switch("link", "set", "lo", "up")
    _in_switch("link", "add", paths.BRIDGE, "type", "bridge")
    _in_switch("addr", "add", f"{paths.SWITCH_ADDRESS}/{paths.PREFIXLEN}", "dev", paths.BRIDGE)
    _in_switch("link", "set", paths.BRIDGE, "up")


def switch_port(name: str) -> str:
    """Switch-side veth name: node names can be longer than IFNAMSIZ (15) allows."""
    return "mmv" + hashlib.sha1(name.encode()).hexdigest()[:10]


def plug_node(name: str) -> str:
    """A fresh netns for the node, its NODE_IFACE cabled to the bridge; returns the netns."""
    netns = paths.node_netns(name)
    delete_netns(netns)
    run(["ip", "netns", "add", netns])
    port = switch_port(name)
    _in_switch(
        "link", "add", port, "type", "veth", "peer", "name", paths.NODE_IFACE, "netns", netns
    )
    _in_switch("link", "set", port, "master", paths.BRIDGE, "up")
    return netns
