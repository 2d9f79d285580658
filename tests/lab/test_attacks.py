"""Attacks and bad input on the booted mesh: no one in, nothing lost.

One mesh for the module (internet, hub, leaf1, leaf2: the program's own render, booted), in a
lab of its own. The tests run in file order. Each prints what it tried and what happened, and
adds every attack to a tally (tried, refused, and the log line that names the refusal); the
last test prints the totals.

- Identity: a leaf's key, source address and UUCP password all have to match one leaf, and
  nothing else than `uucico -l -u <leaf>` runs for a key (no shell, no command, no
  forwarding, no remote command but rmail, no file requests).
- Sender binding: mail a leaf brings to the hub must carry one of its own domains as envelope
  sender (cloud-init/hub/rmail-sender-check.py under the hub's uuxqt); bounces still pass.
- No open relay, no leaf listening, no UUCP over TCP (540) anywhere.
- Spool limits: the hub refuses a transfer that would leave it under `free-space` (a small
  tmpfs is mounted over the hub's UUCP temp and leaf1 data directories, so real free space is
  low); the mail stays queued on the leaf and arrives once the space is back. Oversized mail
  is refused on the leaf, before it crosses.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components import keys
from lab import mesh
from lab.runtime import INTERNET_NAME, Lab
from lab.up import MeshUp, bring_up
from tests.lab.isolation import isolated_lab, require_root

pytestmark = [pytest.mark.lab, require_root]

HUB = "hub.mesh.test"
LEAF1, LEAF2 = "leaf1.mesh.test", "leaf2.mesh.test"
DOMAIN1, DOMAIN2 = "leaf1.test", "leaf2.test"
MAIL_TIMEOUT = 90.0
LOG_TIMEOUT = 30.0
SIZE_LIMIT = 25 * 1024 * 1024  # hub.messageSizeLimit: the lab stack keeps the default
# LogLevel stays INFO: the client's "open failed: administratively prohibited" is at that level.
SSH_OPTIONS = ("-F /dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10 "
               "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null")
LEAF_KEY = "/etc/uucp/mailmesh/id_ed25519"


@dataclass
class Attack:
    name: str
    refused: bool
    logged: str  # the log line that names the refusal ("" if none does)


@dataclass
class Tally:
    attacks: list[Attack] = field(default_factory=list)

    def record(self, name: str, refused: bool, logged: str = "") -> None:
        self.attacks.append(Attack(name, refused, logged))
        state = "REFUSED" if refused else "NOT REFUSED"
        print(f"  [{state}] {name}" + (f"\n      hub log: {logged}" if logged else ""))
        assert refused, f"attack not refused: {name}"

    def summary(self) -> str:
        refused = sum(a.refused for a in self.attacks)
        logged = sum(bool(a.logged) for a in self.attacks)
        return (f"attacks tried: {len(self.attacks)}, refused: {refused}, "
                f"refusal named in a log: {logged}")


@pytest.fixture(scope="module")
def up() -> Iterator[MeshUp]:
    with isolated_lab("mmatk") as lab:
        yield bring_up(lab)


@pytest.fixture(scope="module")
def tally() -> Tally:
    return Tally()


# ------------------------------------------------------------------------------- helpers


def sh(lab: Lab, node: str, command: str, timeout: float = 120,
       stdin: bytes | None = None) -> tuple[int, str]:
    done = lab.exec(node, ["sh", "-c", command], input=stdin, timeout=timeout)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def said(out: str) -> str:
    """Command output on one line, without ssh's notes about host keys and ttys."""
    noise = ("Warning: Permanently added", "Pseudo-terminal will not be allocated")
    return " ".join(" ".join(line.split()) for line in out.splitlines()
                    if line.strip() and not line.startswith(noise))


def wait_until(what: Callable[[], object], timeout: float, step: float = 0.3) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = what()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(step)


