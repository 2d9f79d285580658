"""The Pulumi program (`__main__.py`) under Pulumi's mock runtime: which resources it declares,
how they hang together, and what is secret.

Each evaluation runs the real program with a test stack's config (offline_render.evaluate);
the mocks record every RegisterResource request as the engine would receive it.
"""

from __future__ import annotations

import base64
import gzip
import json

import pulumi
import pytest

from components import keys, registration
from components.model import CANONICAL_OWNER_ID, UBUNTU_2404_AMI_NAME, HubConfig, LeafConfig
from offline_render import ProgramError, evaluate
from offline_render.mocks import MOCK_AMI
from tests.mesh_stacks import (
    ADDRESS,
    EGRESS,
    EIP,
    EIP_ASSOCIATION,
    FIREWALL,
    HUB,
    HUB_COMPONENT,
    INGRESS,
    LEAF_COMPONENT,
    LEAF_INSTANCE,
    NS,
    REGISTRATION,
    SG,
    evaluated,
    secret_fragments,
    stack_config,
    with_changes,
)
from tests.rendered import files_of, parse_user_data

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SEED = stack_config("two-leaves")[f"{NS}:keySeed"]
LEAF_NAMES = ["alpha.mesh.example", "beta.mesh.example", "gamma.mesh.example"]


def leaf_children(ev, leaf_name: str) -> dict[str, object]:
    component = ev.one(LEAF_COMPONENT, leaf_name.replace(".", "-"))
    return {r.type: r for r in ev.children(component.urn)}


def hub_user_data(ev) -> bytes:
    return base64.b64decode(ev.one(HUB).inputs["userDataBase64"])


# --------------------------------------------------------------------------- structure


def test_every_resource_belongs_to_the_hub_a_leaf_or_the_stack():
    ev = evaluated("three-leaves")
    stack = ev.one(HUB_COMPONENT).parent
    assert stack.endswith("::pulumi:pulumi:Stack::uucp-mailmesh-three-leaves")
    top = [r for r in ev.registrations if r.parent == stack]
    assert sorted(r.type for r in top) == sorted([HUB_COMPONENT, FIREWALL] + [LEAF_COMPONENT] * 3)
    components = {r.urn for r in top if r.type in (HUB_COMPONENT, LEAF_COMPONENT)}
    others = [r for r in ev.registrations if r.parent != stack]
    assert all(r.parent in components for r in others)
    for r in others:  # AWS resources are the hub's but for each leaf's SSH rule
        owner = ev.by_urn()[r.parent].type
        assert owner == (HUB_COMPONENT if r.type.startswith("aws:") else LEAF_COMPONENT) or (
            r.type == INGRESS and r.name.endswith("-ssh-to-hub") and owner == LEAF_COMPONENT
        ), r.urn


def test_the_hub_is_a_security_group_its_rules_an_instance_and_an_elastic_ip():
    ev = evaluated("two-leaves")
    hub = ev.one(HUB_COMPONENT, "hub")
    types = sorted(r.type for r in ev.children(hub.urn))
    assert types == sorted(
        [SG, HUB, EIP, EIP_ASSOCIATION, EGRESS, EGRESS]
        + [INGRESS] * 4  # SMTP v4 and v6, SSH from the two admin CIDRs
    )
    association = ev.one(EIP_ASSOCIATION)
    assert set(association.dependencies) == {ev.one(EIP).urn, ev.one(HUB).urn}
    assert association.inputs["instanceId"].startswith("i-")
    assert association.inputs["allocationId"].startswith("eipalloc-")
    assert ev.one(EIP).inputs["domain"] == "vpc"


def test_a_leaf_is_an_address_an_instance_an_ssh_rule_and_a_registration():
    ev = evaluated("three-leaves")
    for name in LEAF_NAMES:
        children = leaf_children(ev, name)
        assert sorted(children) == sorted([ADDRESS, LEAF_INSTANCE, INGRESS, REGISTRATION])
        assert len(ev.children(ev.one(LEAF_COMPONENT, name.replace(".", "-")).urn)) == 4


def test_the_registration_waits_for_the_leaf_instance_its_ssh_rule_and_the_elastic_ip():
    ev = evaluated("two-leaves")
    for name in LEAF_NAMES[:2]:
        children = leaf_children(ev, name)
        deps = set(children[REGISTRATION].dependencies)
        assert children[LEAF_INSTANCE].urn in deps
        assert children[INGRESS].urn in deps
        assert ev.one(EIP_ASSOCIATION).urn in deps


# --------------------------------------------------------------------------- the hub


def test_hub_instance_requires_imdsv2_and_encrypts_its_root_volume():
    instance = evaluated("two-leaves").one(HUB)
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    root = instance.inputs["rootBlockDevice"]
    assert root["encrypted"] is True
    assert root["volumeType"] == "gp3"
    assert instance.inputs["userDataReplaceOnChange"] is True
    assert instance.inputs["instanceType"] == "t3.small"


