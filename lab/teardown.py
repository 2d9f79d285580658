"""Remove everything the lab made, from its state file and from what is found on the host.

Idempotent and tolerant of a partial or missing state file: processes are also found by their
command lines (which name the run dir), by the lab's cgroups and netns; netns and cgroups by
the lab's prefix; mounts by the run dir. Another prefix's lab is never touched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from lab import cgroups, net, paths, procs, state
from lab.mounts import mounts_under, unmount_under


@dataclass
class TeardownReport:
    processes: list[int] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # what could not be removed


def _is_node_launcher(argv: list[str]) -> bool:
    return argv[0].endswith("systemd-nspawn") and any(
        a.startswith(f"--directory={paths.nodes_dir()}/") for a in argv
    )


def lab_processes() -> list[int]:
    """nspawn launchers of our nodes, whatever runs in our cgroups or in our netns."""
    found = set(procs.find(_is_node_launcher))
    found |= set(cgroups.pids()) | set(net.netns_pids(net.lab_netns()))
    return sorted(found)


def leftovers() -> list[str]:
    """What of the lab still exists on the host: empty after a complete teardown."""
    found = [f"process {pid}: {' '.join(procs.cmdline(pid))}" for pid in lab_processes()]
    found += [f"mount {point}" for point in mounts_under(paths.run_dir())]
    found += [f"mount {point}" for point in _scratch_mounts()]
    found += [f"netns {netns}" for netns in net.lab_netns()]
    found += [f"cgroup {group}" for group in cgroups.lab_cgroups()]
    return found


def _scratch_mounts() -> list[Path]:
    # the repository fetch's throwaway overlays (lab.repo.fetch_debs)
    return [p for p in mounts_under(paths.cache_dir()) if p.parent.name.startswith("repo-build-")]


def down() -> TeardownReport:
    report = TeardownReport()
    recorded = state.read()
    targets: list[tuple[int, int | None]] = []
    for entry in recorded["nodes"].values():
        if isinstance(entry, dict) and entry.get("pid"):
            targets.append((entry["pid"], entry.get("start")))
    for key in ("repo_server", "dns_server"):
        server = recorded[key]
        if isinstance(server, dict) and server.get("pid"):
            targets.append((server["pid"], server.get("start")))
    known = {pid for pid, _ in targets}
    targets += [(pid, None) for pid in procs.find(_is_node_launcher) if pid not in known]
    # nspawn first, so the nodes power off cleanly; then whatever is left (a container that
    # ignored the poweroff outlives its SIGKILLed nspawn). Only then can roots be unmounted.
    report.processes = procs.terminate(targets)
    report.processes += procs.terminate([(pid, None) for pid in lab_processes()], grace=2)
    report.mounts = [str(p) for p in unmount_under(paths.run_dir())]
    for point in _scratch_mounts():
        report.mounts += [str(p) for p in unmount_under(point)]
    for netns in net.lab_netns():
        net.delete_netns(netns)
        report.netns.append(netns)
    cgroups.remove_all()
    shutil.rmtree(paths.nodes_dir(), ignore_errors=True)
    paths.dns_zone().unlink(missing_ok=True)
    state.remove()
    report.leftovers = leftovers()
    return report
