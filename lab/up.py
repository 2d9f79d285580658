"""`python -m lab up`: the whole mesh from the program's own output, mail both ways, a report.

Steps, each timed and named in the report (and in the error, with every node's diagnostics,
when one fails): base, render, boot, cloud-init, register, mail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from lab import mesh, paths
from lab.runtime import INTERNET_NAME, Lab
from offline_render import RenderResult

T = TypeVar("T")
MAIL_TIMEOUT = 120.0


@dataclass
class Report:
    steps: list[tuple[str, float, str]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[None]:
        started = time.monotonic()
        yield
        self.steps.append((name, time.monotonic() - started, detail))

    def text(self) -> str:
        width = max(len(name) for name, _, _ in self.steps)
        lines = [f"  {name:<{width}}  {seconds:6.1f} s  {detail}"
                 for name, seconds, detail in self.steps]
        return "\n".join(lines)


@dataclass
class MeshUp:
    lab: Lab
    rendered: RenderResult
    report: Report

    @property
    def hub(self) -> str:
        return mesh.mesh_config(self.rendered).hub.name

    @property
    def leaves(self) -> list[str]:
        return mesh.leaf_names(self.rendered)


class StepFailed(RuntimeError):
    def __init__(self, step: str, error: Exception, diagnostics: str) -> None:
        super().__init__(f"lab step '{step}' failed: {error}\n\n{diagnostics}")
        self.step = step


def bring_up(lab: Lab, stack_file: Path = mesh.LAB_STACK) -> MeshUp:
    """Base, render, boot every node, wait for cloud-init, register every leaf."""
    report = Report()
    run = _guarded(lab)
    with report.step("base", "Debian 12 root and package repository (cached)"):
        run("base", lab.ensure_base)
        run("switch", lab.start_switch)
    out_dir = paths.run_dir() / "render"
    with report.step("render", f"offline render of {stack_file.name} into {out_dir}"):
        rendered = run("render", lambda: mesh.render(stack_file, out_dir))
    up = MeshUp(lab, rendered, report)
    with report.step("boot + cloud-init", f"internet, {up.hub}, {', '.join(up.leaves)}"):
        nodes = [mesh.boot_internet(lab, rendered)]
        nodes += run("boot", lambda: mesh.boot_nodes(lab, rendered, [up.hub, *up.leaves]))
        run("cloud-init", lambda: mesh.wait_ready(lab, nodes))
    with report.step("register", "each leaf's rendered command and stdin, over SSH as admin"):
        for leaf in up.leaves:
            run(f"register {leaf}", lambda leaf=leaf: mesh.register(rendered, leaf))
            run(f"mailbox on {leaf}", lambda leaf=leaf: mesh.add_mailbox(lab, leaf))
    return up


def check_mail(up: MeshUp) -> None:
    """Outbound, inbound and leaf-to-leaf mail, each timed into the report."""
    lab, run = up.lab, _guarded(up.lab)
    first, last = up.leaves[0], up.leaves[-1]
    first_domain = mesh.mesh_config(up.rendered).leaves[0].domains[0]
    last_domain = mesh.mesh_config(up.rendered).leaves[-1].domains[0]
    outbound = mesh.Mail(f"app@{first_domain}", "alice@internet.test", "outbound", "Grüße\n")
    marker = run("send outbound", lambda: mesh.send(lab, first, outbound))
    _, seconds = run("outbound delivery",
                     lambda: mesh.wait_for_mail(lab, INTERNET_NAME, marker, MAIL_TIMEOUT))
    up.report.steps.append(("mail out", seconds, f"{first} sendmail -> hub -> internet"))

    inbound = mesh.Mail("alice@internet.test", f"{mesh.MAILBOX_USER}@{last_domain}",
                        "inbound", "hello from the internet\n")
    hub_address = mesh.addresses(up.rendered)[up.hub]
    code, text = run("send inbound",
                     lambda: mesh.smtp_send(lab, INTERNET_NAME, hub_address, inbound))
    if code != 250:
        raise StepFailed("send inbound", RuntimeError(f"hub answered {code} {text}"), "")
    marker = text.rsplit("[", 1)[1].rstrip("]")
    _, seconds = run("inbound delivery",
                     lambda: mesh.wait_for_mail(lab, last, marker, MAIL_TIMEOUT))
    up.report.steps.append(("mail in", seconds, f"internet SMTP -> hub:25 -> {last} (poll)"))

    across = mesh.Mail(f"app@{first_domain}", f"{mesh.MAILBOX_USER}@{last_domain}",
                       "leaf to leaf", "across the hub\n")
    marker = run("send leaf to leaf", lambda: mesh.send(lab, first, across))
    _, seconds = run("leaf to leaf delivery",
                     lambda: mesh.wait_for_mail(lab, last, marker, MAIL_TIMEOUT))
    up.report.steps.append(("leaf to leaf", seconds, f"{first} -> hub -> {last}"))


def _guarded(lab: Lab) -> Callable[[str, Callable[[], T]], T]:
    """Run one step; on failure raise StepFailed with every node's diagnostics."""

    def run(step: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - any failure is reported with diagnostics
            diagnostics = "\n".join(lab.diagnostics(name) for name in sorted(lab.nodes))
            raise StepFailed(step, error, diagnostics) from error

    return run


def usage_hint() -> str:
    return (
        "The mesh is still up:\n"
        "  python -m lab shell NODE     a shell inside a node (e.g. leaf1.mesh.test)\n"
        "  python -m lab logs NODE      cloud-init, UUCP and Postfix logs of a node\n"
        "  python -m lab down           tear everything down\n"
        "(run them with the lab's venv: $(bash setup/ensure.sh)/bin/python)"
    )