class NodeLog:
    """A node's journal (sshd, mailmesh-*, Postfix) and UUCP Log, from a mark on."""

    def __init__(self, lab: Lab, node: str = HUB) -> None:
        self.lab, self.node = lab, node

    def mark(self) -> tuple[str, int]:
        _, cursor = sh(self.lab, self.node, "journalctl -n 0 --show-cursor -q")
        _, lines = sh(self.lab, self.node, "wc -l < /var/log/uucp/Log")
        return cursor.split("cursor: ", 1)[1].strip(), int(lines.strip() or 0)

    def since(self, mark: tuple[str, int]) -> str:
        cursor, lines = mark
        _, journal = sh(self.lab, self.node, f"journalctl -q --no-pager -o short "
                                             f"--after-cursor={shlex.quote(cursor)}")
        _, uucp = sh(self.lab, self.node, f"tail -n +{lines + 1} /var/log/uucp/Log")
        return journal + uucp

    def wait(self, mark: tuple[str, int], *needles: str, timeout: float = LOG_TIMEOUT) -> str:
        """The log since mark once it holds every needle; the matching lines, one per needle."""
        def found() -> str:
            text = self.since(mark)
            return text if all(n in text for n in needles) else ""

        text = wait_until(found, timeout)
        assert text, f"{self.node}'s log lacks {needles}:\n{self.since(mark)}"
        return " | ".join(next(line.split(": ", 1)[-1].strip() for line in text.splitlines()
                               if n in line) for n in needles)


@contextmanager
def poll_timer_stopped(lab: Lab, leaf: str) -> Iterator[None]:
    """The leaf calls the hub only when it has mail to send: nothing collects its queue."""
    sh(lab, leaf, "systemctl stop mailmesh-poll.timer")
    assert wait_until(lambda: sh(lab, leaf, "systemctl is-active mailmesh-poll.service")[1]
                      .strip() != "active", 120)
    try:
        yield
    finally:
        sh(lab, leaf, "systemctl start mailmesh-poll.timer")


def leaf_payload(up: MeshUp, leaf: str) -> dict:
    return json.loads(up.rendered.path(f"registrations/{leaf}/stdin.json").read_text())


def hub_address(up: MeshUp) -> str:
    return mesh.addresses(up.rendered)[HUB]


def hub_queue(lab: Lab, leaf: str) -> str:
    return sh(lab, HUB, f"uustat -s {leaf}")[1].strip()


def uucico_as(lab: Lab, node: str, nodename: str, password: str) -> tuple[int, str]:
    """Call the hub from node with its key and port, but as nodename with password: a
    uucico of its own (-I: config, call file and spool in a temp dir)."""
    script = f"""
d=$(mktemp -d /tmp/claim.XXXXXX); mkdir $d/spool $d/pub $d/lock
cat > $d/config <<EOF
nodename {nodename}
spool $d/spool
pubdir $d/pub
lockdir $d/lock
logfile $d/Log
statfile $d/Stats
debugfile $d/Debug
sysfile /etc/uucp/sys
portfile /etc/uucp/port
callfile $d/call
EOF
echo "{HUB} {nodename} {password}" > $d/call
chown -R uucp:uucp $d; chmod 600 $d/call
runuser -u uucp -- /usr/sbin/uucico -I $d/config -D -q -S {HUB}; echo "uucico exit=$?"
cat $d/Log; echo "files received: $(find $d/spool -type f -name '[DX].*' | wc -l)"
rm -rf $d
"""
    return sh(lab, node, script, timeout=90)


def mailbox_has(lab: Lab, node: str, mailbox: str, marker: str) -> str:
    return sh(lab, node, f"grep -a -A40 -F {marker} {mailbox} 2>/dev/null")[1]


