"""UUCP link configurations the benchmark can boot: `Tuning` values rendered into the
user-data by the program's own renderer (components.render), nothing patched on a node."""

from __future__ import annotations

from dataclasses import replace

from components.render import DEFAULT_TUNING, Tuning

# The defaults before the benchmark chose them (kept to show what the choice bought).
BASELINE = Tuning(protocol="i", pty=False, uux_flags="-n -z", call_on_queue=False,
                  uucp_config_lines=())
PARALLEL_UUXQT = ("run-uuxqt 1", "max-uuxqts 4")

VARIANTS: dict[str, Tuning] = {
    "default": DEFAULT_TUNING,  # whatever components/render.py ships
    "baseline": BASELINE,
    "pty": replace(BASELINE, pty=True),
    "uuxqt": replace(BASELINE, uucp_config_lines=PARALLEL_UUXQT),
    "pty-uuxqt": replace(BASELINE, pty=True, uucp_config_lines=PARALLEL_UUXQT),
    "t": replace(BASELINE, protocol="t"),
    "e": replace(BASELINE, protocol="e"),
    "g": replace(BASELINE, protocol="g"),
    "pty-uuxqt-t": replace(BASELINE, protocol="t", pty=True, uucp_config_lines=PARALLEL_UUXQT),
    "pty-uuxqt-e": replace(BASELINE, protocol="e", pty=True, uucp_config_lines=PARALLEL_UUXQT),
    "queue": replace(BASELINE, call_on_queue=True),
    "pty-uuxqt-queue": replace(BASELINE, pty=True, uucp_config_lines=PARALLEL_UUXQT,
                               call_on_queue=True),
    "pty-uuxqt-queue-t": replace(BASELINE, protocol="t", pty=True,
                                 uucp_config_lines=PARALLEL_UUXQT, call_on_queue=True),
    "pty-uuxqt-queue-e": replace(BASELINE, protocol="e", pty=True,
                                 uucp_config_lines=PARALLEL_UUXQT, call_on_queue=True),
}


def describe(tuning: Tuning) -> str:
    extra = "; ".join(tuning.uucp_config_lines) or "-"
    call = "a path unit on the queue (uux -r)" if tuning.call_on_queue else "uux"
    return (f"protocol {tuning.protocol}, pty {'yes' if tuning.pty else 'no'}, "
            f"calls started by {call}, uucp config: {extra}")
