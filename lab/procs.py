"""Processes by PID, with their start time so a recycled PID is never mistaken for ours."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after its closing ')'.
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Clock ticks since boot when pid started (field 22 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def is_running(pid: int, start: int | None = None) -> bool:
    """True if pid exists, is not a zombie, and (when given) started at `start`."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return start is None or int(fields[19]) == start


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def find(match: Callable[[list[str]], bool]) -> list[int]:
    """PIDs whose command line satisfies match."""
    return [pid for pid in all_pids() if (argv := cmdline(pid)) and match(argv)]


def children(pid: int) -> list[int]:
    return [child for child in all_pids() if parent(child) == pid]


def terminate(targets: Iterable[tuple[int, int | None]], grace: float = 15.0) -> list[int]:
    """SIGTERM each (pid, start time), SIGKILL what is left after grace; returns the pids hit."""
    live = [(pid, start) for pid, start in targets if is_running(pid, start)]
    for pid, _ in live:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_running(p, s) for p, s in live):
        time.sleep(0.1)
    for pid, start in live:
        if is_running(pid, start):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(is_running(p, s) for p, s in live):
        time.sleep(0.05)
    return [pid for pid, _ in live]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