def test_hub_ami_is_the_newest_ubuntu_and_later_ones_are_ignored():
    ev = evaluated("two-leaves")
    assert ev.invokes == (
        (
            "aws:ec2/getAmi:getAmi",
            {
                "mostRecent": True,
                "owners": [CANONICAL_OWNER_ID],
                "filters": [
                    {"name": "name", "values": [UBUNTU_2404_AMI_NAME]},
                    {"name": "virtualization-type", "values": ["hvm"]},
                ],
            },
        ),
    )
    instance = ev.one(HUB)
    assert instance.inputs["ami"] == MOCK_AMI  # what the mocked lookup returned
    assert instance.options["ignoreChanges"] == ["ami"]


def test_hub_image_set_in_config_is_used_and_followed():
    hub = stack_config("two-leaves")[f"{NS}:hub"] | {"image": "ami-0123456789abcdef0"}
    ev = evaluate(with_changes("two-leaves", hub=hub))
    assert ev.invokes == ()  # no lookup
    assert ev.one(HUB).inputs["ami"] == "ami-0123456789abcdef0"
    assert "ignoreChanges" not in ev.one(HUB).options


def _ingress(ev) -> list[tuple[int, str]]:
    rules = []
    for r in ev.find(INGRESS):
        assert r.inputs["ipProtocol"] == "tcp"
        assert r.inputs["fromPort"] == r.inputs["toPort"]
        cidr = r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6")
        rules.append((r.inputs["fromPort"], cidr))
    return sorted(rules)


def test_security_group_opens_smtp_to_all_and_ssh_to_admins_and_each_leaf():
    ev = evaluated("three-leaves")
    leaf_addresses = [ev.outputs["leaves"].value[name]["address"] for name in LEAF_NAMES]
    assert _ingress(ev) == sorted(
        [(25, "0.0.0.0/0"), (25, "::/0"), (22, "192.0.2.0/28"), (22, "2001:db8::/64")]
        + [(22, f"{address}/32") for address in leaf_addresses]
    )
    sg = ev.one(SG)
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs  # rules are resources
    egress = ev.find(EGRESS)
    assert sorted(r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6") for r in egress) == [
        "0.0.0.0/0",
        "::/0",
    ]
    assert all(r.inputs["ipProtocol"] == "-1" for r in egress)


def test_without_inbound_mail_port_25_stays_closed():
    hub = stack_config("two-leaves")[f"{NS}:hub"] | {"inbound": False}
    ev = evaluate(with_changes("two-leaves", hub=hub))
    assert [port for port, _ in _ingress(ev)] == [22] * 4


def test_hub_user_data_is_gzip_under_the_ec2_limit_and_names_no_leaf():
    ev = evaluated("three-leaves")
    data = hub_user_data(ev)
    assert data[:2] == b"\x1f\x8b"
    assert len(data) < 16384
    text = gzip.decompress(data).decode()
    assert text.startswith("#cloud-config\n")
    for name in LEAF_NAMES:
        assert name.split(".")[0] not in text


def test_hub_user_data_is_the_same_for_zero_two_or_three_leaves():
    none = evaluate(with_changes("two-leaves", leaves=[]), stack="none")
    assert not none.find(LEAF_COMPONENT)
    assert (
        hub_user_data(none)
        == hub_user_data(evaluated("two-leaves"))
        == hub_user_data(evaluated("three-leaves"))
    )


def test_hub_user_data_pins_the_derived_host_key_and_admin_key():
    config = parse_user_data(hub_user_data(evaluated("two-leaves")))
    host = keys.hub_host_keypair(SEED, "mx.mesh.example")
    admin = keys.admin_keypair(SEED, "mx.mesh.example")
    assert config["ssh_keys"]["ed25519_private"] == host.private_openssh
    assert config["users"][0]["ssh_authorized_keys"] == [admin.public_openssh]


# --------------------------------------------------------------------------- the leaves


def test_leaf_instance_settings():
    ev = evaluated("two-leaves")
    children = leaf_children(ev, "beta.mesh.example")
    instance, address = children[LEAF_INSTANCE], children[ADDRESS]
    assert address.inputs["name"] == "beta-mesh-example"
    assert address.inputs["region"] == "us-central1"
    i = instance.inputs
    assert i["name"] == "beta-mesh-example"
    assert i["zone"] == "us-central1-a"
    assert i["machineType"] == "e2-medium"
    assert i["bootDisk"]["initializeParams"]["image"] == "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
    assert i["tags"] == ["mailmesh-leaf"]
    assert i["shieldedInstanceConfig"] == {
        "enableIntegrityMonitoring": True,
        "enableSecureBoot": True,
        "enableVtpm": True,
    }
    assert i["allowStoppingForUpdate"] is True
    nic = i["networkInterfaces"]
    assert nic[0]["network"] == "default"
    assert (
        nic[0]["accessConfigs"][0]["natIp"]
        == ev.outputs["leaves"].value["beta.mesh.example"]["address"]
    )
    assert address.urn in instance.dependencies
    assert instance.options["replaceOnChanges"] == ["metadata"]
    assert instance.options["deleteBeforeReplace"] is True


