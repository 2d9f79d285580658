#!/usr/bin/python3
"""mailmesh-register: add, update or remove a leaf on the uucp-mailmesh hub.

  mailmesh-register register              leaf JSON on stdin (it holds the UUCP password)
  mailmesh-register deregister LEAF REGID  remove LEAF if REGID is still its registration
  mailmesh-register rebuild               rewrite every derived file from the saved state
  mailmesh-register list                  registered leaves, one per line (no secrets)

Each leaf's registration is saved in /var/lib/mailmesh/leaves/LEAF.json (root only). Every
file derived from them (UUCP sys and passwd, the uucp user's authorized_keys, Postfix's
transport and relay_domains, the sender map) is rewritten whole from that state, each by an
atomic rename, under one lock; so a run is idempotent and parallel runs are safe. A
deregistration carries the id of the registration it undoes, so Pulumi deleting a replaced
registration after creating its successor removes nothing. The program that sends the
payload computes that id (components/registration.py).
"""

import fcntl
import ipaddress
import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

STATE = Path("/var/lib/mailmesh")
SETTINGS = Path("/etc/mailmesh/hub.json")
NAME = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$")
DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
KEY = re.compile(r"^ssh-ed25519 [A-Za-z0-9+/]+=* [A-Za-z0-9@._-]+$")
PASSWORD = re.compile(r"^[A-Za-z0-9]{20,128}$")


def fail(message):
    print(f"mailmesh-register: {message}", file=sys.stderr)
    sys.exit(2)


def validate(leaf):
    """The payload lands in config files: refuse anything that could inject lines."""
    if not isinstance(leaf, dict):
        fail("payload must be a JSON object")
    if not NAME.match(str(leaf.get("leaf", ""))) or len(leaf["leaf"]) > 63:
        fail("bad leaf name")
    try:
        ipaddress.ip_address(str(leaf.get("address", "")))
    except ValueError:
        fail(f"{leaf['leaf']}: bad address")
    domains = leaf.get("domains")
    if not domains or not all(isinstance(d, str) and DOMAIN.match(d) for d in domains):
        fail(f"{leaf['leaf']}: bad domains")
    if not KEY.match(str(leaf.get("publicKey", ""))):
        fail(f"{leaf['leaf']}: publicKey must be one ssh-ed25519 line")
    if not PASSWORD.match(str(leaf.get("password", ""))):
        fail(f"{leaf['leaf']}: password must be 20-128 letters and digits")
    if not re.match(r"^[0-9a-f]{16}$", str(leaf.get("registrationId", ""))):
        fail(f"{leaf['leaf']}: bad registrationId")
    for key in ("instanceId", "hubInstanceId"):
        if not re.match(r"^[A-Za-z0-9._-]{1,128}$", str(leaf.get(key, ""))):
            fail(f"{leaf['leaf']}: bad {key}")


def write_atomic(path, text, mode=0o644, owner=None):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    if owner:  # uucp's setuid programs (uucico, uustat run by root) read it as that user
        entry = pwd.getpwnam(owner)
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
    changed = not path.exists() or path.read_text() != text
    os.replace(tmp, path)
    return changed


def load_leaves():
    folder = STATE / "leaves"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def render(leaves, settings):
    """Every derived file, as {path: (text, mode, owner)}."""
    header = "# Written by mailmesh-register from /var/lib/mailmesh; do not edit.\n"
    sys_entries, passwd, keys, transport, relay, senders = [], [], [], [], [], []
    for leaf in leaves:
        name = leaf["leaf"]
        sys_entries.append(
            f"\nsystem {name}\n"
            f"called-login {name}\n"
            "time never\n"
            + "".join(f"{line}\n" for line in settings["sysLines"])
        )
        passwd.append(f"{name} {leaf['password']}\n")
        keys.append(
            f'restrict{settings["keyOptions"]},from="{leaf["address"]}",'
            f'command="/usr/sbin/uucico -l -u {name}" {leaf["publicKey"]}\n'
        )
        for domain in leaf["domains"]:
            transport.append(f"{domain} uucp:{name}\n")
            relay.append(f"{domain} {name}\n")
        if name not in leaf["domains"]:
            # The hub's own notices (uuxqt's to leaf!root) reach the leaf by its node name;
            # routed only, not relayed: the internet still cannot mail it.
            transport.append(f"{name} uucp:{name}\n")
        senders.append(f"{name} {' '.join(leaf['domains'])}\n")
    return {
        "/etc/uucp/sys": (header + "".join(sys_entries), 0o640, "uucp"),
        "/etc/uucp/passwd": (header + "".join(passwd), 0o640, "uucp"),
        "/etc/mailmesh/uucp_authorized_keys": (header + "".join(keys), 0o644, None),
        "/etc/postfix/mailmesh/transport": (header + "".join(transport), 0o644, None),
        "/etc/postfix/mailmesh/relay_domains": (header + "".join(relay), 0o644, None),
        "/etc/mailmesh/leaf-domains": (header + "".join(senders), 0o644, None),
    }


def rebuild():
    settings = json.loads(SETTINGS.read_text())
    changed = False
    leaves = load_leaves()
    for path, (text, mode, owner) in render(leaves, settings).items():
        changed |= write_atomic(path, text, mode, owner)
    check = subprocess.run(["/usr/lib/uucp/uuchk"], capture_output=True, text=True)
    if leaves and check.returncode != 0:  # with no leaf, uuchk fails: "no systems found"
        fail(f"uuchk rejected the UUCP configuration:\n{check.stderr}")
    if changed and subprocess.run(["postfix", "status"], capture_output=True).returncode == 0:
        subprocess.run(["postfix", "reload"], check=True, capture_output=True)
    return changed


def register():
    leaf = json.load(sys.stdin)
    validate(leaf)
    name = leaf["leaf"]
    for other in load_leaves():
        taken = set(other["domains"]) & set(leaf["domains"])
        if other["leaf"] != name and taken:
            fail(f"{name}: domains {sorted(taken)} belong to leaf {other['leaf']}")
    path = STATE / "leaves" / f"{name}.json"
    previous = json.loads(path.read_text()) if path.exists() else None
    write_atomic(path, json.dumps(leaf, indent=2, sort_keys=True) + "\n", 0o600)
    changed = rebuild()
    state = "unchanged" if previous == leaf and not changed else "registered"
    print(f"{name}: {state} (registration {leaf['registrationId']}, address {leaf['address']}, "
          f"domains {' '.join(leaf['domains'])})")


def deregister(name, registration):
    path = STATE / "leaves" / f"{name}.json"
    if not path.exists():
        print(f"{name}: not registered; nothing to do")
        return
    current = json.loads(path.read_text())
    if registration != current.get("registrationId"):
        print(f"{name}: registration {registration} was superseded by "
              f"{current.get('registrationId')}; kept")
        return
    path.unlink()
    rebuild()
    print(f"{name}: deregistered (its key and password no longer work; mail for "
          f"{' '.join(current['domains'])} is no longer accepted)")


def main(argv):
    if os.geteuid() != 0:
        fail("run as root (sudo)")
    (STATE / "leaves").mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(STATE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if argv[1:] == ["register"]:
            register()
        elif len(argv) == 4 and argv[1] == "deregister":
            deregister(argv[2], argv[3])
        elif argv[1:] == ["rebuild"]:
            rebuild()
        elif argv[1:] == ["list"]:
            for leaf in load_leaves():
                print(leaf["leaf"], leaf["address"], " ".join(leaf["domains"]))
        else:
            fail("usage: mailmesh-register register|deregister LEAF REGID|rebuild|list")


if __name__ == "__main__":
    main(sys.argv)
