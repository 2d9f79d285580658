"""One way to run host commands: logged, captured, checked, with a timeout."""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("lab")


class CommandError(RuntimeError):
    """A command failed; carries its output so the caller's report says why."""

    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.proc = proc
        out = (proc.stdout or b"").decode(errors="replace")[-2000:]
        err = (proc.stderr or b"").decode(errors="replace")[-2000:]
        super().__init__(
            f"exit {proc.returncode}: {shlex.join(map(str, proc.args))}\n{out}{err}".rstrip()
        )


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float | None = None,
    check: bool = True,
    capture: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv; raise CommandError on failure when check is set."""
    log.debug("run: %s", shlex.join(argv))
    proc = subprocess.run(
        list(argv),
        input=input,
        timeout=timeout,
        capture_output=capture,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise CommandError(proc)
    return proc
