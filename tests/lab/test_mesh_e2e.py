"""End to end on the lab: the program's own render, booted, registered, carrying mail.

One mesh for the module (internet, hub, leaf1, leaf2), then the life of a stack: a leaf
added, a leaf removed, a leaf's key rotated. The tests run in file order and build on each
other, as `pulumi up` runs would. Each prints what it tried and what happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components import keys
from lab import mesh, paths
from lab.runtime import INTERNET_NAME, Lab
from lab.up import MeshUp, bring_up
from tests.lab.isolation import isolated_lab, require_root

pytestmark = [pytest.mark.lab, require_root]

HUB = "hub.mesh.test"
LEAF1, LEAF2, LEAF3 = "leaf1.mesh.test", "leaf2.mesh.test", "leaf3.mesh.test"
MAIL_TIMEOUT = 90.0
POLL_MARGIN = 15.0  # pollInterval of the lab stack is 10 s


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshUp]:
    with isolated_lab("mme2e") as lab:
        yield bring_up(lab)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The lab stack and its variants: a third leaf, then leaf1's key rotated."""
    folder = tmp_path_factory.mktemp("stacks")
    base = yaml.safe_load(mesh.LAB_STACK.read_text())
    leaves = base["config"]["uucp-mailmesh:leaves"]
    three = json.loads(json.dumps(base))
    three["config"]["uucp-mailmesh:leaves"] = [
        *leaves, {"name": LEAF3, "zone": "europe-west1-b", "domains": ["leaf3.test"]}
    ]
    rotated = json.loads(json.dumps(base))
    rotated["config"]["uucp-mailmesh:leaves"][0]["keyVersion"] = 2
    found = {}
    for name, data in {"two": base, "three": three, "rotated": rotated}.items():
        # One stack name for all, as one Pulumi stack evolving: URNs compare across renders.
        path = folder / name / "Pulumi.lab.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(data))
        found[name] = path
    return found


def render(stack: Path, name: str) -> mesh.RenderResult:
    return mesh.render(stack, paths.run_dir() / f"render-{name}")


def leaf_mail(up: MeshUp, leaf: str, to: str, subject: str, body: str) -> str:
    domain = next(lf.domains[0] for lf in mesh.mesh_config(up.rendered).leaves if lf.name == leaf)
    return mesh.send(up.lab, leaf, mesh.Mail(f"app@{domain}", to, subject, body))


def node_text(lab: Lab, node: str, command: str) -> str:
    done = lab.exec(node, ["sh", "-c", command], timeout=120)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def fingerprint_of_files(lab: Lab, node: str, paths_: list[str]) -> str:
    return node_text(lab, node, "sha256sum " + " ".join(paths_) + " 2>&1")


def uucp_login(lab: Lab, node: str, private_key: str, hub_address: str) -> str:
    """Log in to the hub's uucp account with a given key from a node; what came back."""
    lab.exec(node, ["sh", "-c", "umask 077; cat > /root/trial_key"], input=private_key.encode(),
             check=True)
    return node_text(
        lab, node,
        "timeout 20 ssh -F /dev/null -i /root/trial_key -o IdentitiesOnly=yes -o BatchMode=yes "
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"uucp@{hub_address} </dev/null; echo exit=$?",
    )


# ------------------------------------------------------------------------------- mail flows


def test_outbound_mail_arrives_intact_at_the_internet(up: MeshUp):
    body = "Grüße aus der Wolke: 8-bit ✓\nFrom the leaf, a line starting with From\n.\nend\n"
    marker = leaf_mail(up, LEAF1, "alice@internet.test", "outbound", body)
    message, seconds = mesh.wait_for_mail(up.lab, INTERNET_NAME, marker, MAIL_TIMEOUT)
    print(f"leaf1 sendmail -> hub -> internet: delivered in {seconds:.1f} s")
    assert "Return-Path: <app@leaf1.test>" in message  # the envelope sender survived UUCP
    assert f"Subject: outbound {marker}" in message
    assert "From: app@leaf1.test" in message
    assert "Content-Transfer-Encoding: 8bit" in message
    assert message.endswith(body) or body in message  # 8-bit body byte for byte
    assert "Received: by hub.mesh.test" in message and "Received: by leaf1.mesh.test" in message


