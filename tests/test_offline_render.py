"""`python -m offline_render STACK_FILE OUT_DIR [--show-secrets]`: the files it writes, the
secrets it keeps out of them, and how it fails."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import keys, registration
from components.config import CONFIG_KEYS, HUB_KEYS, LEAF_KEYS, RELAY_KEYS
from offline_render import MASK, ProgramError, StackFileError, render_stack
from offline_render.__main__ import main
from tests.mesh_stacks import (
    NS,
    REGISTRATION,
    SESSION_SECRETS,
    readable,
    secret_fragments,
    secrets_file,
    stack_config,
    stack_file,
)
from tests.rendered import files_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
HUB = "mx.mesh.example"
LEAVES = ["alpha.mesh.example", "beta.mesh.example", "gamma.mesh.example"]
SEED = stack_config("three-leaves")[f"{NS}:keySeed"]


def write_stack(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def all_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def masked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("masked")
    assert main([str(stack_file("three-leaves")), str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shown")
    assert main([str(stack_file("three-leaves")), str(out), "--show-secrets"]) == 0
    return out


def test_the_cli_writes_every_documented_file(tmp_path):
    out = tmp_path / "render"
    run = subprocess.run(
        [sys.executable, "-m", "offline_render", str(stack_file("three-leaves")), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout
    expected = [
        "README.txt",
        f"nodes/{HUB}/user-data",
        f"nodes/{HUB}/user-data.txt",
        *(f"nodes/{leaf}/user-data" for leaf in LEAVES),
        "outputs.json",
        *(
            f"registrations/{leaf}/{name}"
            for leaf in LEAVES
            for name in ("connection.json", "create.sh", "delete.sh", "stdin.json")
        ),
        "resources.json",
        "resources.txt",
    ]
    assert [str(p.relative_to(out)) for p in all_files(out)] == sorted(expected)


def test_without_show_secrets_no_secret_is_written_anywhere(masked):
    fragments = secret_fragments(stack_config("three-leaves"))
    assert len(fragments) > 10
    for path in all_files(masked):
        text = readable(path)
        for fragment in fragments:
            assert fragment not in text, f"{path.relative_to(masked)} leaks a secret"
    assert "relay-Passw0rd-for-tests" not in (masked / f"nodes/{HUB}/user-data.txt").read_text()


def test_masked_user_data_keeps_its_shape(masked):
    files = files_of((masked / "nodes/alpha.mesh.example/user-data").read_text())
    key = files["/etc/uucp/mailmesh/id_ed25519"]["content"]
    assert key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert MASK in key
    assert files["/etc/uucp/call"]["content"] == f"{HUB} alpha.mesh.example {MASK}\n"
    stdin = json.loads((masked / "registrations/alpha.mesh.example/stdin.json").read_text())
    assert stdin["password"] == MASK
    hub = (masked / f"nodes/{HUB}/user-data").read_bytes()
    assert gzip.decompress(hub) == (masked / f"nodes/{HUB}/user-data.txt").read_bytes()
    assert "[secret]" in (masked / "README.txt").read_text()


def test_with_show_secrets_the_files_are_what_the_machines_get(shown):
    for leaf in LEAVES:
        version = 2 if leaf.startswith("gamma") else 1
        pair = keys.leaf_keypair(SEED, leaf, version)
        password = keys.leaf_password(SEED, leaf, version)
        user_data = (shown / f"nodes/{leaf}/user-data").read_text()
        files = files_of(user_data)
        assert files["/etc/uucp/mailmesh/id_ed25519"]["content"].strip() == (
            pair.private_openssh.strip()
        )
        assert password in files["/etc/uucp/call"]["content"]
        stdin = json.loads((shown / f"registrations/{leaf}/stdin.json").read_text())
        assert stdin["password"] == password
        assert stdin["publicKey"] == pair.public_openssh
    hub_text = gzip.decompress((shown / f"nodes/{HUB}/user-data").read_bytes()).decode()
    assert hub_text == (shown / f"nodes/{HUB}/user-data.txt").read_text()
    assert keys.hub_host_keypair(SEED, HUB).private_openssh.splitlines()[1] in hub_text


def test_the_hub_user_data_file_is_the_instance_input(tmp_path):
    result = render_stack(stack_file("two-leaves"), tmp_path, show_secrets=True)
    instance = result.evaluation.one("aws:ec2/instance:Instance")
    on_disk = (tmp_path / f"nodes/{HUB}/user-data").read_bytes()
    assert base64.b64encode(on_disk).decode() == instance.inputs["userDataBase64"]


def test_registration_files(shown):
    folder = shown / "registrations/beta.mesh.example"
    stdin = json.loads((folder / "stdin.json").read_text())
    assert (folder / "create.sh").read_text() == registration.CREATE_COMMAND + "\n"
    assert (folder / "delete.sh").read_text() == (
        registration.delete_command("beta.mesh.example", stdin["registrationId"]) + "\n"
    )
    connection = json.loads((folder / "connection.json").read_text())
    outputs = json.loads((shown / "outputs.json").read_text())
    assert connection["host"] == outputs["hubAddress"]
    assert connection["user"] == registration.ADMIN_USER
    assert connection["privateKey"] == MASK  # never written, not even with --show-secrets
    assert connection["hostKey"] == keys.hub_host_keypair(SEED, HUB).public_openssh


def test_resource_listings_mask_secrets_and_hash_every_input(shown):
    listing = json.loads((shown / "resources.json").read_text())
    commands = [entry for entry in listing if entry["type"] == REGISTRATION]
    assert len(commands) == 3
    for entry in commands:
        assert entry["inputs"]["stdin"] == MASK
        assert entry["inputs"]["connection"] == MASK
        assert set(entry["inputHashes"]) == set(entry["inputs"])
        assert all(h.startswith("sha256:") for h in entry["inputHashes"].values())
    text = (shown / "resources.txt").read_text()
    for entry in listing:
        assert f"{entry['type']} {entry['name']}\n  urn: {entry['urn']}\n" in text
    for fragment in secret_fragments(stack_config("three-leaves")):
        assert fragment not in text
        assert fragment not in json.dumps(listing)


def test_outputs_json(masked):
    outputs = json.loads((masked / "outputs.json").read_text())
    assert sorted(outputs) == ["dnsRecords", "hubAddress", "hubUucpName", "leaves"]
    assert sorted(outputs["leaves"]) == LEAVES
    assert outputs["hubAddress"].startswith("203.0.113.")
    assert all(leaf["address"].startswith("198.51.100.") for leaf in outputs["leaves"].values())


def test_a_bad_config_exits_2_with_the_message_and_no_traceback(tmp_path):
    config = stack_config("two-leaves")
    config[f"{NS}:hub"]["adminCidrs"] = ["10.0.0.1/8"]
    config[f"{NS}:leavs"] = []
    bad = write_stack(tmp_path / "Pulumi.bad.yaml", config)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "offline_render", str(bad), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr + run.stdout
    assert "uucp-mailmesh:hub.adminCidrs[0]" in run.stderr
    assert "uucp-mailmesh:leavs" in run.stderr
    assert not out.exists()
    with pytest.raises(ProgramError) as caught:
        render_stack(bad, out)
    assert caught.value.registrations == []  # nothing was registered


def test_encrypted_values_need_a_secrets_file(tmp_path, capsys):
    config = stack_config("two-leaves")
    config[f"{NS}:keySeed"] = {"secure": "v1:AAAA"}
    config[f"{NS}:hub"]["relay"]["password"] = {"secure": "v1:BBBB"}
    encrypted = write_stack(tmp_path / "Pulumi.enc.yaml", config)
    assert main([str(encrypted), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "uucp-mailmesh:keySeed is encrypted" in err
    assert "uucp-mailmesh:hub.relay.password is encrypted" in err
    assert "Traceback" not in err

    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        yaml.safe_dump(
            {f"{NS}:keySeed": SEED,
             f"{NS}:hub.relay.password": SESSION_SECRETS[f"{NS}:hub.relay.password"]}
        )
    )
    with_secrets = render_stack(encrypted, tmp_path / "out", secrets_file=secrets)
    plain = render_stack(stack_file("two-leaves"), tmp_path / "plain", stack_name="enc")
    assert (with_secrets.out_dir / "resources.json").read_bytes() == (
        plain.out_dir / "resources.json"
    ).read_bytes()
    assert f"{NS}:hub" in with_secrets.stack.secret_keys
    assert f"{NS}:keySeed" in with_secrets.stack.secret_keys


def test_a_stack_file_key_without_namespace_is_refused(tmp_path):
    config = stack_config("two-leaves")
    config["pollInterval"] = config.pop(f"{NS}:pollInterval")
    with pytest.raises(StackFileError, match="'uucp-mailmesh:pollInterval'"):
        render_stack(write_stack(tmp_path / "Pulumi.x.yaml", config), tmp_path / "out")


def test_lab_addresses_replace_the_made_up_ones(tmp_path):
    config = stack_config("two-leaves")
    config["mailmesh-lab:addresses"] = {
        HUB: "10.77.0.2",
        "alpha.mesh.example": "10.77.0.3",
        "beta.mesh.example": "10.77.0.4",
    }
    out = tmp_path / "lab"
    render_stack(write_stack(tmp_path / "Pulumi.lab.yaml", config), out)
    outputs = json.loads((out / "outputs.json").read_text())
    assert outputs["hubAddress"] == "10.77.0.2"
    assert outputs["leaves"]["beta.mesh.example"]["address"] == "10.77.0.4"
    ssh_config = files_of((out / "nodes/alpha.mesh.example/user-data").read_text())[
        "/etc/uucp/mailmesh/ssh_config"
    ]["content"]
    assert "HostName 10.77.0.2" in ssh_config
    stdin = json.loads((out / "registrations/alpha.mesh.example/stdin.json").read_text())
    assert stdin["address"] == "10.77.0.3"
    assert "10.77.0.3/32" in (out / "resources.txt").read_text()


def test_the_example_stack_documents_every_setting_and_renders(tmp_path):
    example = ROOT / "Pulumi.example.yaml"
    text = example.read_text()
    for key in (*CONFIG_KEYS, *HUB_KEYS, *RELAY_KEYS, *LEAF_KEYS):
        assert f"{key}:" in text, key
    assert 'pulumi config set --secret keySeed "$(openssl rand -base64 32)"' in text
    assert "pulumi config set --secret --path 'hub.relay.password'" in text
    assert "{secure:" in text  # no secret in the example, not even a made-up one
    result = render_stack(example, tmp_path, secrets_file=secrets_file())
    assert sorted(result.evaluation.outputs["leaves"].value) == [
        "alpha.example.org",
        "beta.example.com",
    ]
