"""Render every file that lands on a machine: the hub's and each leaf's cloud-config.

Pure: plain values in, text out. The templates live in `cloud-init/` as files a reviewer can
read; each node's folder holds `cloud-config.yaml.j2` (everything but write_files) and
`files.yaml` (which files, from which template, with owner, mode and timing). The result is
parsed and dumped as YAML here, so quoting and indentation are never hand-made.
"""

from __future__ import annotations

import functools
import gzip
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from components.keys import SshKeyPair
from components.model import HubConfig, LeafConfig

TEMPLATES = Path(__file__).resolve().parent.parent / "cloud-init"
EC2_USER_DATA_LIMIT = 16 * 1024


@dataclass(frozen=True)
class Tuning:
    """How the UUCP link runs. The defaults are what `bash benchmarks/run` measured best on
    the lab (benchmarks/results/latest.md; README "Benchmarks"): leaf sendmail to hub mailbox
    in about 0.3 s instead of 1.4-2.3 s, none left for the next poll, bulk about 3 x faster."""

    # i: windowed, checked, both directions at once. t was no better; e (one stream per
    # file) cost about 2 s per call and a third of the bulk rate.
    protocol: str = "i"
    # A pty on the hub's side avoids a fixed 2 s sleep of uucico closing a non-tty port (it
    # delayed the end of every call, uuxqt and the leaf's next call). It needs `pty` in the
    # key's options (still `restrict`, `from=` and the forced command) and `PermitTTY yes`
    # for uucp; uucico puts the pty in raw mode (no echo, no signal keys) before it asks for
    # the password, and EscapeChar none keeps the client from cutting the stream.
    pty: bool = True
    # Postfix's uucp pipe: without -r, uux starts uucico to call the hub at once.
    uux_flags: str = "-n -z"
    # Instead, uux only queues (-r) and a systemd path unit starts the leaf's call service
    # whenever its queue for the hub is not empty, again after a call that ended with mail
    # queued during its close (uux's own uucico found the system locked and left such mail
    # for the next poll: a quarter of the messages sent one after another, measured).
    call_on_queue: bool = True
    free_space: int = 64 * 1024 * 1024
    # Extra lines of /etc/uucp/config on both ends. run-uuxqt 1: the hub's uucico starts
    # uuxqt for each message as it arrives, not once the call is over; max-uuxqts 4: up to
    # four of them hand mail to Postfix at once (uuxqt alone is serial). The leaf's calls run
    # with -q and deliver after the call, so there they change nothing.
    uucp_config_lines: tuple[str, ...] = ("run-uuxqt 1", "max-uuxqts 4")

    def sys_lines(self, command_path: str) -> list[str]:
        """The sys-entry lines both ends share, about what a call may do.

        No `sequence true`: Taylor's conversation counts live in each end's spool, so a
        rebuilt hub (or a rebuilt leaf) starts from zero while the other end does not, and
        every call after that fails with BADSEQ, for good (measured in the lab). They would
        only detect a caller with the leaf's key, source address and password: one that
        already is the leaf.
        """
        return [
            f"protocol {self.protocol}",
            "commands rmail",
            f"command-path {command_path}",
            "send-request no",
            f"free-space {self.free_space}",
            "max-remote-debug none",
        ]

    @property
    def leaf_sys_lines(self) -> list[str]:
        return self.sys_lines("/usr/sbin /usr/bin /bin")

    @property
    def hub_sys_lines(self) -> list[str]:
        # The hub's rmail checks that the calling leaf owns the envelope sender.
        return self.sys_lines("/usr/local/lib/mailmesh/bin")

    @property
    def key_options(self) -> str:
        return ",pty" if self.pty else ""


DEFAULT_TUNING = Tuning()

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


def render_hub_user_data(
    hub: HubConfig,
    host_key: SshKeyPair,
    admin_public_key: str,
    tuning: Tuning = DEFAULT_TUNING,
) -> str:
    """The hub's user-data; it does not depend on the leaves."""
    settings = {"sysLines": tuning.hub_sys_lines, "keyOptions": tuning.key_options}
    context = {
        "hub": hub,
        "host_key": host_key,
        "admin_public_key": admin_public_key,
        "tuning": tuning,
        "settings": settings,
        "relay_nexthop": relay_nexthop(hub),
        "relay_auth": bool(hub.relay and hub.relay.username),
    }
    return _cloud_config("hub", context)


def render_leaf_user_data(
    leaf: LeafConfig,
    hub: HubConfig,
    hub_address: str,
    hub_host_public_key: str,
    keypair: SshKeyPair,
    password: str,
    poll_interval: int,
    tuning: Tuning = DEFAULT_TUNING,
) -> str:
    context = {
        "leaf": leaf,
        "hub": hub,
        "hub_address": hub_address,
        "hub_host_public_key": hub_host_public_key,
        "keypair": keypair,
        "password": password,
        "poll_interval": poll_interval,
        "tuning": tuning,
        "call_on_queue": tuning.call_on_queue,
    }
    return _cloud_config("leaf", context)


def compress_user_data(user_data: str) -> bytes:
    """gzip as cloud-init reads it (EC2 counts its 16 KB after compression); mtime 0 keeps
    the bytes identical run after run."""
    return gzip.compress(user_data.encode(), compresslevel=9, mtime=0)


def relay_nexthop(hub: HubConfig) -> str:
    """Postfix relayhost form: brackets skip the MX lookup; IPv6 needs the ipv6: prefix."""
    if hub.relay is None:
        return ""
    host = hub.relay.host
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"ipv6:{host}"
    except ValueError:
        pass
    return f"[{host}]:{hub.relay.port}"


def _cloud_config(node: str, context: dict[str, Any]) -> str:
    template = _env.get_template(f"{node}/cloud-config.yaml.j2")
    config = yaml.load(template.render(context), Loader=_Loader)
    config["write_files"] = _write_files(node, context)
    body = yaml.dump(config, Dumper=_LiteralDumper, sort_keys=False, width=1000)
    return "#cloud-config\n" + body


@functools.cache
def _manifest(node: str) -> tuple[dict[str, Any], ...]:
    """files.yaml, read once per process (it is read-only here)."""
    return tuple(yaml.load((TEMPLATES / node / "files.yaml").read_text(), Loader=_Loader))


def _write_files(node: str, context: dict[str, Any]) -> list[dict[str, Any]]:
    entries = []
    for item in _manifest(node):
        if "when" in item and not context[item["when"]]:
            continue
        entry = {
            "path": item["path"],
            "owner": item.get("owner", "root:root"),
            "permissions": item["permissions"],
            "content": _env.get_template(f"{node}/{item['template']}").render(context),
        }
        if item.get("defer"):
            entry["defer"] = True
        entries.append(entry)
    return entries


# libyaml's parser and emitter when PyYAML has them (the wheels do): the same documents and
# the same bytes as the pure-Python ones (tests/test_render_speed.py compares them), about
# ten times faster, which is most of the offline render's time with hundreds of leaves.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _LiteralDumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Multi-line strings as `|` blocks, so the user-data reads like the files it writes."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_LiteralDumper.add_representer(str, _represent_str)
