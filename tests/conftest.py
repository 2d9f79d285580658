"""Shared fixtures: a sample mesh, rendered with the real templates and derived keys."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components import keys  # noqa: E402
from components.model import HubConfig, LeafConfig, Relay  # noqa: E402

# Generated for each test session: no secret of any test lives in the repository.
SEED = secrets.token_urlsafe(32)
RELAY_PASSWORD = secrets.token_urlsafe(12)


@pytest.fixture
def seed() -> str:
    return SEED


@pytest.fixture
def hub() -> HubConfig:
    return HubConfig(name="hub.mesh.test", admin_cidrs=("192.0.2.0/28", "2001:db8::/64"))


@pytest.fixture
def hub_with_relay() -> HubConfig:
    return HubConfig(
        name="hub.mesh.test",
        admin_cidrs=("192.0.2.0/28",),
        relay=Relay(host="smtp.relay.test", port=587, username="mesh", password=RELAY_PASSWORD),
    )


@pytest.fixture
def leaf() -> LeafConfig:
    return LeafConfig(
        name="leaf1.mesh.test", zone="europe-west1-b", domains=("leaf1.example", "app.example")
    )


@pytest.fixture
def host_key(hub: HubConfig) -> keys.SshKeyPair:
    return keys.hub_host_keypair(SEED, hub.name)
