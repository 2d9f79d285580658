"""Which Debian mirrors to build from: the ones the host's own APT already uses.

Reading them from the host (or MAILMESH_LAB_MIRROR / MAILMESH_LAB_SECURITY_MIRROR) keeps the
lab on whatever mirror this machine is allowed to reach, without naming one in the code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lab.paths import SUITE

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class Mirrors:
    main: str  # serves SUITE and SUITE-updates
    security: str | None  # serves SUITE-security

    def sources_list(self) -> str:
        lines = [f"deb {self.main} {SUITE} main", f"deb {self.main} {SUITE}-updates main"]
        if self.security:
            lines.append(f"deb {self.security} {SUITE}-security main")
        return "\n".join(lines) + "\n"


def _entries(apt_dir: Path) -> list[tuple[str, str]]:
    """(uri, suite) pairs of every enabled deb source, one-line and deb822 alike."""
    pairs: list[tuple[str, str]] = []
    one_line = [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb":
                if words[1].startswith("["):  # skip the [option=value ...] block
                    while words and not words[0].endswith("]"):
                        words.pop(0)
                words = words[1:]
                if len(words) >= 2:
                    pairs.append((words[0], words[1]))
    for path in sorted(apt_dir.glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith((" ", "#")):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    pairs.append((uri, suite))
    return pairs


def host_mirrors(apt_dir: Path = APT_DIR) -> Mirrors:
    """The host's Debian mirrors for SUITE; environment variables win."""
    pairs = _entries(apt_dir)
    main = os.environ.get("MAILMESH_LAB_MIRROR") or next(
        (uri for uri, suite in pairs if suite == SUITE), None
    )
    security = os.environ.get("MAILMESH_LAB_SECURITY_MIRROR") or next(
        (uri for uri, suite in pairs if suite == f"{SUITE}-security"), None
    )
    if not main:
        raise RuntimeError(
            f"no APT source for {SUITE} on this host; set MAILMESH_LAB_MIRROR to a Debian mirror"
        )
    return Mirrors(main=main.rstrip("/"), security=security.rstrip("/") if security else None)