def wait_in_mbox(lab: Lab, node: str, path: str, marker: str,
                 timeout: float) -> tuple[str, float]:
    """The message carrying marker in an mbox of node, and the seconds it took to appear."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        mbox = lab.exec(node, ["cat", path]).stdout.decode(errors="replace")
        for message in re.split(r"^(?=From )", mbox, flags=re.MULTILINE):
            if marker in message:
                return message, time.monotonic() - started
        time.sleep(0.3)
    raise AssertionError(f"no message {marker} in {node}:{path} within {timeout:.0f} s")


def send_as(lab: Lab, leaf: str, sender: str, recipient: str, subject: str,
            body: str = "test\n") -> int:
    message = f"From: {sender}\nTo: {recipient}\nSubject: {subject}\n\n{body}"
    return sh(lab, leaf, f"sendmail -i -f {shlex.quote(sender)} {shlex.quote(recipient)}",
              stdin=message.encode())[0]


def uux_rmail(lab: Lab, leaf: str, envelope: str, recipient: str, subject: str) -> None:
    """A job as Postfix's uucp pipe makes it, but with a hand-made envelope: what a leaf's
    root (or anyone who can run uux there) can send."""
    job = f"{envelope}\nSubject: {subject}\n\nhand-made envelope\n"
    code, out = sh(lab, leaf, f"uux -n -z -a app@{DOMAIN1} - '{HUB}!rmail' '({recipient})'",
                   stdin=job.encode())
    assert code == 0, out


# ------------------------------------------------------------------------------- identity


def test_another_leafs_identity_cannot_collect_its_mail(up: MeshUp, tally: Tally):
    lab, log = up.lab, NodeLog(up.lab)
    print("\nidentity: leaf2 trying to act as leaf1, leaf1 with a wrong password")
    leaf1_password = leaf_payload(up, LEAF1)["password"]
    leaf2_password = leaf_payload(up, LEAF2)["password"]
    with poll_timer_stopped(lab, LEAF1):
        code, reply = mesh.smtp_send(lab, INTERNET_NAME, hub_address(up), mesh.Mail(
            "alice@internet.test", f"bob@{DOMAIN1}", "queued for leaf1", "for leaf1 only\n"))
        assert code == 250, reply
        marker = reply.rsplit("[", 1)[1].rstrip("]")
        assert wait_until(lambda: "rmail" in hub_queue(lab, LEAF1), LOG_TIMEOUT)
        print(f"  queued on the hub for leaf1 (its poll timer stopped): {hub_queue(lab, LEAF1)}")

        attempts = [
            ("leaf2's key and login calling as leaf1 with leaf1's UUCP password",
             LEAF2, LEAF1, leaf1_password, "Bad login"),
            ("leaf2's key calling as leaf1 with leaf2's own password (the right password for "
             "the key's login)", LEAF2, LEAF1, leaf2_password,
             f"System {LEAF1} used wrong login name {LEAF2}"),
            ("leaf1's own key and name with a wrong UUCP password",
             LEAF1, LEAF1, "Wr0ngPassw0rdWr0ngPassw0rd", "Bad login"),
        ]
        for name, node, claimed, password, expected in attempts:
            mark = log.mark()
            _, out = uucico_as(lab, node, claimed, password)
            logged = log.wait(mark, expected)
            received = int(re.search(r"files received: (\d+)", out).group(1))
            still = "rmail" in hub_queue(lab, LEAF1)
            print(f"    {name}: {out.splitlines()[0]}, {received} files received; "
                  f"leaf1's mail still queued on the hub: {still}")
            tally.record(name, "uucico exit=0" not in out and received == 0 and still, logged)

    mesh.poll_now(lab, LEAF1)
    message, seconds = mesh.wait_for_mail(lab, LEAF1, marker, MAIL_TIMEOUT)
    assert "for leaf1 only" in message
    assert mailbox_has(lab, LEAF2, f"/var/mail/{mesh.MAILBOX_USER}", marker) == ""
    print(f"  leaf1's poll timer started again: the mail reached leaf1 in {seconds:.1f} s "
          "(leaf1's sequence and queue untouched by the impostors), never leaf2")


def test_a_leaf_key_works_only_from_its_own_address(up: MeshUp, tally: Tally,
                                                    tmp_path: Path):
    lab, log = up.lab, NodeLog(up.lab)
    print("\nleaf1's key from other addresses")
    seed = mesh.mesh_config(up.rendered).key_seed
    private = keys.leaf_keypair(seed, LEAF1, 1).private_openssh
    sh(lab, LEAF2, "umask 077; cat > /root/leaf1_key", stdin=private.encode())
    key_file = tmp_path / "leaf1_key"
    key_file.write_text(private)
    key_file.chmod(0o600)
    target = f"uucp@{hub_address(up)}"
    tries = {
        f"from leaf2 ({mesh.addresses(up.rendered)[LEAF2]})": lambda: sh(
            lab, LEAF2, f"timeout 20 ssh {SSH_OPTIONS} -i /root/leaf1_key {target} "
                        "</dev/null; echo exit=$?"),
        f"from the internet ({mesh.INTERNET_ADDRESS})": lambda: ssh_from_netns(
            lab.nodes[INTERNET_NAME].netns, key_file, target),
    }
    for where, attempt in tries.items():
        mark = log.mark()
        _, out = attempt()
        logged = log.wait(mark, "Authentication tried for uucp with correct key but not from "
                                "a permitted host")
        print(f"    {where}: {said(out)}")
        tally.record(f"leaf1's key {where}",
                     "Permission denied" in out and "exit=255" in out, logged)


def ssh_from_netns(netns: str, key_file: Path, target: str) -> tuple[int, str]:
    """The host's ssh client inside a node's network namespace (the internet has none)."""
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "sh", "-c",
         f"timeout 20 ssh {SSH_OPTIONS} -i {key_file} {target} </dev/null; echo exit=$?"],
        capture_output=True, timeout=60)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def test_a_leaf_key_gives_nothing_but_uucico(up: MeshUp, tally: Tally):
    lab, log = up.lab, NodeLog(up.lab)
    print("\nleaf1's key from leaf1: everything but a UUCP call")
    ssh = f"ssh {SSH_OPTIONS} -i {LEAF_KEY}"
    target = f"uucp@{hub_address(up)}"
    # The default link runs the forced uucico on a pty (Tuning.pty): "... on pts/N for uucp".
    session = f"Starting session: forced-command (key-option) '/usr/sbin/uucico -l -u {LEAF1}'"
    source = f"for uucp from {mesh.addresses(up.rendered)[LEAF1]}"
    with poll_timer_stopped(lab, LEAF1):  # leaf1's only ssh sessions are these
        # A shell: the forced uucico asks for its password; shell input is a wrong password.
        mark = log.mark()
        _, out = sh(lab, LEAF1, f"printf 'id\\necho SHELL-$((6*7))\\n' | timeout 20 {ssh} "
                                f"{target}; echo exit=$?")
        logged = log.wait(mark, session, source, "Bad login")
        print(f"    shell: got {said(out)!r}")
        tally.record("a shell through leaf1's key",
                     "Password:" in out and "uid=" not in out and "SHELL-42" not in out, logged)

        mark = log.mark()
        _, out = sh(lab, LEAF1, f"timeout 20 {ssh} {target} /bin/sh -c id </dev/null; "
                                "echo exit=$?")
        logged = log.wait(mark, "refused requested command from")
        print(f"    requested command /bin/sh -c id: got {said(out)!r}")
        tally.record("a requested command (ssh uucp@hub /bin/sh -c id)",
                     "uid=" not in out, logged)

        mark = log.mark()
        _, out = sh(lab, LEAF1, f"printf 'id\\n' | timeout 20 {ssh} -tt {target}; echo exit=$?")
        logged = log.wait(mark, session, source)
        sessions = [line for line in log.since(mark).splitlines() if "Starting session" in line]
        print(f"    pty (-tt): got {said(out)!r}")
        # The key grants a pty (the link runs on one), but only to the forced uucico.
        tally.record("a pty request (ssh -tt)",
                     "uid=" not in out and bool(sessions)
                     and all("forced-command" in line for line in sessions),
                     logged + " (the pty carries the forced uucico only)")

        mark = log.mark()
        _, out = sh(lab, LEAF1, f"""
