#!/usr/bin/python3
"""rmail for mail that leaves bring to the hub: the envelope sender must be the calling leaf's.

uuxqt runs this (the leaves' sys entries point command-path here) with UU_MACHINE set to the
system that sent the job, which the hub authenticated by key, source address and password.
A sender in one of that leaf's domains (or the null sender of a bounce) passes on to Postfix's
own rmail. Any other sender is refused: the message is not relayed, the leaf's postmaster gets
a bounce saying why, and the refusal is logged. The bounce goes to the leaf that sent the
mail, never to the forged sender, so a refusal cannot be turned into backscatter.
"""

import os
import re
import subprocess
import sys
import syslog

LEAF_DOMAINS = "/etc/mailmesh/leaf-domains"
FROM_LINE = re.compile(rb"^>?From (\S+)")


def leaf_domains(leaf):
    with open(LEAF_DOMAINS) as table:
        for line in table:
            fields = line.split()
            if fields and not line.startswith("#") and fields[0] == leaf:
                return fields[1:]
    return []


def sender_domain(sender):
    sender = sender.strip("<>")
    if "!" in sender:  # UUCP bang path: leaf!user
        return None
    return sender.rpartition("@")[2].lower() if "@" in sender else None


def bounce(leaf, domains, sender, recipients, head):
    postmaster = f"postmaster@{domains[0]}" if domains else "postmaster"
    text = (
        f"From: Mail Delivery System <MAILER-DAEMON@{os.uname().nodename}>\n"
        f"To: {postmaster}\n"
        f"Subject: Undelivered Mail: sender {sender} refused for {leaf}\n"
        "Auto-Submitted: auto-replied\n\n"
        f"The mail hub refused a message from UUCP system {leaf}.\n\n"
        f"Its envelope sender <{sender}> is not in {leaf}'s domains "
        f"({', '.join(domains) or 'none'}), so it was not relayed.\n"
        f"Recipients: {', '.join(recipients)}\n\n"
        "Start of the refused message:\n\n" + head.decode("utf-8", "replace")
    )
    subprocess.run(["/usr/sbin/sendmail", "-i", "-f", "", postmaster], input=text.encode(),
                   check=True)


def main(argv):
    leaf = os.environ.get("UU_MACHINE", "")
    first = sys.stdin.buffer.readline()
    match = FROM_LINE.match(first)
    sender = match.group(1).decode("utf-8", "replace") if match else ""
    domains = leaf_domains(leaf)
    if sender not in ("", "<>", "MAILER-DAEMON") and sender_domain(sender) not in domains:
        head = first + sys.stdin.buffer.read(4096)
        syslog.openlog("mailmesh-rmail", 0, syslog.LOG_MAIL)
        syslog.syslog(syslog.LOG_WARNING, f"refused sender <{sender}> from leaf {leaf!r}: "
                      f"not in its domains {domains}")
        bounce(leaf, domains, sender, argv[1:], head)
        return 0  # handled: the bounce went to the leaf; uuxqt must not notify the forger
    rmail = subprocess.Popen(["/usr/sbin/rmail", *argv[1:]], stdin=subprocess.PIPE)
    rmail.stdin.write(first)
    while chunk := sys.stdin.buffer.read(1 << 16):
        rmail.stdin.write(chunk)
    rmail.stdin.close()
    return rmail.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
