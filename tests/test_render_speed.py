"""The offline render's speed-ups change no byte: libyaml against pure-Python YAML, the indexed
secret masking against trying every secret on every text (benchmarks/ measures the speed)."""

from __future__ import annotations

import json
import random
import string

import pytest
import yaml

from components import keys, render
from offline_render.write import MASK, Masker
from tests.conftest import SEED
from tests.mesh_stacks import evaluated


def naive_mask(pieces: list[str], text: str) -> str:
    for piece in pieces:
        text = text.replace(piece, MASK)
    return text


def naive_leaks(pieces: list[str], text: str) -> bool:
    return any(piece in text for piece in pieces if len(piece) >= 8)


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML without libyaml")
@pytest.mark.parametrize("stack", ["two-leaves", "three-leaves"])
def test_libyaml_writes_the_same_user_data_as_pure_python(stack):
    evaluation = evaluated(stack)
    instances = [r for r in evaluation.registrations if r.type == "gcp:compute/instance:Instance"]
    assert instances
    for instance in instances:
        user_data = instance.inputs["metadata"]["user-data"]
        assert user_data.startswith("#cloud-config\n")
        config = yaml.safe_load(user_data)

        class Pure(yaml.SafeDumper):
            pass

        Pure.add_representer(str, render._represent_str)
        pure = yaml.dump(config, Dumper=Pure, sort_keys=False, width=1000)
        assert "#cloud-config\n" + pure == user_data


def test_hub_user_data_is_the_same_with_pure_python_yaml(hub_with_relay, monkeypatch):
    host_key = keys.hub_host_keypair(SEED, hub_with_relay.name)
    admin = keys.admin_keypair(SEED, hub_with_relay.name).public_openssh
    fast = render.render_hub_user_data(hub_with_relay, host_key, admin)

    class Pure(yaml.SafeDumper):
        pass

    Pure.add_representer(str, render._represent_str)
    monkeypatch.setattr(render, "_LiteralDumper", Pure)
    monkeypatch.setattr(render, "_Loader", yaml.SafeLoader)
    assert render.render_hub_user_data(hub_with_relay, host_key, admin) == fast


def secrets_for(count: int) -> list[str]:
    found = [SEED, "short", "[x]y", "secret"]  # short ones, and ones touching the mask
    for i in range(count):
        found.append(keys.leaf_keypair(SEED, f"leaf{i}.mesh.test", 1).private_openssh)
        found.append(keys.leaf_password(SEED, f"leaf{i}.mesh.test", 1))
    return found


def test_masker_masks_exactly_as_trying_every_secret_everywhere():
    secrets = secrets_for(12)
    masker = Masker(secrets)
    rng = random.Random(7)
    filler = string.ascii_letters + string.digits + "+/=\n \"\\:[]"
    texts = []
    for _ in range(300):
        parts = []
        for _ in range(rng.randrange(1, 8)):
            parts.append("".join(rng.choice(filler) for _ in range(rng.randrange(0, 40))))
            secret = rng.choice(secrets)
            line = rng.choice(secret.splitlines() or [secret])
            parts.append(rng.choice([line, secret, json.dumps(secret), line[: rng.randrange(
                1, len(line) + 1)], "  " + line.strip()]))
        texts.append("".join(parts))
    texts.append(json.dumps({"stdin": secrets[5], "all": secrets}))
    texts.append("nothing secret here")
    for text in texts:
        assert masker(text) == naive_mask(masker.pieces, text)
        assert masker.leaks(text) == naive_leaks(masker.pieces, text)
        assert not masker.leaks(masker(text)) or naive_leaks(masker.pieces, masker(text))