timeout 10 {ssh} -N -L 127.0.0.1:2525:127.0.0.1:25 {target} > /tmp/fwd.out 2>&1 &
sleep 2
python3 -c '
import socket
try:
    s = socket.create_connection(("127.0.0.1", 2525), 5); s.settimeout(5)
    print("through the forward:", s.recv(100))
except OSError as e:
    print("no forward:", e)'
wait; cat /tmp/fwd.out""")
        logged = log.wait(mark, "refused local port forward")
        print(f"    port forward -L 2525:127.0.0.1:25: {said(out)}")
        tally.record("a local port forward (-L) to the hub's port 25",
                     "220" not in out and "administratively prohibited" in out, logged)

        mark = log.mark()
        _, out = sh(lab, LEAF1, f"timeout 20 {ssh} -W 127.0.0.1:22 {target} </dev/null; "
                                "echo exit=$?")
        logged = log.wait(mark, "refused local port forward")
        print(f"    stdio forward -W 127.0.0.1:22: {said(out)}")
        tally.record("a stdio forward (-W)",
                     "administratively prohibited" in out and "SSH-2.0" not in out, logged)

        mark = log.mark()
        _, out = sh(lab, LEAF1, f"timeout 20 {ssh} -N -o ExitOnForwardFailure=yes "
                                f"-R 127.0.0.1:2526:127.0.0.1:22 {target}; echo exit=$?")
        listening = sh(lab, HUB, "ss -ltnH")[1]
        print(f"    remote forward -R 2526: {said(out)}")
        tally.record("a remote port forward (-R)",
                     "remote port forwarding failed" in out and ":2526" not in listening,
                     "")  # sshd logs this refusal only at DEBUG level

        # Agent forwarding: while the session is open, the hub has no agent socket for it
        # and the forced uucico has no SSH_AUTH_SOCK.
        mark = log.mark()
        sh(lab, LEAF1, f"""
