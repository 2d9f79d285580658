"""No secret lives in the repository: no private key, no seed, no password.

Test and lab secrets are generated at run time (tests/mesh_stacks.py, tests/conftest.py,
lab/mesh.py); stack files hold encrypted placeholders. This scans every tracked file.
"""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.conftest import ROOT

PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n\s*[A-Za-z0-9+/=]{40,}", re.MULTILINE
)
SECRET_SETTINGS = ("keySeed", "password")


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_no_tracked_file_holds_a_private_key():
    found = [name for name in tracked_files()
             if (ROOT / name).is_file()
             and PRIVATE_KEY_BLOCK.search((ROOT / name).read_text(errors="replace"))]
    assert found == []


def secret_values(node: object) -> list[tuple[str, object]]:
    """(key, value) of every keySeed/password setting in a parsed stack file."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if any(str(key).endswith(name) for name in SECRET_SETTINGS):
                found.append((str(key), value))
            found += secret_values(value)
    elif isinstance(node, list):
        for item in node:
            found += secret_values(item)
    return found


def test_every_secret_setting_in_a_stack_file_is_encrypted():
    stacks = [name for name in tracked_files()
              if name.endswith((".yaml", ".yml")) and "Pulumi." in name or "stacks/" in name]
    assert "Pulumi.example.yaml" in stacks and "lab/Pulumi.lab.yaml" in stacks
    for name in stacks:
        data = yaml.safe_load((ROOT / name).read_text())
        if not isinstance(data, dict) or "config" not in data:
            continue
        for key, value in secret_values(data["config"]):
            assert isinstance(value, dict) and set(value) == {"secure"}, (name, key)
