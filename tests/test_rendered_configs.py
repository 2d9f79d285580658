"""Every rendered file is accepted by the real program that will read it.

cloud-init's own schema check, Taylor UUCP's uuchk, Postfix's postconf/postmap, OpenSSH's
sshd -t / ssh -G, and sh -n: the Debian packages installed by tests/run, not look-alikes.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components import keys, registration, render
from tests.conftest import RELAY_PASSWORD, ROOT, SEED
from tests.rendered import extract, files_of, parse_user_data

UUCHK = "/usr/lib/uucp/uuchk"


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def hub_user_data(hub) -> str:
    return render.render_hub_user_data(
        hub,
        keys.hub_host_keypair(SEED, hub.name),
        keys.admin_keypair(SEED, hub.name).public_openssh,
    )


def leaf_user_data(leaf, hub, host_key) -> str:
    return render.render_leaf_user_data(
        leaf,
        hub,
        "198.51.100.20",
        host_key.public_openssh,
        keys.leaf_keypair(SEED, leaf.name, leaf.key_version),
        keys.leaf_password(SEED, leaf.name, leaf.key_version),
        60,
    )


def load_register_tool():
    spec = importlib.util.spec_from_file_location(
        "mailmesh_register", ROOT / "cloud-init/hub/mailmesh-register.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def schema_check(tmp_path: Path, user_data: str) -> subprocess.CompletedProcess:
    path = tmp_path / "user-data"
    path.write_text(user_data)
    return run(["cloud-init", "schema", "--config-file", str(path)])


@pytest.mark.parametrize("relay", [False, True], ids=["direct", "relay-with-sasl"])
def test_hub_user_data_passes_cloud_init_schema(tmp_path, hub, hub_with_relay, relay):
    result = schema_check(tmp_path, hub_user_data(hub_with_relay if relay else hub))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_leaf_user_data_passes_cloud_init_schema(tmp_path, hub, leaf, host_key):
    result = schema_check(tmp_path, leaf_user_data(leaf, hub, host_key))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hub_user_data_fits_ec2_limit_once_compressed(hub_with_relay):
    compressed = render.compress_user_data(hub_user_data(hub_with_relay))
    assert len(compressed) < render.EC2_USER_DATA_LIMIT
    assert compressed == render.compress_user_data(hub_user_data(hub_with_relay))


def test_hub_pins_the_derived_host_key(hub):
    config = parse_user_data(hub_user_data(hub))
    pinned = keys.hub_host_keypair(SEED, hub.name)
    assert config["ssh_keys"]["ed25519_public"] == pinned.public_openssh
    assert config["ssh_keys"]["ed25519_private"] == pinned.private_openssh
    assert config["ssh_deletekeys"] is True


def test_leaf_pins_the_hub_host_key_and_owns_its_key(hub, leaf, host_key):
    files = files_of(leaf_user_data(leaf, hub, host_key))
    assert files["/etc/uucp/mailmesh/known_hosts"]["content"] == (
        f"{hub.name} {host_key.public_openssh}\n"
    )
    key_file = files["/etc/uucp/mailmesh/id_ed25519"]
    assert key_file["owner"] == "uucp:uucp"
    assert key_file["permissions"] == "0600"
    assert key_file["defer"] is True  # the uucp user exists only once the package is in
    call = files["/etc/uucp/call"]
    assert call["permissions"] == "0600"
    assert call["content"].split() == [
        hub.name, leaf.name, keys.leaf_password(SEED, leaf.name, 1)
    ]


def test_leaf_ssh_client_config_is_accepted_by_openssh(tmp_path, hub, leaf, host_key):
    written = extract(leaf_user_data(leaf, hub, host_key), tmp_path)
    result = run(["ssh", "-G", "-F", str(written["/etc/uucp/mailmesh/ssh_config"]), "mailmesh-hub"])
    assert result.returncode == 0, result.stderr
    effective = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert effective["hostname"] == "198.51.100.20"
    assert effective["user"] == "uucp"
    assert effective["stricthostkeychecking"] == "true"
    assert effective["identitiesonly"] == "yes"
    assert effective["batchmode"] == "yes"
    assert effective["escapechar"] == "none"
    assert effective["requesttty"] == "force"  # the hub's uucico on a pty: no 2 s close
    assert effective["hostkeyalias"] == hub.name


def test_leaf_uucp_config_passes_uuchk(tmp_path, hub, leaf, host_key):
    written = extract(leaf_user_data(leaf, hub, host_key), tmp_path)
    config = written["/etc/uucp/config"]
    # Point uuchk at the rendered files instead of /etc/uucp.
    with config.open("a") as f:
        f.write(f"sysfile {written['/etc/uucp/sys']}\n")
        f.write(f"portfile {written['/etc/uucp/port']}\n")
        f.write(f"callfile {written['/etc/uucp/call']}\n")
    result = run([UUCHK, "-I", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"System: {hub.name}" in out
    assert "Port name mailmesh-hub" in out
    assert "ssh -F /etc/uucp/mailmesh/ssh_config mailmesh-hub" in out
    assert "Will use protocols " + render.DEFAULT_TUNING.protocol in out
    assert "May execute rmail" in out
    assert "Sequence numbers are used" not in out  # see Tuning.sys_lines


def test_hub_uucp_config_with_registered_leaves_passes_uuchk(tmp_path, hub, leaf):
    tool = load_register_tool()
    written = extract(hub_user_data(hub), tmp_path)
    settings = json.loads(written["/etc/mailmesh/hub.json"].read_text())
    payload = json.loads(
        registration.registration_payload(
            leaf.name, "198.51.100.20", leaf.domains,
            keys.leaf_keypair(SEED, leaf.name, 1).public_openssh,
            keys.leaf_password(SEED, leaf.name, 1), "i-leaf", "i-hub",
        )
    )
    files = tool.render([payload], settings)
    for path, (text, _mode, _group) in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    config = written["/etc/uucp/config"]
    with config.open("a") as f:
        f.write(f"sysfile {tmp_path / 'etc/uucp/sys'}\n")
        f.write(f"passwdfile {tmp_path / 'etc/uucp/passwd'}\n")
    result = run([UUCHK, "-I", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"System: {leaf.name}" in result.stdout
    assert f"Caller must log in as {leaf.name}" in result.stdout
    assert "Calls will never be placed to this system" in result.stdout
    assert "May execute rmail" in result.stdout
    key_line = files["/etc/mailmesh/uucp_authorized_keys"][0].splitlines()[-1]
    forced = f'command="/usr/sbin/uucico -l -u {leaf.name}"'
    # `pty` (DEFAULT_TUNING.pty, chosen by benchmarks/) is the only option back on after
    # restrict: no forwarding of any kind; the source address and the command stay forced.
    assert key_line.startswith(f'restrict,pty,from="198.51.100.20",{forced} ssh-ed25519 ')


def postconf_check(tmp_path: Path, main_cf: Path) -> dict[str, str]:
    shutil.copy("/usr/share/postfix/master.cf.dist", main_cf.parent / "master.cf")
    result = run(["postconf", "-c", str(main_cf.parent), "-n"])
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_leaf_main_cf_sends_everything_else_to_the_hub(tmp_path, hub, leaf, host_key):
    written = extract(leaf_user_data(leaf, hub, host_key), tmp_path)
    settings = postconf_check(tmp_path, written["/etc/postfix/main.cf"])
    assert settings["inet_interfaces"] == "loopback-only"
    assert settings["default_transport"] == f"uucp:{hub.name}"
    assert settings["relay_transport"] == f"uucp:{hub.name}"
    assert settings["mydestination"] == (
        "$myhostname, localhost, leaf1.example, app.example"
    )
    assert settings["myorigin"] == "leaf1.example"


@pytest.mark.parametrize("relay", [False, True], ids=["direct", "relay-with-sasl"])
def test_hub_main_cf_is_valid_and_not_an_open_relay(tmp_path, hub, hub_with_relay, relay):
    config = hub_with_relay if relay else hub
    written = extract(hub_user_data(config), tmp_path)
    settings = postconf_check(tmp_path, written["/etc/postfix/main.cf"])
    assert settings["smtpd_relay_restrictions"] == (
        "permit_mynetworks, reject_unauth_destination"
    )
    assert settings["mynetworks"] == "127.0.0.0/8 [::1]/128"
    if relay:
        assert settings["relayhost"] == "[smtp.relay.test]:587"
        assert settings["smtp_tls_security_level"] == "encrypt"
        sasl = written["/etc/postfix/mailmesh/sasl_passwd"]
        assert sasl.read_text() == f"[smtp.relay.test]:587 mesh:{RELAY_PASSWORD}\n"
        assert files_of(hub_user_data(config))["/etc/postfix/mailmesh/sasl_passwd"][
            "permissions"
        ] == "0600"
    else:
        assert settings["relayhost"] == ""
        assert "/etc/postfix/mailmesh/sasl_passwd" not in written


def test_registered_transport_map_routes_each_domain_to_its_leaf(tmp_path, hub, leaf):
    tool = load_register_tool()
    payload = {"leaf": leaf.name, "address": "198.51.100.20", "domains": list(leaf.domains),
               "publicKey": "ssh-ed25519 AAAA x@y", "password": "p" * 40}
    files = tool.render([payload], {"sysLines": [], "keyOptions": ""})
    transport = tmp_path / "transport"
    transport.write_text(files["/etc/postfix/mailmesh/transport"][0])
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")

    def lookup(domain: str) -> subprocess.CompletedProcess:
        return run(["postmap", "-c", str(tmp_path), "-q", domain, f"texthash:{transport}"])

    for domain in leaf.domains:
        result = lookup(domain)
        assert result.stdout.strip() == f"uucp:{leaf.name}", result.stderr
    assert lookup(leaf.name).stdout.strip() == f"uucp:{leaf.name}"  # notices to leaf!root
    relay = files["/etc/postfix/mailmesh/relay_domains"][0]
    relayed = [line.split()[0] for line in relay.splitlines() if not line.startswith("#")]
    assert leaf.name not in relayed  # but the internet cannot mail the node name
    missing = lookup("other.example")
    assert (missing.returncode, missing.stdout) == (1, "")


def test_hub_sshd_config_passes_sshd_test_mode(tmp_path, hub):
    written = extract(hub_user_data(hub), tmp_path)
    host_key = tmp_path / "host_key"
    host_key.write_text(keys.hub_host_keypair(SEED, hub.name).private_openssh)
    host_key.chmod(0o600)
    dropin = written["/etc/ssh/sshd_config.d/10-mailmesh.conf"]
    config = tmp_path / "sshd_config"
    config.write_text(dropin.read_text().replace("/etc/ssh/ssh_host_ed25519_key", str(host_key)))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd -t insists on it
    result = run(["/usr/sbin/sshd", "-t", "-f", str(config)])
    assert result.returncode == 0, result.stderr

    def effective(user: str, addr: str) -> str:
        spec = f"user={user},host=x,addr={addr}"
        out = run(["/usr/sbin/sshd", "-T", "-f", str(config), "-C", spec])
        assert out.returncode == 0, out.stderr
        return out.stdout

    uucp = effective("uucp", "198.51.100.20")
    assert "authorizedkeysfile /etc/mailmesh/uucp_authorized_keys" in uucp
    assert "passwordauthentication no" in uucp
    assert "allowtcpforwarding no" in uucp
    assert "allowusers mailmesh-admin@192.0.2.0/28" in uucp
    assert "permitrootlogin no" in uucp
    assert "permittty yes" in uucp  # for the `pty` key option; nobody else gets one
    admin = effective("mailmesh-admin", "192.0.2.1")
    assert "permittty yes" in admin or "permittty" not in admin


def test_hub_scripts_and_tools_parse(tmp_path, hub):
    written = extract(hub_user_data(hub), tmp_path)
    for shell_script in ("/usr/local/lib/mailmesh/uucp-shell", "/usr/local/lib/mailmesh/hub-setup"):
        result = run(["sh", "-n", str(written[shell_script])])
        assert result.returncode == 0, result.stderr
    for tool in ("/usr/local/sbin/mailmesh-register", "/usr/local/lib/mailmesh/bin/rmail"):
        result = run(["python3", "-m", "py_compile", str(written[tool])])
        assert result.returncode == 0, result.stderr


def test_uucp_shell_runs_only_the_forced_uucico(tmp_path, hub):
    written = extract(hub_user_data(hub), tmp_path)
    shell = str(written["/usr/local/lib/mailmesh/uucp-shell"])
    env = {"PATH": "/usr/bin:/bin", "SSH_ORIGINAL_COMMAND": "/bin/bash -i"}
    for argv in ([], ["-c", "/bin/sh"], ["-c", "/usr/sbin/uucico -l -u a;b"],
                 ["-c", "/usr/sbin/uucico -l -u leaf1 -x9"], ["-i"]):
        result = run(["sh", shell, *argv], env=env)
        assert result.returncode == 1, (argv, result)


def test_leaf_calls_the_hub_whenever_mail_is_queued(hub, leaf, host_key):
    """DEFAULT_TUNING.call_on_queue: uux only queues, a path unit on the queue starts the
    call service, which has no start rate limit and backs off after a failed call."""
    files = files_of(leaf_user_data(leaf, hub, host_key))
    path_unit = files["/etc/systemd/system/mailmesh-send.path"]["content"]
    assert f"DirectoryNotEmpty=/var/spool/uucp/{hub.name}/C." in path_unit
    assert "Unit=mailmesh-poll.service" in path_unit
    setup = files["/usr/local/lib/mailmesh/leaf-setup"]["content"]
    assert "argv=uux -r -n -z -a$sender" in setup
    assert "systemctl enable --now mailmesh-send.path" in setup
    service = files["/etc/systemd/system/mailmesh-poll.service"]["content"]
    assert "StartLimitIntervalSec=0" in service
    assert '"$SERVICE_RESULT" != success' in service
    assert "AccuracySec=100ms" in files["/etc/systemd/system/mailmesh-poll.timer"]["content"]
    config = files["/etc/uucp/config"]["content"]
    assert "run-uuxqt 1\nmax-uuxqts 4\n" in config



def test_leaf_systemd_units_parse(tmp_path, hub, leaf, host_key):
    """systemd's own parser knows every key (the lab boots them for real)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    written = extract(leaf_user_data(leaf, hub, host_key), tmp_path)
    units = [written[f"/etc/systemd/system/mailmesh-{name}"]
             for name in ("poll.service", "poll.timer", "send.path")]
    result = run([analyze, "verify", "--man=no", *map(str, units)])
    bad = ("Unknown", "Invalid", "Failed to parse", "Missing", "ignoring")
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if any(word in line for word in bad)]
    assert not problems, result.stdout + result.stderr