cat > /tmp/agent-try <<'EOF'
eval "$(ssh-agent -s)" >/dev/null
ssh-add -q {LEAF_KEY}
(echo not-a-password; sleep 6) | timeout 20 {ssh} -A {target}
echo exit=$?
ssh-agent -k >/dev/null
EOF
setsid sh /tmp/agent-try > /tmp/agent-try.out 2>&1 < /dev/null &""")
        pid = wait_until(lambda: sh(lab, HUB, f"pgrep -u uucp -f 'uucico -l -u {LEAF1}'")[1]
                         .split(), 20)
        assert pid, "the agent-forwarding session never reached the hub"
        hub_side = sh(lab, HUB, f"tr '\\0' '\\n' < /proc/{pid[0]}/environ | grep -c "
                                "SSH_AUTH_SOCK; ls -d /tmp/ssh-* 2>&1")[1]
        logged = log.wait(mark, session, source, "Bad login")
        wait_until(lambda: "exit=" in sh(lab, LEAF1, "cat /tmp/agent-try.out")[1], 30)
        print(f"    agent forwarding (-A): hub side during the session: "
              f"{' '.join(hub_side.split())}")
        tally.record("agent forwarding (-A)",
                     hub_side.split()[0] == "0" and "No such file" in hub_side,
                     logged + " (sshd names the refusal itself only at DEBUG level)")

        # Remote commands other than rmail, and file requests, through the leaf's UUCP link.
        mark = log.mark()
        sh(lab, LEAF1, f"echo 'id > /tmp/pwned' | uux -z - '{HUB}!/bin/sh'; "
                       f"echo hi | uux -z - '{HUB}!cat'; "
                       f"uux -z '{HUB}!uucp' '(/etc/passwd)' '({LEAF1}!/var/spool/uucppublic/y)'")
        logged = log.wait(mark, "Not permitted to execute /bin/sh",
                          "Not permitted to execute cat", "Not permitted to forward")
        pwned = sh(lab, HUB, "ls /tmp/pwned 2>&1")[1]
        stolen = sh(lab, LEAF1, "ls /var/spool/uucppublic")[1]
        for command, line in zip(("hub!/bin/sh", "hub!cat", "hub!uucp /etc/passwd leaf1!..."),
                                 logged.split(" | "), strict=True):
            print(f"    uux {command}: hub says {line}")
            tally.record(f"uux {command}",
                         "No such file" in pwned and "passwd" not in stolen, line)

        mark = log.mark()
        _, local = sh(lab, LEAF1, f"uucp '{HUB}!/etc/passwd' /tmp/x; echo exit=$?")
        tally.record("uucp hub!/etc/passwd /tmp/x (refused by the leaf's own config)",
                     "exit=0" not in local and "No such file" in sh(lab, LEAF1, "ls /tmp/x")[1])
        sh(lab, LEAF1, f"uucp '{HUB}!/etc/passwd' /var/spool/uucppublic/x")
        logged = log.wait(mark, "/etc/passwd: not permitted to send files to remote")
        print(f"    uucp hub!/etc/passwd /tmp/x: {said(local)}; into uucppublic: "
              f"hub says {logged}")
        tally.record("uucp hub!/etc/passwd /var/spool/uucppublic/x (a file request)",
                     "No such file" in sh(lab, LEAF1, "ls /var/spool/uucppublic/x")[1], logged)


# --------------------------------------------------------------------------- sender binding


def test_a_leaf_sends_only_as_its_own_domains(up: MeshUp, tally: Tally):
    lab, log = up.lab, NodeLog(up.lab)
    print("\nsender binding: leaf1 sending as leaf2's domain")
    forged = {}  # what was tried -> (marker, the sender the hub's refusal names)
    mark = log.mark()
    marker = uuid.uuid4().hex
    assert send_as(lab, LEAF1, f"bob@{DOMAIN2}", f"bob@{DOMAIN2}", f"forged {marker}") == 0
    forged["sendmail -f bob@leaf2.test on leaf1"] = (marker, f"<bob@{DOMAIN2}>")
    marker = uuid.uuid4().hex
    uux_rmail(lab, LEAF1, f"From app@{DOMAIN1} Thu Nov 26 11:45:44 2026\n"
                          f">From bob Thu Nov 26 11:45:44 2026 remote from {DOMAIN2}",
              f"bob@{DOMAIN2}", f"forged {marker}")
    forged["a UUCP forwarding chain (>From bob ... remote from leaf2.test)"] = (
        marker, f"<app@{DOMAIN1}>")
    marker = uuid.uuid4().hex
    uux_rmail(lab, LEAF1, f"From {DOMAIN2}!bob Thu Nov 26 11:45:44 2026", f"bob@{DOMAIN2}",
              f"forged {marker}")
    forged["a bang-path sender leaf2.test!bob"] = (marker, f"<{DOMAIN2}!bob>")

    # Debian's /etc/aliases sends postmaster to root, whose mail stays in /var/mail/root.
    for name, (marker, _) in forged.items():
        bounce, seconds = wait_in_mbox(lab, LEAF1, "/var/mail/root", marker, MAIL_TIMEOUT)
        reason = next(line for line in bounce.splitlines() if "refused a message" in line)
        print(f"    {name}: bounce at leaf1's postmaster (root) after {seconds:.1f} s: "
              f"{reason.strip()}")
        assert f"UUCP system {LEAF1}" in reason
    refusals = log.wait(mark, "mailmesh-rmail")
    text = log.since(mark)
    assert f"refused message from leaf '{LEAF1}'" in text  # UU_MACHINE reached the wrapper
    print(f"  the hub's uuxqt set UU_MACHINE: the wrapper named the caller: {refusals}")
    mesh.poll_now(lab, LEAF2)
    for name, (marker, sender) in forged.items():
        reached = mailbox_has(lab, LEAF2, f"/var/mail/{mesh.MAILBOX_USER}", marker)
        leftover = sh(lab, HUB, f"grep -rlF {marker} /var/spool/uucp /var/spool/postfix "
                                "2>/dev/null")[1]
        refusal = next(line for line in text.splitlines()
                       if "mailmesh-rmail" in line and f"(sender {sender}" in line)
        tally.record(f"leaf1 forging leaf2's domain: {name}", not reached and not leftover,
                     refusal.split(": ", 1)[-1])

    # A bounce (null sender) from a leaf still passes: leaf1 bounces mail for a user it
    # does not have, through the hub, to the internet.
    code, reply = mesh.smtp_send(lab, INTERNET_NAME, hub_address(up), mesh.Mail(
        "alice@internet.test", f"nosuchuser@{DOMAIN1}", "to nobody", "x\n"))
    assert code == 250, reply
    marker = reply.rsplit("[", 1)[1].rstrip("]")
    message, seconds = mesh.wait_for_mail(lab, INTERNET_NAME, marker, MAIL_TIMEOUT)
    assert "Return-Path: <>" in message and "Undelivered Mail Returned to Sender" in message
    print(f"  leaf1's bounce for nosuchuser@{DOMAIN1} (null sender) reached alice after "
          f"{seconds:.1f} s, Return-Path <>")


# ------------------------------------------------------------------------------- no relay


def test_no_open_relay_and_no_open_ports(up: MeshUp, tally: Tally):
    lab = up.lab
    hub = hub_address(up)
    print("\nrelay attempts from the internet to the hub")
    probe = r"""
