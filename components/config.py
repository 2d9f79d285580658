"""Stack config -> `MeshConfig`: the one place that validates, and it reports everything at once.

`parse_mesh_config` takes the project's stack config as a plain mapping, keyed exactly as the
user writes it in `Pulumi.<stack>.yaml` without the `uucp-mailmesh:` prefix. Values may be
decoded already (dict, list, int, bool) or arrive as text, as Pulumi hands over non-string
config: JSON text for objects and lists, decimal text for integers, "true"/"false" for booleans.

Every problem found is collected; if there is any, one `ConfigError` lists them all in config
order, each with its path (`hub.adminCidrs[1]`, `leaves[2].domains[0]`), what is wrong and how
to fix it. Secret values (`keySeed`, `hub.relay.password`) never appear in a message.

Pure Python on purpose: no Pulumi import, so the tests and the offline render can use it.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.model import (
    DEFAULT_HUB_INSTANCE_TYPE,
    DEFAULT_LEAF_IMAGE,
    DEFAULT_LEAF_MACHINE_TYPE,
    DEFAULT_MESSAGE_SIZE_LIMIT,
    DEFAULT_POLL_INTERVAL,
    HubConfig,
    LeafConfig,
    MeshConfig,
    Relay,
    resource_name,
)

NAMESPACE = "uucp-mailmesh"

CONFIG_KEYS = ("hub", "leaves", "pollInterval", "keySeed")
HUB_KEYS = ("name", "instanceType", "image", "adminCidrs", "inbound", "relay", "messageSizeLimit")
RELAY_KEYS = ("host", "port", "username", "password")
LEAF_KEYS = ("name", "domains", "zone", "machineType", "image", "keyVersion")

MIN_KEY_SEED_LENGTH = 32
POLL_INTERVAL_MIN, POLL_INTERVAL_MAX = 10, 3600
MESSAGE_SIZE_MIN, MESSAGE_SIZE_MAX = 1024 * 1024, 1024 * 1024 * 1024
MAX_NAME_LENGTH = 63  # the GCE resource name (dots -> '-') must fit in 63 characters
MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
DEFAULT_RELAY_PORT = 587

KEY_SEED_FIX = 'create one with `pulumi config set --secret keySeed "$(openssl rand -base64 32)"`'

_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_INT_TEXT_RE = re.compile(r"[+-]?[0-9]+")
# ARM families: a1, and a 'g' after the generation digit (t4g, m7g, c7gn, r8gd, ...).
_GRAVITON_RE = re.compile(r"(a1|[a-z]+[0-9]+g[a-z]*)\.")
_INSTANCE_TYPE_RE = re.compile(r"[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9]+(?:-[a-z0-9]+)*")
_AMI_RE = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_ZONE_RE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]")
_REGION_RE = re.compile(r"[a-z]+-[a-z]+[0-9]+")
_MACHINE_TYPE_RE = re.compile(r"[a-z]+[0-9][a-z0-9]*(?:-[a-z0-9]+)+")
_GCE_PROJECT = r"[a-z][a-z0-9.:-]*[a-z0-9]"
_GCE_IMAGE_NAME = r"[a-z](?:[-a-z0-9]*[a-z0-9])?"
_GCE_IMAGE_SHORT_RE = re.compile(rf"{_GCE_PROJECT}/{_GCE_IMAGE_NAME}")
_GCE_IMAGE_URL_RE = re.compile(
    rf"https://(?:www|compute)\.googleapis\.com/compute/(?:v1|beta|alpha)/projects/"
    rf"{_GCE_PROJECT}/global/images/(?:family/)?{_GCE_IMAGE_NAME}"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

_NAME_EXAMPLE = "'mx.example.org'"
_CIDR_EXAMPLE = "'203.0.113.7/32'"


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the stack config: where, what, and how to fix it."""

    path: str  # e.g. 'hub.adminCidrs[1]', 'leaves[2].domains[0]', 'keySeed'
    message: str  # what is wrong; no trailing period
    fix: str  # what to do about it; no trailing period

    def __str__(self) -> str:
        return f"{NAMESPACE}:{self.path}: {self.message}. Fix: {self.fix}"


