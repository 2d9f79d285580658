"""The lab itself, booted for real: the internet node plus one trivial node, on the lab
bridge, installing from the lab repository; then a reboot and a teardown from outside."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import node, paths, procs, teardown
from lab.runtime import INTERNET_FQDN, INTERNET_USER_DATA, Lab
from tests.lab.isolation import isolated_lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (netns, mounts, nspawn)"),
]

ROOT = Path(__file__).resolve().parents[2]
INTERNET = "10.77.0.2"
NODE = "n1"
NODE_ADDRESS = "10.77.0.11"
# Trivial on purpose: what the lab must carry is the packages, from the lab repository, and
# Postfix finding its relay host by name. The runcmd line counts how often per-instance
# modules ran (once, also after a reboot).
NODE_USER_DATA = b"""#cloud-config
apt:
  debconf_selections:
    postfix: |
      postfix postfix/main_mailer_type select Satellite system
      postfix postfix/relayhost string [internet.test]:25
      postfix postfix/mailname string n1
packages: [postfix, openssh-server]
runcmd:
  - echo ran >> /root/runcmd.count
"""
HOSTS = {INTERNET_FQDN: INTERNET, NODE: NODE_ADDRESS}

PY_CONNECT = """
import socket, sys, time
started = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    result = "connected"
except OSError as exc:
    result = type(exc).__name__ + ":" + str(exc.errno)
print(result, round(time.monotonic() - started, 3))
"""

# Asks the DNS server named in resolv.conf directly, not through /etc/hosts: a name for an
# A record, an address for a PTR record.
PY_DNS = """
import ipaddress, socket, struct, sys
name = sys.argv[1]
try:
    ip = ipaddress.ip_address(name)
    name, qtype = ip.reverse_pointer, 12
except ValueError:
    qtype = 1
server = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
query = struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
query += struct.pack("!HH", qtype, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(2)
sock.sendto(query, (server, 53))
reply = sock.recv(512)
rdata = reply[len(query) + 12:]
if qtype == 1:
    print(socket.inet_ntoa(rdata))
else:
    labels, pos = [], 0
    while rdata[pos]:
        labels.append(rdata[pos + 1:pos + 1 + rdata[pos]].decode())
        pos += 1 + rdata[pos]
    print(".".join(labels))
"""

PY_SEND = """
import smtplib, sys, time
started = time.monotonic()
body = "Subject: lab\\r\\nFrom: root@n1\\r\\nTo: bob@internet.test\\r\\n\\r\\n" + sys.argv[1]
with smtplib.SMTP("internet.test", 25, timeout=10) as smtp:
    smtp.sendmail("root@n1", ["bob@internet.test"], body + "\\r\\n")
print(round(time.monotonic() - started, 3))
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with isolated_lab("mmtest") as the_lab:
        the_lab.ensure_base()
        the_lab.start_switch()
        the_lab.boot_internet(INTERNET, hosts={NODE: NODE_ADDRESS})
        the_lab.boot(NODE, NODE_ADDRESS, NODE_USER_DATA, hosts=HOSTS)
        ready = the_lab.wait_ready(timeout=300)
        for name, verdict in ready.items():
            assert verdict.ok, f"{name}: {verdict.status}\n{the_lab.diagnostics(name)}"
        yield the_lab


def run_in(lab: Lab, node: str, *argv: str, input: bytes | None = None) -> str:
    proc = lab.exec(node, argv, input=input, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode() + lab.diagnostics(node)
    return proc.stdout.decode()


def test_base_lacks_what_nodes_must_install(lab: Lab) -> None:
    status = (paths.base_dir() / "var/lib/dpkg/status").read_text()
    installed = {
        stanza.split("\n", 1)[0].removeprefix("Package: ")
        for stanza in status.split("\n\n")
        if "Status: install ok installed" in stanza
    }
    assert {"cloud-init", "systemd-sysv", "sudo", "cron", "locales"} <= installed
    assert not {"postfix", "uucp", "openssh-server", "openssh-client"} & installed
    assert (paths.base_dir() / "etc/machine-id").read_text() == ""


def test_cloud_init_done_without_failed_units(lab: Lab) -> None:
    ready = lab.wait_ready(timeout=60)
    assert {name: (r.status, r.failed_units) for name, r in ready.items()} == {
        "internet": ("done", []),
        NODE: ("done", []),
    }
    installed = run_in(lab, NODE, "dpkg-query", "-W", "-f=${Package} ${Status}\\n",
                       "postfix", "openssh-server")
    assert installed.count("install ok installed") == 2


def test_user_data_passes_schema(lab: Lab) -> None:
    def schema(data: bytes) -> subprocess.CompletedProcess[bytes]:
        run_in(lab, NODE, "sh", "-c", "cat > /tmp/user-data", input=data)
        return lab.exec(NODE, ["cloud-init", "schema", "--config-file", "/tmp/user-data"])

    for name, data in (("internet", INTERNET_USER_DATA.read_bytes()), (NODE, NODE_USER_DATA)):
        proc = schema(data)
        assert proc.returncode == 0, f"{name}: {(proc.stdout + proc.stderr).decode()}"
    assert schema(b"#cloud-config\npackages: 5\n").returncode != 0  # the check can fail


def test_nodes_reach_nothing_beyond_the_lab(lab: Lab) -> None:
    routes = run_in(lab, NODE, "ip", "route", "show", "table", "all")
    assert "default" not in routes
    assert run_in(lab, NODE, "ip", "-6", "route", "show", "default").strip() == ""
    reached = run_in(lab, NODE, "python3", "-c", PY_CONNECT, paths.SWITCH_ADDRESS,
                     str(paths.REPO_PORT))
    assert reached.startswith("connected"), reached
    # TEST-NET-1: with no route the kernel refuses at once; no packet leaves the node.
    outside, seconds = run_in(lab, NODE, "python3", "-c", PY_CONNECT, "192.0.2.1", "80").split()
    assert outside == "OSError:101" and float(seconds) < 1, outside  # ENETUNREACH


def test_names_resolve_and_misses_fail_fast(lab: Lab) -> None:
    assert run_in(lab, NODE, "getent", "hosts", INTERNET_FQDN).split()[0] == INTERNET
    started = time.monotonic()
    miss = lab.exec(NODE, ["getent", "hosts", "no-such-host.example"])
    assert miss.returncode == 2 and time.monotonic() - started < 1  # NXDOMAIN, not a timeout
    # The lab's DNS: A records of lab names, PTR back to the first name for an address.
    assert run_in(lab, NODE, "python3", "-c", PY_DNS, INTERNET_FQDN) == f"{INTERNET}\n"
    assert run_in(lab, NODE, "python3", "-c", PY_DNS, INTERNET) == f"{INTERNET_FQDN}\n"
    # sshd and the ssh client on the node: a refused login must come back at once, not after
    # DNS timeouts (reverse lookups of the client, the server's name).
    started = time.monotonic()
    ssh = lab.exec(NODE, ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                          "-o", "UserKnownHostsFile=/dev/null", f"nobody@{NODE}", "true"])
    assert b"Permission denied" in ssh.stderr, ssh.stderr
    assert time.monotonic() - started < 3


def in_alices_maildir(lab: Lab, token: str) -> str:
    """The Maildir file holding token, waited for."""
    deadline = time.monotonic() + 30
    while True:
        found = lab.exec("internet", ["grep", "-rl", token, "/home/alice/Maildir/new"])
        if found.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found.returncode == 0, lab.diagnostics(NODE) + lab.diagnostics("internet")
    return found.stdout.decode().split()[0]


def test_mail_over_smtp_lands_in_alices_maildir(lab: Lab) -> None:
    token = uuid.uuid4().hex
    seconds = float(run_in(lab, NODE, "python3", "-c", PY_SEND, token))
    assert seconds < 2  # Postfix's smtpd does not stall on the client's reverse lookup
    owner = run_in(lab, "internet", "stat", "-c", "%U", in_alices_maildir(lab, token))
    assert owner.strip() == "alice"


def test_postfix_relays_by_name_through_the_lab_dns(lab: Lab) -> None:
    # Postfix's SMTP client resolves [internet.test] with DNS itself, never via /etc/hosts.
    token = uuid.uuid4().hex
    run_in(lab, NODE, "sendmail", "-f", "root@n1", "bob@internet.test",
           input=f"Subject: relayed\n\n{token}\n".encode())
    in_alices_maildir(lab, token)
    assert "Mail queue is empty" in run_in(lab, NODE, "mailq")


def test_restart_keeps_the_instance(lab: Lab) -> None:
    before = run_in(lab, NODE, "cat", "/var/lib/cloud/data/instance-id")
    lab.restart(NODE)
    verdict = lab.wait_ready([NODE], timeout=120)[NODE]
    assert verdict.ok, verdict.detail + lab.diagnostics(NODE)
    assert run_in(lab, NODE, "cat", "/var/lib/cloud/data/instance-id") == before
    assert run_in(lab, NODE, "cat", "/root/runcmd.count") == "ran\n"  # not run again
    assert run_in(lab, NODE, "systemctl", "is-active", "postfix@-").strip() == "active"


def test_down_from_another_process_with_partial_state(lab: Lab) -> None:
    # A container outlives a SIGKILLed nspawn: teardown must find its init by cgroup/netns.
    internet = lab.get("internet")
    init = node.leader(internet)
    os.kill(internet.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while internet.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not internet.running() and procs.is_running(init)
    # As after a crash: the state file lost a node and the server; `down` must still find
    # them (by their command lines, cgroups and netns, the run dir's mounts).
    recorded = json.loads(paths.state_file().read_text())
    recorded["nodes"].pop(NODE)
    recorded["repo_server"] = None
    paths.state_file().write_text(json.dumps(recorded))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lab", "down"], cwd=ROOT, capture_output=True,
                          timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr.decode()
    assert teardown.leftovers() == []
    assert not procs.is_running(init)
    assert not paths.state_file().exists()
    assert elapsed < 30
