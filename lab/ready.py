"""Waiting for cloud-init to finish on nodes, the way a deployment does: `cloud-init status
--wait` inside the node, then `--long` for the details."""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lab.node import Node, exec_in, leader

# Before systemd's generators ran, `cloud-init status` says "disabled" (no
# /run/cloud-init/enabled yet); only believe it after this long.
DISABLED_GRACE = 30.0


@dataclass
class Readiness:
    name: str
    status: str  # done | error | disabled | timeout | dead
    seconds: float  # from the call to wait_ready until the verdict
    detail: str = ""  # `cloud-init status --long`, or why there is none
    failed_units: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "done"


def _status(output: str) -> str | None:
    found = re.findall(r"^status: (.+?)\s*$", output, re.MULTILINE)
    return found[-1] if found else None


def wait_one(node: Node, timeout: float) -> Readiness:
    started = time.monotonic()
    deadline = started + timeout

    def verdict(status: str, detail: str = "", units: list[str] | None = None) -> Readiness:
        return Readiness(node.name, status, time.monotonic() - started, detail, units or [])

    status = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return verdict("timeout", f"cloud-init not finished after {timeout:.0f} s")
        if not node.running():
            return verdict("dead", f"systemd-nspawn exited; see {node.console_log}")
        try:
            leader(node, timeout=remaining)
            proc = exec_in(node, ["cloud-init", "status", "--wait"], timeout=remaining)
        except subprocess.TimeoutExpired:
            continue
        except (RuntimeError, TimeoutError) as exc:
            return verdict("dead", str(exc))
        status = _status(proc.stdout.decode(errors="replace"))
        early = time.monotonic() - started < DISABLED_GRACE
        if status in (None, "not run", "running") or (status == "disabled" and early):
            time.sleep(0.2)  # init not up yet (no cloud-init binary in sight, no generator)
            continue
        break
    long = exec_in(node, ["cloud-init", "status", "--long"], timeout=30)
    units = exec_in(node, ["systemctl", "--failed", "--no-legend", "--plain"], timeout=30)
    failed = [line.split()[0] for line in units.stdout.decode().splitlines() if line.strip()]
    detail = (long.stdout + long.stderr).decode(errors="replace")
    return verdict(_status(detail) or status, detail, failed)


def wait_ready(nodes: list[Node], timeout: float) -> dict[str, Readiness]:
    """Wait for all nodes at once; one Readiness per node name."""
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        futures = {n.name: pool.submit(wait_one, n, timeout) for n in nodes}
        return {name: future.result() for name, future in futures.items()}
