"""Read a `Pulumi.<stack>.yaml` the way the Pulumi CLI would hand its config to the program.

Encrypted values (`{secure: v1:...}`) cannot be decrypted without the stack's secrets provider,
which needs the Pulumi CLI: their plain values come from a secrets file instead (`--secrets`),
a YAML map from the value's config path to its value, e.g.

    uucp-mailmesh:keySeed: "..."
    uucp-mailmesh:hub.relay.password: "..."
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config import NAMESPACE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Lab-only config, read by the mocks and never by the program: node name -> address.
ADDRESSES_KEY = "mailmesh-lab:addresses"
# Secret even when written in plain text (as the lab and example stacks may).
ALWAYS_SECRET = (f"{NAMESPACE}:keySeed",)

_STACK_FILE_NAME = re.compile(r"^Pulumi\.(?P<stack>[^.]+)\.ya?ml$")


class StackFileError(Exception):
    """The stack file cannot be read as Pulumi would read it; str() says why."""


@dataclass(frozen=True)
class StackFile:
    path: Path
    project: str
    stack: str
    config: dict[str, Any]  # full key ("uucp-mailmesh:hub") -> decoded value
    secret_keys: tuple[str, ...] = ()
    addresses: dict[str, str] = field(default_factory=dict)


def stack_name(path: Path) -> str:
    match = _STACK_FILE_NAME.match(path.name)
    return match.group("stack") if match else path.stem


def load_stack_file(path: str | Path, secrets_file: str | Path | None = None) -> StackFile:
    path = Path(path)
    data = _read_yaml(path, "stack file")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise StackFileError(f"{path}: a stack file is a YAML mapping with a `config:` key")
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        raise StackFileError(f"{path}: `config:` must be a mapping of config keys to values")
    secrets: Mapping[str, Any] = {}
    if secrets_file is not None:
        secrets = _read_yaml(Path(secrets_file), "secrets file") or {}
        if not isinstance(secrets, Mapping):
            raise StackFileError(f"{secrets_file}: must be a YAML mapping of config paths")

    problems: list[str] = []
    decoded: dict[str, Any] = {}
    secret_keys: set[str] = set(ALWAYS_SECRET)
    for key, value in config.items():
        key = str(key)
        if ":" not in key:
            problems.append(
                f"config key {key!r} has no namespace; write it as "
                f"'{NAMESPACE}:{key}' (as `pulumi config set {key} ...` does)"
            )
            continue
        found: list[str] = []
        decoded[key] = _decode(value, key, secrets, found, problems)
        if found:
            secret_keys.add(key)
    if problems:
        raise StackFileError(f"{path}:\n" + "\n".join(f"  - {p}" for p in problems))

    addresses = decoded.pop(ADDRESSES_KEY, None) or {}
    if not isinstance(addresses, Mapping) or not all(
        isinstance(v, str) for v in addresses.values()
    ):
        raise StackFileError(f"{path}: {ADDRESSES_KEY} must map node names to IP addresses")
    return StackFile(
        path=path,
        project=NAMESPACE,  # the project's name is its config namespace
        stack=stack_name(path),
        config=decoded,
        secret_keys=tuple(sorted(secret_keys)),
        addresses={str(k): v for k, v in addresses.items()},
    )


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise StackFileError(f"cannot read the {what} {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise StackFileError(f"{path}: not valid YAML: {err}") from None


def _decode(
    value: Any, path: str, secrets: Mapping[str, Any], found: list[str], problems: list[str]
) -> Any:
    """The value with every `{secure: ...}` replaced from the secrets file."""
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            found.append(path)
            if path in secrets:
                return secrets[path]
            problems.append(
                f"{path} is encrypted ({{secure: ...}}), which only the Pulumi CLI can "
                f"decrypt; give its plain value in a --secrets file: `{path}: <value>`"
            )
            return None
        return {
            str(k): _decode(v, f"{path}.{k}", secrets, found, problems) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_decode(v, f"{path}[{i}]", secrets, found, problems) for i, v in enumerate(value)]
    return value
