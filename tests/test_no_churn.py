"""Changing the leaf list touches only the leaves that changed, and a render is reproducible.

`pulumi preview` shows a change wherever a resource's inputs differ; these tests compare the
renders' resources.json (a sha256 of every input of every resource) the same way, secrets
included, without reading a secret.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_render import render_stack
from tests.mesh_stacks import NS, stack_config, stack_file

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GAMMA = "gamma-mesh-example"


def resources(out: Path) -> dict[str, dict]:
    """resources.json by URN. Renders compared must share a stack name (it is in the URNs)."""
    return {entry["urn"]: entry for entry in json.loads((out / "resources.json").read_text())}


def unchanged(entry: dict) -> dict:
    """What must stay equal for Pulumi to see no change."""
    return {key: entry[key] for key in ("type", "parent", "inputHashes", "options")}


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in ("two-leaves", "three-leaves"):
        out[name] = tmp_path_factory.mktemp(name)
        render_stack(stack_file(name), out[name], stack_name="churn")
    return out


def test_adding_a_leaf_changes_no_existing_resource(renders):
    two, three = resources(renders["two-leaves"]), resources(renders["three-leaves"])
    assert set(two) < set(three)
    for urn, entry in two.items():
        assert unchanged(three[urn]) == unchanged(entry), urn
        assert three[urn]["dependencies"] == entry["dependencies"], urn


def test_removing_a_leaf_removes_only_its_own_resources(renders):
    two, three = resources(renders["two-leaves"]), resources(renders["three-leaves"])
    removed = {three[urn]["type"]: three[urn] for urn in set(three) - set(two)}
    assert sorted(removed) == sorted(
        [
            "uucp-mailmesh:index:Leaf",
            "gcp:compute/address:Address",
            "gcp:compute/instance:Instance",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",  # its SSH rule
            "command:remote:Command",  # its registration: deleting it deregisters the leaf
        ]
    )
    component = removed.pop("uucp-mailmesh:index:Leaf")
    assert component["name"] == GAMMA
    assert all(entry["parent"] == component["urn"] for entry in removed.values())


def test_the_hub_never_changes_with_the_leaves(renders):
    for name in ("nodes/mx.mesh.example/user-data", "nodes/mx.mesh.example/user-data.txt"):
        assert (renders["two-leaves"] / name).read_bytes() == (
            renders["three-leaves"] / name
        ).read_bytes()


def test_rotating_one_leaf_key_changes_only_that_leaf(tmp_path):
    config = stack_config("two-leaves")
    config[f"{NS}:leaves"][1]["keyVersion"] = 2
    rotated_file = tmp_path / "Pulumi.rotated.yaml"
    rotated_file.write_text(json.dumps({"config": config}))
    before = render_stack(stack_file("two-leaves"), tmp_path / "before", stack_name="churn")
    after = render_stack(rotated_file, tmp_path / "after", stack_name="churn")
    before, after = resources(before.out_dir), resources(after.out_dir)

    changed = {urn for urn in before if unchanged(before[urn]) != unchanged(after[urn])}
    assert set(after) == set(before)
    assert sorted(before[urn]["name"] for urn in changed) == [
        "beta-mesh-example-instance",  # new key and password in its user-data: rebuilt
        "beta-mesh-example-registration",  # registered again with them
    ]


def test_rendering_twice_gives_identical_bytes(tmp_path):
    for show_secrets in (False, True):
        first = render_stack(stack_file("three-leaves"), tmp_path / "a", show_secrets)
        second = render_stack(stack_file("three-leaves"), tmp_path / "b", show_secrets)
        assert first.files == second.files
        for name in first.files:
            assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name


def test_a_render_replaces_the_previous_one(tmp_path):
    out = tmp_path / "render"
    render_stack(stack_file("three-leaves"), out)
    assert (out / "registrations/gamma.mesh.example").exists()
    result = render_stack(stack_file("two-leaves"), out)
    assert not (out / "registrations/gamma.mesh.example").exists()
    assert not (out / "nodes/gamma.mesh.example").exists()
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == list(result.files)
