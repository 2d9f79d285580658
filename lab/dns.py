"""The lab's DNS: authoritative for the lab's names, NXDOMAIN at once for everything else.

Clouds give instances DNS, and some programs ask it directly (Postfix's SMTP client looks up
its relay host with the resolver library, not through /etc/hosts). Run inside the switch
netns as `python dns.py ZONE ADDRESS PORT`; stdlib only, so it runs by path. ZONE is a JSON
file {"a": {name: address}, "ptr": {address: name}}, re-read when it changes. A and PTR
records are answered; other types for a known name get an empty answer (so Postfix falls
back from MX to the A record).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys

TYPE_A, TYPE_PTR = 1, 12
TTL = 5
NXDOMAIN, NOTIMP = 3, 4


def _encode(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _question(packet: bytes) -> tuple[str, int, int]:
    """(name, qtype, end offset) of the first question; uncompressed, as queries are."""
    labels, pos = [], 12
    while packet[pos]:
        length = packet[pos]
        labels.append(packet[pos + 1 : pos + 1 + length].decode("ascii", "replace"))
        pos += 1 + length
    qtype, _qclass = struct.unpack("!HH", packet[pos + 1 : pos + 5])
    return ".".join(labels).lower(), qtype, pos + 5


def _reverse(address: str) -> str:
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


Zone = dict[str, dict[str, str]]


def answer(query: bytes, zone: Zone) -> bytes:
    """The response to one query packet."""
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    opcode = (flags >> 11) & 0xF
    base_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080  # QR AA RD(copied) RA
    if qdcount != 1 or opcode != 0:
        return struct.pack("!6H", ident, base_flags | NOTIMP, 0, 0, 0, 0)
    name, qtype, end = _question(query)
    names = {n.lower().rstrip("."): a for n, a in zone.get("a", {}).items()}
    reverse = {_reverse(address): n for address, n in zone.get("ptr", {}).items()}
    records = []
    if qtype == TYPE_A and name in names:
        records.append((TYPE_A, socket.inet_aton(names[name])))
    elif qtype == TYPE_PTR and name in reverse:
        records.append((TYPE_PTR, _encode(reverse[name])))
    rcode = 0 if name in names or name in reverse else NXDOMAIN
    out = struct.pack("!6H", ident, base_flags | rcode, 1, len(records), 0, 0)
    out += query[12:end]
    for rtype, rdata in records:
        # 0xC00C: a pointer to the question's name at offset 12
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(rdata)) + rdata
    return out


class ZoneFile:
    """The zone file, re-read whenever it is replaced."""

    def __init__(self, path: str) -> None:
        self.path, self.stamp = path, None
        self.names: Zone = {}

    def current(self) -> Zone:
        try:
            info = os.stat(self.path)
            stamp = (info.st_ino, info.st_mtime_ns)
            if stamp != self.stamp:
                with open(self.path) as zone_file:
                    self.names, self.stamp = json.load(zone_file), stamp
        except (OSError, ValueError):
            pass  # keep the last good zone
        return self.names


def add_names(path: str, a: dict[str, str], ptr: dict[str, str]) -> None:
    """Merge A records (name: address) and PTR records (address: name) into the zone file,
    replaced atomically (the server re-reads it)."""
    try:
        with open(path) as zone_file:
            zone = json.load(zone_file)
    except (OSError, ValueError):
        zone = {}
    for key, records in (("a", a), ("ptr", ptr)):
        zone.setdefault(key, {}).update(records)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as out:
        json.dump(zone, out, indent=1, sort_keys=True)
    os.replace(tmp, path)


def main(argv: list[str]) -> None:
    zone_path, address, port = argv
    zone = ZoneFile(zone_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, int(port)))
    while True:
        query, client = sock.recvfrom(4096)
        try:
            sock.sendto(answer(query, zone.current()), client)
        except (IndexError, struct.error, UnicodeError):
            continue  # malformed: drop it, as servers do


if __name__ == "__main__":
    main(sys.argv[1:])
