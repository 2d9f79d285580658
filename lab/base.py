"""The cached Debian base root every node boots from (read-only lower dir of its overlay).

It has systemd, cloud-init and what a cloud-config needs to run, but no postfix, uucp or
OpenSSH: each node's own cloud-init must install those, from the lab repository.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab import paths
from lab.cachedir import replace_atomically
from lab.mirrors import host_mirrors
from lab.mounts import overlays_on
from lab.rootcmd import run_in_root
from lab.shell import run

# Bump "version" on any change below or in prepare_template(): a changed recipe rebuilds.
RECIPE = {
    "version": 1,
    "suite": paths.SUITE,
    "debootstrap_include": ["systemd-sysv", "dbus", "iproute2", "ifupdown", "netbase"],
    "packages": [
        "cloud-init",
        "sudo",
        "cron",
        "locales",
        "python3",
        "ca-certificates",
        "procps",  # ps, pgrep for whoever debugs a node
        "less",
    ],
    "repo_url": paths.REPO_URL,
}
STAMP = "etc/mmlab-recipe.json"  # inside the root, so it renames together with it

LAB_SOURCES = (
    f"# mmlab: nodes reach only the lab repository\ndeb [trusted=yes] {paths.REPO_URL} ./\n"
)
LAB_CLOUD_CFG = """\
# mmlab: lab-only settings of the base root (not part of the program's user-data).
datasource_list: [ NoCloud, None ]
# Keep the lab's sources.list: nodes can reach no Debian mirror.
apt:
  preserve_sources_list: true
"""
# No nameserver: glibc then asks 127.0.0.1:53, where nothing listens, and gets a refusal at
# once, so lookups of names missing from /etc/hosts fail fast instead of timing out.
LAB_RESOLV_CONF = "# mmlab: no DNS in the lab; names come from /etc/hosts\noptions attempts:1\n"
LAB_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def recipe_stamp() -> str:
    return json.dumps(RECIPE, sort_keys=True, indent=1) + "\n"


def base_is_current(base: Path | None = None) -> bool:
    stamp = (base or paths.base_dir()) / STAMP
    return stamp.is_file() and stamp.read_text() == recipe_stamp()


def ensure_base(force: bool = False) -> Path:
    """Build the base root unless a current one is cached; returns its path."""
    base = paths.base_dir()
    if base_is_current(base) and not force:
        return base
    if base.exists() and overlays_on(base):
        # Overlays over a base that changes under them misbehave in undefined ways.
        raise RuntimeError("nodes are running on the old base: `python -m lab down` first")
    replace_atomically(base, build_base)
    return base


def build_base(root: Path) -> None:
    mirrors = host_mirrors()
    include = ",".join(RECIPE["debootstrap_include"])
    run(
        ["debootstrap", "--variant=minbase", f"--include={include}", paths.SUITE, str(root),
         mirrors.main],
        timeout=1800,
    )
    # Same package versions as the repository will hold: updates and security included.
    (root / "etc/apt/sources.list").write_text(mirrors.sources_list())
    run_in_root(root, ["apt-get", "update"])
    run_in_root(root, ["apt-get", "-y", "dist-upgrade"])
    run_in_root(root, ["apt-get", "install", "-y", "--no-install-recommends", *RECIPE["packages"]])
    prepare_template(root)
    (root / STAMP).write_text(recipe_stamp())


def prepare_template(root: Path) -> None:
    """Make the root a template: no identity of its own, lab-only APT and DNS."""
    # cloud-init's locale module fails unless the locale exists (FIELD-NOTES).
    (root / "etc/locale.gen").write_text("en_US.UTF-8 UTF-8\n")
    run_in_root(root, ["locale-gen"])
    run_in_root(root, ["apt-get", "clean"])
    for lists in (root / "var/lib/apt/lists").glob("*"):
        if lists.is_file():
            lists.unlink()
    # Empty machine-id: systemd makes a new one at each node's first boot.
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/hostname").unlink(missing_ok=True)  # debootstrap copied the build host's
    (root / "etc/hosts").write_text(LAB_HOSTS)
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(LAB_RESOLV_CONF)
    (root / "etc/apt/sources.list").write_text(LAB_SOURCES)
    for extra in (root / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    # A user-data with its own `apt:` key may replace preserve_sources_list; then cloud-init
    # renders sources.list from this template, so the template points at the lab repo too.
    for tmpl in (root / "etc/cloud/templates").glob("sources.list.debian*.tmpl"):
        tmpl.write_text("## template:jinja\n" + LAB_SOURCES)
    (root / "etc/cloud/cloud.cfg.d/90-mmlab.cfg").write_text(LAB_CLOUD_CFG)