import json, smtplib, sys
out = {}
for rcpt in json.loads(sys.argv[2]):
    with smtplib.SMTP(sys.argv[1], 25, timeout=30) as s:
        s.ehlo("internet.test"); s.mail(sys.argv[3])
        code, text = s.rcpt(rcpt)
        out[rcpt] = [code, text.decode()]
print(json.dumps(out))
"""
    relays = ["victim@example.org", "victim%example.org@leaf1.test",
              "example.org!victim@leaf1.test", '"victim@example.org"@leaf1.test',
              "@leaf1.test:victim@example.org", "victim@leaf1.test.example.org",
              "victim@[10.77.0.11]"]
    log = NodeLog(lab)
    for sender in ("alice@internet.test", f"anyone@{DOMAIN1}"):
        mark = log.mark()
        done = lab.exec(INTERNET_NAME, ["python3", "-c", probe, hub, json.dumps(relays),
                                        sender], check=True)
        replies = json.loads(done.stdout)
        rejects = log.wait(mark, *(f"{text}; from=<{sender}>" for _, text in replies.values()))
        for (rcpt, (code, text)), logged in zip(replies.items(), rejects.split(" | "),
                                                strict=True):
            print(f"    MAIL FROM {sender} RCPT {rcpt}: {code} {text}")
            tally.record(f"relay from {sender} to {rcpt}",
                         code == 554 and "Relay access denied" in text, logged)

    print("connections from the internet")
    ports = r"""
import socket, sys
for host in sys.argv[1:]:
    for port in (25, 540):
        try:
            socket.create_connection((host.split("=")[1], port), 5).close()
            print(host, port, "open")
        except OSError as e:
            print(host, port, e.strerror)
