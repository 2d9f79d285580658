"""The lab as one object: what a test or `python -m lab up` calls.

    with Lab() as lab:                      # down() on exit, even after a failure
        lab.ensure_base()                   # cached base root + package repository
        lab.start_switch()                  # bridge netns + repository server
        hub = lab.boot("hub", "10.77.0.10", user_data, hosts={"internet.test": "10.77.0.2"})
        ready = lab.wait_ready(timeout=300) # name -> Readiness
        lab.exec(hub, ["postqueue", "-p"])
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from lab import (
    base,
    dns,
    hosttools,
    net,
    node,
    paths,
    procs,
    ready,
    repo,
    services,
    state,
    teardown,
)
from lab.diagnostics import diagnostics
from lab.node import Node
from lab.shell import CommandError

INTERNET_USER_DATA = Path(__file__).with_name("internet-user-data.yaml")
INTERNET_NAME = "internet"
INTERNET_FQDN = "internet.test"


class Lab:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._hosts: dict[str, dict[str, str]] = {}  # per node, for restart
        self._servers: list[subprocess.Popen[bytes]] = []

    @classmethod
    def attach(cls) -> Lab:
        """A Lab for nodes another process booted (from the state file)."""
        lab = cls()
        for name, entry in state.read()["nodes"].items():
            lab.nodes[name] = Node.from_state(name, entry)
        return lab

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # -- building ---------------------------------------------------------------------------

    def ensure_host_tools(self) -> list[str]:
        return hosttools.ensure_host_tools()

    def ensure_base(
        self, packages: tuple[str, ...] = repo.NODE_PACKAGES, force: bool = False
    ) -> Path:
        """Host tools, the base root and the package repository; cached unless force."""
        self.ensure_host_tools()
        root = base.ensure_base(force=force)
        repo.ensure_repo(packages, force=force)
        return root

    # -- network ----------------------------------------------------------------------------

    def start_switch(self) -> None:
        """The switch netns and bridge, with the repository and DNS servers; idempotent."""
        if not (paths.debs_dir() / repo.STAMP).is_file():
            raise RuntimeError("no package repository: call ensure_base() first")
        with state.update() as st:
            st["switch"] = {"netns": paths.switch_netns(), "bridge": paths.BRIDGE,
                            "address": paths.SWITCH_ADDRESS}
            net.ensure_switch()
            starters = {
                "repo_server": lambda: services.start_repo_server(paths.debs_dir()),
                "dns_server": lambda: services.start_dns_server(paths.dns_zone()),
            }
            for key, start_server in starters.items():
                server = st[key]
                if server and procs.is_running(server["pid"], server.get("start")):
                    continue
                pid, start, popen = start_server()
                self._servers.append(popen)
                st[key] = {"pid": pid, "start": start}

    # -- nodes ------------------------------------------------------------------------------

    def boot(
        self,
        name: str,
        address: str,
        user_data: bytes,
        hosts: Mapping[str, str] | None = None,
        instance_id: str | None = None,
        hostname: str | None = None,
    ) -> Node:
        """Boot a fresh node with user_data verbatim as its NoCloud user-data.

        hosts (name -> address) become the node's /etc/hosts entries, with its name and
        hostname (default: name) -> address added; all of them also become A records of
        the lab's DNS, which every node uses. Returns at once; see wait_ready()."""
        node.check_name(name)
        if name in self.nodes and self.nodes[name].running():
            raise ValueError(f"node {name} is running: stop() or restart() it first")
        self._check_address(name, address)
        if not net.switch_ready():
            self.start_switch()
        new = Node(
            name=name,
            address=address,
            instance_id=instance_id or f"iid-mmlab-{name}",
            hostname=hostname or name,
        )
        self._hosts[name] = dict(hosts or {})
        return self._launch(new, user_data, fresh=True)

    def boot_internet(
        self, address: str, hosts: Mapping[str, str] | None = None
    ) -> Node:
        """The lab's outside world (internet-user-data.yaml), as node INTERNET_NAME.

        Map each mesh mail domain to the hub's address in hosts, so its `sendmail` can
        reach them (there is no DNS, hence no MX)."""
        user_data = INTERNET_USER_DATA.read_bytes()
        return self.boot(INTERNET_NAME, address, user_data, hosts, hostname=INTERNET_FQDN)

    def restart(self, target: Node | str) -> Node:
        """Stop and boot again from the same upper dir and seed (same instance-id): a reboot.
        cloud-init runs again, but its per-instance modules do not."""
        old = self.get(target)
        self.stop(old)
        return self._launch(old, None, fresh=False)

    def _launch(self, new: Node, user_data: bytes | None, fresh: bool) -> Node:
        names = {new.hostname: new.address, new.name: new.address, **self._hosts[new.name]}
        with state.update() as st:  # recorded first: a crash below still gets torn down
            st["nodes"][new.name] = new.to_state()
            dns.add_names(str(paths.dns_zone()), names, {new.address: new.hostname})
        self.nodes[new.name] = new
        node.prepare(new, paths.base_dir(), user_data, self._hosts.get(new.name, {}), fresh)
        node.launch(new)
        with state.update() as st:
            st["nodes"][new.name] = new.to_state()
        return new

    def wait_ready(
        self, nodes: Iterable[Node | str] | None = None, timeout: float = 600.0
    ) -> dict[str, ready.Readiness]:
        """Wait until cloud-init finished on each node (all at once); name -> Readiness."""
        targets = [self.get(n) for n in (self.nodes.values() if nodes is None else nodes)]
        return ready.wait_ready(targets, timeout)

    def exec(
        self,
        target: Node | str,
        argv: Sequence[str],
        input: bytes | None = None,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run argv as root inside the node; CommandError on failure if check."""
        proc = node.exec_in(self.get(target), argv, input=input, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise CommandError(proc)
        return proc

    def stop(self, target: Node | str) -> None:
        """Power the node off; its upper dir stays (restart() boots it again)."""
        stopped = self.get(target)
        node.stop(stopped)
        with state.update() as st:
            st["nodes"].pop(stopped.name, None)

    def diagnostics(self, target: Node | str, lines: int = 40) -> str:
        return diagnostics(self.get(target), lines)

    def down(self) -> teardown.TeardownReport:
        """Remove every node, the switch, the server: everything the lab made (any process)."""
        report = teardown.down()
        for child in [n.process for n in self.nodes.values()] + self._servers:
            if child is not None:
                child.poll()  # reap our children (teardown.down killed them)
        self.nodes.clear()
        self._servers = []
        return report

    # -- helpers ----------------------------------------------------------------------------

    def get(self, target: Node | str) -> Node:
        """The node itself, or the one of that name."""
        if isinstance(target, Node):
            return target
        try:
            return self.nodes[target]
        except KeyError:
            raise KeyError(f"no node {target!r}; nodes: {sorted(self.nodes)}") from None

    def _check_address(self, name: str, address: str) -> None:
        subnet = ipaddress.ip_network(paths.LAB_SUBNET)
        ip = ipaddress.ip_address(address)
        reserved = {subnet.network_address, subnet.broadcast_address,
                    ipaddress.ip_address(paths.SWITCH_ADDRESS)}
        if ip not in subnet or ip in reserved:
            raise ValueError(f"{name}: address {address} not a host address in {subnet}")
        for other in self.nodes.values():
            if other.name != name and other.address == address and other.running():
                raise ValueError(f"{name}: address {address} already used by {other.name}")
