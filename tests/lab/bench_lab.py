"""Timings of the lab (not a test): `python -m tests.lab.bench_lab` as root, base cached.

Boots 1 and then 3 nodes in parallel, with an empty cloud-config and with one that installs
postfix and openssh-server from the lab repository; prints boot-to-cloud-init-done, upper
dir sizes and teardown times."""

from __future__ import annotations

import os
import subprocess
import time

from lab import paths
from lab.runtime import Lab

USER_DATA = {
    "empty": b"#cloud-config\n{}\n",
    "packages": b"#cloud-config\npackages: [postfix, openssh-server]\n",
}


def du(path: str) -> str:
    return subprocess.run(["du", "-sh", path], capture_output=True, text=True).stdout.split()[0]


def scenario(lab: Lab, count: int, kind: str) -> None:
    started = time.monotonic()
    nodes = [lab.boot(f"b{i}", f"10.77.0.{20 + i}", USER_DATA[kind]) for i in range(count)]
    ready = lab.wait_ready(nodes, timeout=600)
    done = time.monotonic() - started
    assert all(r.ok for r in ready.values()), {n: r.detail for n, r in ready.items()}
    sizes = [du(str(n.upper)) for n in nodes]
    started = time.monotonic()
    report = lab.down()
    assert report.leftovers == []
    print(f"{count} node(s), {kind:8}: boot to cloud-init done {done:5.1f} s, "
          f"upper dirs {' '.join(sizes)}, teardown {time.monotonic() - started:.1f} s")


def main() -> None:
    # A lab of its own: never the one a developer has running (see tests/lab/test_lab_infra).
    os.environ["MAILMESH_LAB_RUN"] = f"{paths.run_dir()}-bench"
    os.environ["MAILMESH_LAB_PREFIX"] = "mmbench"
    lab = Lab()
    lab.down()
    lab.ensure_base()
    print(f"base {du(str(paths.base_dir()))}, repository {du(str(paths.debs_dir()))}")
    try:
        for count, kind in ((1, "empty"), (1, "packages"), (3, "empty"), (3, "packages")):
            lab.start_switch()
            scenario(lab, count, kind)
    finally:
        lab.down()


if __name__ == "__main__":
    main()