class ConfigError(ValueError):
    """The stack config is invalid; `problems` lists every problem found, in config order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        lines = [f"Stack config has {len(self.problems)} problem(s); nothing was created:"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def parse_mesh_config(raw: Mapping[str, Any]) -> MeshConfig:
    """Validate the raw stack config and build the `MeshConfig`, or raise `ConfigError`."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"raw stack config must be a mapping, not {type(raw).__name__}")
    problems = _Problems()
    top = _Object(problems, _Loc("", ()), raw, CONFIG_KEYS)

    hub, hub_name = _parse_hub(problems, top)
    leaves = _parse_leaves(problems, top)
    poll_interval = _read_int(
        top,
        "pollInterval",
        default=DEFAULT_POLL_INTERVAL,
        low=POLL_INTERVAL_MIN,
        high=POLL_INTERVAL_MAX,
        unit="seconds",
        example="pollInterval: 60",
    )
    key_seed = _parse_key_seed(problems, top)
    reported = _check_unique_names(problems, hub_name, leaves)
    _check_domains(problems, hub_name, leaves, reported)

    if problems:
        raise ConfigError(problems.in_config_order())
    assert hub is not None and key_seed is not None and isinstance(poll_interval, int)
    return MeshConfig(
        hub=hub,
        leaves=tuple(leaf.config for leaf in leaves if leaf.config is not None),
        key_seed=key_seed,
        poll_interval=poll_interval,
    )


# --------------------------------------------------------------------------- bookkeeping


class _Invalid:
    """Marks a value that was present but wrong (its problem is already recorded)."""

    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Any = _Invalid()


@dataclass(frozen=True)
class _Loc:
    """A place in the config: the user-facing path and a sort key in document order."""

    path: str
    order: tuple[int, ...]

    def child(self, key: str, position: int) -> _Loc:
        return _Loc(f"{self.path}.{key}" if self.path else key, (*self.order, position))

    def index(self, i: int) -> _Loc:
        return _Loc(f"{self.path}[{i}]", (*self.order, i))


class _Problems:
    def __init__(self) -> None:
        self._found: list[tuple[tuple[int, ...], int, Problem]] = []

    def add(self, loc: _Loc, message: str, fix: str) -> None:
        self._found.append((loc.order, len(self._found), Problem(loc.path, message, fix)))

    def __bool__(self) -> bool:
        return bool(self._found)

    def in_config_order(self) -> list[Problem]:
        return [problem for _, _, problem in sorted(self._found, key=lambda f: f[:2])]


class _Object:
    """A config object being read: knows its keys, reports unknown and missing ones."""

    def __init__(
        self, problems: _Problems, loc: _Loc, data: Mapping[Any, Any], schema: tuple[str, ...]
    ) -> None:
        self.problems = problems
        self.loc = loc
        self.schema = schema
        self.data = {str(key): value for key, value in data.items()}
        self._positions = {key: i for i, key in enumerate(self.data)}
        self._typo_targets: set[str] = set()
        for key in self.data:
            if key not in schema:
                self._unknown(key)

    def _unknown(self, key: str) -> None:
        allowed = ", ".join(self.schema)
        match = _did_you_mean(key, self.schema)
        if match is not None and match not in self.data:
            self._typo_targets.add(match)
        where = f"in {self.loc.path}" if self.loc.path else "at the top level"
        if match is None:
            fix = "remove it"
        elif match in self.data:
            fix = f"remove it; '{match}' is already set"
        else:
            fix = f"did you mean '{match}'? Rename it"
        self.problems.add(
            self.at(key), f"unknown key '{key}' {where}; allowed keys are: {allowed}", fix
        )

    def at(self, key: str) -> _Loc:
        position = self._positions.get(key)
        if position is None:  # missing keys sort after the present ones, in schema order
            position = len(self._positions) + self.schema.index(key)
        return self.loc.child(key, position)

    def get(self, key: str) -> Any:
        """The raw value, or None when the key is absent or null."""
        return self.data.get(key)

    def require(self, key: str, fix: str) -> Any:
        """The raw value; records a 'missing' problem (unless a typo explains it) when absent."""
        value = self.data.get(key)
        if value is None:
            if key not in self._typo_targets:  # the unknown-key problem already says "rename"
                what = "is missing" if key not in self.data else "is empty (null)"
                self.problems.add(self.at(key), what, fix)
            return _INVALID
        return value


def _did_you_mean(key: str, allowed: Sequence[str]) -> str | None:
    def squash(s: str) -> str:
        return s.lower().replace("_", "").replace("-", "")

    for candidate in allowed:  # snake_case, kebab-case or wrong case of a real key
        if squash(candidate) == squash(key):
            return candidate
    matches = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return matches[0] if matches else None


# --------------------------------------------------------------------------- value readers


def _show(value: str) -> str:
    """A non-secret string for a message: quoted, escaped, shortened."""
    if len(value) > 70:
        return f"{value[:60]!r}... ({len(value)} characters)"
    return repr(value)


