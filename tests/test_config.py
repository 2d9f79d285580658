"""Specification of the stack config: what `parse_mesh_config` accepts, builds and refuses.

A bad config is refused as a whole: one `ConfigError` lists every problem with its path (as
in `pulumi config set --path`), what is wrong and how to fix it, and never a secret value.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError, Problem, parse_mesh_config
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
)

SEED = "seed-for-tests-only-0123456789abcdefghij"  # 40 characters
RELAY_PASSWORD = "relay-password-Xq7"
KEY_SEED_COMMAND = 'pulumi config set --secret keySeed "$(openssl rand -base64 32)"'
MiB = 1024 * 1024
DELETE = object()


def minimal() -> dict[str, Any]:
    return {
        "hub": {"name": "mx.example.org", "adminCidrs": ["203.0.113.7/32"]},
        "leaves": [
            {"name": "alpha.example.org", "zone": "europe-west1-b"},
            {
                "name": "beta.example.net",
                "zone": "us-central1-a",
                "domains": ["example.net", "lists.example.net"],
            },
        ],
        "keySeed": SEED,
    }


def changed(changes: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of the minimal config with `pulumi config set --path`-style paths set (or deleted)."""
    config = copy.deepcopy(minimal() if base is None else base)
    for path, value in changes.items():
        tokens = [name or int(index) for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]
        node: Any = config
        for token in tokens[:-1]:
            node = node[token]
        if value is DELETE:
            del node[tokens[-1]]
        else:
            node[tokens[-1]] = value
    return config


