"""Servers the lab runs on the switch address, inside the switch netns: the package
repository (HTTP) and DNS."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from lab import paths
from lab.procs import start_time

DNS_SCRIPT = Path(__file__).with_name("dns.py")
DNS_PORT = 53

Service = tuple[int, int | None, subprocess.Popen[bytes]]  # pid, start time, Popen


def start_in_switch(argv: Sequence[str], log_path: Path, port: int, proto: str) -> Service:
    """Run argv in the switch netns until it listens on port; `ip netns exec` execs, so the
    pid is the server's own."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", paths.switch_netns(), *argv],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the caller must not stop it
        )
    deadline = time.monotonic() + 15
    while not _listening(proc.pid, port, proto):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{argv[1:3]} did not start; see {log_path}")
        time.sleep(0.05)
    return proc.pid, start_time(proc.pid), proc


def start_repo_server(repo: Path) -> Service:
    argv = [sys.executable, "-m", "http.server", "--bind", paths.SWITCH_ADDRESS,
            "--directory", str(repo), str(paths.REPO_PORT)]
    return start_in_switch(argv, paths.logs_dir() / "repo.log", paths.REPO_PORT, "tcp")


def start_dns_server(zone: Path) -> Service:
    argv = [sys.executable, str(DNS_SCRIPT), str(zone), paths.SWITCH_ADDRESS, str(DNS_PORT)]
    return start_in_switch(argv, paths.logs_dir() / "dns.log", DNS_PORT, "udp")


def _listening(pid: int, port: int, proto: str) -> bool:
    """Whether pid's netns has a socket bound to port (read from its /proc view)."""
    try:
        lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
    except OSError:
        return False
    state = "0A" if proto == "tcp" else "07"  # LISTEN; unconnected UDP
    return any(
        f[3] == state and int(f[1].rsplit(":", 1)[1], 16) == port
        for f in (line.split() for line in lines)
    )