"""
    addresses = mesh.addresses(up.rendered)
    done = lab.exec(INTERNET_NAME, ["python3", "-c", ports,
                                    *(f"{n}={addresses[n]}" for n in (HUB, LEAF1, LEAF2))],
                    check=True)
    for line in done.stdout.decode().splitlines():
        node, port, result = line.split(" ", 2)
        node = node.split("=")[0]
        print(f"    {node}:{port}: {result}")
        if node == HUB and port == "25":
            assert result == "open"  # the hub is the leaves' MX
            continue
        tally.record(f"connect to {node}:{port} from the internet",
                     result == "Connection refused")

    print("what listens, and UUCP over TCP, on every node")
    for node in (HUB, LEAF1, LEAF2):
        listening = sh(lab, node, "ss -ltnH | awk '{print $4}' | sort -u")[1].split()
        socket_unit = sh(lab, node, "systemctl is-enabled uucp.socket; "
                                    "systemctl is-active uucp.socket")[1].split()
        inetd = sh(lab, node, "grep uucp /etc/inetd.conf 2>/dev/null")[1].strip()
        print(f"    {node}: listening {listening}; uucp.socket {socket_unit}; "
              f"inetd.conf: {inetd or 'no uucp line'}")
        public = [a for a in listening if not a.startswith(("127.", "[::1]"))]
        if node == HUB:
            assert {a.rsplit(":", 1)[1] for a in public} == {"22", "25"}
        else:
            assert public == [], f"{node} listens on {public}"
        assert not any(a.endswith(":540") for a in listening)
        assert socket_unit == ["masked", "inactive"]
        assert all(line.lstrip().startswith("#") for line in inetd.splitlines())


# --------------------------------------------------------------------------- spool limits


def test_oversized_mail_is_refused_on_the_leaf(up: MeshUp, tally: Tally):
    lab, log, leaf_log = up.lab, NodeLog(up.lab), NodeLog(up.lab, LEAF1)
    print(f"\noversized mail: 26 MiB against the {SIZE_LIMIT} bytes limit")
    mark, leaf_mark = log.mark(), leaf_log.mark()
    make = ("python3 -c 'import sys; sys.stdout.write(\"Subject: oversized\\n\\n\" + "
            "(\"x\" * 998 + \"\\n\") * (26 * 1024 * 1024 // 999))' > /tmp/oversized.eml")
    sh(lab, LEAF1, make)
    _, out = sh(lab, LEAF1, f"sendmail -i -f bob@{DOMAIN1} alice@internet.test "
                            "< /tmp/oversized.eml; echo exit=$?", timeout=180)
    print(f"    leaf1 sendmail: {' '.join(out.split())}")
    refused = "message file too big" in out and "exit=0" not in out
    smtp = r"""
import smtplib, sys
data = open("/tmp/oversized.eml", "rb").read()
with smtplib.SMTP(sys.argv[1], 25, timeout=120) as s:
    s.ehlo("x.test"); s.mail(sys.argv[2]); s.rcpt(sys.argv[3])
    try:
        print(s.data(data))
    except smtplib.SMTPException as e:
        print(e)
