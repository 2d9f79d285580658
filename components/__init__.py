"""uucp-mailmesh: the mail mesh as Pulumi components, built on pure config, key and render logic."""
