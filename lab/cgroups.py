"""One cgroup per nspawn launcher.

Without systemd as PID 1 nothing gives nspawn a scope of its own; launchers that share a
cgroup make their containers share it too, and their inits fight over it (FIELD-NOTES).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from lab import procs
from lab.paths import prefix

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """The hierarchies systemd tracks processes in: cgroup2 alone, or hybrid's two."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return [h for h in (CGROUP_ROOT / "systemd", CGROUP_ROOT / "unified") if h.is_dir()]


def _lab_roots() -> list[Path]:
    return [h / prefix() for h in hierarchies()]


def groups(name: str) -> list[Path]:
    return [root / name for root in _lab_roots()]


def create(name: str) -> list[Path]:
    made = groups(name)
    for group in made:
        group.mkdir(parents=True, exist_ok=True)
    return made


def launcher_argv(name: str, argv: Sequence[str]) -> list[str]:
    """argv run from cgroups <prefix>/name (made here): a shell moves itself there, then execs
    argv, so the PID the caller sees is argv's own. nspawn splits that cgroup into its
    supervisor and payload; left in the root cgroup, it would make those at the top."""
    moves = "".join(
        f"echo $$ > {shlex.quote(str(g / 'cgroup.procs'))} && " for g in create(name)
    )
    return ["sh", "-c", moves + 'exec "$@"', "sh", *argv]


def remove(group: Path) -> None:
    """rmdir a cgroup and the sub-groups the container's systemd made (bottom up)."""
    if not group.is_dir():
        return
    for dirpath, _, _ in sorted(os.walk(group), key=lambda w: -len(Path(w[0]).parts)):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass  # still has processes: the caller reports what is left


def remove_group(name: str) -> None:
    """The cgroups of one launcher, and the lab's parent cgroup once it is empty."""
    for group in groups(name):
        remove(group)
        try:
            group.parent.rmdir()
        except OSError:
            pass  # other launchers still there, or already gone


def remove_all() -> None:
    for root in _lab_roots():
        remove(root)


def lab_cgroups() -> list[Path]:
    return [root for root in _lab_roots() if root.exists()]


def pids(name: str | None = None) -> list[int]:
    """Live processes in launcher `name`'s cgroups (all the lab's if None): a container's
    init outlives a SIGKILLed nspawn, and this is how to find it then."""
    roots = groups(name) if name else _lab_roots()
    found: set[int] = set()
    for root in roots:
        for dirpath, _, files in os.walk(root):
            if "cgroup.procs" in files:
                try:
                    text = (Path(dirpath) / "cgroup.procs").read_text()
                except OSError:
                    continue
                found.update(int(pid) for pid in text.split())
    return sorted(pid for pid in found if procs.is_running(pid))
