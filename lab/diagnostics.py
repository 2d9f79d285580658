"""What to look at when a node misbehaves, in one text."""

from __future__ import annotations

from pathlib import Path

from lab.node import Node, exec_in
from lab.shell import run

# One nsenter call; each section names its source.
SCRIPT = r"""
echo '== cloud-init status --long'; cloud-init status --long 2>&1
echo '== systemctl --failed'; systemctl --failed --no-legend --plain 2>&1
echo '== /var/log/cloud-init-output.log (tail)'; tail -n "$1" /var/log/cloud-init-output.log 2>&1
if [ -f /var/log/uucp/Log ]; then
  echo '== /var/log/uucp/Log (tail)'; tail -n "$1" /var/log/uucp/Log
fi
if [ -f /var/log/mail.log ]; then
  echo '== /var/log/mail.log (tail)'; tail -n "$1" /var/log/mail.log
else
  echo '== journalctl -u postfix@- (tail)'; journalctl -q --no-pager -u postfix@- -n "$1" 2>&1
fi
"""


def diagnostics(node: Node, lines: int = 40) -> str:
    """cloud-init status, failed units, cloud-init output, UUCP and Postfix logs.

    For a node that is not running, what its upper dir and console log still hold."""
    if node.running():
        try:
            proc = exec_in(node, ["sh", "-c", SCRIPT, "sh", str(lines)], timeout=30)
            return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        except Exception as exc:  # a node dying right now: fall through to its files
            head = f"(node not answering: {exc})\n"
    else:
        head = f"(node {node.name} is not running: from its files)\n"
    sources = [
        node.console_log,
        node.upper / "var/log/cloud-init-output.log",
        node.upper / "var/log/uucp/Log",
        node.upper / "var/log/mail.log",
    ]
    text = head + "".join(_tail(path, lines) for path in sources if path.is_file())
    journal = node.upper / "var/log/journal"
    if journal.is_dir():  # the host's journalctl reads the node's journal files
        proc = run(["journalctl", "-q", "--no-pager", f"--directory={journal}",
                    "-u", "postfix@-", "-n", str(lines)], check=False, timeout=30)
        text += f"== journalctl -u postfix@- ({journal})\n" + proc.stdout.decode(errors="replace")
    return text


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"== {path} (tail)\n" + "\n".join(text) + "\n"
