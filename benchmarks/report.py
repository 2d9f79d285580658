"""The benchmark's table: each figure as min / median / max over the runs, with targets."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.meshbench import RunFigures


def spread(values: Sequence[float], digits: int = 2) -> str:
    if not values:
        return "-"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low:.{digits}f} / {mid:.{digits}f} / {high:.{digits}f}"


@dataclass
class VariantResult:
    name: str
    description: str
    poll_interval: int
    mesh: list[RunFigures] = field(default_factory=list)
    reference: list[RunFigures] = field(default_factory=list)
    bring_up_seconds: float = 0.0
    batch: str = "1000 x 4 KB"
    bulk: str = "20 MB"

    def values(self, attribute: str, which: str = "mesh") -> list[float]:
        return [getattr(run, attribute) for run in getattr(self, which)]

    def ratios(self, attribute: str, reference: str | None = None) -> list[float]:
        """mesh / reference per run (same run, same nodes)."""
        pairs = zip(self.mesh, self.reference, strict=False)
        return [getattr(m, attribute) / getattr(r, reference or attribute)
                for m, r in pairs if getattr(r, reference or attribute)]


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def mesh_table(result: VariantResult) -> str:
    poll = result.poll_interval
    median = statistics.median
    have_ref = bool(result.reference)
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(label: str, attribute: str, digits: int, target: str, ok: bool | None,
            ratio: list[float] | None = None, reference: str | None = None) -> None:
        ref_values = result.values(reference or attribute, "reference") if have_ref else []
        rows.append((label, spread(result.values(attribute), digits), spread(ref_values, digits),
                     spread(ratio, 2) if ratio else "-", target, _met(ok)))

    out_p50 = result.values("out_p50")
    row("outbound latency p50 (s), leaf sendmail -> hub mailbox", "out_p50", 3, "<= 0.5 s",
        median(out_p50) <= 0.5 if out_p50 else None, result.ratios("out_p50"))
    row("outbound latency p95 (s)", "out_p95", 3, "", None, result.ratios("out_p95"))
    row(f"inbound latency p50 (s), internet -> hub:25 -> leaf, poll {poll} s", "in_p50", 2,
        "", None, result.ratios("in_p50"))
    in_max = result.values("in_max")
    row("inbound latency max (s)", "in_max", 2, f"<= poll + 1 s = {poll + 1} s",
        max(in_max) <= poll + 1 if in_max else None, result.ratios("in_max"))
    batch = result.ratios("batch_rate")
    row(f"throughput, {result.batch} leaf -> hub mailbox (msg/s)", "batch_rate", 1,
        ">= 0.5 x plain SMTP", median(batch) >= 0.5 if batch else None, batch)
    bulk = result.ratios("bulk_rate")
    row(f"one {result.bulk} message, leaf -> hub mailbox (MB/s)", "bulk_rate", 1, "", None,
        bulk)
    raw = result.ratios("bulk_rate", "raw_ssh_rate")
    rows.append((f"one {result.bulk} message vs the raw ssh pipe (MB/s; ratio mesh / raw ssh)",
                 spread(result.values("bulk_rate"), 1),
                 spread(result.values("raw_ssh_rate", "reference"), 1),
                 spread(raw, 2) if raw else "-", ">= 0.5 x raw ssh",
                 _met(median(raw) >= 0.5 if raw else None)))
    misses = sum(result.values("misses"))
    lines = [
        "| measure | mesh (UUCP over ssh) | reference: plain SMTP / raw ssh | ratio mesh / "
        "reference | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for label, mesh_text, ref_text, ratio_text, target, met in rows:
        lines.append(f"| {label} | {mesh_text} | {ref_text} | {ratio_text} | {target} | "
                     f"{met} |")
    lines.append("")
    lines.append(f"Runs: {len(result.mesh)}; each cell min / median / max over the runs. "
                 f"Outbound messages that waited for a poll (over 5 s): {misses}.")
    return "\n".join(lines)


def render_table(scale: dict[int, list[dict]]) -> str:
    lines = ["| leaves | resources | render time (s) | per leaf (ms) | peak RSS (MB) | "
             "interpreter start + imports (s) |", "|---|---|---|---|---|---|"]
    base = statistics.median(r["render"] for r in scale[min(scale)]) if scale else 0.0
    for leaves, runs in sorted(scale.items()):
        times = [r["render"] for r in runs]
        per_leaf = [(t - base) / leaves * 1000 for t in times] if leaves > min(scale) else []
        lines.append(f"| {leaves} | {runs[0]['resources']} | {spread(times)} | "
                     f"{spread(per_leaf, 1) if per_leaf else '-'} | "
                     f"{spread([r['maxrss_mb'] for r in runs], 0)} | "
                     f"{spread([r['import'] for r in runs])} |")
    return "\n".join(lines)


def render_verdict(scale: dict[int, list[dict]]) -> str:
    if 500 not in scale or 100 not in scale or 1 not in scale:
        return ""
    m = {n: statistics.median(r["render"] for r in runs) for n, runs in scale.items()}
    per_100 = (m[100] - m[1]) / 99
    per_500 = (m[500] - m[1]) / 499
    linear = per_500 <= 1.5 * per_100
    return (f"Target 500 leaves <= 5 s: median {m[500]:.2f} s, {_met(m[500] <= 5)}. "
            f"Growth: {per_100 * 1000:.1f} ms per leaf up to 100, {per_500 * 1000:.1f} ms up to "
            f"500: {'linear' if linear else '**superlinear**'}.")