"""
    _, local = sh(lab, LEAF1, f"python3 -c {shlex.quote(smtp)} 127.0.0.1 bob@{DOMAIN1} "
                              "alice@internet.test", timeout=180)
    print(f"    leaf1 SMTP on loopback: {local.strip()}")
    crossed = [line for line in log.since(mark).splitlines()
               if LEAF1 in line and re.search(r"\((\d{8,}) bytes\)", line)]
    queued = sh(lab, LEAF1, "uustat -a; mailq | tail -n1")[1]
    print(f"    hub UUCP log for it: {crossed or 'nothing'}; leaf1 queues: {queued.strip()}")
    tally.record("26 MiB submitted with sendmail on a leaf", refused and not crossed,
                 "leaf1: " + leaf_log.wait(leaf_mark, "fatal: bob@leaf1.test(0): message file "
                                                      "too big") + "; hub: nothing")
    tally.record("26 MiB submitted over SMTP on a leaf", "552" in local and not crossed,
                 "leaf1: " + leaf_log.wait(leaf_mark, "queue file size limit exceeded")
                 + "; hub: nothing")
    sh(lab, INTERNET_NAME, make)  # the same message from the internet to the hub
    _, inbound = sh(lab, INTERNET_NAME, f"python3 -c {shlex.quote(smtp)} {hub_address(up)} "
                                        f"alice@internet.test bob@{DOMAIN1}", timeout=180)
    print(f"    internet -> hub SMTP: {inbound.strip()}")
    tally.record("26 MiB from the internet to the hub", "552" in inbound,
                 log.wait(mark, "queue file size limit exceeded"))
    sh(lab, LEAF1, "rm -f /tmp/oversized.eml")
    sh(lab, INTERNET_NAME, "rm -f /tmp/oversized.eml")


def test_a_transfer_under_the_hubs_free_space_limit_waits_on_the_leaf(up: MeshUp,
                                                                       tally: Tally):
    lab, log = up.lab, NodeLog(up.lab)
    free_space = int(re.search(r"^free-space (\d+)", sh(lab, HUB, "cat /etc/uucp/sys")[1],
                               re.MULTILINE).group(1))
    size = free_space + 4 * 1024 * 1024
    assert wait_until(lambda: hub_queue(lab, LEAF1) == "", MAIL_TIMEOUT), hub_queue(lab, LEAF1)
    dirs = ["/var/spool/uucp/.Temp", f"/var/spool/uucp/{LEAF1}/D."]
    print(f"\nspool: tmpfs of {size} bytes (free-space {free_space} + 4 MiB) over the hub's "
          f"{' and '.join(dirs)}")
    # Stopped timer: leaf1 calls only when it has mail, so no call runs while the tmpfs goes.
    with poll_timer_stopped(lab, LEAF1), low_space(lab, dirs, size):
        mark = log.mark()
        marker = uuid.uuid4().hex
        code, out = sh(lab, LEAF1, f"(printf 'Subject: six megabytes {marker}\\n\\n'; "
                                   "head -c 4500000 /dev/urandom | base64) | "
                                   f"sendmail -i -f bob@{DOMAIN1} alice@internet.test")
        assert code == 0, out
        logged = log.wait(mark, "too big to receive", timeout=60)
        queued = wait_until(lambda: "rmail alice@internet.test" in (
            q := sh(lab, LEAF1, "uustat -a")[1]) and q, 30)
        print(f"    hub: {logged}\n    leaf1 still holds it: {str(queued).strip()}")
        assert mesh.find_message(lab, INTERNET_NAME, marker) is None
        tally.record("a 6 MiB transfer that would leave the hub under free-space",
                     bool(queued), logged)
    print("  space back (tmpfs unmounted)")
    mesh.poll_now(lab, LEAF1)
    _, seconds = mesh.wait_for_mail(lab, INTERNET_NAME, marker, MAIL_TIMEOUT)
    assert wait_until(lambda: sh(lab, LEAF1, "uustat -a")[1].strip() == "", 30)
    copies = sh(lab, INTERNET_NAME, f"grep -rlF {marker} /home/alice/Maildir | wc -l")[1]
    assert copies.strip() == "1", copies
    print(f"  the held message reached the internet {seconds:.1f} s later, once; leaf1's "
          "queue is empty")


@contextmanager
def low_space(lab: Lab, dirs: list[str], size: int) -> Iterator[None]:
    """A small tmpfs over each dir of the hub; on the way out, whatever landed there is
    copied back to the real directory (nothing lost), and the tmpfs is gone."""
    for path in dirs:
        sh(lab, HUB, f"install -d -o uucp -g dialout -m 0755 {path} && mount -t tmpfs -o "
                     f"size={size},mode=0755,uid=$(id -u uucp),gid=$(getent group dialout "
                     f"| cut -d: -f3) mailmesh-test {path}")
    try:
        yield
    finally:
        for index, path in enumerate(dirs):
            keep = f"/run/mailmesh-test-{index}"
            sh(lab, HUB, f"mkdir -p {keep} && cp -a {path}/. {keep}/")
            assert wait_until(lambda p=path: sh(lab, HUB, f"umount {p}")[0] == 0, 60)
            sh(lab, HUB, f"cp -a {keep}/. {path}/ && rm -rf {keep}")
        assert "mailmesh-test" not in sh(lab, HUB, "findmnt -n -o SOURCE -R /var/spool/uucp")[1]


# ------------------------------------------------------------------------------- totals


def test_attack_counts(tally: Tally):
    print(f"\n{tally.summary()}")
    for attack in tally.attacks:
        if not attack.logged:
            print(f"  refused without a log line: {attack.name}")
    assert tally.attacks and all(a.refused for a in tally.attacks)