def test_inbound_mail_reaches_the_leaf_at_its_next_poll(up: MeshUp):
    hub_address = mesh.addresses(up.rendered)[HUB]
    mail = mesh.Mail("alice@internet.test", "bob@leaf2.test", "inbound", "hello leaf2\n")
    code, reply = mesh.smtp_send(up.lab, INTERNET_NAME, hub_address, mail)
    print(f"internet -> hub:25 RCPT bob@leaf2.test: {code} {reply}")
    assert code == 250
    marker = reply.rsplit("[", 1)[1].rstrip("]")
    message, seconds = mesh.wait_for_mail(up.lab, LEAF2, marker, MAIL_TIMEOUT)
    print(f"delivered to leaf2's mailbox {seconds:.1f} s after the hub accepted it")
    assert "Return-Path: <alice@internet.test>" in message
    assert seconds < POLL_MARGIN + 10


def test_leaf_to_leaf_mail_goes_through_the_hub(up: MeshUp):
    marker = leaf_mail(up, LEAF1, "bob@leaf2.test", "across", "leaf1 to leaf2\n")
    message, seconds = mesh.wait_for_mail(up.lab, LEAF2, marker, MAIL_TIMEOUT)
    print(f"leaf1 -> hub -> leaf2 in {seconds:.1f} s")
    assert "Return-Path: <app@leaf1.test>" in message
    assert "Received: by hub.mesh.test" in message


# -------------------------------------------------------------------------- stack changes


def test_adding_a_leaf_boots_only_it_and_touches_only_the_hubs_registration(up, stacks):
    lab = up.lab
    before = render(stacks["two"], "two")
    after = render(stacks["three"], "three")
    # The render: every node that existed gets byte-identical user-data, every resource
    # identical inputs.
    for node in (HUB, LEAF1, LEAF2):
        assert after.path(f"nodes/{node}/user-data").read_bytes() == before.path(
            f"nodes/{node}/user-data").read_bytes(), node
    old = {r["urn"]: r["inputHashes"] for r in json.loads(before.path("resources.json")
                                                         .read_text())}
    new = {r["urn"]: r["inputHashes"] for r in json.loads(after.path("resources.json")
                                                         .read_text())}
    assert {urn: new.get(urn) for urn in old} == old
    added = sorted(set(new) - set(old))
    print(f"resources added by the third leaf: {len(added)}")
    assert all("leaf3" in urn for urn in added)

    hub_files = [f["path"] for f in mesh_files(after, HUB)]
    watched = {
        HUB: fingerprint_of_files(lab, HUB, hub_files),
        LEAF1: fingerprint_of_files(lab, LEAF1, [f["path"] for f in mesh_files(after, LEAF1)]),
        LEAF2: fingerprint_of_files(lab, LEAF2, [f["path"] for f in mesh_files(after, LEAF2)]),
    }
    pids = {node: lab.nodes[node].pid for node in (HUB, LEAF1, LEAF2)}
    services = hub_service_pids(lab)
    registration_before = node_text(lab, HUB, "sha256sum /etc/uucp/sys /etc/uucp/passwd")

    new_leaf = mesh.boot_nodes(lab, after, [LEAF3])
    mesh.wait_ready(lab, new_leaf)
    print(mesh.register(after, LEAF3))
    mesh.add_mailbox(lab, LEAF3)
    up.rendered = after

    marker = leaf_mail(up, LEAF3, "alice@internet.test", "from the new leaf", "hi\n")
    mesh.wait_for_mail(lab, INTERNET_NAME, marker, MAIL_TIMEOUT)
    code, reply = mesh.smtp_send(lab, INTERNET_NAME, mesh.addresses(after)[HUB],
                                 mesh.Mail("alice@internet.test", "bob@leaf3.test", "to", "x\n"))
    assert code == 250, reply
    mesh.wait_for_mail(lab, LEAF3, reply.rsplit("[", 1)[1].rstrip("]"), MAIL_TIMEOUT)
    print("mail flows both ways for leaf3")

    assert {node: lab.nodes[node].pid for node in pids} == pids  # no node restarted
    assert hub_service_pids(lab) == services  # Postfix reloaded, not restarted; sshd untouched
    for node, files in watched.items():
        assert fingerprint_of_files(lab, node, [line.split()[-1] for line in
                                                files.splitlines()]) == files, node
    assert node_text(lab, HUB, "sha256sum /etc/uucp/sys /etc/uucp/passwd") != (
        registration_before
    )
    print("hub and leaves not restarted; only the hub's registration files changed")