def test_leaf_user_data_carries_its_key_password_and_the_pinned_hub():
    ev = evaluated("two-leaves")
    user_data = leaf_children(ev, "alpha.mesh.example")[LEAF_INSTANCE].inputs["metadata"][
        "user-data"
    ]
    files = files_of(user_data)
    pair = keys.leaf_keypair(SEED, "alpha.mesh.example", 1)
    password = keys.leaf_password(SEED, "alpha.mesh.example", 1)
    assert files["/etc/uucp/mailmesh/id_ed25519"]["content"].strip() == (
        pair.private_openssh.strip()
    )
    assert password in files["/etc/uucp/call"]["content"]
    host = keys.hub_host_keypair(SEED, "mx.mesh.example")
    assert host.public_openssh in files["/etc/uucp/mailmesh/known_hosts"]["content"]
    hub_ip = ev.outputs["hubAddress"].value
    assert f"HostName {hub_ip}" in files["/etc/uucp/mailmesh/ssh_config"]["content"]
    assert "OnUnitActiveSec=120s" in files["/etc/systemd/system/mailmesh-poll.timer"]["content"]


def test_the_leaf_firewall_denies_smtp_and_uucp_once_for_all_leaves():
    ev = evaluated("three-leaves")
    firewall = ev.one(FIREWALL)
    assert firewall.inputs["direction"] == "INGRESS"
    assert firewall.inputs["targetTags"] == ["mailmesh-leaf"]
    assert firewall.inputs["denies"] == [{"protocol": "tcp", "ports": ["25", "540"]}]
    assert firewall.inputs["sourceRanges"] == ["0.0.0.0/0"]
    assert len(evaluate(with_changes("two-leaves", leaves=[])).find(FIREWALL)) == 1


# --------------------------------------------------------------------------- registration


def test_registration_logs_in_to_the_hub_and_sends_the_leaf_on_stdin():
    ev = evaluated("two-leaves")
    name = "alpha.mesh.example"
    children = leaf_children(ev, name)
    command = children[REGISTRATION]
    assert command.name == "alpha-mesh-example-registration"
    hub_ip = ev.outputs["hubAddress"].value
    hub_id = ev.one(EIP_ASSOCIATION).inputs["instanceId"]
    leaf_address = ev.outputs["leaves"].value[name]["address"]
    instance_id = json.loads(command.inputs["stdin"])["instanceId"]
    pair = keys.leaf_keypair(SEED, name, 1)

    connection = command.inputs["connection"]
    assert connection["host"] == hub_ip
    assert connection["user"] == registration.ADMIN_USER
    assert connection["privateKey"] == keys.admin_keypair(SEED, "mx.mesh.example").private_openssh
    assert connection["hostKey"] == keys.hub_host_keypair(SEED, "mx.mesh.example").public_openssh

    reg_id = registration.registration_id(
        name,
        leaf_address,
        ["alpha.example", "lists.alpha.example"],
        pair.public_openssh,
        instance_id,
        hub_id,
    )
    assert command.inputs["create"] == registration.CREATE_COMMAND
    assert command.inputs["delete"] == registration.delete_command(name, reg_id)
    assert "triggers" not in command.inputs  # a rebuild re-registers by update, see leaf.py
    assert command.inputs["logging"] == "none"
    assert command.inputs["addPreviousOutputInEnv"] is False
    payload = json.loads(command.inputs["stdin"])
    assert payload == {
        "leaf": name,
        "address": leaf_address,
        "domains": ["alpha.example", "lists.alpha.example"],
        "publicKey": pair.public_openssh,
        "password": keys.leaf_password(SEED, name, 1),
        "instanceId": instance_id,
        "hubInstanceId": hub_id,
        "registrationId": reg_id,
    }
    assert instance_id.isdigit()  # GCE's numeric instance id, new with every rebuild


# --------------------------------------------------------------------------- secrets


def test_secret_inputs_are_marked_secret():
    ev = evaluated("two-leaves")
    assert ev.one(HUB).secret_paths == ("userDataBase64",)
    children = leaf_children(ev, "alpha.mesh.example")
    assert children[LEAF_INSTANCE].secret_paths == ("metadata.user-data",)
    command = children[REGISTRATION]
    assert {"stdin", "connection"} <= set(command.secret_paths)
    assert "stdin" in command.options["additionalSecretOutputs"]
    assert children[ADDRESS].secret_paths == ()
    assert children[INGRESS].secret_paths == ()


