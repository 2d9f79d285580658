"""Run the project's own Pulumi program (`__main__.py`, unchanged) under Pulumi's mock runtime.

Each evaluation runs in a fresh `contextvars.Context`: Pulumi keeps its runtime settings, the
root stack resource and the config in context variables, so evaluations in one process (the
tests) cannot see each other's state.
"""

from __future__ import annotations

import contextvars
import gc
import json
import runpy
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config import NAMESPACE, parse_mesh_config
from components.model import MeshConfig
from offline_render.mocks import MeshMocks, RecordingMonitor, Registration
from offline_render.stackfile import ALWAYS_SECRET, PROJECT_ROOT

PROGRAM = PROJECT_ROOT / "__main__.py"


class ProgramError(Exception):
    """The program stopped with `pulumi.RunError` (a bad config). str() is its message;
    `registrations` what was registered before it stopped (nothing, for a config error)."""

    def __init__(self, message: str, registrations: list[Registration]) -> None:
        super().__init__(message)
        self.registrations = registrations


@dataclass(frozen=True)
class StackOutput:
    value: Any
    secret: bool


@dataclass(frozen=True)
class Evaluation:
    mesh: MeshConfig
    registrations: tuple[Registration, ...]  # sorted by URN
    outputs: dict[str, StackOutput]
    invokes: tuple[tuple[str, dict[str, Any]], ...] = ()  # provider function calls, in order

    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.registrations}

    def find(self, type_: str, name: str | None = None) -> list[Registration]:
        return [
            r for r in self.registrations if r.type == type_ and (name is None or r.name == name)
        ]

    def one(self, type_: str, name: str | None = None) -> Registration:
        found = self.find(type_, name)
        if len(found) != 1:
            raise LookupError(f"{len(found)} registrations of {type_} {name or ''}".strip())
        return found[0]

    def children(self, parent_urn: str) -> list[Registration]:
        return [r for r in self.registrations if r.parent == parent_urn]


def evaluate(
    config: Mapping[str, Any],
    *,
    stack: str = "offline",
    project: str = NAMESPACE,
    secret_keys: Iterable[str] = ALWAYS_SECRET,
    addresses: Mapping[str, str] | None = None,
) -> Evaluation:
    """Run the program with `config` (full keys, as in a stack file's `config:`)."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    context = contextvars.Context()
    with no_cyclic_gc():
        return context.run(
            _evaluate, dict(config), stack, project, sorted(set(secret_keys)), addresses or {}
        )


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: it would scan the whole growing heap (the
    provider SDKs, every resource, Output and task so far) again and again, which with
    hundreds of leaves was over half the render's time. Cycles are collected after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _evaluate(
    config: dict[str, Any],
    stack: str,
    project: str,
    secret_keys: list[str],
    addresses: Mapping[str, str],
) -> Evaluation:
    # Pulumi hands the program every config value as text; objects and lists as JSON.
    pulumi.runtime.set_all_config({k: _as_text(v) for k, v in config.items()}, secret_keys)
    mocks = MeshMocks(addresses)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    root = settings.get_root_resource()
    assert root is not None
    done: dict[str, Any] = {}

    async def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        done["outputs"] = {
            name: StackOutput(
                value=await pulumi.Output.from_input(value).future(),
                secret=await pulumi.Output.from_input(value).is_secret(),
            )
            for name, value in root.outputs.items()
        }

    try:
        _sync_await(run_pulumi_func(program))
    except pulumi.RunError as err:
        raise ProgramError(str(err), list(monitor.registrations)) from None

    # The program validated this same config; parse it again for the render's own use
    # (node names of resources, the secret values to mask).
    from components.program import raw_stack_config

    mesh = parse_mesh_config(raw_stack_config())
    return Evaluation(
        mesh=mesh,
        registrations=tuple(sorted(monitor.registrations, key=lambda r: r.urn)),
        outputs=dict(sorted(done["outputs"].items())),
        invokes=tuple(mocks.invokes),
    )


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
