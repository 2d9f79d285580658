"""Key and password derivation: stable secrets from one seed, with no state to store.

Every secret of the mesh is HKDF-SHA256 of the stack's `keySeed`, with an `info` naming its
purpose, node and version. The same config therefore yields byte-identical material on every
run (no churn in `pulumi preview`), a leaf's `keyVersion` bump rotates that leaf alone, and a
rebuilt hub keeps the host key its leaves have pinned.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Bump only with a migration plan: it changes every key and password of every mesh.
_DERIVATION_SCHEME = b"uucp-mailmesh/v1"
_PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
PASSWORD_LENGTH = 40  # about 238 bits


@dataclass(frozen=True)
class SshKeyPair:
    """An ed25519 key pair: OpenSSH private key file text and `authorized_keys` public line."""

    public_openssh: str
    private_openssh: str = field(repr=False)


def derive_bytes(seed: str, purpose: str, node: str, version: int, length: int = 32) -> bytes:
    """HKDF-SHA256 output bound to one purpose, node and version."""
    info = b"\0".join([_DERIVATION_SCHEME, purpose.encode(), node.encode(), str(version).encode()])
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
    return hkdf.derive(seed.encode())


def derive_ssh_keypair(
    seed: str, purpose: str, node: str, version: int, comment: str
) -> SshKeyPair:
    """A deterministic ed25519 key pair in OpenSSH formats."""
    key = Ed25519PrivateKey.from_private_bytes(derive_bytes(seed, purpose, node, version))
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    checkint = derive_bytes(seed, purpose + "/checkint", node, version, length=4)
    return SshKeyPair(
        public_openssh=f"{public.decode()} {comment}",
        private_openssh=_with_fixed_checkint(private.decode(), checkint, comment),
    )


def derive_password(seed: str, node: str, version: int) -> str:
    """A long alphanumeric UUCP password (safe in Taylor's passwd, call and chat files)."""
    out: list[str] = []
    counter = 0
    while len(out) < PASSWORD_LENGTH:
        block = derive_bytes(seed, f"uucp-password/{counter}", node, version, length=64)
        # Rejection sampling keeps the 62 symbols uniform: 248 = 4 * 62.
        out.extend(_PASSWORD_ALPHABET[b % 62] for b in block if b < 248)
        counter += 1
    return "".join(out[:PASSWORD_LENGTH])


def leaf_keypair(seed: str, leaf: str, key_version: int) -> SshKeyPair:
    """The key a leaf's uucp user logs in to the hub with."""
    return derive_ssh_keypair(seed, "leaf-uucp-ssh", leaf, key_version, f"uucp@{leaf}")


def leaf_password(seed: str, leaf: str, key_version: int) -> str:
    return derive_password(seed, leaf, key_version)


def hub_host_keypair(seed: str, hub: str) -> SshKeyPair:
    """The hub's sshd host key; leaves pin it, so it must survive a hub rebuild."""
    return derive_ssh_keypair(seed, "hub-ssh-host", hub, 1, f"root@{hub}")


def admin_keypair(seed: str, hub: str) -> SshKeyPair:
    """The key the registration connection logs in to the hub's admin user with."""
    return derive_ssh_keypair(seed, "hub-admin-ssh", hub, 1, f"mailmesh-admin@{hub}")


def fingerprint(public_openssh: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(public_openssh.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _with_fixed_checkint(private_pem: str, checkint: bytes, comment: str) -> str:
    """Make cryptography's OpenSSH private key deterministic and give it a comment.

    The format (PROTOCOL.key) opens its private section with two equal random "check"
    integers; cryptography draws them from os.urandom, which would change the user-data of
    every node on every run. They are a decryption check only, so a derived value is as good.
    """
    lines = private_pem.strip().splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    offset = len(b"openssh-key-v1\0")
    for _ in range(3):  # ciphername, kdfname, kdfoptions
        offset += 4 + struct.unpack(">I", blob[offset : offset + 4])[0]
    offset += 4  # number of keys (always 1)
    offset += 4 + struct.unpack(">I", blob[offset : offset + 4])[0]  # public key blob
    section_len = struct.unpack(">I", blob[offset : offset + 4])[0]
    section = bytearray(blob[offset + 4 : offset + 4 + section_len])
    section[0:8] = checkint + checkint
    section = _replace_comment(section, comment.encode())
    body = bytes(blob[:offset]) + struct.pack(">I", len(section)) + bytes(section)
    encoded = base64.b64encode(body).decode()
    wrapped = [encoded[i : i + 70] for i in range(0, len(encoded), 70)]
    return "\n".join([lines[0], *wrapped, lines[-1]]) + "\n"


def _replace_comment(section: bytearray, comment: bytes) -> bytearray:
    """Rewrite the private section's comment and its 1,2,3... padding to the block size 8."""
    offset = 8  # the two check integers
    for _ in range(3):  # key type, public key, private key; the comment and padding follow
        offset += 4 + struct.unpack(">I", section[offset : offset + 4])[0]
    head = bytes(section[:offset]) + struct.pack(">I", len(comment)) + comment
    padding = bytes(range(1, 1 + (-len(head) % 8)))
    return bytearray(head + padding)