def problems_of(raw: dict[str, Any]) -> tuple[Problem, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_mesh_config(raw)
    return caught.value.problems


# ------------------------------------------------------------------------- valid configs


def test_minimal_config_gets_the_documented_defaults():
    mesh = parse_mesh_config(minimal())

    assert mesh.hub == HubConfig(
        name="mx.example.org",
        admin_cidrs=("203.0.113.7/32",),
        instance_type=DEFAULT_HUB_INSTANCE_TYPE,
        image=None,
        inbound=True,
        relay=None,
        message_size_limit=DEFAULT_MESSAGE_SIZE_LIMIT,
    )
    assert mesh.hub.instance_type == "t3.small"
    assert mesh.hub.message_size_limit == 25 * MiB
    alpha, beta = mesh.leaves
    assert alpha == LeafConfig(
        name="alpha.example.org",
        zone="europe-west1-b",
        domains=("alpha.example.org",),  # a leaf's domain defaults to its name
        machine_type=DEFAULT_LEAF_MACHINE_TYPE,
        image=DEFAULT_LEAF_IMAGE,
        key_version=1,
    )
    assert alpha.machine_type == "e2-small"
    assert alpha.image == "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
    assert beta.domains == ("example.net", "lists.example.net")
    assert mesh.poll_interval == DEFAULT_POLL_INTERVAL == 60
    assert mesh.key_seed == SEED


def test_full_config_maps_every_field():
    raw = {
        "hub": {
            "name": "hub.mail.example.org",
            "instanceType": "m7g.large",
            "image": "ami-0123456789abcdef0",
            "adminCidrs": ["203.0.113.0/24", "2001:db8::/48"],
            "inbound": False,
            "relay": {
                "host": "smtp.relay.example.net",
                "port": 2525,
                "username": "mailer@example.org",
                "password": RELAY_PASSWORD,
            },
            "messageSizeLimit": 50 * MiB,
        },
        "leaves": [
            {
                "name": "gamma.example.com",
                "domains": ["example.com", "example.info"],
                "zone": "asia-northeast1-c",
                "machineType": "e2-custom-2-4096",
                "image": "debian-cloud/debian-12",
                "keyVersion": 3,
            },
            {
                "name": "delta.example.com",
                "zone": "us-east4-a",
                "machineType": "n2-standard-4",
                "image": "https://www.googleapis.com/compute/v1/projects/ubuntu-os-cloud"
                "/global/images/family/ubuntu-2404-lts-amd64",
            },
        ],
        "pollInterval": 300,
        "keySeed": SEED,
    }

    assert parse_mesh_config(raw) == MeshConfig(
        hub=HubConfig(
            name="hub.mail.example.org",
            admin_cidrs=("203.0.113.0/24", "2001:db8::/48"),
            instance_type="m7g.large",
            image="ami-0123456789abcdef0",
            inbound=False,
            relay=Relay(
                host="smtp.relay.example.net",
                port=2525,
                username="mailer@example.org",
                password=RELAY_PASSWORD,
            ),
            message_size_limit=50 * MiB,
        ),
        leaves=(
            LeafConfig(
                name="gamma.example.com",
                zone="asia-northeast1-c",
                domains=("example.com", "example.info"),
                machine_type="e2-custom-2-4096",
                image="debian-cloud/debian-12",
                key_version=3,
            ),
            LeafConfig(
                name="delta.example.com",
                zone="us-east4-a",
                domains=("delta.example.com",),
                machine_type="n2-standard-4",
                image="https://www.googleapis.com/compute/v1/projects/ubuntu-os-cloud"
                "/global/images/family/ubuntu-2404-lts-amd64",
            ),
        ),
        key_seed=SEED,
        poll_interval=300,
    )


def test_values_pulumi_delivers_as_text_are_decoded():
    """Pulumi hands non-string config over as JSON text; decimal and true/false text too."""
    raw = {
        "hub": '{"name": "mx.example.org", "adminCidrs": ["203.0.113.7/32"], "inbound": "false",'
        ' "relay": {"host": "192.0.2.25", "port": "2525"}, "messageSizeLimit": "10485760"}',
        "leaves": '[{"name": "alpha.example.org", "zone": "europe-west1-b", "keyVersion": "2"}]',
        "pollInterval": "120",
        "keySeed": SEED,
    }

    mesh = parse_mesh_config(raw)

    assert mesh.hub.inbound is False
    assert mesh.hub.relay == Relay(host="192.0.2.25", port=2525)
    assert mesh.hub.message_size_limit == 10 * MiB
    assert mesh.leaves[0].key_version == 2
    assert mesh.poll_interval == 120


def test_relay_defaults_to_port_587_without_authentication():
    mesh = parse_mesh_config(changed({"hub.relay": {"host": "smtp.example.net"}}))

    assert mesh.hub.relay == Relay(host="smtp.example.net", port=587, username=None, password=None)


def test_collections_are_tuples_and_cidrs_are_normalised():
    mesh = parse_mesh_config(changed({"hub.adminCidrs": ["203.0.113.7", "2001:DB8:0::/48"]}))

    assert mesh.hub.admin_cidrs == ("203.0.113.7/32", "2001:db8::/48")
    assert isinstance(mesh.leaves, tuple)
    assert all(isinstance(leaf.domains, tuple) for leaf in mesh.leaves)


def test_a_mesh_may_have_no_leaves_yet():
    assert parse_mesh_config(changed({"leaves": []})).leaves == ()
    assert parse_mesh_config(changed({"leaves": "[]"})).leaves == ()


def test_boundary_values_are_accepted():
    raw = changed(
        {
            "pollInterval": 3600,
            "hub.messageSizeLimit": 1024 * MiB,
            "hub.relay": {"host": "2001:db8::25", "port": 65535},
            "leaves[0].name": "a" * 59 + ".org",  # exactly 63 characters
            "keySeed": "k" * 32,
        }
    )

    mesh = parse_mesh_config(raw)

    assert mesh.poll_interval == 3600
    assert mesh.hub.relay is not None and mesh.hub.relay.port == 65535
    assert len(mesh.leaves[0].name) == 63


def test_the_parser_is_pure_python_without_pulumi():
    source = Path(__file__).parents[1] / "components" / "config.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not {name for name in imported if name.startswith("pulumi")}


# ------------------------------------------------------------------------- malformed configs


def bad(case_id: str, changes: dict[str, Any], path: str, message: str, fix: str = ""):
    """One malformed config: it must yield exactly one problem, at `path`, saying `message`."""
    return pytest.param(changes, path, message, fix, id=case_id)


MALFORMED = [
    # --- names
    bad(
        "duplicate-leaf-names",
        {"leaves[1].name": "alpha.example.org"},
        "leaves[1].name",
        "'alpha.example.org' is already used by leaves[0].name",
    ),
    bad(
        "hub-name-equals-a-leaf-name",
        {"leaves[0].name": "mx.example.org"},
        "leaves[0].name",
        "is already used by hub.name",
    ),
    bad(
        "name-collision-after-dots-become-hyphens",
        {"leaves[0].name": "a-b.example.org", "leaves[1].name": "a.b-example.org"},
        "leaves[1].name",
        "both become the cloud resource name 'a-b-example-org'",
    ),
    bad(
        "name-in-upper-case",
        {"hub.name": "MX.Example.org"},
        "hub.name",
        "contains upper case letters",
        "use 'mx.example.org'",
    ),
    bad(
        "name-with-spaces",
        {"leaves[0].name": "alpha one.example.org"},
        "leaves[0].name",
        "contains spaces",
        "use 'alpha-one.example.org'",
    ),
    bad(
        "name-with-underscore",
        {"leaves[0].name": "alpha_1.example.org"},
        "leaves[0].name",
        "contains underscores",
        "use 'alpha-1.example.org'",
    ),
    bad(
        "name-over-63-characters",
        {"leaves[0].name": "a" * 30 + "." + "b" * 30 + ".org"},
        "leaves[0].name",
        "it is 65 characters long; a node name may have at most 63",
        "choose a shorter name",
    ),
    bad(
        "name-starting-with-a-digit",
        {"leaves[0].name": "1alpha.example.org"},
        "leaves[0].name",
        "GCE resource names must start with a letter",
    ),
    bad(
        "name-not-fully-qualified",
        {"hub.name": "mx"},
        "hub.name",
        "not fully qualified",
        "use a fully qualified name in a domain you control, e.g. 'mx.example.org'",
    ),
    bad(
        "name-in-upper-case-with-spaces-and-not-qualified",
        {"hub.name": "Mail Hub"},
        "hub.name",
        "contains upper case letters; it contains spaces; it is not fully qualified",
        "e.g. 'mail-hub.example.org'",
    ),
    bad(
        "name-with-trailing-dot",
        {"hub.name": "mx.example.org."},
        "hub.name",
        "ends with a dot",
        "use 'mx.example.org'",
    ),
    bad(
        "name-label-starting-with-hyphen",
        {"leaves[0].name": "-alpha.example.org"},
        "leaves[0].name",
        "label '-alpha' starts or ends with '-'",
    ),
    bad("hub-name-missing", {"hub.name": DELETE}, "hub.name", "is missing"),
    bad("leaf-name-missing", {"leaves[1].name": DELETE}, "leaves[1].name", "is missing"),
    # --- domains
    bad(
        "domain-twice-in-one-leaf",
        {"leaves[1].domains": ["example.net", "example.net"]},
        "leaves[1].domains[1]",
        "'example.net' is already claimed by leaves[1].domains[0]",
    ),
    bad(
        "domain-claimed-by-two-leaves",
        {"leaves[0].domains": ["example.net"]},
        "leaves[1].domains[0]",
        "'example.net' is already claimed by leaves[0].domains[0]",
    ),
    bad(
        "domain-claimed-by-another-leafs-default",
        {"leaves[1].domains": ["alpha.example.org"]},
        "leaves[1].domains[0]",
        "is already claimed by leaves[0].name",
    ),
    bad(
        "default-domain-claimed-by-another-leaf",
        {"leaves[0].domains": ["beta.example.net"], "leaves[1].domains": DELETE},
        "leaves[1].domains",
        "is not set, so it defaults to the leaf's name, but 'beta.example.net' is already claimed",
    ),
    bad(
        "leaf-domain-equal-to-hub-name",
        {"leaves[1].domains[1]": "mx.example.org"},
        "leaves[1].domains[1]",
        "is the hub's own name",
    ),
    bad(
        "domain-without-a-dot",
        {"leaves[1].domains[0]": "localhost"},
        "leaves[1].domains[0]",
        "not fully qualified",
    ),
    bad(
        "domain-in-upper-case",
        {"leaves[1].domains[1]": "Lists.Example.net"},
        "leaves[1].domains[1]",
        "upper case",
        "use 'lists.example.net'",
    ),
    bad("domains-empty", {"leaves[1].domains": []}, "leaves[1].domains", "is empty"),
    bad(
        "domains-a-single-string",
        {"leaves[1].domains": "example.net"},
        "leaves[1].domains",
        "must be a list of domain names",
        'domains: ["example.net"]',
    ),
    # --- admin CIDRs
    bad(
        "cidr-not-an-address",
        {"hub.adminCidrs": ["203.0.113.7/32", "office"]},
        "hub.adminCidrs[1]",
        "'office' is not an IPv4 or IPv6 CIDR",
    ),
    bad(
        "cidr-prefix-too-long",
        {"hub.adminCidrs[0]": "203.0.113.7/33"},
        "hub.adminCidrs[0]",
        "is not an IPv4 or IPv6 CIDR",
    ),
    bad(
        "cidr-with-host-bits",
        {"hub.adminCidrs[0]": "203.0.113.7/24"},
        "hub.adminCidrs[0]",
        "has host bits set",
        "write the network form '203.0.113.0/24', or '203.0.113.7/32'",
    ),
    bad(
        "cidr-ipv6-with-host-bits",
        {"hub.adminCidrs[0]": "2001:db8::1/64"},
        "hub.adminCidrs[0]",
        "has host bits set",
        "'2001:db8::/64'",
    ),
    bad(
        "cidr-whole-ipv4-internet",
        {"hub.adminCidrs": ["203.0.113.7/32", "0.0.0.0/0"]},
        "hub.adminCidrs[1]",
        "whole Internet",
        "list the operators' own addresses",
    ),
    bad(
        "cidr-whole-ipv6-internet",
        {"hub.adminCidrs[0]": "::/0"},
        "hub.adminCidrs[0]",
        "whole Internet",
        "list the operators' own addresses",
    ),
    bad("admin-cidrs-empty", {"hub.adminCidrs": []}, "hub.adminCidrs", "is empty"),
    bad("admin-cidrs-missing", {"hub.adminCidrs": DELETE}, "hub.adminCidrs", "is missing"),
    bad(
        "admin-cidrs-a-string",
        {"hub.adminCidrs": "203.0.113.7/32"},
        "hub.adminCidrs",
        "must be a list of CIDR strings",
        'adminCidrs: ["203.0.113.7/32"]',
    ),
    # --- key seed
    bad("key-seed-missing", {"keySeed": DELETE}, "keySeed", "is missing", KEY_SEED_COMMAND),
    bad(
        "key-seed-too-short",
        {"keySeed": "too-short"},
        "keySeed",
        "is 9 characters long; at least 32",
        KEY_SEED_COMMAND,
    ),
    bad("key-seed-not-a-string", {"keySeed": 12345}, "keySeed", "must be a secret string"),
    # --- relay
    bad(
        "relay-host-with-space",
        {"hub.relay": {"host": "smtp relay.example.net"}},
        "hub.relay.host",
        "is neither a DNS host name nor an IP address",
    ),
    bad(
        "relay-host-with-port",
        {"hub.relay": {"host": "smtp.example.net:587"}},
        "hub.relay.host",
        "includes a port",
        "put 'smtp.example.net' in hub.relay.host and 587 in hub.relay.port",
    ),
    bad(
        "relay-host-in-brackets",
        {"hub.relay": {"host": "[smtp.example.net]"}},
        "hub.relay.host",
        "is in brackets",
    ),
    bad("relay-host-missing", {"hub.relay": {"port": 587}}, "hub.relay.host", "is missing"),
    bad(
        "relay-port-0",
        {"hub.relay": {"host": "smtp.example.net", "port": 0}},
        "hub.relay.port",
        "is 0; it must be between 1 and 65535",
    ),
    bad(
        "relay-port-70000",
        {"hub.relay": {"host": "smtp.example.net", "port": 70000}},
        "hub.relay.port",
        "is 70000; it must be between 1 and 65535",
    ),
    bad(
        "relay-port-abc",
        {"hub.relay": {"host": "smtp.example.net", "port": "abc"}},
        "hub.relay.port",
        "must be an integer, not the string 'abc'",
    ),
    bad(
        "relay-username-without-password",
        {"hub.relay": {"host": "smtp.example.net", "username": "mailer"}},
        "hub.relay.password",
        "is missing but hub.relay.username is set",
        "pulumi config set --secret --path 'hub.relay.password'",
    ),
    bad(
        "relay-password-without-username",
        {"hub.relay": {"host": "smtp.example.net", "password": RELAY_PASSWORD}},
        "hub.relay.username",
        "is missing but hub.relay.password is set",
    ),
    bad(
        "relay-not-an-object",
        {"hub.relay": "smtp.example.net"},
        "hub.relay",
        "must be an object, not a string",
    ),
    # --- poll interval
    bad("poll-interval-5", {"pollInterval": 5}, "pollInterval", "between 10 seconds and 3600"),
    bad("poll-interval-4000", {"pollInterval": 4000}, "pollInterval", "is 4000; it must be"),
    bad("poll-interval-text-5", {"pollInterval": "5"}, "pollInterval", "is 5; it must be"),
    bad(
        "poll-interval-not-a-number",
        {"pollInterval": "1m"},
        "pollInterval",
        "must be an integer, not the string '1m'",
    ),
    bad(
        "poll-interval-bool-is-not-an-int",
        {"pollInterval": True},
        "pollInterval",
        "must be an integer, not the boolean true",
    ),
    bad(
        "poll-interval-float-is-not-an-int",
        {"pollInterval": 60.0},
        "pollInterval",
        "must be an integer, not the number 60.0",
    ),
    # --- unknown keys, with a suggestion for typos
    bad(
        "unknown-top-level-key",
        {"pollIntervall": 60},
        "pollIntervall",
        "unknown key 'pollIntervall' at the top level; allowed keys are: hub, leaves",
        "did you mean 'pollInterval'?",
    ),
    bad(
        "unknown-hub-key-typo-of-a-required-key",
        {"hub.adminCidr": ["203.0.113.7/32"], "hub.adminCidrs": DELETE},
        "hub.adminCidr",
        "unknown key 'adminCidr' in hub; allowed keys are: name, instanceType",
        "did you mean 'adminCidrs'?",
    ),
    bad(
        "unknown-relay-key",
        {"hub.relay": {"host": "smtp.example.net", "prot": 587}},
        "hub.relay.prot",
        "allowed keys are: host, port, username, password",
        "did you mean 'port'?",
    ),
    bad(
        "unknown-leaf-key-in-snake-case",
        {"leaves[0].machine_type": "e2-small"},
        "leaves[0].machine_type",
        "unknown key 'machine_type' in leaves[0]",
        "did you mean 'machineType'?",
    ),
    bad(
        "key-given-twice-in-two-spellings",
        {"hub.instance_type": "t3.micro", "hub.instanceType": "t3.small"},
        "hub.instance_type",
        "unknown key 'instance_type' in hub",
        "remove it; 'instanceType' is already set",
    ),
    bad(
        "unknown-key-without-a-likely-match",
        {"leaves[0].color": "blue"},
        "leaves[0].color",
        "unknown key 'color'",
        "remove it",
    ),
    # --- wrong types and shapes
    bad("hub-missing", {"hub": DELETE}, "hub", "is missing"),
    bad("hub-a-list", {"hub": ["mx.example.org"]}, "hub", "must be an object, not a list"),
    bad(
        "hub-json-text-of-a-list",
        {"hub": '["mx.example.org"]'},
        "hub",
        "must be an object, not a list",
    ),
    bad(
        "hub-text-that-is-not-json",
        {"hub": '{"name": "mx.example.org",'},
        "hub",
        "is text that is not valid JSON",
    ),
    bad("leaves-missing", {"leaves": DELETE}, "leaves", "is missing"),
    bad(
        "leaves-an-object",
        {"leaves": {"alpha": {"zone": "europe-west1-b"}}},
        "leaves",
        "must be a list of leaf objects, not an object",
    ),
    bad(
        "leaf-a-string",
        {"leaves[0]": "alpha.example.org"},
        "leaves[0]",
        "must be an object, not a string",
    ),
    bad(
        "inbound-yes",
        {"hub.inbound": "yes"},
        "hub.inbound",
        "must be true or false, not the string 'yes'",
    ),
    bad(
        "inbound-int-is-not-a-bool",
        {"hub.inbound": 1},
        "hub.inbound",
        "must be true or false, not the integer 1",
    ),
    bad(
        "name-not-a-string",
        {"leaves[0].name": 42},
        "leaves[0].name",
        "must be a string, not the integer 42",
    ),
    # --- hub machine
    bad(
        "instance-type-without-size",
        {"hub.instanceType": "t3"},
        "hub.instanceType",
        "'t3' is not an EC2 instance type",
    ),
    bad(
        "instance-type-upper-case",
        {"hub.instanceType": "T3.Small"},
        "hub.instanceType",
        "is not an EC2 instance type",
        "use 't3.small'",
    ),
    bad(
        "graviton-type-with-the-default-amd64-image",
        {"hub.instanceType": "m7g.large"},
        "hub.instanceType",
        "is an ARM (Graviton) type",
        "set hub.image to an arm64 AMI",
    ),
    bad("ami-too-short", {"hub.image": "ami-123"}, "hub.image", "'ami-123' is not an AMI id"),
    bad(
        "message-size-limit-too-small",
        {"hub.messageSizeLimit": 1000},
        "hub.messageSizeLimit",
        "between 1048576 bytes (1 MiB) and 1073741824 bytes (1 GiB)",
    ),
    bad(
        "message-size-limit-too-large",
        {"hub.messageSizeLimit": 2048 * MiB},
        "hub.messageSizeLimit",
        "is 2147483648; it must be between",
    ),
    # --- leaf machine
    bad(
        "zone-is-a-region",
        {"leaves[0].zone": "europe-west1"},
        "leaves[0].zone",
        "is a GCE region, not a zone",
        "'europe-west1-b'",
    ),
    bad(
        "zone-malformed",
        {"leaves[0].zone": "europe_west1_b"},
        "leaves[0].zone",
        "'europe_west1_b' is not a GCE zone",
    ),
    bad("zone-missing", {"leaves[1].zone": DELETE}, "leaves[1].zone", "is missing"),
    bad(
        "machine-type-malformed",
        {"leaves[0].machineType": "e2_small"},
        "leaves[0].machineType",
        "is not a GCE machine type",
    ),
    bad(
        "leaf-image-without-project",
        {"leaves[0].image": "ubuntu-2404-lts-amd64"},
        "leaves[0].image",
        "is not a GCE image",
    ),
    bad("leaf-image-empty", {"leaves[0].image": ""}, "leaves[0].image", "is empty"),
    bad(
        "key-version-0",
        {"leaves[0].keyVersion": 0},
        "leaves[0].keyVersion",
        "is 0; it must be at least 1",
    ),
]


@pytest.mark.parametrize(("changes", "path", "message", "fix"), MALFORMED)
def test_malformed_config_is_refused_with_one_precise_problem(changes, path, message, fix):
    problems = problems_of(changed(changes))

    assert [p.path for p in problems] == [path], problems
    assert message in problems[0].message
    assert fix in problems[0].fix


def test_a_duplicate_name_is_reported_once_and_the_first_leaf_keeps_its_domain():
    raw = changed(
        {
            "leaves": [
                {"name": "alpha.example.org", "zone": "europe-west1-b"},
                {"name": "alpha.example.org", "zone": "europe-west1-c"},
                {
                    "name": "gamma.example.org",
                    "zone": "europe-west1-d",
                    "domains": ["alpha.example.org"],
                },
            ]
        }
    )

    problems = problems_of(raw)

    assert [(p.path, p.message) for p in problems] == [
        ("leaves[1].name", "'alpha.example.org' is already used by leaves[0].name"),
        (
            "leaves[2].domains[0]",
            "'alpha.example.org' is already claimed by leaves[0].name "
            "(domains is not set, so the name is the leaf's domain)",
        ),
    ]


def test_the_table_covers_at_least_thirty_cases():
    assert len(MALFORMED) >= 30


def test_every_problem_says_how_to_fix_it():
    everything_wrong = changed(
        {
            "hub.name": "Mail Hub",
            "hub.adminCidrs": ["0.0.0.0/0"],
            "leaves[0].zone": "somewhere",
            "leaves[1].domains": ["example.net", "example.net"],
            "pollInterval": 1,
            "keySeed": DELETE,
        }
    )

    for problem in problems_of(everything_wrong):
        assert problem.message and problem.fix, problem
        assert not problem.message.endswith("."), problem


# ------------------------------------------------------------------------- the error as a whole


def test_all_problems_are_reported_at_once_in_config_order():
    raw = {
        "hub": {
            "name": "MX.example.org",
            "adminCidrs": ["10.0.0.1/8", "0.0.0.0/0"],
            "relay": {"host": "smtp.example.net", "port": 0, "username": "mailer"},
        },
        "leaves": [
            {"name": "alpha.example.org", "zone": "europe-west1", "keyVersion": 0},
            {"name": "alpha.example.org", "zone": "us-central1-a", "domains": ["alpha_x.org"]},
        ],
        "pollInterval": 5,
        "keySeed": "short",
    }

    problems = problems_of(raw)

    assert [p.path for p in problems] == [
        "hub.name",
        "hub.adminCidrs[0]",
        "hub.adminCidrs[1]",
        "hub.relay.port",
        "hub.relay.password",
        "leaves[0].zone",
        "leaves[0].keyVersion",
        "leaves[1].name",
        "leaves[1].domains[0]",
        "pollInterval",
        "keySeed",
    ]


def test_config_order_follows_the_users_key_order_and_missing_keys_come_last():
    raw = {
        "keySeed": "short",
        "leaves": [{"zone": "nowhere", "name": "Alpha.example.org"}],
        "hub": {"adminCidrs": ["banana"], "name": "mx"},
    }

    assert [p.path for p in problems_of(raw)] == [
        "keySeed",
        "leaves[0].zone",
        "leaves[0].name",
        "hub.adminCidrs[0]",
        "hub.name",
    ]
    assert [p.path for p in problems_of({"hub": {"name": "mx.example.org"}})] == [
        "hub.adminCidrs",
        "leaves",
        "keySeed",
    ]


def test_error_text_has_a_header_and_one_line_per_problem():
    error = ConfigError(
        [
            Problem("hub.adminCidrs[1]", "'x' is not an IPv4 or IPv6 CIDR", "write a CIDR"),
            Problem("keySeed", "is missing", "create one"),
        ]
    )

    assert str(error) == (
        "Stack config has 2 problem(s); nothing was created:\n"
        "  - uucp-mailmesh:hub.adminCidrs[1]: 'x' is not an IPv4 or IPv6 CIDR. Fix: write a CIDR\n"
        "  - uucp-mailmesh:keySeed: is missing. Fix: create one"
    )


def test_error_text_of_a_real_config_lists_every_problem():
    with pytest.raises(ConfigError) as caught:
        parse_mesh_config(changed({"pollInterval": 4000, "keySeed": DELETE}))

    text = str(caught.value)
    assert text.splitlines()[0] == "Stack config has 2 problem(s); nothing was created:"
    assert "  - uucp-mailmesh:pollInterval: is 4000; it must be between" in text
    assert (
        f"  - uucp-mailmesh:keySeed: is missing. Fix: create one with `{KEY_SEED_COMMAND}`" in text
    )


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------------- secrets stay secret

SECRET_SEED = "hunter2-seed"  # too short: gets reported, must not be shown
SECRET_PASSWORD = "pw-Zebra-Quartz-9931"
NUMERIC_SECRET = 982451653  # an unquoted number in YAML: a wrong type, still a secret


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(changed({"keySeed": SECRET_SEED}), id="short-key-seed"),
        pytest.param(changed({"keySeed": [SECRET_SEED]}), id="key-seed-of-wrong-type"),
        pytest.param(changed({"keySeed": NUMERIC_SECRET}), id="key-seed-a-number"),
        pytest.param(changed({"kySeed": SECRET_SEED, "keySeed": DELETE}), id="misspelt-key-seed"),
        pytest.param(
            changed(
                {
                    "hub.relay": {
                        "host": "smtp.example.net",
                        "username": "u",
                        "password": NUMERIC_SECRET,
                    }
                }
            ),
            id="password-a-number",
        ),
        pytest.param(
            changed({"hub.relay": {"host": "smtp.example.net", "password": SECRET_PASSWORD}}),
            id="password-without-username",
        ),
        pytest.param(
            changed(
                {
                    "hub.relay": {
                        "host": "smtp.example.net",
                        "username": "mailer",
                        "password": SECRET_PASSWORD + "\n",
                    }
                }
            ),
            id="password-with-newline",
        ),
        pytest.param(
            changed(
                {
                    "hub.relay": {
                        "host": "smtp.example.net",
                        "username": "u",
                        "pasword": SECRET_PASSWORD,
                    }
                }
            ),
            id="misspelt-password-key",
        ),
        pytest.param(
            changed(
                {
                    "hub.relay": {
                        "host": "smtp.example.net",
                        "username": "u",
                        "password": [SECRET_PASSWORD],
                    }
                }
            ),
            id="password-of-wrong-type",
        ),
        pytest.param(
            changed({"hub": '{"relay": {"password": "' + SECRET_PASSWORD + '"'}),
            id="hub-json-text-broken-after-the-password",
        ),
        pytest.param(
            changed(
                {"hub.relay": '{"host": "smtp.example.net", "password": "' + SECRET_PASSWORD + '"}'}
            ),
            id="relay-json-text-without-username",
        ),
    ],
)
def test_secret_values_never_appear_in_the_error(raw):
    with pytest.raises(ConfigError) as caught:
        parse_mesh_config(raw)

    error = caught.value
    for shown in (str(error), repr(error), repr(error.problems)):
        assert SECRET_SEED not in shown
        assert SECRET_PASSWORD not in shown
        assert "Zebra" not in shown and "hunter2" not in shown
        assert str(NUMERIC_SECRET) not in shown


def test_secret_values_stay_out_of_the_reprs_of_a_valid_config():
    raw = changed(
        {
            "hub.relay": {"host": "smtp.example.net", "username": "u", "password": SECRET_PASSWORD},
        }
    )

    mesh = parse_mesh_config(raw)

    assert SECRET_PASSWORD not in repr(mesh)
    assert SEED not in repr(mesh)