def _describe(value: Any, *, show_value: bool) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}" if show_value else "a boolean"
    if isinstance(value, int):
        return f"the integer {value}" if show_value else "an integer"
    if isinstance(value, float):
        return f"the number {value!r}" if show_value else "a number with a decimal point"
    if isinstance(value, str):
        return f"the string {_show(value)}" if show_value else "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _wrong_type(
    problems: _Problems,
    loc: _Loc,
    value: Any,
    expected: str,
    example: str,
    *,
    show_value: bool = True,
) -> Any:
    problems.add(
        loc,
        f"must be {expected}, not {_describe(value, show_value=show_value)}",
        f"write it as {expected}, e.g. {example}",
    )
    return _INVALID


def _decode_json_text(
    problems: _Problems, loc: _Loc, text: str, expected: str, example: str
) -> Any:
    """Pulumi hands structured config over as JSON text: decode it, never echoing it.

    The caller checks the decoded type; text that is no JSON object or list is a wrong type.
    """
    if not text.lstrip().startswith(("{", "[")):
        return _wrong_type(problems, loc, text, expected, example, show_value=False)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        problems.add(
            loc,
            f"is text that is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})",
            f"write it as {expected}, e.g. {example}",
        )
        return _INVALID


def _as_object(problems: _Problems, loc: _Loc, value: Any, example: str) -> Any:
    expected = "an object"
    if isinstance(value, str):
        value = _decode_json_text(problems, loc, value, expected, example)
        if value is _INVALID:
            return _INVALID
    if not isinstance(value, Mapping):
        return _wrong_type(problems, loc, value, expected, example, show_value=False)
    return value


def _as_list(
    problems: _Problems,
    loc: _Loc,
    value: Any,
    expected: str,
    example: str,
    *,
    of_strings: bool = True,
) -> Any:
    if of_strings and isinstance(value, str) and not value.lstrip().startswith("["):
        # A lone item where a list belongs (not secret: no list here holds secrets).
        key = loc.path.rsplit(".", 1)[-1]
        problems.add(
            loc,
            f"must be {expected}, not the single string {_show(value)}",
            f"write it as a list, e.g. {key}: [{json.dumps(value)}]",
        )
        return _INVALID
    if isinstance(value, str):
        value = _decode_json_text(problems, loc, value, expected, example)
        if value is _INVALID:
            return _INVALID
    if not isinstance(value, list | tuple):
        return _wrong_type(problems, loc, value, expected, example, show_value=False)
    return list(value)


