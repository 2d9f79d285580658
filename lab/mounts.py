"""Overlay mounts of the node roots, and finding and removing mounts under a directory."""

from __future__ import annotations

from pathlib import Path

from lab.shell import run


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    for path in (upper, work, target):
        path.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)])


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return field.encode().decode("unicode_escape")


def mounts_under(prefix: Path) -> list[Path]:
    """Mount points at or below prefix in our mount namespace, deepest first."""
    prefix = prefix.resolve()
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(_unescape(line.split()[4]))
        if point == prefix or prefix in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def overlays_on(lower: Path) -> list[Path]:
    """Mount points of overlays with lower as their lower dir (any lab's nodes)."""
    wanted = f"lowerdir={lower.resolve()}"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount, _, fs = line.partition(" - ")
        fstype, _source, options = fs.split(" ", 2)
        if fstype == "overlay" and any(
            opt == wanted or opt.startswith(wanted + ":") for opt in options.split(",")
        ):
            found.append(Path(_unescape(mount.split()[4])))
    return found


def is_mounted(path: Path) -> bool:
    return path.resolve() in mounts_under(path)


def unmount_under(prefix: Path) -> list[Path]:
    """Unmount everything at or below prefix; lazily if busy. Returns what was unmounted."""
    done = []
    for point in mounts_under(prefix):
        if run(["umount", str(point)], check=False).returncode != 0:
            run(["umount", "-l", str(point)], check=False)
        done.append(point)
    return done
