"""Write an evaluation to a directory: what each machine gets, what each registration runs,
and every resource with its inputs.

Secrets: the resource listings and outputs always show `[secret]` for secret values. The
user-data files and the registrations' stdin carry the real values only with `show_secrets`;
otherwise each secret (keySeed, the relay password, every derived private key and password)
is replaced by `[secret]`, line by line, so the files keep their shape. After writing, every
file is searched for every secret as a last check.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components import keys
from components.model import MeshConfig
from components.render import compress_user_data
from offline_render.evaluate import Evaluation, no_cyclic_gc
from offline_render.mocks import Registration

MASK = "[secret]"
# libyaml's emitter when PyYAML has it: the same text as the pure-Python one, much faster.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
HUB_INSTANCE = "aws:ec2/instance:Instance"
LEAF_INSTANCE = "gcp:compute/instance:Instance"
LEAF_COMPONENT = "uucp-mailmesh:index:Leaf"
REGISTRATION = "command:remote:Command"
# Everything this writer owns in an output directory (cleared before each render).
OWNED = ("README.txt", "nodes", "registrations", "resources.txt", "resources.json", "outputs.json")

README = """\
Offline render of the uucp-mailmesh stack {stack!r} (python -m offline_render).

The project's Pulumi program ran under Pulumi's mock runtime: no cloud was called. Ids and
addresses are made up (hub 203.0.113.0/24, leaves 198.51.100.0/24) unless the stack file maps
node names to addresses under `mailmesh-lab:addresses`.

nodes/<node>/user-data        what the cloud gets as user-data: for the hub the gzip bytes
                              (EC2 user_data_base64, decoded), for a leaf the GCE metadata
                              `user-data` text
nodes/<hub>/user-data.txt     the hub's user-data decompressed, to read
registrations/<leaf>/         the leaf's registration on the hub, run over SSH as the admin
  create.sh                   user: the create command, stdin.json its standard input,
  stdin.json                  delete.sh the command run when the registration is replaced or
  delete.sh                   deleted, connection.json where it connects (private key never
  connection.json             shown)
resources.txt, resources.json every registered resource: type, name, parent, dependencies,
                              options and inputs (secret inputs shown as [secret]; the json
                              has a sha256 of every input to compare renders by)
outputs.json                  the stack outputs

