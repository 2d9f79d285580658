#!/usr/bin/python3
"""rmail for mail that leaves bring to the hub: the envelope sender must be the calling leaf's.

uuxqt runs this (the leaves' sys entries point command-path here) with UU_MACHINE set to the
system that sent the job, which the hub authenticated by key, source address and password.
The job's first line is the envelope, `From SENDER DATE`, as Postfix's uucp pipe writes it.
A sender in one of that leaf's domains (or the null sender of a bounce) goes on to Postfix's
sendmail with exactly that sender. Anything else is refused: the message is not relayed, the
leaf's postmaster gets a bounce saying why, and the refusal is logged. The bounce goes to the
leaf that sent the mail, never to the forged sender, so a refusal cannot become backscatter.

The envelope is read here and nowhere else. Postfix's rmail would build the sender from the
whole chain of `>From USER DATE remote from SYSTEM` lines (old UUCP forwarding) and hand on
`leaf2.example!bob`, which Postfix rewrites to bob@leaf2.example: a leaf could pass the check
with its own sender on the first line and forge another's on the second. Such chains, and
senders with routing characters (! % @ : in the local part), are refused.
"""

import os
import re
import signal
import subprocess
import sys
import syslog

LEAF_DOMAINS = "/etc/mailmesh/leaf-domains"
SENDMAIL = "/usr/sbin/sendmail"
ENVELOPE = re.compile(rb"^From (\S+) ")
ANY_ENVELOPE = re.compile(rb"^>?From ")
# RFC 5322 atext and dots, minus the characters that route mail elsewhere.
LOCAL_PART = re.compile(r"^[A-Za-z0-9#$&'*+/=?^_`{|}~.-]+$")
NULL_SENDERS = ("<>", "MAILER-DAEMON")
EX_TEMPFAIL = 75  # uuxqt keeps the job and runs it again later; any other failure is final


def leaf_domains(leaf):
    with open(LEAF_DOMAINS) as table:
        for line in table:
            fields = line.split()
            if fields and not line.startswith("#") and fields[0] == leaf:
                return [domain.lower() for domain in fields[1:]]
    return []


def check(leaf, domains, first, second, recipients):
    """(envelope sender for sendmail, None) if the job may pass, else (None, why not)."""
    match = ENVELOPE.match(first)
    if not match:
        return None, "it has no envelope line (From SENDER DATE)"
    if b" remote from " in first or ANY_ENVELOPE.match(second):
        return None, ("it carries a UUCP forwarding chain (more than one envelope line), "
                      "which would change its sender")
    bad = [r for r in recipients if not r or r.startswith("-")]
    if bad or not recipients:
        return None, f"bad recipient arguments {bad or recipients}"
    sender = match.group(1).decode("utf-8", "replace")
    if sender in NULL_SENDERS:
        return "", None
    local, at, domain = sender.removeprefix("<").removesuffix(">").rpartition("@")
    if at and LOCAL_PART.match(local) and domain.lower() in domains:
        return f"{local}@{domain}", None
    return None, (f"its envelope sender <{sender}> is not an address in {leaf or 'the caller'}'s "
                  f"domains ({', '.join(domains) or 'none'})")


def bounce(leaf, domains, sender, recipients, why, head):
    postmaster = f"postmaster@{domains[0]}" if domains else "postmaster"
    text = (
        f"From: Mail Delivery System <MAILER-DAEMON@{os.uname().nodename}>\n"
        f"To: {postmaster}\n"
        f"Subject: Undelivered Mail: sender {sender or '(none)'} refused for {leaf}\n"
        "Auto-Submitted: auto-replied\n\n"
        f"The mail hub refused a message from UUCP system {leaf}: {why}.\n"
        "It was not relayed.\n\n"
        f"Recipients: {', '.join(recipients)}\n\n"
        "Start of the refused message:\n\n" + head.decode("utf-8", "replace")
    )
    subprocess.run([SENDMAIL, "-i", "-f", "", "--", postmaster], input=text.encode(),
                   check=True)


def main(argv):
    leaf = os.environ.get("UU_MACHINE", "")
    recipients = argv[1:]
    first = sys.stdin.buffer.readline()
    second = sys.stdin.buffer.readline()
    domains = leaf_domains(leaf)
    sender, why = check(leaf, domains, first, second, recipients)
    if why is not None:
        claimed = ENVELOPE.match(first)
        claimed = claimed.group(1).decode("utf-8", "replace") if claimed else ""
        syslog.openlog("mailmesh-rmail", 0, syslog.LOG_MAIL)
        syslog.syslog(syslog.LOG_WARNING, f"refused message from leaf {leaf!r} (sender "
                      f"<{claimed}>, recipients {recipients}): {why}")
        head = first + second + sys.stdin.buffer.read(4096)
        bounce(leaf, domains, claimed, recipients, why, head)
        return 0  # handled: the bounce went to the leaf; uuxqt must not notify the forger
    sendmail = subprocess.Popen([SENDMAIL, "-i", "-f", sender, "--", *recipients],
                                stdin=subprocess.PIPE)
    try:
        sendmail.stdin.write(second)
        while chunk := sys.stdin.buffer.read(1 << 16):
            sendmail.stdin.write(chunk)
        sendmail.stdin.close()
    except BrokenPipeError:
        pass  # sendmail stopped reading: its status below says why
    status = sendmail.wait()
    # Killed by a signal: the message may not have reached the queue; a final failure here
    # would make uuxqt file the job under .Failed and the mail would be lost. Try again later.
    return EX_TEMPFAIL if status < 0 else status


def ignore_shutdown_signals():
    """This job must never die half-way of a shutdown's SIGTERM: uuxqt counts that as a final
    failure and files the job under .Failed, the message lost (measured on a hub reboot,
    tests/lab/test_faults.py). uucp-shell starts uucico, hence uuxqt and this job, with SIGTERM
    ignored, and mailmesh-uuxqt.service signals uuxqt alone. Ignoring it here too covers a
    uuxqt started any other way (from the moment Python runs this), and sendmail and postdrop
    inherit the ignore, so the hand-off to Postfix's queue completes."""
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(number, signal.SIG_IGN)


if __name__ == "__main__":
    ignore_shutdown_signals()
    sys.exit(main(sys.argv))