def _as_int(problems: _Problems, loc: _Loc, value: Any, example: str) -> Any:
    if isinstance(value, str) and _INT_TEXT_RE.fullmatch(value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return _wrong_type(problems, loc, value, "an integer", example)
    return value


def _as_bool(problems: _Problems, loc: _Loc, value: Any, example: str) -> Any:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    return _wrong_type(problems, loc, value, "true or false", example)


def _as_str(
    problems: _Problems, loc: _Loc, value: Any, example: str, *, secret: bool = False
) -> Any:
    if not isinstance(value, str):
        return _wrong_type(problems, loc, value, "a string", example, show_value=not secret)
    if not value.strip():
        problems.add(loc, "is empty", f"give a value, e.g. {example}")
        return _INVALID
    return value


def _read_int(
    obj: _Object,
    key: str,
    *,
    default: int,
    low: int,
    high: int | None,
    unit: str,
    example: str,
) -> Any:
    raw = obj.get(key)
    if raw is None:
        return default
    loc = obj.at(key)
    value = _as_int(obj.problems, loc, raw, example)
    if value is _INVALID:
        return _INVALID
    if value < low or (high is not None and value > high):
        if high is None:
            allowed = f"at least {_amount(low, unit)}"
        else:
            allowed = f"between {_amount(low, unit)} and {_amount(high, unit)}"
        obj.problems.add(loc, f"is {value}; it must be {allowed}", f"use e.g. {example}")
        return _INVALID
    return value


def _amount(n: int, unit: str) -> str:
    if unit == "bytes":
        for size, name in ((1024**3, "GiB"), (1024**2, "MiB")):
            if n % size == 0:
                return f"{n} bytes ({n // size} {name})"
    return f"{n} {unit}".rstrip()


# --------------------------------------------------------------------------- DNS names


def _dns_reasons(value: str, *, node_name: bool) -> list[str]:
    """What makes `value` an invalid lowercase DNS name (node name) or domain; [] if valid."""
    if not value.strip():
        return ["it is empty"]
    reasons: list[str] = []
    if value != value.strip():
        reasons.append("it has leading or trailing spaces")
    if any(c.isupper() for c in value):
        reasons.append("it contains upper case letters")
    if " " in value.strip() or "\t" in value:
        reasons.append("it contains spaces")
    if "_" in value:
        reasons.append("it contains underscores")
    if "*" in value:
        reasons.append("wildcards are not supported")
    allowed = set(string.ascii_lowercase + string.digits + "-. _*\t")
    other = sorted({c for c in value.lower() if c not in allowed})
    if other:
        reasons.append(f"it contains {''.join(other)!r}; only a-z, 0-9, '-' and '.' are allowed")
    stripped = value.strip()
    if stripped.endswith("."):
        reasons.append("it ends with a dot (write it without the trailing dot)")
    if stripped.startswith(".") or ".." in stripped:
        reasons.append("it has an empty label")
    labels = [label for label in stripped.rstrip(".").split(".") if label]
    for label in labels:
        if label.startswith("-") or label.endswith("-"):
            reasons.append(f"its label {label!r} starts or ends with '-'")
        if len(label) > MAX_LABEL_LENGTH:
            reasons.append(f"a label is {len(label)} characters long; at most 63 are allowed")
    if len(labels) < 2:
        reasons.append(
            "it is not fully qualified: it needs at least two labels, like 'example.org'"
        )
    elif labels[-1].isdigit():
        reasons.append("its last label is all digits, like an IP address")
    if node_name:
        if len(value) > MAX_NAME_LENGTH:
            reasons.append(
                f"it is {len(value)} characters long; a node name may have at most "
                f"{MAX_NAME_LENGTH} because its GCE resource name (dots turned into '-') "
                f"must fit in {MAX_NAME_LENGTH}"
            )
        if stripped[:1].isdigit():
            reasons.append("it starts with a digit; GCE resource names must start with a letter")
    elif len(value) > MAX_DOMAIN_LENGTH:
        reasons.append(
            f"it is {len(value)} characters long; at most {MAX_DOMAIN_LENGTH} are allowed"
        )
    return reasons


def _dns_suggestion(value: str, *, node_name: bool) -> str | None:
    """A corrected spelling of `value`, if an obvious one is valid."""
    s = value.strip().lower().rstrip(".")
    s = re.sub(r"[\s_]+", "-", s)
    s = re.sub(r"[^a-z0-9.-]", "", s)
    s = ".".join(label.strip("-") for label in s.split(".") if label.strip("-"))
    if node_name and s[:1].isdigit():
        s = f"n{s}"
    if s and s != value and not _dns_reasons(s, node_name=node_name):
        return s
    return None


def _qualified_suggestion(value: str, *, node_name: bool) -> str | None:
    """For a single-label value: the fully qualified form an example domain would give."""
    if "." in value.strip().strip("."):
        return None
    candidate = value + ".example.org"
    if not _dns_reasons(candidate, node_name=node_name):
        return candidate
    return _dns_suggestion(candidate, node_name=node_name)


def _read_dns(problems: _Problems, loc: _Loc, raw: Any, *, node_name: bool, example: str) -> Any:
    value = _as_str(problems, loc, raw, example)
    if value is _INVALID:
        return _INVALID
    reasons = _dns_reasons(value, node_name=node_name)
    if not reasons:
        return value
    kind = "node name" if node_name else "domain name"
    suggestion = _dns_suggestion(value, node_name=node_name)
    qualified = _qualified_suggestion(value, node_name=node_name)
    if suggestion is not None:
        fix = f"use {_show(suggestion)}"
    elif qualified is not None:
        fix = f"use a fully qualified name in a domain you control, e.g. {_show(qualified)}"
    elif node_name and len(value) > MAX_NAME_LENGTH:
        fix = f"choose a shorter name, at most {MAX_NAME_LENGTH} characters counting the dots"
    else:
        rules = "lowercase labels of a-z, 0-9 and '-' (not at either end), joined by dots"
        if node_name:
            rules += ", starting with a letter"
        fix = f"use {rules}, e.g. {example}"
    problems.add(loc, f"{_show(value)} is not a valid {kind}: " + "; ".join(reasons), fix)
    return _INVALID


# --------------------------------------------------------------------------- hub


def _parse_hub(problems: _Problems, top: _Object) -> tuple[HubConfig | None, _Named | None]:
    raw = top.require(
        "hub",
        "add the hub: `pulumi config set --path 'hub.name' mx.example.org` and "
        "`pulumi config set --path 'hub.adminCidrs[0]' 203.0.113.7/32`",
    )
    if raw is _INVALID:
        return None, None
    loc = top.at("hub")
    data = _as_object(problems, loc, raw, "hub: {name: mx.example.org, adminCidrs: [...]}")
    if data is _INVALID:
        return None, None
    hub = _Object(problems, loc, data, HUB_KEYS)

    name = hub.require("name", "set it: `pulumi config set --path 'hub.name' mx.example.org`")
    if name is not _INVALID:
        name = _read_dns(problems, hub.at("name"), name, node_name=True, example=_NAME_EXAMPLE)

    instance_type = _read_pattern(
        hub,
        "instanceType",
        _INSTANCE_TYPE_RE,
        default=DEFAULT_HUB_INSTANCE_TYPE,
        what="an EC2 instance type",
        example="'t3.small' or 'm7i.large'",
    )
    image = _read_pattern(
        hub,
        "image",
        _AMI_RE,
        default=None,
        what="an AMI id ('ami-' and 8 or 17 hex digits)",
        example="'ami-0123456789abcdef0' from the hub's region, or remove hub.image to use "
        "the newest Ubuntu 24.04 LTS",
    )
    if image is None and instance_type is not _INVALID and _GRAVITON_RE.match(instance_type):
        problems.add(
            hub.at("instanceType"),
            f"{_show(instance_type)} is an ARM (Graviton) type, but the default image is the "
            "amd64 Ubuntu 24.04 LTS AMI, which it cannot boot",
            "choose an x86 type such as 't3.small', or set hub.image to an arm64 AMI",
        )
    admin_cidrs = _parse_admin_cidrs(problems, hub)
    inbound = True
    if hub.get("inbound") is not None:
        inbound = _as_bool(problems, hub.at("inbound"), hub.get("inbound"), "inbound: true")
    relay = _parse_relay(problems, hub)
    size_limit = _read_int(
        hub,
        "messageSizeLimit",
        default=DEFAULT_MESSAGE_SIZE_LIMIT,
        low=MESSAGE_SIZE_MIN,
        high=MESSAGE_SIZE_MAX,
        unit="bytes",
        example=f"messageSizeLimit: {DEFAULT_MESSAGE_SIZE_LIMIT} (25 MiB)",
    )

    named = None if name is _INVALID else _Named(name, hub.at("name"))
    fields = (name, instance_type, image, admin_cidrs, inbound, relay, size_limit)
    if any(value is _INVALID for value in fields):
        return None, named
    config = HubConfig(
        name=name,
        admin_cidrs=admin_cidrs,
        instance_type=instance_type,
        image=image,
        inbound=inbound,
        relay=relay,
        message_size_limit=size_limit,
    )
    return config, named


def _read_pattern(
    obj: _Object, key: str, pattern: re.Pattern[str], *, default: Any, what: str, example: str
) -> Any:
    raw = obj.get(key)
    if raw is None:
        return default
    loc = obj.at(key)
    value = _as_str(obj.problems, loc, raw, example)
    if value is _INVALID or pattern.fullmatch(value):
        return value
    lowered = value.strip().lower()
    fix = f"use {_show(lowered)}" if pattern.fullmatch(lowered) else f"use e.g. {example}"
    obj.problems.add(loc, f"{_show(value)} is not {what}", fix)
    return _INVALID


def _parse_admin_cidrs(problems: _Problems, hub: _Object) -> Any:
    fix = (
        "list the operators' addresses: "
        "`pulumi config set --path 'hub.adminCidrs[0]' 203.0.113.7/32`"
    )
    raw = hub.require("adminCidrs", fix)
    if raw is _INVALID:
        return _INVALID
    loc = hub.at("adminCidrs")
    items = _as_list(problems, loc, raw, "a list of CIDR strings", 'adminCidrs: ["203.0.113.7/32"]')
    if items is _INVALID:
        return _INVALID
    if not items:
        problems.add(loc, "is empty; no operator could reach the hub to administer it", fix)
        return _INVALID
    cidrs = [_read_cidr(problems, loc.index(i), item) for i, item in enumerate(items)]
    if any(cidr is _INVALID for cidr in cidrs):
        return _INVALID
    return tuple(cidrs)


def _read_cidr(problems: _Problems, loc: _Loc, raw: Any) -> Any:
    value = _as_str(problems, loc, raw, _CIDR_EXAMPLE)
    if value is _INVALID:
        return _INVALID
    try:
        if "%" in value:  # scoped IPv6 addresses mean nothing to a security group
            raise ValueError(value)
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            problems.add(
                loc,
                f"{_show(value)} is not an IPv4 or IPv6 CIDR",
                f"write an address with a prefix length, e.g. {_CIDR_EXAMPLE} or '2001:db8::/48'",
            )
            return _INVALID
        host = value.split("/")[0]
        problems.add(
            loc,
            f"{_show(value)} has host bits set: the network it lies in is {str(loose)!r}",
            f"write the network form {str(loose)!r}, or '{host}/{loose.max_prefixlen}' "
            "for just that one address",
        )
        return _INVALID
    if network.prefixlen == 0:
        problems.add(
            loc,
            f"{_show(value)} would open the hub's administrative access to the whole Internet",
            f"list the operators' own addresses or networks instead, e.g. {_CIDR_EXAMPLE}",
        )
        return _INVALID
    return str(network)


def _parse_relay(problems: _Problems, hub: _Object) -> Any:
    raw = hub.get("relay")
    if raw is None:
        return None
    loc = hub.at("relay")
    data = _as_object(problems, loc, raw, "relay: {host: smtp.example.net, port: 587}")
    if data is _INVALID:
        return _INVALID
    relay = _Object(problems, loc, data, RELAY_KEYS)

    host = relay.require(
        "host", "set it: `pulumi config set --path 'hub.relay.host' smtp.example.net`"
    )
    if host is not _INVALID:
        host = _read_host(problems, relay.at("host"), host)
    port = _read_int(
        relay, "port", default=DEFAULT_RELAY_PORT, low=1, high=65535, unit="", example="port: 587"
    )

    username = relay.get("username")
    if username is not None:
        username = _as_str(problems, relay.at("username"), username, "username: mailer@example.net")
    if isinstance(username, str) and (":" in username or _CONTROL_RE.search(username)):
        problems.add(
            relay.at("username"),
            f"{_show(username)} contains a ':' or a control character, which Postfix's "
            "sasl_passwd cannot hold",
            "use the plain SASL login name the relay provider gave you",
        )
        username = _INVALID
    password = relay.get("password")
    if password is not None:
        password = _as_str(problems, relay.at("password"), password, "a secret string", secret=True)
    if isinstance(password, str) and _CONTROL_RE.search(password):
        problems.add(
            relay.at("password"),
            "contains a line break or another control character, which Postfix's "
            "sasl_passwd cannot hold",
            "set it again without the trailing newline: "
            "`pulumi config set --secret --path 'hub.relay.password' '<password>'`",
        )
        password = _INVALID

    if relay.get("username") is not None and relay.get("password") is None:
        problems.add(
            relay.at("password"),
            "is missing but hub.relay.username is set; SASL needs both",
            "set it as a secret: `pulumi config set --secret --path 'hub.relay.password' "
            "'<password>'`, or remove hub.relay.username to relay without authentication",
        )
        password = _INVALID
    elif relay.get("password") is not None and relay.get("username") is None:
        problems.add(
            relay.at("username"),
            "is missing but hub.relay.password is set; SASL needs both",
            "set it: `pulumi config set --path 'hub.relay.username' '<login>'`, or remove "
            "hub.relay.password to relay without authentication",
        )
        username = _INVALID

    if any(value is _INVALID for value in (host, port, username, password)):
        return _INVALID
    return Relay(host=host, port=port, username=username, password=password)


def _read_host(problems: _Problems, loc: _Loc, raw: Any) -> Any:
    example = "'smtp.example.net' or '192.0.2.25'"
    value = _as_str(problems, loc, raw, example)
    if value is _INVALID:
        return _INVALID
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if value.startswith("[") or value.endswith("]"):
        problems.add(
            loc,
            f"{_show(value)} is in brackets",
            "write the bare host name or address; the hub adds Postfix's brackets itself",
        )
        return _INVALID
    head, sep, tail = value.rpartition(":")
    if sep and tail.isdigit() and ":" not in head:
        problems.add(
            loc,
            f"{_show(value)} includes a port",
            f"put {_show(head)} in hub.relay.host and {tail} in hub.relay.port",
        )
        return _INVALID
    labels = value.split(".")
    valid = (
        len(value) <= MAX_DOMAIN_LENGTH
        and all(_HOST_LABEL_RE.fullmatch(label) and len(label) <= 63 for label in labels)
        and not labels[-1].isdigit()
    )
    if not valid:
        problems.add(
            loc,
            f"{_show(value)} is neither a DNS host name nor an IP address",
            f"use the relay's host name or address, e.g. {example}",
        )
        return _INVALID
    return value


# --------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class _Named:
    """A valid name or domain and where it was written."""

    value: str
    loc: _Loc
    owner: str = ""  # how to name its place in a message; defaults to loc.path

    def where(self) -> str:
        return self.owner or self.loc.path


@dataclass(frozen=True)
class _LeafDraft:
    name: _Named | None
    domains: tuple[_Named, ...]
    domains_defaulted: bool
    config: LeafConfig | None


def _parse_leaves(problems: _Problems, top: _Object) -> list[_LeafDraft]:
    raw = top.require(
        "leaves",
        "add `leaves: []` under the uucp-mailmesh config, or a first leaf: "
        "`pulumi config set --path 'leaves[0].name' alpha.example.org` and "
        "`pulumi config set --path 'leaves[0].zone' europe-west1-b`",
    )
    if raw is _INVALID:
        return []
    example = "leaves: [{name: alpha.example.org, zone: europe-west1-b}]"
    items = _as_list(
        problems, top.at("leaves"), raw, "a list of leaf objects", example, of_strings=False
    )
    if items is _INVALID:
        return []
    leaves = top.at("leaves")
    return [_parse_leaf(problems, leaves.index(i), item) for i, item in enumerate(items)]


def _parse_leaf(problems: _Problems, loc: _Loc, raw: Any) -> _LeafDraft:
    failed = _LeafDraft(None, (), False, None)
    data = _as_object(problems, loc, raw, "{name: alpha.example.org, zone: europe-west1-b}")
    if data is _INVALID:
        return failed
    leaf = _Object(problems, loc, data, LEAF_KEYS)
    index = loc.path

    name = leaf.require(
        "name", f"set it: `pulumi config set --path '{index}.name' alpha.example.org`"
    )
    if name is not _INVALID:
        name = _read_dns(
            problems, leaf.at("name"), name, node_name=True, example="'alpha.example.org'"
        )
    named = None if name is _INVALID else _Named(name, leaf.at("name"))

    domains, domains_ok, defaulted = _parse_domains(problems, leaf, named)

    zone = leaf.require("zone", f"set it: `pulumi config set --path '{index}.zone' europe-west1-b`")
    if zone is not _INVALID:
        zone = _read_zone(problems, leaf.at("zone"), zone)
    machine_type = _read_pattern(
        leaf,
        "machineType",
        _MACHINE_TYPE_RE,
        default=DEFAULT_LEAF_MACHINE_TYPE,
        what="a GCE machine type",
        example="'e2-small', 'n2-standard-4' or 'e2-custom-2-4096'",
    )
    image = _read_leaf_image(leaf)
    key_version = _read_int(
        leaf, "keyVersion", default=1, low=1, high=None, unit="", example="keyVersion: 2"
    )

    fields = (name, zone, machine_type, image, key_version)
    config = None
    if domains_ok and not any(value is _INVALID for value in fields):
        config = LeafConfig(
            name=name,
            zone=zone,
            domains=tuple(d.value for d in domains),
            machine_type=machine_type,
            image=image,
            key_version=key_version,
        )
    return _LeafDraft(named, tuple(domains), defaulted, config)


def _parse_domains(
    problems: _Problems, leaf: _Object, name: _Named | None
) -> tuple[list[_Named], bool, bool]:
    """The leaf's valid domains, whether all were valid, and whether they default to the name.

    The valid ones are returned even when some entries are bad, for the checks across leaves.
    """
    raw = leaf.get("domains")
    if raw is None:
        if name is None:
            return [], False, True
        owner = f"{name.loc.path} (domains is not set, so the name is the leaf's domain)"
        return [_Named(name.value, leaf.at("domains"), owner)], True, True
    loc = leaf.at("domains")
    example = 'domains: ["example.org", "lists.example.org"]'
    items = _as_list(problems, loc, raw, "a list of domain names", example)
    if items is _INVALID:
        return [], False, False
    if not items:
        problems.add(
            loc,
            "is empty; the leaf would receive no mail",
            f"list its domains, e.g. {example}, or remove domains to use the leaf's name",
        )
        return [], False, False
    domains = []
    for i, item in enumerate(items):
        value = _read_dns(problems, loc.index(i), item, node_name=False, example="'example.org'")
        if value is not _INVALID:
            domains.append(_Named(value, loc.index(i)))
    return domains, len(domains) == len(items), False


def _read_zone(problems: _Problems, loc: _Loc, raw: Any) -> Any:
    example = "'europe-west1-b' or 'us-central1-a'"
    value = _as_str(problems, loc, raw, example)
    if value is _INVALID or _ZONE_RE.fullmatch(value):
        return value
    lowered = value.strip().lower()
    if _ZONE_RE.fullmatch(lowered):
        fix = f"use {_show(lowered)}"
    elif _REGION_RE.fullmatch(lowered):
        fix = f"add the zone letter, e.g. {_show(lowered + '-b')}"
        problems.add(loc, f"{_show(value)} is a GCE region, not a zone", fix)
        return _INVALID
    else:
        fix = f"use a GCE zone, e.g. {example} (`gcloud compute zones list`)"
    problems.add(loc, f"{_show(value)} is not a GCE zone", fix)
    return _INVALID


def _read_leaf_image(leaf: _Object) -> Any:
    raw = leaf.get("image")
    if raw is None:
        return DEFAULT_LEAF_IMAGE
    loc = leaf.at("image")
    example = f"'{DEFAULT_LEAF_IMAGE}'"
    value = _as_str(leaf.problems, loc, raw, example)
    if value is _INVALID:
        return _INVALID
    if _GCE_IMAGE_SHORT_RE.fullmatch(value) or _GCE_IMAGE_URL_RE.fullmatch(value):
        return value
    leaf.problems.add(
        loc,
        f"{_show(value)} is not a GCE image: expected 'project/family-or-image' or a full "
        "https://www.googleapis.com/compute/v1/projects/... image URL",
        f"use e.g. {example}, or remove image to use that default",
    )
    return _INVALID


# --------------------------------------------------------------------------- key seed


def _parse_key_seed(problems: _Problems, top: _Object) -> Any:
    raw = top.require("keySeed", KEY_SEED_FIX)
    if raw is _INVALID:
        return None
    loc = top.at("keySeed")
    if not isinstance(raw, str):
        _wrong_type(problems, loc, raw, "a secret string", "a base64 string", show_value=False)
        return None
    if len(raw) < MIN_KEY_SEED_LENGTH:
        problems.add(
            loc,
            f"is {len(raw)} characters long; at least {MIN_KEY_SEED_LENGTH} are needed",
            KEY_SEED_FIX,
        )
        return None
    return raw


# --------------------------------------------------------------------------- cross-checks


def _check_unique_names(
    problems: _Problems, hub_name: _Named | None, leaves: list[_LeafDraft]
) -> set[str]:
    """Names must differ, also after dots become hyphens (their cloud resource names).

    Returns the paths of the names reported.
    """
    reported: set[str] = set()
    by_name: dict[str, _Named] = {}
    by_resource: dict[str, _Named] = {}
    for named in [hub_name, *(leaf.name for leaf in leaves)]:
        if named is None:
            continue
        first = by_name.get(named.value)
        rname = resource_name(named.value)
        first_resource = by_resource.get(rname)
        if first is not None or first_resource is not None:
            reported.add(named.loc.path)
        if first is not None:
            problems.add(
                named.loc,
                f"{_show(named.value)} is already used by {first.where()}",
                "give the hub and every leaf a name of its own",
            )
        elif first_resource is not None:
            problems.add(
                named.loc,
                f"{_show(named.value)} collides with {first_resource.where()} "
                f"{_show(first_resource.value)}: both become the cloud resource name "
                f"{_show(rname)} once dots are turned into '-'",
                "rename one of them so they still differ with dots replaced by '-'",
            )
        else:
            by_name[named.value] = named
            by_resource[rname] = named
    return reported


def _check_domains(
    problems: _Problems,
    hub_name: _Named | None,
    leaves: list[_LeafDraft],
    reported_names: set[str],
) -> None:
    """Each mail domain belongs to one leaf, and never is the hub's own name."""
    owners: dict[str, _Named] = {}
    for leaf in leaves:
        prefix = ""
        if leaf.domains_defaulted:
            if leaf.name is not None and leaf.name.loc.path in reported_names:
                continue  # the clash is already reported at the name
            prefix = "is not set, so it defaults to the leaf's name, but "
        for domain in leaf.domains:
            if hub_name is not None and domain.value == hub_name.value:
                problems.add(
                    domain.loc,
                    f"{prefix}{_show(domain.value)} is the hub's own name (hub.name), "
                    "which the hub delivers locally",
                    "remove it from the leaf; mail for the hub's name stays on the hub",
                )
            elif domain.value in owners:
                first = owners[domain.value]
                problems.add(
                    domain.loc,
                    f"{prefix}{_show(domain.value)} is already claimed by {first.where()}",
                    "give each domain to one leaf only: remove one of the two entries",
                )
            else:
                owners[domain.value] = domain
