#!/bin/sh
# Login shell of the uucp user on the hub. sshd runs a key's forced command as
# `$SHELL -c '<command>'`; this shell runs that one command shape and refuses everything else,
# so a leaf key (or anything else that reaches this account) can never get a real shell.
# What the client asked to run (a shell, another command) is logged and ignored.
if [ -n "${SSH_ORIGINAL_COMMAND:-}" ]; then
    logger -p auth.warning -t mailmesh-uucp-shell \
        "refused requested command from ${SSH_CLIENT%% *}: $(printf '%.200s' "$SSH_ORIGINAL_COMMAND")"
fi
if [ "$#" -ne 2 ] || [ "$1" != "-c" ]; then
    logger -p auth.warning -t mailmesh-uucp-shell "refused login without forced command"
    echo "This account only speaks UUCP." >&2
    exit 1
fi
set -f
# shellcheck disable=SC2086 # the forced command is ours: split it into words, no globbing
set -- $2
if [ "$#" -ne 4 ] || [ "$1" != /usr/sbin/uucico ] || [ "$2" != -l ] || [ "$3" != -u ]; then
    logger -p auth.warning -t mailmesh-uucp-shell "refused forced command: $*"
    exit 1
fi
case "$4" in
    "" | *[!a-z0-9.-]*) logger -p auth.warning -t mailmesh-uucp-shell "bad leaf name"; exit 1 ;;
esac
# A shutdown (or the end of this session) sends SIGTERM to every process of the session at
# once: uucico, the uuxqt it starts and the rmail job uuxqt runs. A job killed half-way is a
# final failure for uuxqt, which files it under .Failed: the message was lost (measured,
# tests/lab/test_faults.py). uucico and uuxqt keep a signal ignored that they inherit ignored,
# and so do their children, so the job always completes its hand-off to Postfix. The SIGHUP
# that comes with it still ends the call and makes uuxqt stop after the job at hand.
trap '' TERM
exec /usr/sbin/uucico -l -u "$4"