def test_hub_runs_waiting_mail_jobs_and_never_cuts_one(tmp_path, hub):
    """uuxqt's jobs on the hub survive a shutdown whole and run after the next boot
    (tests/lab/test_faults.py: a hub reboot lost mail without either)."""
    written = extract(hub_user_data(hub), tmp_path)
    service = written["/etc/systemd/system/mailmesh-uuxqt.service"].read_text()
    assert "ExecStart=/usr/sbin/uuxqt\n" in service and "User=uucp\n" in service
    assert "KillMode=mixed\n" in service  # SIGTERM to uuxqt alone, never to its job
    timer = written["/etc/systemd/system/mailmesh-uuxqt.timer"].read_text()
    assert "OnBootSec=" in timer and "OnUnitActiveSec=" in timer
    assert "systemctl enable --now mailmesh-uuxqt.timer" in written[
        "/usr/local/lib/mailmesh/hub-setup"].read_text()
    # The forced uucico (and the uuxqt and rmail it starts) inherit SIGTERM ignored.
    shell = written["/usr/local/lib/mailmesh/uucp-shell"].read_text()
    assert "trap '' TERM\nexec /usr/sbin/uucico -l -u" in shell
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    result = run([analyze, "verify", "--man=no",
                  str(written["/etc/systemd/system/mailmesh-uuxqt.service"]),
                  str(written["/etc/systemd/system/mailmesh-uuxqt.timer"])])
    bad = ("Unknown", "Invalid", "Failed to parse", "Missing", "ignoring")
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if any(word in line for word in bad)]
    assert not problems, result.stdout + result.stderr
