"""Stack configs for the program tests, and what a test needs to know about them.

The stacks live in tests/stacks/ as stack files (`config:` as in a Pulumi.<stack>.yaml). The
secrets a render must never leak are derived here with components.keys, independently of the
renderer's own list.
"""

from __future__ import annotations

import atexit
import copy
import gzip
import secrets
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from components import keys
from offline_render import Evaluation, evaluate
from offline_render.stackfile import load_stack_file

STACKS = Path(__file__).resolve().parent / "stacks"
NS = "uucp-mailmesh"

HUB = "aws:ec2/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
EIP = "aws:ec2/eip:Eip"
EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
ADDRESS = "gcp:compute/address:Address"
LEAF_INSTANCE = "gcp:compute/instance:Instance"
FIREWALL = "gcp:compute/firewall:Firewall"
REGISTRATION = "command:remote:Command"
HUB_COMPONENT = "uucp-mailmesh:index:Hub"
LEAF_COMPONENT = "uucp-mailmesh:index:Leaf"


# The stacks' encrypted values, generated for this test session: the repository holds none.
SESSION_SECRETS = {
    f"{NS}:keySeed": secrets.token_urlsafe(32),
    f"{NS}:hub.relay.password": secrets.token_urlsafe(16),
}
_DECRYPTED = Path(tempfile.mkdtemp(prefix="mailmesh-test-stacks-"))
atexit.register(shutil.rmtree, _DECRYPTED, True)


@cache
def stack_file(name: str) -> Path:
    """The test stack as the Pulumi CLI would hand it over: secrets decrypted (with this
    session's values) into a private copy."""
    stack = load_stack_file(STACKS / f"{name}.yaml", secrets_file=_secrets_file())
    path = _DECRYPTED / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"config": stack.config}, sort_keys=False))
    return path


def secrets_file() -> Path:
    """The session's values for the stacks' encrypted settings, as an offline_render
    --secrets file."""
    return _secrets_file()


@cache
def _secrets_file() -> Path:
    path = _DECRYPTED / "secrets.yaml"
    path.write_text(yaml.safe_dump(SESSION_SECRETS))
    return path


def stack_config(name: str) -> dict[str, Any]:
    """A fresh, modifiable copy of a test stack's `config:`."""
    return copy.deepcopy(_load(name))


@cache
def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load(stack_file(name).read_text())["config"]


@cache
def evaluated(name: str) -> Evaluation:
    """The program evaluated with a test stack (cached: evaluations are immutable)."""
    return evaluate(stack_config(name), stack=name)


def with_changes(name: str, **changes: Any) -> dict[str, Any]:
    """A test stack's config with some project keys replaced (None removes the key)."""
    config = stack_config(name)
    for key, value in changes.items():
        if value is None:
            config.pop(f"{NS}:{key}", None)
        else:
            config[f"{NS}:{key}"] = value
    return config


def secrets_of(config: dict[str, Any]) -> list[str]:
    """keySeed, the relay password and every private key and password derived from the seed."""
    seed = config[f"{NS}:keySeed"]
    hub = config[f"{NS}:hub"]
    values = [
        seed,
        keys.hub_host_keypair(seed, hub["name"]).private_openssh,
        keys.admin_keypair(seed, hub["name"]).private_openssh,
    ]
    if hub.get("relay", {}).get("password"):
        values.append(hub["relay"]["password"])
    for leaf in config.get(f"{NS}:leaves", []):
        version = leaf.get("keyVersion", 1)
        values.append(keys.leaf_keypair(seed, leaf["name"], version).private_openssh)
        values.append(keys.leaf_password(seed, leaf["name"], version))
    return values


def secret_fragments(config: dict[str, Any]) -> list[str]:
    """Each secret as the pieces that would show in a file: whole single-line secrets and
    every body line of a private key (YAML indents them)."""
    pieces = set()
    for secret in secrets_of(config):
        for line in secret.strip().splitlines():
            if not line.startswith("-----"):
                pieces.add(line.strip())
    return sorted(pieces)


def readable(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode(errors="replace")
