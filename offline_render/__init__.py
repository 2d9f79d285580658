"""Render a stack without the Pulumi CLI or any cloud: `python -m offline_render`.

Runs the project's Pulumi program (`__main__.py`, unchanged) under Pulumi's mock runtime with a
stack file's config, and writes what every machine would get (user-data), what every leaf's
registration would run on the hub, and every resource with its inputs. The lab boots its nodes
from these files; the tests compare renders.

    render_stack(stack_file, out_dir, show_secrets=False, secrets_file=None, stack_name=None)
        -> RenderResult
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from offline_render.evaluate import Evaluation, ProgramError, StackOutput, evaluate
from offline_render.mocks import Registration
from offline_render.stackfile import StackFile, StackFileError, load_stack_file
from offline_render.write import MASK, secret_values, write_render

__all__ = [
    "MASK",
    "Evaluation",
    "ProgramError",
    "Registration",
    "RenderResult",
    "StackFile",
    "StackFileError",
    "StackOutput",
    "evaluate",
    "evaluate_stack_file",
    "load_stack_file",
    "render_stack",
    "secret_values",
]


@dataclass(frozen=True)
class RenderResult:
    stack: StackFile
    evaluation: Evaluation
    out_dir: Path
    files: tuple[str, ...]  # written, relative to out_dir, sorted
    show_secrets: bool

    def path(self, relative: str) -> Path:
        return self.out_dir / relative


def evaluate_stack_file(
    stack_file: str | Path,
    secrets_file: str | Path | None = None,
    stack_name: str | None = None,
) -> tuple[StackFile, Evaluation]:
    stack = load_stack_file(stack_file, secrets_file)
    if stack_name is not None:
        stack = replace(stack, stack=stack_name)
    evaluation = evaluate(
        stack.config,
        stack=stack.stack,
        project=stack.project,
        secret_keys=stack.secret_keys,
        addresses=stack.addresses,
    )
    return stack, evaluation


def render_stack(
    stack_file: str | Path,
    out_dir: str | Path,
    show_secrets: bool = False,
    secrets_file: str | Path | None = None,
    stack_name: str | None = None,
) -> RenderResult:
    """Evaluate the stack file and write the render to out_dir.

    The stack is named after the file (Pulumi.<stack>.yaml) unless `stack_name` is given:
    URNs contain it, so renders of two files compare resource by resource only under one name.
    Raises StackFileError (unreadable stack file, encrypted values without a secrets file) or
    ProgramError (the program rejected the config) before writing anything.
    """
    stack, evaluation = evaluate_stack_file(stack_file, secrets_file, stack_name)
    out = Path(out_dir)
    written = write_render(evaluation, out, stack=stack.stack, show_secrets=show_secrets)
    return RenderResult(
        stack=stack,
        evaluation=evaluation,
        out_dir=out,
        files=written.files,
        show_secrets=show_secrets,
    )
