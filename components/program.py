"""The Pulumi program proper, run by `__main__.py` (and by the offline render, unchanged).

The stack config is validated before anything is registered: a bad config stops the program
with `pulumi.RunError`, which Pulumi prints as the message alone, without a Python traceback.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.config import CONFIG_KEYS, NAMESPACE, ConfigError, parse_mesh_config
from components.mesh import build_mesh
from components.model import MeshConfig


def raw_stack_config() -> dict[str, Any]:
    """The project's stack config as the runtime holds it: {key: text}, objects as JSON text.

    Unknown keys of the namespace are included so that `parse_mesh_config` can report them
    (a misspelt `pollIntervall` would otherwise be ignored in silence). keySeed is read as
    plain text here only to validate it and derive the keys; it is never exported or logged.
    """
    config = pulumi.Config(NAMESPACE)
    extra = sorted(name for name in _namespace_keys() if name not in CONFIG_KEYS)
    raw: dict[str, Any] = {}
    for name in (*CONFIG_KEYS, *extra):
        value = config.get(name)
        if value is not None:
            raw[name] = value
    return raw


def load_mesh_config() -> MeshConfig:
    try:
        return parse_mesh_config(raw_stack_config())
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None


def main() -> None:
    mesh = load_mesh_config()
    for name, value in build_mesh(mesh).items():
        pulumi.export(name, value)


def _namespace_keys() -> set[str]:
    """Names of every config key of the project namespace the runtime knows of."""
    full_keys: set[str] = set()
    try:
        full_keys.update(runtime_config.CONFIG.get())
    except AttributeError:  # an SDK without the module-level map
        pass
    full_keys.update(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix) :] for key in full_keys if key.startswith(prefix)}
