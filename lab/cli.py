"""`python -m lab`: build the cache, enter or inspect nodes, tear everything down."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from lab import node, paths, state, teardown
from lab.runtime import Lab


def _up(args: argparse.Namespace) -> int:
    from lab import up  # imports the program (Pulumi SDK): only for `up`

    started = time.monotonic()
    lab = Lab()
    if teardown.leftovers():
        print("a previous lab is still up: tearing it down first")
        teardown.down()
    try:
        mesh_up = up.bring_up(lab, Path(args.stack))
        up.check_mail(mesh_up)
    except up.StepFailed as failed:
        print(failed, file=sys.stderr)
        print(f"\nFAILED at step '{failed.step}'. {up.usage_hint()}", file=sys.stderr)
        return 1
    print(f"\nuucp-mailmesh lab: mail delivered both ways "
          f"({time.monotonic() - started:.0f} s in all)\n")
    print(mesh_up.report.text())
    print(f"\n{up.usage_hint()}")
    return 0


def _base(args: argparse.Namespace) -> int:
    started = time.monotonic()
    root = Lab().ensure_base(force=args.force)
    print(f"base {root} and repository {paths.debs_dir()} ready "
          f"in {time.monotonic() - started:.0f} s")
    return 0


def _down(args: argparse.Namespace) -> int:
    report = teardown.down()
    print(f"stopped processes {report.processes}, unmounted {len(report.mounts)}, "
          f"deleted netns {report.netns}")
    for item in report.leftovers:
        print(f"LEFT: {item}", file=sys.stderr)
    return 1 if report.leftovers else 0


def _shell(args: argparse.Namespace) -> int:
    target = Lab.attach().get(args.node)
    argv = node.nsenter_argv(
        node.leader(target), ["bash", "--login"], {"TERM": os.environ.get("TERM", "xterm")}
    )
    os.execvp(argv[0], argv)


def _logs(args: argparse.Namespace) -> int:
    lab = Lab.attach()
    print(lab.diagnostics(args.node, args.lines), end="")
    return 0


def _status(args: argparse.Namespace) -> int:
    print(json.dumps(state.read(), indent=1, sort_keys=True))
    for item in teardown.leftovers():
        print(f"exists: {item}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser(
        "up", help="boot hub, leaves and internet from the program's render; send mail"
    )
    up_parser.add_argument("--stack", default=str(Path(__file__).with_name("Pulumi.lab.yaml")))
    base = sub.add_parser("base", help="build (or find cached) the base root and package repo")
    base.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("down", help="tear down every node, netns, mount and the repo server")
    sub.add_parser("status", help="print the state file and what of the lab exists")
    shell = sub.add_parser("shell", help="a login shell inside a node")
    shell.add_argument("node")
    logs = sub.add_parser("logs", help="cloud-init, UUCP and Postfix diagnostics of a node")
    logs.add_argument("node")
    logs.add_argument("-n", "--lines", type=int, default=40)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s"
    )
    if os.geteuid() != 0:
        parser.error("the lab needs root (namespaces, mounts, nspawn)")
    handlers = {
        "up": _up, "base": _base, "down": _down, "status": _status, "shell": _shell, "logs": _logs
    }
    return handlers[args.command](args)
