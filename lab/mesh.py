"""The mesh in the lab: boot what the program renders, register the leaves, move mail.

Everything a node runs comes from the program's offline render (`offline_render`), byte for
byte: each node's user-data, and each registration's command and stdin, which the lab runs
over real SSH as the hub's admin user, exactly as `command.remote.Command` would.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from components import keys
from components.model import MeshConfig
from components.registration import ADMIN_USER
from lab import paths
from lab.node import Node
from lab.runtime import INTERNET_FQDN, INTERNET_NAME, Lab
from offline_render import RenderResult, render_stack

LAB_STACK = Path(__file__).with_name("Pulumi.lab.yaml")
INTERNET_ADDRESS = "10.77.0.2"
MAILBOX_USER = "bob"  # the leaves' test mailbox; alice is the internet's


class MeshError(RuntimeError):
    """A lab step failed; the message names the step."""


@dataclass
class Mail:
    sender: str
    recipient: str
    subject: str
    body: str


def render(stack_file: Path, out_dir: Path) -> RenderResult:
    """The program's offline render, with the secrets the nodes need to boot."""
    return render_stack(stack_file, out_dir, show_secrets=True, secrets_file=lab_secrets_file())


def lab_secrets_file() -> Path:
    """The lab stack's keySeed: generated once per lab run directory (every render of one
    lab must derive the same keys), never stored in the repository."""
    path = paths.run_dir() / "secrets.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"uucp-mailmesh:keySeed: {seed}\n")
    return path


def mesh_config(rendered: RenderResult) -> MeshConfig:
    return rendered.evaluation.mesh


def addresses(rendered: RenderResult) -> dict[str, str]:
    """Node name -> lab address, as the program's outputs give them."""
    outputs = {name: out.value for name, out in rendered.evaluation.outputs.items()}
    found = {mesh_config(rendered).hub.name: outputs["hubAddress"]}
    found.update({name: leaf["address"] for name, leaf in outputs["leaves"].items()})
    return found


def instance_ids(rendered: RenderResult) -> dict[str, str]:
    """Node name -> instance id from the render: a replaced instance gets a new one, so
    cloud-init sees a new instance exactly when the cloud would."""
    return {
        name: json.loads(rendered.path(f"registrations/{name}/stdin.json").read_text())[
            "instanceId"
        ]
        for name in leaf_names(rendered)
    } | {mesh_config(rendered).hub.name: hub_instance_id(rendered)}


def hub_instance_id(rendered: RenderResult) -> str:
    leaves = leaf_names(rendered)
    if leaves:
        stdin = rendered.path(f"registrations/{leaves[0]}/stdin.json").read_text()
        return json.loads(stdin)["hubInstanceId"]
    return "iid-hub"


def leaf_names(rendered: RenderResult) -> list[str]:
    return [leaf.name for leaf in mesh_config(rendered).leaves]


def hosts_for(rendered: RenderResult) -> dict[str, str]:
    """Names every mesh node resolves (the lab has no DNS)."""
    return addresses(rendered) | {INTERNET_FQDN: INTERNET_ADDRESS}


def internet_hosts(rendered: RenderResult) -> dict[str, str]:
    """The internet reaches leaf domains at the hub: what their MX records say."""
    hub = addresses(rendered)[mesh_config(rendered).hub.name]
    domains = {d: hub for leaf in mesh_config(rendered).leaves for d in leaf.domains}
    return domains | {mesh_config(rendered).hub.name: hub}


def boot_nodes(lab: Lab, rendered: RenderResult, names: Iterable[str]) -> list[Node]:
    """Boot each named node with its rendered user-data, verbatim."""
    booted = []
    ids = instance_ids(rendered)
    for name in names:
        user_data = rendered.path(f"nodes/{name}/user-data").read_bytes()
        booted.append(
            lab.boot(name, addresses(rendered)[name], user_data, hosts_for(rendered),
                     instance_id=f"iid-{ids[name]}")
        )
    return booted


def boot_internet(lab: Lab, rendered: RenderResult) -> Node:
    return lab.boot_internet(INTERNET_ADDRESS, internet_hosts(rendered))


def wait_ready(lab: Lab, nodes: Iterable[Node], timeout: float = 600) -> None:
    """cloud-init done without errors on every node, or MeshError with diagnostics."""
    nodes = list(nodes)
    results = lab.wait_ready(nodes, timeout=timeout)
    failed = [name for name, result in results.items() if not result.ok]
    if failed:
        report = "\n".join(f"{name}: {results[name]}\n{lab.diagnostics(name)}" for name in failed)
        raise MeshError(f"cloud-init did not finish cleanly on {', '.join(failed)}:\n{report}")


def admin_key_file(rendered: RenderResult) -> Path:
    """The registration connection's key: derived from keySeed as the program derives it."""
    mesh = mesh_config(rendered)
    path = paths.run_dir() / "admin_ed25519"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(keys.admin_keypair(mesh.key_seed, mesh.hub.name).private_openssh)
    return path


