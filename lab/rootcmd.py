"""Run a command inside a root directory that is not booted (building the base, fetching debs).

systemd-nspawn sets up /proc, /sys and /dev in a private mount namespace that dies with the
command, so a crashed build leaves no mounts behind (a chroot plus bind mounts would).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lab import cgroups
from lab.shell import run


def run_in_root(
    root: Path,
    argv: Sequence[str],
    *,
    binds: Sequence[tuple[Path, str]] = (),
    timeout: float = 1800,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv in root with the host's network (downloads need it) and DNS."""
    cmd = [
        "systemd-nspawn",
        "--quiet",
        # No systemd as PID 1 on this host: nspawn cannot register with machined or make a
        # scope unit (FIELD-NOTES).
        "--register=no",
        "--keep-unit",
        "--as-pid2",
        f"--directory={root}",
        "--resolv-conf=copy-host",
        "--timezone=off",
        "--link-journal=no",
        "--setenv=DEBIAN_FRONTEND=noninteractive",
        "--setenv=LANG=C.UTF-8",
    ]
    cmd += [f"--bind={host}:{inside}" for host, inside in binds]
    group = f"build-{os.getpid()}"
    try:
        return run(cgroups.launcher_argv(group, [*cmd, "--", *argv]), timeout=timeout,
                   check=check)
    finally:
        cgroups.remove_group(group)
