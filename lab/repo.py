"""The lab's APT repository: the .debs nodes install, fetched once on the host, served on the
switch address. Nodes have no other source of packages."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

from lab import base as base_root
from lab import paths
from lab.cachedir import replace_atomically
from lab.mirrors import host_mirrors
from lab.mounts import mount_overlay, unmount_under
from lab.rootcmd import run_in_root
from lab.shell import run

# What the program's cloud-init installs. Dependencies (and Recommends, since cloud-init's
# apt-get installs them) that the base lacks come along.
NODE_PACKAGES = ("postfix", "uucp", "openssh-server", "openssh-client", "sudo", "libsasl2-modules")
STAMP = "mmlab-repo.json"


def repo_stamp(packages: tuple[str, ...], base: Path) -> str:
    # The base's stamp mtime identifies its build: a rebuilt base may need other versions.
    base_build = (base / base_root.STAMP).stat().st_mtime_ns
    return json.dumps({"packages": sorted(packages), "base_build": base_build}) + "\n"


def repo_is_current(packages: tuple[str, ...] = NODE_PACKAGES) -> bool:
    stamp = paths.debs_dir() / STAMP
    base = paths.base_dir()
    return (
        stamp.is_file()
        and base_root.base_is_current(base)
        and stamp.read_text() == repo_stamp(packages, base)
    )


def ensure_repo(packages: tuple[str, ...] = NODE_PACKAGES, force: bool = False) -> Path:
    """Fetch and index the .debs unless a current repository is cached; returns its path."""
    debs = paths.debs_dir()
    if repo_is_current(packages) and not force:
        return debs
    base = base_root.ensure_base()

    def build(tmp: Path) -> None:
        fetch_debs(base, packages, tmp)
        index(tmp)
        (tmp / STAMP).write_text(repo_stamp(packages, base))

    replace_atomically(debs, build)
    return debs


def fetch_debs(base: Path, packages: tuple[str, ...], dest: Path) -> None:
    """apt-get --download-only in a throwaway overlay of the base: exactly what a node lacks."""
    scratch = paths.cache_dir() / f"repo-build-{os.getpid()}"
    root = scratch / "root"
    (dest / "partial").mkdir(parents=True, exist_ok=True)
    try:
        mount_overlay(base, scratch / "upper", scratch / "work", root)
        (root / "etc/apt/sources.list").write_text(host_mirrors().sources_list())
        run_in_root(root, ["apt-get", "update"])
        run_in_root(
            root,
            ["apt-get", "install", "-y", "--download-only",
             "-o", "Dir::Cache::Archives=/mmlab-debs/", *packages],
            binds=[(dest, "/mmlab-debs")],
        )
    finally:
        unmount_under(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(dest / "partial", ignore_errors=True)
    (dest / "lock").unlink(missing_ok=True)
    if not any(dest.glob("*.deb")):
        raise RuntimeError(f"apt-get downloaded nothing for {packages}")


def index(repo: Path) -> None:
    """A flat repository (`deb [trusted=yes] URL ./`): Packages, Packages.gz and Release."""
    packages = run(["apt-ftparchive", "packages", "."], env=_c_env(), cwd=repo).stdout
    (repo / "Packages").write_bytes(packages)
    (repo / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    # Without a Release file apt refuses the source even with trusted=yes.
    release = run(["apt-ftparchive", "release", "."], env=_c_env(), cwd=repo).stdout
    (repo / "Release").write_bytes(release)


def _c_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
