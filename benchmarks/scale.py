"""The program's scale: offline render time and peak memory for N generated leaves.

Each size runs in a fresh child process (`python -m benchmarks.scale N OUT`), so imports,
caches and the heap start the same; the parent reads the child's peak RSS from wait4().
The child times `offline_render.render_stack` (the program under Pulumi's mocks, then every
file written), not the interpreter's start and imports (reported apart).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 10, 100, 500)


def stack_config(leaves: int) -> dict:
    return {
        "uucp-mailmesh:hub": {"name": "hub.scale.test", "adminCidrs": ["192.0.2.0/28"],
                              "relay": {"host": "smtp.relay.test", "port": 587}},
        "uucp-mailmesh:leaves": [
            {"name": f"leaf{i}.scale.test", "zone": "europe-west1-b",
             "domains": [f"leaf{i}.test", f"app{i}.test"]}
            for i in range(leaves)
        ],
        "uucp-mailmesh:pollInterval": 60,
        "uucp-mailmesh:keySeed": "scale-benchmark-seed-" + "0123456789" * 4,
        "aws:region": "eu-west-1",
        "gcp:project": "scale-benchmark",
    }


def child(leaves: int, out: Path) -> None:
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from offline_render import render_stack

    imported = time.perf_counter()
    stack = out / "Pulumi.scale.yaml"
    stack.write_text(yaml.safe_dump({"config": stack_config(leaves)}))
    result = render_stack(stack, out / "render")
    done = time.perf_counter()
    print(json.dumps({"leaves": leaves, "import": imported - started, "render": done - imported,
                      "resources": len(result.evaluation.registrations)}))


def measure(leaves: int) -> dict:
    """Render time and peak RSS (MB) of a fresh child rendering `leaves` leaves."""
    with tempfile.TemporaryDirectory(prefix="mmbench-scale-") as folder:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.scale", str(leaves), folder],
                                cwd=ROOT, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"render of {leaves} leaves failed ({proc.returncode})")
    found = json.loads(output)
    found["maxrss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return found


if __name__ == "__main__":
    child(int(sys.argv[1]), Path(sys.argv[2]))
