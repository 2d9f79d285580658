"""One node: an overlay root over the base, a NoCloud seed, systemd-nspawn booting it in the
node's own netns, and the way into it (nsenter)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import cgroups, net, paths, procs, seed
from lab.mounts import is_mounted, mount_overlay, unmount_under

# nspawn machine names (<prefix>-<name>) are at most 64 characters.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,53}[a-z0-9])?$")
# nsenter'd commands get a clean environment, not the caller's (pyenv PATH, locale, ...).
NODE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}


@dataclass
class Node:
    name: str
    address: str
    instance_id: str
    hostname: str
    pid: int | None = None  # the systemd-nspawn launcher
    start: int | None = None  # its start time, to tell a recycled PID apart
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    _leader: int | None = field(default=None, repr=False, compare=False)

    @property
    def dir(self) -> Path:
        return paths.nodes_dir() / self.name

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def netns(self) -> str:
        return paths.node_netns(self.name)

    @property
    def console_log(self) -> Path:
        return paths.logs_dir() / f"{self.name}.console.log"

    def running(self) -> bool:
        return self.pid is not None and procs.is_running(self.pid, self.start)

    def to_state(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "instance_id": self.instance_id,
            "hostname": self.hostname,
            "pid": self.pid,
            "start": self.start,
            "netns": self.netns,
            "mount": str(self.root),
            "cgroups": [str(g) for g in cgroups.groups(self.name)],
        }

    @classmethod
    def from_state(cls, name: str, entry: Mapping[str, Any]) -> Node:
        return cls(
            name=name,
            address=entry["address"],
            instance_id=entry["instance_id"],
            hostname=entry.get("hostname", name),
            pid=entry.get("pid"),
            start=entry.get("start"),
        )


def check_name(name: str) -> None:
    if not NAME_RE.match(name) or name == "sw":  # <prefix>-sw is the switch's netns
        raise ValueError(
            f"node name {name!r}: up to 55 lowercase letters, digits, '.' and '-'; not 'sw'"
        )


def prepare(
    node: Node, base: Path, user_data: bytes | None, hosts: Mapping[str, str], fresh: bool
) -> None:
    """Mount the node's overlay root and write the seed and the lab's name service into it.

    fresh=False keeps the upper dir (a reboot); user_data=None keeps the seed already there.
    """
    if fresh:
        unmount_under(node.dir)
        shutil.rmtree(node.dir, ignore_errors=True)
    if not is_mounted(node.root):
        mount_overlay(base, node.upper, node.dir / "work", node.root)
    if user_data is not None:
        seed.write_seed(
            node.root,
            user_data,
            seed.meta_data(node.instance_id, node.hostname),
            seed.network_config(node.address),
        )
    own = {node.hostname: node.address, node.name: node.address}  # `hostname -f` works
    seed.write_name_service(node.root, base, {**own, **hosts})


def nspawn_argv(node: Node) -> list[str]:
    return [
        "systemd-nspawn",
        "--boot",
        f"--directory={node.root}",
        # Prefixed: nspawn keeps per-machine files in /run/systemd/nspawn on the host.
        f"--machine={paths.prefix()}-{node.name}",
        # FIELD-NOTES: no systemd as PID 1 here, so no registration and no scope unit; in a
        # netns of our own, the container needs CAP_NET_ADMIN to bring its interfaces up.
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path={paths.netns_path(node.netns)}",
        "--capability=CAP_NET_ADMIN",
        "--resolv-conf=off",  # ours, written by seed.write_name_service
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",  # console output to our stdout, the log file
    ]


def launch(node: Node) -> None:
    """Start systemd-nspawn in a cgroup of its own; sets node.pid and node.start."""
    net.plug_node(node.name)
    node.console_log.parent.mkdir(parents=True, exist_ok=True)
    with open(node.console_log, "wb") as out:
        node.process = subprocess.Popen(
            cgroups.launcher_argv(node.name, nspawn_argv(node)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node.pid = node.process.pid
    node.start = procs.start_time(node.pid)
    node._leader = None


def leader(node: Node, timeout: float = 30.0) -> int:
    """Host PID of the container's init (its PID 1), the target for nsenter."""
    if node.pid is None:
        raise RuntimeError(f"node {node.name} was not launched")
    if node._leader is not None and procs.parent(node._leader) == node.pid:
        return node._leader
    own_pidns = os.readlink("/proc/self/ns/pid")
    deadline = time.monotonic() + timeout
    while True:
        if not node.running():
            raise RuntimeError(f"node {node.name}: systemd-nspawn exited; see {node.console_log}")
        for child in procs.children(node.pid):
            try:
                if os.readlink(f"/proc/{child}/ns/pid") != own_pidns:
                    node._leader = child
                    return child
            except OSError:
                continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {node.name}: no container init after {timeout} s")
        time.sleep(0.05)


def nsenter_argv(pid: int, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    environment = [f"{k}={v}" for k, v in {**NODE_ENV, **(env or {})}.items()]
    return ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--",
            "env", "-i", *environment, *argv]


def exec_in(
    node: Node,
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv inside the node as root; output captured; never raises on exit status."""
    return subprocess.run(
        nsenter_argv(leader(node), argv, env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )


def stop(node: Node, grace: float = 20.0) -> None:
    """Power the node off (SIGTERM to nspawn), kill it if it hangs; unmount, unplug.

    The upper dir stays, so the node can boot again from it (a reboot)."""
    if node.pid is not None:
        procs.terminate([(node.pid, node.start)], grace=grace)
    # A container that ignored the poweroff outlives its SIGKILLed nspawn: kill what is left.
    rest = set(cgroups.pids(node.name)) | set(net.netns_pids([node.netns]))
    procs.terminate([(pid, None) for pid in rest], grace=2)
    if node.process is not None:
        node.process.wait(timeout=10)  # reap our child
        node.process = None
    node.pid = node.start = node._leader = None
    unmount_under(node.root)
    net.delete_netns(node.netns)
    cgroups.remove_group(node.name)


