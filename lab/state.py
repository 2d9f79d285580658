"""The lab's state file: what exists, so another process (`python -m lab down`) can remove it.

Entries are recorded before the thing they name is made, so a crash in between leaves a
record pointing at something missing (teardown tolerates that) rather than an orphan.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lab import paths

State = dict[str, Any]


def empty() -> State:
    return {"switch": None, "repo_server": None, "dns_server": None, "nodes": {}}


def read() -> State:
    """The current state; an empty one if the file is missing or unreadable."""
    try:
        data = json.loads(paths.state_file().read_text())
    except (FileNotFoundError, ValueError):
        return empty()
    state = empty()
    if isinstance(data, dict):
        state.update({k: v for k, v in data.items() if k in state})
    if not isinstance(state["nodes"], dict):
        state["nodes"] = {}
    return state


@contextmanager
def update() -> Iterator[State]:
    """Read-modify-write under an exclusive lock; written atomically on exit."""
    target = paths.state_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read()
        yield state
        tmp = target.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        tmp.rename(target)


def remove() -> None:
    paths.state_file().unlink(missing_ok=True)
