#!/usr/bin/python3
"""Run inside a lab node by the benchmark (stdlib only: the node's own python3).

Every message it makes ends with the line `MMBENCH-END <marker>`, which the benchmark
watches for in the receiving mailbox. Times are time.time(): the nodes share the host's
clock. Each command prints one JSON document.

  sendmail SENDER RCPT SIZE                 one message through /usr/sbin/sendmail
  smtp-batch HOST SENDER RCPT COUNT SIZE    COUNT messages in one SMTP session
  smtp-spread HOST SENDER RCPT COUNT GAP    COUNT messages, one SMTP session each, GAP s apart
  raw-ssh FILE SSH-ARGV...                  FILE into `ssh SSH-ARGV...` (the hub runs cat)
"""

import json
import smtplib
import subprocess
import sys
import time
import uuid

LINE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/abcd\n"


def message(sender: str, recipient: str, size: int, marker: str) -> bytes:
    head = (
        f"From: {sender}\nTo: {recipient}\nSubject: mmbench {marker}\n"
        f"Message-ID: <{marker}@mmbench>\n\n"
    )
    tail = f"MMBENCH-END {marker}\n"
    room = max(0, size - len(head) - len(tail))
    body = LINE * (room // len(LINE)) + "x" * (room % len(LINE) - 1) + "\n" if room else ""
    return (head + body + tail).encode()


def sendmail(sender: str, recipient: str, size: str) -> dict:
    marker = uuid.uuid4().hex
    data = message(sender, recipient, int(size), marker)
    started = time.time()
    subprocess.run(["/usr/sbin/sendmail", "-i", "-f", sender, recipient], input=data, check=True)
    return {"marker": marker, "t0": started, "submitted": time.time(), "bytes": len(data)}


def smtp_batch(host: str, sender: str, recipient: str, count: str, size: str) -> dict:
    markers = [uuid.uuid4().hex for _ in range(int(count))]
    messages = [message(sender, recipient, int(size), m) for m in markers]
    started = time.time()
    with smtplib.SMTP(host, 25, timeout=120) as smtp:
        smtp.ehlo("mmbench.test")
        for data in messages:
            smtp.sendmail(sender, [recipient], data)
    return {"markers": markers, "t0": started, "submitted": time.time()}


def smtp_spread(host: str, sender: str, recipient: str, count: str, gap: str) -> dict:
    sent = []
    begin = time.time()
    for i in range(int(count)):
        time.sleep(max(0.0, begin + i * float(gap) - time.time()))
        marker = uuid.uuid4().hex
        data = message(sender, recipient, 2048, marker)
        started = time.time()
        with smtplib.SMTP(host, 25, timeout=60) as smtp:
            smtp.ehlo("mmbench.test")
            smtp.sendmail(sender, [recipient], data)
        sent.append({"marker": marker, "t0": started})
    return {"sent": sent}


def raw_ssh(path: str, *argv: str) -> dict:
    with open(path, "rb") as payload:
        started = time.time()
        done = subprocess.run(["ssh", *argv], stdin=payload, capture_output=True)
        ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"ssh failed ({done.returncode}): {done.stderr.decode()}")
    return {"t0": started, "t1": ended}


COMMANDS = {"sendmail": sendmail, "smtp-batch": smtp_batch, "smtp-spread": smtp_spread,
            "raw-ssh": raw_ssh}

if __name__ == "__main__":
    print(json.dumps(COMMANDS[sys.argv[1]](*sys.argv[2:])))
