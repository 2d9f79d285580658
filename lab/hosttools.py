"""The host programs the lab drives, installed from Debian when missing."""

from __future__ import annotations

import shutil

from lab.shell import run

# program -> Debian package that ships it
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "apt-ftparchive": "apt-utils",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "mount": "mount",
}


def missing_host_packages() -> list[str]:
    return sorted({pkg for prog, pkg in HOST_TOOLS.items() if shutil.which(prog) is None})


def ensure_host_tools() -> list[str]:
    """apt-get install what is missing; returns the packages installed."""
    missing = missing_host_packages()
    if missing:
        # A fresh machine may have empty package lists.
        run(["apt-get", "update"], timeout=600)
        run(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            timeout=900,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    return missing