def known_hosts_file(rendered: RenderResult) -> Path:
    """Pin the hub's derived host key, as the program's connection does."""
    mesh = mesh_config(rendered)
    path = paths.run_dir() / "known_hosts"
    hub_address = addresses(rendered)[mesh.hub.name]
    host_key = keys.hub_host_keypair(mesh.key_seed, mesh.hub.name).public_openssh
    path.write_text(f"{hub_address} {host_key}\n")
    return path


def admin_ssh(
    rendered: RenderResult, command: str, stdin: bytes = b"", timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """Run a command on the hub as the admin user over real SSH, from the lab switch (the
    address adminCidrs allows), the way remote.Command connects."""
    mesh = mesh_config(rendered)
    hub_address = addresses(rendered)[mesh.hub.name]
    argv = [
        "ip", "netns", "exec", paths.SWITCH_NETNS,
        "ssh", "-F", "/dev/null",
        "-i", str(admin_key_file(rendered)),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts_file(rendered)}",
        "-o", "ConnectTimeout=10",
        f"{ADMIN_USER}@{hub_address}", command,
    ]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)


def register(rendered: RenderResult, leaf: str) -> str:
    """Run the leaf's registration exactly as rendered; returns what the tool printed."""
    create = rendered.path(f"registrations/{leaf}/create.sh").read_text().strip()
    stdin = rendered.path(f"registrations/{leaf}/stdin.json").read_bytes()
    done = admin_ssh(rendered, create, stdin)
    if done.returncode != 0:
        raise MeshError(f"registration of {leaf} failed ({done.returncode}): "
                        f"{done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()


def deregister(rendered: RenderResult, leaf: str) -> str:
    delete = rendered.path(f"registrations/{leaf}/delete.sh").read_text().strip()
    done = admin_ssh(rendered, delete)
    if done.returncode != 0:
        raise MeshError(f"deregistration of {leaf} failed ({done.returncode}): "
                        f"{done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()


def add_mailbox(lab: Lab, leaf: str, user: str = MAILBOX_USER) -> None:
    """A local user to receive mail, as any application server would have."""
    lab.exec(leaf, ["sh", "-c", f"id {user} >/dev/null 2>&1 || useradd -m {user}"], check=True)


def send(lab: Lab, node: str, mail: Mail) -> str:
    """Submit with the node's own sendmail; returns the unique marker in the subject."""
    marker = uuid.uuid4().hex
    message = (
        f"From: {mail.sender}\nTo: {mail.recipient}\nSubject: {mail.subject} {marker}\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n" + mail.body
    )
    lab.exec(node, ["/usr/sbin/sendmail", "-i", "-f", mail.sender, mail.recipient],
             input=message.encode(), check=True)
    return marker


def smtp_send(lab: Lab, node: str, host: str, mail: Mail) -> tuple[int, str]:
    """One SMTP transaction from node to host:25; the reply to RCPT (or DATA's)."""
    script = f"""
import smtplib, sys
message = sys.stdin.buffer.read()
with smtplib.SMTP({host!r}, 25, timeout=30) as smtp:
    smtp.ehlo("internet.test")
    smtp.mail({mail.sender!r})
    code, text = smtp.rcpt({mail.recipient!r})
    if code == 250:
        code, text = smtp.data(message)
    print(code, text.decode(errors="replace"))
"""
    marker = uuid.uuid4().hex
    message = (f"From: {mail.sender}\r\nTo: {mail.recipient}\r\n"
               f"Subject: {mail.subject} {marker}\r\n\r\n{mail.body}").encode()
    done = lab.exec(node, ["python3", "-c", script], input=message, check=True)
    code, _, text = done.stdout.decode().strip().partition(" ")
    return int(code), f"{text} [{marker}]"


def find_message(lab: Lab, node: str, marker: str) -> str | None:
    """The delivered message carrying marker in the node's test mailbox, if any."""
    if node == INTERNET_NAME:  # Maildir: one file per message
        command = (f"f=$(grep -rlF {marker} /home/alice/Maildir/new /home/alice/Maildir/cur "
                   "2>/dev/null | head -n1); [ -n \"$f\" ] && cat \"$f\"")
        found = lab.exec(node, ["sh", "-c", command]).stdout.decode(errors="replace")
        return found or None
    mbox = lab.exec(node, ["cat", f"/var/mail/{MAILBOX_USER}"]).stdout.decode(errors="replace")
    # Postfix escapes body lines starting "From " as ">From ": each "From " opens a message.
    for message in re.split(r"^(?=From )", mbox, flags=re.MULTILINE):
        if marker in message:
            return message
    return None


def wait_for_mail(lab: Lab, node: str, marker: str, timeout: float) -> tuple[str, float]:
    """The delivered message carrying marker, and the seconds it took to appear."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        message = find_message(lab, node, marker)
        if message is not None:
            return message, time.monotonic() - started
        time.sleep(0.2)
    raise MeshError(f"mail {marker} did not reach {node} within {timeout:.0f} s")


def poll_now(lab: Lab, leaf: str) -> None:
    """Have the leaf call the hub at once (what its timer does every pollInterval)."""
    lab.exec(leaf, ["systemctl", "start", "mailmesh-poll.service"], timeout=120)

