"""A leaf: one GCE instance with a static external address, registered on the hub.

Everything a leaf adds is a child of its `Leaf` component: the address, the instance, the
hub's SSH ingress rule for that address, and the registration, a `remote.Command` that logs in
to the hub as the admin user and runs `mailmesh-register register` with the leaf's JSON on
stdin. Removing a leaf from the config deletes exactly these; the registration's delete command
deregisters it on the hub.

Secrets: the leaf's private key and UUCP password are derived from keySeed and wrapped in
`pulumi.Output.secret` as they are made; everything built from them (the user-data, the
registration's stdin) is therefore secret too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from components import keys, registration
from components.hub import Hub
from components.keys import SshKeyPair
from components.model import HubConfig, LeafConfig
from components.render import render_leaf_user_data

LEAF_TYPE = "uucp-mailmesh:index:Leaf"
LEAF_TAG = "mailmesh-leaf"
# The registration waits for the hub's cloud-init (packages included): allow for a slow boot.
REGISTRATION_TIMEOUTS = pulumi.CustomTimeouts(create="20m", update="20m", delete="10m")


@dataclass(frozen=True)
class LeafArgs:
    """What one leaf is built from.

    `hub` supplies the address the leaf calls (and the registration logs in to), the instance
    id the registration is tied to, and the security group the leaf's SSH rule joins.
    `admin_private_key` logs the registration in to the hub: pass it as a secret Output.
    """

    config: LeafConfig
    hub_config: HubConfig
    hub: Hub
    hub_host_public_key: str
    key_seed: str
    poll_interval: int
    admin_private_key: pulumi.Output[str]


class Leaf(pulumi.ComponentResource):
    address: gcp.compute.Address
    instance: gcp.compute.Instance
    ssh_rule: pulumi.CustomResource
    registration: command.remote.Command
    public_address: pulumi.Output[str]
    public_key: str

    def __init__(
        self, name: str, args: LeafArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(LEAF_TYPE, name, None, opts)
        leaf = args.config
        hub = args.hub
        child = pulumi.ResourceOptions(parent=self)

        derived = keys.leaf_keypair(args.key_seed, leaf.name, leaf.key_version)
        self.public_key = derived.public_openssh
        private_key = pulumi.Output.secret(derived.private_openssh)
        password = pulumi.Output.secret(
            keys.leaf_password(args.key_seed, leaf.name, leaf.key_version)
        )

        self.address = gcp.compute.Address(
            f"{leaf.resource_name}-address",
            name=leaf.resource_name,
            region=leaf.region,
            description=f"uucp-mailmesh leaf {leaf.name}",
            opts=child,
        )
        self.public_address = self.address.address

        def render(values: list[str]) -> str:
            hub_address, private_openssh, password_text = values
            return render_leaf_user_data(
                leaf,
                args.hub_config,
                hub_address,
                args.hub_host_public_key,
                SshKeyPair(public_openssh=self.public_key, private_openssh=private_openssh),
                password_text,
                args.poll_interval,
            )

        user_data = pulumi.Output.secret(
            pulumi.Output.all(hub.public_ip, private_key, password).apply(render)
        )

        self.instance = gcp.compute.Instance(
            f"{leaf.resource_name}-instance",
            name=leaf.resource_name,
            zone=leaf.zone,
            machine_type=leaf.machine_type,
            boot_disk=gcp.compute.InstanceBootDiskArgs(
                initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(
                    image=leaf.image,
                ),
            ),
            network_interfaces=[
                gcp.compute.InstanceNetworkInterfaceArgs(
                    network="default",
                    access_configs=[
                        gcp.compute.InstanceNetworkInterfaceAccessConfigArgs(
                            nat_ip=self.address.address,
                        )
                    ],
                )
            ],
            metadata={"user-data": user_data},
            tags=[LEAF_TAG],
            shielded_instance_config=gcp.compute.InstanceShieldedInstanceConfigArgs(
                enable_secure_boot=True,
                enable_vtpm=True,
                enable_integrity_monitoring=True,
            ),
            allow_stopping_for_update=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                # cloud-init runs once: a changed user-data must rebuild the leaf. The name is
                # fixed, so the old instance has to go before the new one can take it.
                replace_on_changes=["metadata"],
                delete_before_replace=True,
            ),
        )

        self.ssh_rule = hub.allow_leaf(leaf.name, self.address.address, child)

        ids = pulumi.Output.all(self.address.address, self.instance.instance_id, hub.instance_id)
        registration_id = ids.apply(
            lambda v: registration.registration_id(
                leaf.name, v[0], leaf.domains, self.public_key, v[1], v[2]
            )
        )
        payload = pulumi.Output.secret(
            pulumi.Output.all(
                self.address.address, password, self.instance.instance_id, hub.instance_id
            ).apply(
                lambda v: registration.registration_payload(
                    leaf.name, v[0], leaf.domains, self.public_key, v[1], v[2], v[3]
                )
            )
        )

        self.registration = command.remote.Command(
            f"{leaf.resource_name}-registration",
            connection=command.remote.ConnectionArgs(
                host=hub.public_ip,
                user=registration.ADMIN_USER,
                private_key=args.admin_private_key,
                # The hub's host key is derived from keySeed: pin it, never trust on first use.
                host_key=args.hub_host_public_key,
                # A new hub takes minutes to boot; the custom timeouts bound the waiting.
                dial_error_limit=-1,
            ),
            create=registration.CREATE_COMMAND,
            stdin=payload,
            delete=registration_id.apply(lambda rid: registration.delete_command(leaf.name, rid)),
            # stdout and stderr would show in diffs and logs (pulumi-command#260).
            logging=command.remote.Logging.NONE,
            add_previous_output_in_env=False,
            # No triggers: a rebuilt hub or leaf changes the stdin (it names both instance ids),
            # which is an update, so `create` registers again in place. A replacement would
            # deregister first (the leaf instance is delete-before-replace) and the hub would
            # refuse the leaf's mail while it rebuilds.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.instance, self.ssh_rule, hub.eip_association],
                additional_secret_outputs=["stdin"],
                custom_timeouts=REGISTRATION_TIMEOUTS,
            ),
        )

        self.register_outputs({"address": self.public_address, "public_key": self.public_key})
