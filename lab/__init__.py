"""The mail-mesh lab: boots the program's cloud-init user-data in systemd-nspawn containers.

Entry point for callers: `lab.runtime.Lab`. Command line: `python -m lab --help`.
"""
