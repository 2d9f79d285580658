"""uucp-mailmesh: the Pulumi program. See components/program.py."""

from components.program import main

main()
