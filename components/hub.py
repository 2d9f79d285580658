"""The hub: one EC2 instance with an Elastic IP, speaking SMTP to the internet and UUCP over
SSH to the leaves.

What the hub runs is fixed at creation by its user-data, which never depends on the leaves:
leaves are added later by their registrations (components/leaf.py), so adding a leaf adds
resources but changes none of the hub's. The only per-leaf resource here is an SSH ingress rule
(`Hub.allow_leaf`), parented to the leaf so it comes and goes with it.

Rebuilds: cloud-init runs on the first boot only, so a changed user-data replaces the
instance (`user_data_replace_on_change`). The Elastic IP, the security group and the host key
(derived from keySeed) survive; every registration sends the hub's instance id in its stdin,
so all leaves are registered again on the new instance. Mail still queued on the old
instance (Postfix queue, UUCP spool) is lost with it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.model import (
    CANONICAL_OWNER_ID,
    UBUNTU_2404_AMI_NAME,
    HubConfig,
    resource_name,
)

HUB_TYPE = "uucp-mailmesh:index:Hub"
HUB_ROOT_VOLUME_GIB = 16  # Ubuntu's AMI default is 8; the mail queue and UUCP spool live here
SMTP_PORT = 25
SSH_PORT = 22


@dataclass(frozen=True)
class HubArgs:
    """What the hub is built from.

    `user_data_base64`: base64 of the gzip-compressed cloud-config
    (`render.compress_user_data(render.render_hub_user_data(...))`). It holds the hub's SSH host
    private key (and the relay password, if any): pass it as a secret Output.
    """

    config: HubConfig
    user_data_base64: pulumi.Input[str]


class Hub(pulumi.ComponentResource):
    """Security group and its rules, the instance, its Elastic IP and the association.

    `config.image` unset: the newest Canonical Ubuntu 24.04 LTS AMI at creation; later AMIs are
    ignored (`ignore_changes=["ami"]`), so a new Ubuntu release never rebuilds the hub. To move
    the hub to another image, set `hub.image` to that AMI id: the hub is then replaced.
    """

    security_group: aws.ec2.SecurityGroup
    instance: aws.ec2.Instance
    eip: aws.ec2.Eip
    eip_association: aws.ec2.EipAssociation
    public_ip: pulumi.Output[str]
    instance_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: HubArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(HUB_TYPE, name, None, opts)
        self._name = name
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        tags = {"Name": config.name, "uucp-mailmesh": "hub"}

        # No inline rules: each rule is its own resource, so adding one (a leaf's SSH rule)
        # never rewrites the others.
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="uucp-mailmesh hub",
            tags=tags,
            opts=child,
        )
        self.security_group_id = self.security_group.id
        if config.inbound:
            for family, cidr in (("ipv4", "0.0.0.0/0"), ("ipv6", "::/0")):
                self._ingress(
                    f"{name}-smtp-{family}", SMTP_PORT, cidr, "SMTP from the internet", child
                )
        for cidr in config.admin_cidrs:
            self._ingress(
                f"{name}-ssh-admin-{_cidr_label(cidr)}",
                SSH_PORT,
                cidr,
                f"SSH from admin network {cidr}",
                child,
            )
        for family, cidr in (("ipv4", "0.0.0.0/0"), ("ipv6", "::/0")):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-egress-{family}",
                security_group_id=self.security_group.id,
                ip_protocol="-1",
                description="all outbound (SMTP delivery, package installs)",
                **_cidr_args(cidr),
                opts=child,
            )

        if config.image:
            ami: pulumi.Input[str] = config.image
            instance_opts = child
        else:
            ami = aws.ec2.get_ami_output(
                most_recent=True,
                owners=[CANONICAL_OWNER_ID],
                filters=[
                    aws.ec2.GetAmiFilterArgs(name="name", values=[UBUNTU_2404_AMI_NAME]),
                    aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
                ],
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).id
            instance_opts = pulumi.ResourceOptions(parent=self, ignore_changes=["ami"])

        self.instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=ami,
            instance_type=config.instance_type,
            vpc_security_group_ids=[self.security_group.id],
            user_data_base64=args.user_data_base64,
            # cloud-init runs once: a changed user-data must rebuild the hub.
            user_data_replace_on_change=True,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",  # IMDSv2 only
                http_put_response_hop_limit=1,
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True,
                volume_type="gp3",
                volume_size=HUB_ROOT_VOLUME_GIB,
                delete_on_termination=True,
            ),
            tags=tags,
            opts=instance_opts,
        )
        self.instance_id = self.instance.id

        self.eip = aws.ec2.Eip(f"{name}-eip", domain="vpc", tags=tags, opts=child)
        self.eip_association = aws.ec2.EipAssociation(
            f"{name}-eip-association",
            allocation_id=self.eip.allocation_id,
            instance_id=self.instance.id,
            opts=child,
        )
        self.public_ip = self.eip.public_ip

        self.register_outputs(
            {
                "public_ip": self.public_ip,
                "instance_id": self.instance_id,
                "security_group_id": self.security_group_id,
            }
        )

    def allow_leaf(
        self, name: str, address: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> aws.vpc.SecurityGroupIngressRule:
        """SSH (UUCP) from one leaf's address. `name` is the leaf's node name; pass
        `opts=ResourceOptions(parent=leaf)` so the rule comes and goes with the leaf."""
        cidr = pulumi.Output.from_input(address).apply(_host_cidr)
        return aws.vpc.SecurityGroupIngressRule(
            f"{resource_name(name)}-ssh-to-hub",
            security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=SSH_PORT,
            to_port=SSH_PORT,
            cidr_ipv4=cidr,
            description=f"UUCP over SSH from leaf {name}",
            opts=opts,
        )

    def _ingress(
        self, name: str, port: int, cidr: str, description: str, opts: pulumi.ResourceOptions
    ) -> aws.vpc.SecurityGroupIngressRule:
        return aws.vpc.SecurityGroupIngressRule(
            name,
            security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            **_cidr_args(cidr),
            opts=opts,
        )


def _cidr_args(cidr: str) -> dict[str, str]:
    version = ipaddress.ip_network(cidr).version
    return {"cidr_ipv4": cidr} if version == 4 else {"cidr_ipv6": cidr}


def _cidr_label(cidr: str) -> str:
    """A CIDR as part of a resource name: '203.0.113.0/24' -> '203-0-113-0-24'."""
    return cidr.replace(".", "-").replace(":", "-").replace("/", "-")


def _host_cidr(address: str) -> str:
    ipaddress.IPv4Address(address)  # GCE external addresses are IPv4
    return f"{address}/32"
