"""The lab's pure parts: no root, no containers."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
import yaml

from lab import dns, mirrors, net, node, paths, procs, seed, state
from lab.runtime import INTERNET_USER_DATA


def test_mirrors_from_deb822_and_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MAILMESH_LAB_MIRROR", raising=False)
    monkeypatch.delenv("MAILMESH_LAB_SECURITY_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://m.test/debian bookworm main\n")
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://other.test/x\nSuites: sid\nComponents: main\n\n"
        "Types: deb deb-src\nURIs: http://sec.test/debian-security/\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    found = mirrors.host_mirrors(tmp_path)
    assert found == mirrors.Mirrors("http://m.test/debian", "http://sec.test/debian-security")
    assert "deb http://m.test/debian bookworm-updates main" in found.sources_list()


def test_mirror_from_environment_and_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MAILMESH_LAB_SECURITY_MIRROR", raising=False)
    monkeypatch.delenv("MAILMESH_LAB_MIRROR", raising=False)
    with pytest.raises(RuntimeError, match="MAILMESH_LAB_MIRROR"):
        mirrors.host_mirrors(tmp_path)
    monkeypatch.setenv("MAILMESH_LAB_MIRROR", "http://env.test/debian/")
    assert mirrors.host_mirrors(tmp_path).main == "http://env.test/debian"


def test_seed_documents() -> None:
    meta = yaml.safe_load(seed.meta_data("iid-x", "hub.mesh.test"))
    assert meta == {"instance-id": "iid-x", "local-hostname": "hub.mesh.test"}
    network = yaml.safe_load(seed.network_config("10.77.0.9"))
    assert network == {"version": 2, "ethernets": {"eth0": {"addresses": ["10.77.0.9/24"]}}}


def test_hosts_lines_group_names_by_address() -> None:
    lines = seed.hosts_lines({"hub": "10.77.0.10", "leaf1.example": "10.77.0.10", "x": "10.77.0.3"})
    assert lines == "10.77.0.10\thub leaf1.example\n10.77.0.3\tx\n"


def test_name_service_files(tmp_path: Path) -> None:
    base, root = tmp_path / "base", tmp_path / "root"
    (base / "etc/cloud/templates").mkdir(parents=True)
    (base / seed.HOSTS_TEMPLATE).write_text("## template:jinja\n127.0.0.1 localhost\n")
    (root / "etc/cloud/templates").mkdir(parents=True)
    seed.write_name_service(root, base, {"internet.test": "10.77.0.2"})
    assert "10.77.0.2\tinternet.test\n" in (root / "etc/hosts").read_text()
    template = (root / seed.HOSTS_TEMPLATE).read_text()
    assert template.startswith("## template:jinja\n") and "10.77.0.2\tinternet.test" in template
    assert f"nameserver {paths.SWITCH_ADDRESS}\n" in (root / "etc/resolv.conf").read_text()


def test_state_tolerates_missing_and_garbage(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAILMESH_LAB_RUN", str(tmp_path))
    assert state.read() == state.empty()
    paths.state_file().write_text("{not json")
    assert state.read() == state.empty()
    with state.update() as st:
        st["nodes"]["a"] = {"pid": 1}
    assert state.read()["nodes"] == {"a": {"pid": 1}}
    state.remove()
    state.remove()


def test_process_identity() -> None:
    me = os.getpid()
    start = procs.start_time(me)
    assert start is not None and procs.is_running(me, start)
    assert not procs.is_running(me, start + 1)  # a recycled PID is not ours
    assert procs.start_time(2**22 + 1) is None


def test_names() -> None:
    assert len(net.switch_port("a-very-long-leaf-name.europe-west1.example")) <= 15
    node.check_name("leaf1.mesh.test")
    node.check_name("x" * 55)
    for bad in ("", "Hub", "-x", "a_b", "x" * 56, "sw"):
        with pytest.raises(ValueError):
            node.check_name(bad)


def test_prefix_names_everything(monkeypatch) -> None:
    monkeypatch.setenv("MAILMESH_LAB_PREFIX", "mmtest")
    assert (paths.switch_netns(), paths.SWITCH_NETNS) == ("mmtest-sw", "mmtest-sw")
    assert paths.node_netns("hub") == "mmtest-hub"
    monkeypatch.setenv("MAILMESH_LAB_PREFIX", "mm-x")
    with pytest.raises(ValueError):
        paths.prefix()


def test_internet_user_data_is_cloud_config() -> None:
    text = INTERNET_USER_DATA.read_text()
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["fqdn"] == "internet.test" and "postfix" in config["packages"]


def _query(name: str, qtype: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!6H", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(
        "!HH", qtype, 1
    )


def _parse(reply: bytes) -> tuple[int, int, bytes]:
    """(rcode, answer count, first answer's rdata)."""
    ident, flags, _, ancount, _, _ = struct.unpack("!6H", reply[:12])
    assert ident == 0x1234 and flags & 0x8000
    end = reply.index(b"\0", 12) + 5
    return flags & 0xF, ancount, reply[end + 12 :]


def test_dns_answers() -> None:
    zone = {
        "a": {"Internet.test": "10.77.0.2", "hub": "10.77.0.10", "leaf1.example": "10.77.0.10"},
        "ptr": {"10.77.0.10": "hub"},
    }
    assert _parse(dns.answer(_query("internet.TEST", 1), zone)) == (0, 1, bytes([10, 77, 0, 2]))
    assert _parse(dns.answer(_query("leaf1.example", 15), zone)) == (0, 0, b"")  # MX: NODATA
    assert _parse(dns.answer(_query("no.example", 1), zone))[:2] == (3, 0)  # NXDOMAIN
    rcode, count, rdata = _parse(dns.answer(_query("10.0.77.10.in-addr.arpa", 12), zone))
    assert (rcode, count, rdata) == (0, 1, b"\x03hub\x00")
    assert _parse(dns.answer(_query("9.0.77.10.in-addr.arpa", 12), zone))[0] == 3


def test_dns_zone_file(tmp_path: Path) -> None:
    path = str(tmp_path / "zone.json")
    zone = dns.ZoneFile(path)
    assert zone.current() == {}
    dns.add_names(path, {"x": "10.77.0.3"}, {"10.77.0.3": "x"})
    dns.add_names(path, {"y": "10.77.0.4"}, {})
    assert zone.current() == {"a": {"x": "10.77.0.3", "y": "10.77.0.4"},
                              "ptr": {"10.77.0.3": "x"}}
