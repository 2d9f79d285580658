"""Cached build outputs (base root, repository) replaced as a whole."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("lab")


def replace_atomically(dest: Path, build: Callable[[Path], None]) -> None:
    """build() into a temp sibling, then swap it in: nobody sees a half-built dest, and an
    interrupted build leaves only a temp dir, which the next build removes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f"{dest.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = dest.parent / f"{dest.name}.tmp-{os.getpid()}"
    started = time.monotonic()
    try:
        build(tmp)
        if dest.exists():
            old = dest.parent / f"{dest.name}.tmp-old-{os.getpid()}"
            dest.rename(old)
            shutil.rmtree(old)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("built %s in %.0f s", dest, time.monotonic() - started)