def test_no_stack_output_is_or_contains_a_secret():
    for stack in ("two-leaves", "three-leaves"):
        ev = evaluated(stack)
        assert not any(output.secret for output in ev.outputs.values())
        text = json.dumps({name: output.value for name, output in ev.outputs.items()})
        for fragment in secret_fragments(stack_config(stack)):
            assert fragment not in text


def test_stack_outputs():
    ev = evaluated("two-leaves")
    outputs = {name: output.value for name, output in ev.outputs.items()}
    hub_ip = outputs["hubAddress"]
    alpha = outputs["leaves"]["alpha.mesh.example"]
    assert outputs["hubUucpName"] == "mx.mesh.example"
    assert sorted(outputs["leaves"]) == LEAF_NAMES[:2]
    assert alpha["publicKey"] == keys.leaf_keypair(SEED, "alpha.mesh.example", 1).public_openssh
    assert alpha["domains"] == ["alpha.example", "lists.alpha.example"]
    assert outputs["dnsRecords"] == [
        f"mx.mesh.example. 300 IN A {hub_ip}",
        "alpha.example. 300 IN MX 10 mx.mesh.example.",
        f'alpha.example. 300 IN TXT "v=spf1 ip4:{hub_ip} -all"',
        "lists.alpha.example. 300 IN MX 10 mx.mesh.example.",
        f'lists.alpha.example. 300 IN TXT "v=spf1 ip4:{hub_ip} -all"',
        "beta.example. 300 IN MX 10 mx.mesh.example.",
        f'beta.example. 300 IN TXT "v=spf1 ip4:{hub_ip} -all"',
    ]


# --------------------------------------------------------------------------- bad config


def test_a_bad_config_stops_the_program_before_any_resource_is_registered():
    hub = {"name": "Hub_1", "adminCidrs": ["0.0.0.0/0"]}
    config = with_changes("two-leaves", hub=hub, pollInterval=None, pollIntervall=30)
    with pytest.raises(ProgramError) as caught:
        evaluate(config)
    assert caught.value.registrations == []
    message = str(caught.value)
    assert "nothing was created" in message
    assert "uucp-mailmesh:hub.name" in message
    assert "uucp-mailmesh:hub.adminCidrs[0]" in message
    assert "uucp-mailmesh:pollIntervall" in message  # unknown keys reach the validation
    assert SEED not in message


def test_the_program_reads_config_as_pulumi_passes_it_in_the_environment(monkeypatch):
    """`pulumi up` hands the config over in PULUMI_CONFIG, objects as JSON text."""
    config = stack_config("two-leaves")
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps({key: v if isinstance(v, str) else json.dumps(v) for key, v in config.items()}),
    )
    ev = evaluate({}, stack="from-env")
    assert sorted(ev.outputs["leaves"].value) == LEAF_NAMES[:2]
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"{NS}:hubb": "{}"}))
    with pytest.raises(ProgramError, match="uucp-mailmesh:hubb"):
        evaluate({}, stack="from-env")


# --------------------------------------------------------------------------- components alone


@pytest.fixture
def mocks():
    from offline_render.mocks import MeshMocks

    pulumi.runtime.set_mocks(MeshMocks(), project="uucp-mailmesh", stack="unit", preview=False)


@pulumi.runtime.test
def test_leaf_component_outputs_and_secrets(mocks):
    from components.hub import Hub, HubArgs
    from components.leaf import Leaf, LeafArgs

    hub_config = HubConfig(name="mx.unit.example", admin_cidrs=("192.0.2.0/28",))
    hub = Hub("unit-hub", HubArgs(config=hub_config, user_data_base64=pulumi.Output.secret("")))
    leaf = Leaf(
        "unit-leaf",
        LeafArgs(
            config=LeafConfig(
                name="leaf.unit.example", zone="europe-west1-b", domains=("u.example",)
            ),
            hub_config=hub_config,
            hub=hub,
            hub_host_public_key=keys.hub_host_keypair(SEED, hub_config.name).public_openssh,
            key_seed=SEED,
            poll_interval=60,
            admin_private_key=pulumi.Output.secret("admin-key"),
        ),
    )

    def check(values):
        address, stdin_secret, address_secret = values
        assert address.startswith("198.51.100.")
        assert stdin_secret is True
        assert address_secret is False
        assert leaf.public_key == keys.leaf_keypair(SEED, "leaf.unit.example", 1).public_openssh

    return pulumi.Output.all(
        leaf.public_address,
        pulumi.Output.from_input(leaf.registration.stdin.is_secret()),
        pulumi.Output.from_input(leaf.public_address.is_secret()),
    ).apply(check)
