"""Helpers to look inside a rendered cloud-config the way cloud-init will."""

from __future__ import annotations

import gzip
from pathlib import Path

import yaml


def parse_user_data(user_data: str | bytes) -> dict:
    if isinstance(user_data, bytes):
        user_data = gzip.decompress(user_data).decode() if user_data[:2] == b"\x1f\x8b" else (
            user_data.decode()
        )
    assert user_data.startswith("#cloud-config\n")
    return yaml.safe_load(user_data)


def files_of(user_data: str | bytes) -> dict[str, dict]:
    """write_files entries by path."""
    return {entry["path"]: entry for entry in parse_user_data(user_data)["write_files"]}


def extract(user_data: str | bytes, root: Path) -> dict[str, Path]:
    """Write each write_files entry under root (as cloud-init would under /)."""
    written = {}
    for path, entry in files_of(user_data).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
        target.chmod(int(entry["permissions"], 8))
        written[path] = target
    return written
