"""Keys and passwords: derived from the seed, stable, distinct, and loadable by real tools."""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from components import keys
from tests.conftest import SEED


def all_material(seed: str) -> dict[str, str]:
    return {
        "leaf1 v1 key": keys.leaf_keypair(seed, "leaf1", 1).private_openssh,
        "leaf1 v2 key": keys.leaf_keypair(seed, "leaf1", 2).private_openssh,
        "leaf2 v1 key": keys.leaf_keypair(seed, "leaf2", 1).private_openssh,
        "hub host key": keys.hub_host_keypair(seed, "hub").private_openssh,
        "admin key": keys.admin_keypair(seed, "hub").private_openssh,
        "leaf1 v1 password": keys.leaf_password(seed, "leaf1", 1),
        "leaf1 v2 password": keys.leaf_password(seed, "leaf1", 2),
        "leaf2 v1 password": keys.leaf_password(seed, "leaf2", 1),
    }


def test_same_seed_gives_byte_identical_material_every_time():
    assert all_material(SEED) == all_material(SEED)


def test_every_node_purpose_and_version_gets_its_own_material():
    material = all_material(SEED)
    assert len(set(material.values())) == len(material)


def test_another_seed_changes_everything():
    mine, theirs = all_material(SEED), all_material(SEED + "x")
    assert all(mine[name] != theirs[name] for name in mine)


def test_bumping_key_version_rotates_that_leaf_only():
    assert keys.leaf_keypair(SEED, "leaf1", 2) != keys.leaf_keypair(SEED, "leaf1", 1)
    assert keys.leaf_keypair(SEED, "leaf2", 1) == keys.leaf_keypair(SEED, "leaf2", 1)


def test_private_key_loads_with_cryptography_and_matches_public_key():
    pair = keys.leaf_keypair(SEED, "leaf1", 1)
    private = serialization.load_ssh_private_key(pair.private_openssh.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert pair.public_openssh == f"{public.decode()} uucp@leaf1"


def test_openssh_reads_the_private_key_and_its_comment(tmp_path):
    pair = keys.hub_host_keypair(SEED, "hub.mesh.test")
    path = tmp_path / "key"
    path.write_text(pair.private_openssh)
    path.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True,
                             text=True, check=True)
    assert derived.stdout.strip() == pair.public_openssh
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True,
                            text=True, check=True)
    assert listed.stdout.split()[1] == keys.fingerprint(pair.public_openssh)
    assert "root@hub.mesh.test" in listed.stdout


@pytest.mark.parametrize("node", ["leaf1", "leaf2.example.org", "x" * 63])
def test_password_is_long_and_alphanumeric(node):
    password = keys.leaf_password(SEED, node, 1)
    assert len(password) == keys.PASSWORD_LENGTH
    assert password.isalnum() and password.isascii()


def test_public_key_line_names_its_use():
    assert keys.admin_keypair(SEED, "hub").public_openssh.endswith(" mailmesh-admin@hub")
    assert keys.leaf_keypair(SEED, "leaf1", 1).public_openssh.startswith("ssh-ed25519 AAAA")


def test_secrets_do_not_show_in_repr():
    pair = keys.leaf_keypair(SEED, "leaf1", 1)
    assert "PRIVATE" not in repr(pair)