def test_removing_a_leaf_deregisters_it(up: MeshUp, stacks):
    lab, rendered = up.lab, up.rendered
    print(mesh.deregister(rendered, LEAF3))
    hub_address = mesh.addresses(rendered)[HUB]
    # The hub refuses its key now, even from its own address.
    seed = mesh.mesh_config(rendered).key_seed
    answer = uucp_login(lab, LEAF3, keys.leaf_keypair(seed, LEAF3, 1).private_openssh,
                        hub_address)
    print(f"leaf3's key after deregistration: {answer.strip()}")
    assert "Permission denied" in answer and "exit=255" in answer
    lab.stop(LEAF3)  # what deleting the instance does
    # Mail for its domain is refused for relay at RCPT time.
    code, reply = mesh.smtp_send(lab, INTERNET_NAME, hub_address,
                                 mesh.Mail("alice@internet.test", "bob@leaf3.test", "gone", "x"))
    print(f"internet -> hub RCPT bob@leaf3.test: {code} {reply}")
    assert code == 554 and "Relay access denied" in reply
    assert LEAF3 not in node_text(lab, HUB, "cat /etc/uucp/sys /etc/postfix/mailmesh/transport")
    up.rendered = render(stacks["two"], "two")


def test_rotating_a_leafs_key_refuses_the_old_one(up: MeshUp, stacks):
    lab = up.lab
    rotated = render(stacks["rotated"], "rotated")
    seed = mesh.mesh_config(rotated).key_seed
    old_key = keys.leaf_keypair(seed, LEAF1, 1)
    new_key = keys.leaf_keypair(seed, LEAF1, 2)
    assert rotated.path(f"nodes/{LEAF1}/user-data").read_text() != up.rendered.path(
        f"nodes/{LEAF1}/user-data").read_text()
    assert rotated.path(f"nodes/{LEAF2}/user-data").read_bytes() == up.rendered.path(
        f"nodes/{LEAF2}/user-data").read_bytes()

    lab.stop(LEAF1)  # the instance is replaced, delete before create (its name is fixed)
    mesh.wait_ready(lab, mesh.boot_nodes(lab, rotated, [LEAF1]))
    print(mesh.register(rotated, LEAF1))
    mesh.add_mailbox(lab, LEAF1)
    up.rendered = rotated

    hub_address = mesh.addresses(rotated)[HUB]
    refused = uucp_login(lab, LEAF1, old_key.private_openssh, hub_address)
    print(f"old key: {refused.strip()}")
    assert "Permission denied" in refused and "exit=255" in refused
    accepted = uucp_login(lab, LEAF1, new_key.private_openssh, hub_address)
    print(f"new key: {accepted.strip()}")
    assert "Password:" in accepted  # past ssh: uucico asks for the UUCP password
    marker = leaf_mail(up, LEAF1, "alice@internet.test", "after rotation", "new key\n")
    _, seconds = mesh.wait_for_mail(lab, INTERNET_NAME, marker, MAIL_TIMEOUT)
    print(f"mail from the rebuilt leaf1 delivered in {seconds:.1f} s")


# ------------------------------------------------------------------------------- helpers


