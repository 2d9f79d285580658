"""python -m offline_render STACK_FILE OUT_DIR [--show-secrets] [--secrets FILE]

Exit status: 0 rendered; 2 the stack file or its config is invalid (the message says why;
nothing is written).
"""

from __future__ import annotations

import argparse
import sys

from offline_render import ProgramError, StackFileError, render_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offline_render",
        description="Render a uucp-mailmesh stack under Pulumi's mock runtime: every node's "
        "user-data, every leaf registration, every resource. No cloud is called.",
    )
    parser.add_argument("stack_file", help="a Pulumi.<stack>.yaml")
    parser.add_argument("out_dir", help="where to write the render")
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="write real private keys and passwords into the user-data and stdin files "
        "(needed to boot nodes from them); otherwise they read [secret]",
    )
    parser.add_argument(
        "--secrets",
        metavar="FILE",
        help="YAML map of config paths to the plain values of encrypted ({secure: ...}) "
        "settings, e.g. 'uucp-mailmesh:keySeed: ...'",
    )
    args = parser.parse_args(argv)
    try:
        result = render_stack(args.stack_file, args.out_dir, args.show_secrets, args.secrets)
    except (ProgramError, StackFileError) as err:
        print(err, file=sys.stderr)
        return 2
    resources = len(result.evaluation.registrations)
    print(
        f"rendered stack {result.stack.stack!r}: {resources} resources, "
        f"{len(result.files)} files in {result.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
