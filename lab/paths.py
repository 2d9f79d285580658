"""Where the lab keeps things, and the fixed names and addresses of its network.

Read from the environment at call time so tests and CI can point the lab elsewhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SUITE = "bookworm"
BRIDGE = "mmlabbr0"  # inside the switch netns: needs no prefix
SWITCH_ADDRESS = "10.77.0.1"
PREFIXLEN = 24
LAB_SUBNET = f"10.77.0.0/{PREFIXLEN}"
REPO_PORT = 8080
REPO_URL = f"http://{SWITCH_ADDRESS}:{REPO_PORT}/"
NODE_IFACE = "eth0"  # the veth end inside a node's netns; cloud-init configures it


def prefix() -> str:
    """Starts every netns, cgroup and machine name of this lab. Labs with different prefixes
    (and run dirs) run side by side and never tear each other down: the tests use their own.
    """
    value = os.environ.get("MAILMESH_LAB_PREFIX", "mmlab")
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", value):  # no '-': "a" must not match "a-b-*"
        raise ValueError(f"MAILMESH_LAB_PREFIX={value!r}: 1-8 lowercase letters and digits")
    return value


def switch_netns() -> str:
    return f"{prefix()}-sw"


def __getattr__(name: str) -> str:
    # paths.PREFIX and paths.SWITCH_NETNS read like constants but follow the environment.
    if name == "PREFIX":
        return prefix()
    if name == "SWITCH_NETNS":
        return switch_netns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cache_dir() -> Path:
    """Built once and kept across runs: the base root and the .deb repository."""
    return Path(os.environ.get("MAILMESH_LAB_CACHE", "/var/cache/uucp-mailmesh"))


def run_dir() -> Path:
    """Per-run state: node overlays, logs, the state file."""
    return Path(os.environ.get("MAILMESH_LAB_RUN", "/var/lib/uucp-mailmesh-lab"))


def base_dir() -> Path:
    return cache_dir() / f"base-{SUITE}"


def debs_dir() -> Path:
    return cache_dir() / f"debs-{SUITE}"


def nodes_dir() -> Path:
    return run_dir() / "nodes"


def logs_dir() -> Path:
    return run_dir() / "logs"


def dns_zone() -> Path:
    return run_dir() / "dns.json"


def state_file() -> Path:
    return run_dir() / "state.json"


def netns_path(netns: str) -> Path:
    return Path("/run/netns") / netns


def node_netns(name: str) -> str:
    return f"{prefix()}-{name}"