def mesh_files(rendered: mesh.RenderResult, node: str) -> list[dict]:
    from tests.rendered import parse_user_data

    return parse_user_data(rendered.path(f"nodes/{node}/user-data").read_bytes())["write_files"]


def hub_service_pids(lab: Lab) -> dict[str, str]:
    return {
        "postfix master": node_text(lab, HUB, "cat /var/spool/postfix/pid/master.pid").strip(),
        "sshd": node_text(lab, HUB, "systemctl show -p MainPID --value ssh").strip(),
        "cloud-init": node_text(lab, HUB, "stat -c %Y /var/lib/cloud/instance/boot-finished"),
    }



def test_a_rebuilt_hub_takes_every_leaf_back(up: MeshUp):
    """A changed hub user-data replaces the instance: same address, same derived host key,
    empty disk; each registration re-runs (its stdin names the hub's instance id)."""
    lab, rendered = up.lab, up.rendered
    user_data = rendered.path(f"nodes/{HUB}/user-data").read_bytes()
    lab.stop(HUB)
    hub = lab.boot(HUB, mesh.addresses(rendered)[HUB], user_data, mesh.hosts_for(rendered),
                   instance_id="iid-rebuilt-hub")
    mesh.wait_ready(lab, [hub])
    for leaf in mesh.leaf_names(rendered):
        print(mesh.register(rendered, leaf))
    marker = leaf_mail(up, LEAF1, "alice@internet.test", "after hub rebuild", "out\n")
    _, out_seconds = mesh.wait_for_mail(lab, INTERNET_NAME, marker, MAIL_TIMEOUT)
    code, reply = mesh.smtp_send(lab, INTERNET_NAME, mesh.addresses(rendered)[HUB],
                                 mesh.Mail("alice@internet.test", "bob@leaf2.test", "in", "x\n"))
    assert code == 250, reply
    _, in_seconds = mesh.wait_for_mail(lab, LEAF2, reply.rsplit("[", 1)[1].rstrip("]"),
                                       MAIL_TIMEOUT)
    print(f"after the rebuild: out in {out_seconds:.1f} s, in in {in_seconds:.1f} s; "
          "the leaves trusted the new hub (pinned key) and it accepted their calls")


def test_no_secret_in_registration_output_logs_or_report(up: MeshUp):
    """The leaves' passwords and private keys, the admin key and keySeed: not in what the
    registration prints, not in any node's logs, not in the lab's report."""
    lab, rendered = up.lab, up.rendered
    config = mesh.mesh_config(rendered)
    seed = config.key_seed
    secrets = [seed, *private_key_lines(keys.admin_keypair(seed, HUB).private_openssh),
               *private_key_lines(keys.hub_host_keypair(seed, HUB).private_openssh)]
    for leaf in config.leaves:
        secrets.append(keys.leaf_password(seed, leaf.name, leaf.key_version))
        secrets += private_key_lines(
            keys.leaf_keypair(seed, leaf.name, leaf.key_version).private_openssh)
    create = rendered.path(f"registrations/{LEAF2}/create.sh").read_text().strip()
    stdin = rendered.path(f"registrations/{LEAF2}/stdin.json").read_bytes()
    done = mesh.admin_ssh(rendered, create, stdin)
    printed = (done.stdout + done.stderr).decode(errors="replace")
    logs = {node: node_text(lab, node, "journalctl --no-pager -o cat; cat /var/log/uucp/* "
                            "/var/log/cloud-init*.log /var/log/*.log 2>/dev/null")
            for node in (HUB, *mesh.leaf_names(rendered))}
    report = up.report.text()
    print(f"searched {len(secrets)} secret values in the registration output "
          f"({len(printed)} chars), {sum(map(len, logs.values()))} chars of node logs and "
          f"the report")
    assert done.returncode == 0 and "unchanged" in printed
    for secret in secrets:
        assert secret not in printed
        assert secret not in report
        for node, text in logs.items():
            assert secret not in text, node


def private_key_lines(private_openssh: str) -> list[str]:
    return [line for line in private_openssh.splitlines() if not line.startswith("-----")]
