"""python -m benchmarks [--runs N] [--variants NAME,...] [--quick] [--skip-render|--skip-mesh]

As root, with the lab's base cached (see lab/README.md). Boots its own lab (prefix mmbench),
measures, tears it down, prints one table and writes it under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from benchmarks import report, scale
from benchmarks.variants import VARIANTS, describe

RESULTS = Path(__file__).with_name("results")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repeats of every measurement")
    parser.add_argument("--variants", default="default",
                        help=f"comma-separated Tuning variants: {', '.join(VARIANTS)}")
    parser.add_argument("--quick", action="store_true",
                        help="fewer messages (20 latency, 300 batch): to compare variants")
    parser.add_argument("--no-reference", action="store_true", help="skip plain SMTP / raw ssh")
    parser.add_argument("--skip-render", action="store_true", help="no render-scale figures")
    parser.add_argument("--skip-mesh", action="store_true", help="no lab, render scale only")
    parser.add_argument("--render-sizes", default=",".join(map(str, scale.SIZES)))
    args = parser.parse_args(argv)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if not args.skip_mesh and os.geteuid() != 0:
        parser.error("the lab needs root")
    started = time.monotonic()
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    sections = [f"# uucp-mailmesh benchmark, {stamp}", ""]

    if not args.skip_mesh:
        results = run_mesh(names, args)
        for result in results:
            sections += [f"## Mesh: variant `{result.name}` ({result.description})", "",
                         report.mesh_table(result), ""]
    if not args.skip_render:
        sizes = [int(n) for n in args.render_sizes.split(",")]
        figures: dict[int, list[dict]] = {n: [] for n in sizes}
        for run in range(args.runs):
            for leaves in sizes:
                figures[leaves].append(scale.measure(leaves))
                print(f"render run {run + 1}: {leaves} leaves "
                      f"{figures[leaves][-1]['render']:.2f} s, "
                      f"{figures[leaves][-1]['maxrss_mb']:.0f} MB", flush=True)
        sections += ["## The program: offline render (python -m offline_render) by stack size",
                     "", report.render_table(figures), "", report.render_verdict(figures), ""]
    elapsed = time.monotonic() - started
    sections.append(f"Benchmark run time: {elapsed / 60:.1f} min ({args.runs} runs"
                    f"{', quick' if args.quick else ''}; machine: {os.cpu_count()} cores, "
                    f"load average at the end {os.getloadavg()[0]:.1f}).")
    text = "\n".join(sections) + "\n"
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    day = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    if names == ["default"] and not args.quick and not args.skip_mesh and not args.skip_render:
        (RESULTS / "latest.md").write_text(text)
        (RESULTS / f"{day}.md").write_text(text)
    else:
        (RESULTS / f"{day}-{'-'.join(names) if not args.skip_mesh else 'render'}.md").write_text(
            text)
    return 0


def run_mesh(names: list[str], args: argparse.Namespace) -> list[report.VariantResult]:
    from benchmarks import meshbench
    from tests.lab.isolation import isolated_lab

    sizes = meshbench.Sizes()
    if args.quick:
        sizes.latency_messages, sizes.batch_messages = 20, 300
    results = []
    with isolated_lab("mmbench") as lab:
        for name in names:
            tuning = VARIANTS[name]
            began = time.monotonic()
            bench = meshbench.bring_up(lab, name, tuning, sizes)
            result = report.VariantResult(
                name, describe(tuning), bench.poll_interval,
                bring_up_seconds=time.monotonic() - began,
                batch=f"{sizes.batch_messages} x {sizes.batch_size // 1024} KB",
                bulk=f"{sizes.bulk_bytes // meshbench.MB} MB",
            )
            for run in range(args.runs):
                bench.say(f"run {run + 1} of {args.runs}")
                result.mesh.append(bench.measure("mesh"))
                if not args.no_reference:
                    result.reference.append(meshbench.reference(bench))
            results.append(result)
            print(report.mesh_table(result), flush=True)
            for node in list(lab.nodes):
                lab.stop(node)
    return results


if __name__ == "__main__":
    sys.exit(main())