{secrets_note}
"""

SECRETS_SHOWN = """\
Rendered with --show-secrets: the user-data files and stdin.json hold real private keys and
passwords. Keep this directory private and delete it when done."""

SECRETS_MASKED = """\
Rendered without --show-secrets: in the user-data files and stdin.json every private key,
password and the relay password are replaced by [secret]; those files show the shape of what
the machines get but cannot boot them. Render with --show-secrets for the real files."""


@dataclass(frozen=True)
class Written:
    files: tuple[str, ...]  # paths relative to the output directory, sorted


def secret_values(mesh: MeshConfig) -> list[str]:
    """Every secret the render may meet: keySeed, the relay password, and all key material
    derived from keySeed."""
    seed = mesh.key_seed
    values = [
        seed,
        keys.hub_host_keypair(seed, mesh.hub.name).private_openssh,
        keys.admin_keypair(seed, mesh.hub.name).private_openssh,
    ]
    if mesh.hub.relay and mesh.hub.relay.password:
        values.append(mesh.hub.relay.password)
    for leaf in mesh.leaves:
        values.append(keys.leaf_keypair(seed, leaf.name, leaf.key_version).private_openssh)
        values.append(keys.leaf_password(seed, leaf.name, leaf.key_version))
    return values


class Masker:
    """Replaces secrets in text. Multi-line secrets (private keys) go line by line, because
    YAML block scalars indent them; the armour lines (-----BEGIN ...) are not secret.

    The same result as trying every piece on every text, longest first, without its cost
    (pieces x texts: most of the render's time with hundreds of leaves). An occurrence of a
    piece of at least 2k-1 characters covers a k-character block of the text aligned at a
    multiple of k, starting at one of the piece's first k offsets: only the pieces indexed
    under the text's aligned blocks are tried, where the block says. Pieces shorter than
    that, or that could only appear next to an inserted MASK, are tried on every text.
    """

    BLOCK = 8
    _blocks = re.compile(f".{{{BLOCK}}}", re.DOTALL)

    def __init__(self, secrets: list[str]) -> None:
        pieces = {
            line.strip()
            for secret in secrets
            for line in secret.splitlines()
            if line.strip() and not line.strip().startswith("-----")
        }
        self.pieces = sorted(pieces, key=lambda p: (-len(p), p))
        self._rank = {piece: rank for rank, piece in enumerate(self.pieces)}
        self._always: list[str] = []  # tried on every text
        # block -> (offset of the block in the piece, length of the piece) -> pieces
        self._by_block: dict[str, dict[tuple[int, int], set[str]]] = {}
        k = self.BLOCK
        for piece in self.pieces:
            if len(piece) < 2 * k - 1 or "[" in piece or "]" in piece or piece in MASK:
                self._always.append(piece)
                continue
            for offset in range(k):
                shapes = self._by_block.setdefault(piece[offset : offset + k], {})
                shapes.setdefault((offset, len(piece)), set()).add(piece)

    def _found(self, text: str) -> set[str]:
        """The indexed pieces that occur in text."""
        blocks = self._blocks.findall(text)
        hits = self._by_block.keys() & set(blocks)
        found: set[str] = set()
        if not hits:
            return found
        for index, block in enumerate(blocks):
            if block in hits:
                for (offset, length), pieces in self._by_block[block].items():
                    start = index * self.BLOCK - offset
                    if start >= 0 and (here := text[start : start + length]) in pieces:
                        found.add(here)
        return found

    def __call__(self, text: str) -> str:
        for piece in sorted(self._found(text).union(self._always), key=self._rank.__getitem__):
            text = text.replace(piece, MASK)
        return text

    def leaks(self, text: str) -> bool:
        short = any(piece in text for piece in self._always if len(piece) >= 8)
        return short or bool(self._found(text))


def write_render(
    evaluation: Evaluation, out_dir: Path, *, stack: str, show_secrets: bool
) -> Written:
    with no_cyclic_gc():
        return _write_render(evaluation, out_dir, stack=stack, show_secrets=show_secrets)


def _write_render(
    evaluation: Evaluation, out_dir: Path, *, stack: str, show_secrets: bool
) -> Written:
    mesh = evaluation.mesh
    masker = Masker(secret_values(mesh))
    keep = (lambda text: text) if show_secrets else masker
    files: dict[str, bytes] = {}

    hub = evaluation.one(HUB_INSTANCE)
    hub_gzip = base64.b64decode(hub.inputs["userDataBase64"])
    hub_text = gzip.decompress(hub_gzip).decode()
    if not show_secrets:
        hub_text = masker(hub_text)
        hub_gzip = compress_user_data(hub_text)
    files[f"nodes/{mesh.hub.name}/user-data"] = hub_gzip
    files[f"nodes/{mesh.hub.name}/user-data.txt"] = hub_text.encode()

    leaf_names = {leaf.resource_name: leaf.name for leaf in mesh.leaves}
    children_of: dict[str, list[Registration]] = defaultdict(list)
    for registration in evaluation.registrations:
        children_of[registration.parent].append(registration)
    for component in evaluation.find(LEAF_COMPONENT):
        node = leaf_names[component.name]
        children = children_of[component.urn]
        instance = _only(children, LEAF_INSTANCE)
        user_data = instance.inputs["metadata"]["user-data"]
        files[f"nodes/{node}/user-data"] = keep(user_data).encode()
        command = _only(children, REGISTRATION)
        folder = f"registrations/{node}"
        files[f"{folder}/create.sh"] = (command.inputs["create"] + "\n").encode()
        files[f"{folder}/delete.sh"] = (command.inputs["delete"] + "\n").encode()
        files[f"{folder}/stdin.json"] = keep(command.inputs["stdin"]).encode()
        connection = dict(command.inputs["connection"])
        if "privateKey" in connection:
            connection["privateKey"] = MASK
        files[f"{folder}/connection.json"] = _json(connection)

    listing = [_resource_entry(r) for r in evaluation.registrations]
    files["resources.json"] = _json(listing)
    files["resources.txt"] = _resources_text(listing).encode()
    outputs = {
        name: MASK if output.secret else output.value for name, output in evaluation.outputs.items()
    }
    files["outputs.json"] = _json(outputs)
    note = SECRETS_SHOWN if show_secrets else SECRETS_MASKED
    files["README.txt"] = README.format(stack=stack, secrets_note=note).encode()

    if not show_secrets:
        leaked = [path for path, data in files.items() if masker.leaks(_readable(data))]
        if leaked:  # a bug in the masking, never a user error
            raise AssertionError(f"secret values would be written to {', '.join(leaked)}")

    _clear(out_dir)
    for path, data in files.items():
        target = out_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if path.endswith(".sh"):
            target.chmod(0o755)
        elif show_secrets and ("user-data" in path or path.endswith("stdin.json")):
            target.chmod(0o600)
    return Written(files=tuple(sorted(files)))


def _only(registrations: list[Registration], type_: str) -> Registration:
    found = [r for r in registrations if r.type == type_]
    if len(found) != 1:
        raise LookupError(f"expected one {type_}, found {len(found)}")
    return found[0]


def _resource_entry(r: Registration) -> dict[str, Any]:
    return {
        "urn": r.urn,
        "type": r.type,
        "name": r.name,
        "parent": r.parent,
        "dependencies": list(r.dependencies),
        "propertyDependencies": {k: list(v) for k, v in r.property_dependencies.items()},
        "options": r.options,
        "inputs": {k: _mask_paths(v, k, r.secret_paths) for k, v in sorted(r.inputs.items())},
        "secretInputs": list(r.secret_paths),
        # Hashes of secret inputs reveal nothing: each such input holds a derived private key
        # or password (about 240 bits) besides anything weaker.
        "inputHashes": {k: _sha256(v) for k, v in sorted(r.inputs.items())},
    }


def _mask_paths(value: Any, path: str, secret_paths: tuple[str, ...]) -> Any:
    if path in secret_paths:
        return MASK
    if isinstance(value, dict):
        return {k: _mask_paths(v, f"{path}.{k}", secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_paths(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


def _resources_text(listing: list[dict[str, Any]]) -> str:
    blocks = []
    for entry in listing:
        lines = [f"{entry['type']} {entry['name']}", f"  urn: {entry['urn']}"]
        lines.append(f"  parent: {entry['parent'] or '-'}")
        for dep in entry["dependencies"]:
            lines.append(f"  depends on: {dep}")
        for key, value in entry["options"].items():
            lines.append(f"  option {key}: {json.dumps(value, sort_keys=True)}")
        if entry["inputs"]:
            lines.append("  inputs:")
            dumped = yaml.dump(
                entry["inputs"], Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                width=1000,
            )
            lines.extend(f"    {line}" for line in dumped.splitlines())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _sha256(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _readable(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode(errors="replace")


def _clear(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
