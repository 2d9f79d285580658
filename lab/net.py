"""The lab's network: a switch netns with a bridge, one netns per node plugged into it.

Everything is made inside namespaces the lab owns: veths are created with both ends already
in their target namespaces, so nothing ever appears in the host's own network namespace.
There is no default route anywhere and no forwarding: nodes reach only each other and the
switch address (the package repository).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from lab import paths, procs
from lab.shell import run

NETNS_DIR = Path("/run/netns")


def netns_exists(netns: str) -> bool:
    return paths.netns_path(netns).exists()


def lab_netns() -> list[str]:
    """Every netns the lab made (a prefix match: these names are ours)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.glob(f"{paths.prefix()}-*"))


def netns_pids(names: Iterable[str]) -> list[int]:
    """Live processes inside these netns (the repo server, containers, nsenter'd commands)."""
    inodes = set()
    for name in names:
        try:
            inodes.add(paths.netns_path(name).stat().st_ino)
        except OSError:
            continue
    found = []
    for pid in procs.all_pids():
        try:
            link = os.readlink(f"/proc/{pid}/ns/net")  # "net:[4026532345]"
        except OSError:
            continue
        if int(link[5:-1]) in inodes and procs.is_running(pid):
            found.append(pid)
    return found


def delete_netns(netns: str) -> None:
    """Deleting a netns destroys its veths and their peers."""
    if netns_exists(netns):
        run(["ip", "netns", "delete", netns], check=False)


def _in_switch(*args: str) -> None:
    run(["ip", "-n", paths.switch_netns(), *args])


def switch_ready() -> bool:
    if not netns_exists(paths.switch_netns()):
        return False
    proc = run(
        ["ip", "-n", paths.switch_netns(), "-br", "addr", "show", "dev", paths.BRIDGE],
        check=False,
    )
    return proc.returncode == 0 and f"{paths.SWITCH_ADDRESS}/" in proc.stdout.decode()


def ensure_switch() -> None:
    """The switch netns with its bridge at SWITCH_ADDRESS; idempotent."""
    if switch_ready():
        return
    delete_netns(paths.switch_netns())
    run(["ip", "netns", "add", paths.switch_netns()])
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
