"""Pulumi mocks that stand in for the clouds, and a monitor that records every registration.

The mocks answer deterministically: ids and addresses are functions of the resource's name, so
rendering the same config twice gives the same bytes. Addresses come from the documentation
ranges (hub 203.0.113.0/24, leaves 198.51.100.0/24) unless the stack maps node names to
addresses under `mailmesh-lab:addresses` (the lab uses its bridge's).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

from components.model import resource_name

MOCK_AMI = "ami-0mockubuntu240400"
MOCK_GCP_PROJECT = "mailmesh-offline"
HUB_ADDRESS_RANGE = ipaddress.ip_network("203.0.113.0/24")
LEAF_ADDRESS_RANGE = ipaddress.ip_network("198.51.100.0/24")

# Pulumi's wire format (sdk/python/lib/pulumi/runtime/rpc.py).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def mock_address(node: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A stable address for a node in a documentation range (.1 to .254)."""
    return str(network[1 + int(_digest(node), 16) % 254])


class MeshMocks(pulumi.runtime.Mocks):
    def __init__(self, addresses: Mapping[str, str] | None = None) -> None:
        # Keyed by resource name, which is what a GCE address carries.
        self.addresses = {resource_name(k): v for k, v in (addresses or {}).items()}
        self.invokes: list[tuple[str, dict[str, Any]]] = []  # (token, arguments) of each call
        self._lock = threading.Lock()

    def call(self, args: MockCallArgs) -> tuple[dict, list]:
        with self._lock:
            self.invokes.append((args.token, dict(args.args)))
        if args.token == "aws:ec2/getAmi:getAmi":
            return {
                "id": MOCK_AMI,
                "imageId": MOCK_AMI,
                "architecture": "x86_64",
                "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-mock",
                "ownerId": "099720109477",
            }, []
        return {}, []

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        digest = _digest(args.name)
        outputs: dict[str, Any] = {}
        typ = args.typ
        if typ == "aws:ec2/instance:Instance":
            # A changed user-data replaces the instance (see hub.py): model the new instance
            # with a new id, as the cloud would give it.
            rid = f"i-{_digest(args.name + str(inputs.get('userDataBase64')))[:17]}"
            private = ipaddress.ip_address("172.31.0.0") + 1 + int(digest, 16) % 65534
            outputs["privateIp"] = str(private)
        elif typ == "aws:ec2/eip:Eip":
            rid = f"eipalloc-{digest[:17]}"
            node = (inputs.get("tags") or {}).get("Name", args.name)
            outputs["allocationId"] = rid
            outputs["publicIp"] = self._address(node, HUB_ADDRESS_RANGE)
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = f"sg-{digest[:17]}"
        elif typ in (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        ):
            rid = f"sgr-{digest[:17]}"
        elif typ == "aws:ec2/eipAssociation:EipAssociation":
            rid = f"eipassoc-{digest[:17]}"
        elif typ == "gcp:compute/address:Address":
            name = inputs.get("name", args.name)
            rid = f"projects/{MOCK_GCP_PROJECT}/regions/{inputs.get('region')}/addresses/{name}"
            outputs["address"] = self._address(name, LEAF_ADDRESS_RANGE)
        elif typ == "gcp:compute/instance:Instance":
            name = inputs.get("name", args.name)
            rid = f"projects/{MOCK_GCP_PROJECT}/zones/{inputs.get('zone')}/instances/{name}"
            # Replaced on a metadata change (see leaf.py): a new instance gets a new id.
            generation = _digest(args.name + json.dumps(inputs.get("metadata"), sort_keys=True))
            outputs["instanceId"] = str(int(generation[:15], 16))
        elif typ == "gcp:compute/firewall:Firewall":
            rid = f"projects/{MOCK_GCP_PROJECT}/global/firewalls/{args.name}"
        elif typ == "command:remote:Command":
            rid = digest[:16]
            outputs.update(stdout="", stderr="")
        else:
            rid = digest[:16]
        return rid, {**inputs, **outputs}

    def _address(self, node: str, network: ipaddress.IPv4Network) -> str:
        return self.addresses.get(resource_name(node)) or mock_address(node, network)


@dataclass(frozen=True)
class Registration:
    """One RegisterResource request, decoded. `inputs` holds the real (unmasked) values."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: tuple[str, ...]
    property_dependencies: dict[str, tuple[str, ...]]
    options: dict[str, Any]
    inputs: dict[str, Any]
    secret_paths: tuple[str, ...]  # e.g. "userDataBase64", "metadata.user-data"

    def secret_inputs(self) -> set[str]:
        """Top-level input properties that hold a secret somewhere inside."""
        return {path.split(".")[0].split("[")[0] for path in self.secret_paths}


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping every registration (parents, dependencies, options and
    which inputs are secret: the plain MockMonitor drops all of that)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.type != "pulumi:pulumi:Stack":
            urn = self.make_urn(request.parent, request.type, request.name)
            record = decode_request(request, urn)
            with self._lock:
                self.registrations.append(record)
        return super().RegisterResource(request)


def decode_request(request: Any, urn: str) -> Registration:
    secret_paths: list[str] = []
    raw = json_format.MessageToDict(request.object)
    inputs = {key: _plain(value, key, secret_paths) for key, value in raw.items()}
    options: dict[str, Any] = {}
    if request.ignoreChanges:
        options["ignoreChanges"] = sorted(request.ignoreChanges)
    if request.replaceOnChanges:
        options["replaceOnChanges"] = sorted(request.replaceOnChanges)
    if request.additionalSecretOutputs:
        options["additionalSecretOutputs"] = sorted(request.additionalSecretOutputs)
    if request.deleteBeforeReplace:
        options["deleteBeforeReplace"] = True
    if request.protect:
        options["protect"] = True
    timeouts = json_format.MessageToDict(request.customTimeouts)
    if timeouts:
        options["customTimeouts"] = timeouts
    return Registration(
        urn=urn,
        type=request.type,
        name=request.name,
        custom=request.custom,
        parent=request.parent,
        dependencies=tuple(sorted(set(request.dependencies))),
        property_dependencies={
            key: tuple(sorted(set(deps.urns)))
            for key, deps in sorted(request.propertyDependencies.items())
            if deps.urns
        },
        options=options,
        inputs=inputs,
        secret_paths=tuple(sorted(set(secret_paths))),
    )


def _plain(value: Any, path: str, secret_paths: list[str]) -> Any:
    """A wire value as plain data; secrets unwrapped, their paths noted."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            secret_paths.append(path)
            return _plain(value.get("value"), path, secret_paths)
        if sig == RESOURCE_SIG:
            return {"resource": value.get("urn")}
        return {k: _plain(v, f"{path}.{k}", secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == UNKNOWN:
        return "[unknown]"
    return value
