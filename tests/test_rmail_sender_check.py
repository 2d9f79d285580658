"""The hub's rmail (cloud-init/hub/rmail-sender-check.py): a leaf sends only as its own domains.

Run here against a stand-in sendmail that records its arguments and input; the lab's
tests/lab/test_attacks.py runs the same script under the hub's real uuxqt.
"""

from __future__ import annotations

import importlib.util
import io
import sys

import pytest

from tests.conftest import ROOT

LEAF = "leaf1.mesh.test"
ENVELOPE = b"From app@leaf1.example  Thu Nov 26 11:45:44 2026\n"
MESSAGE = b"Received: by leaf1.mesh.test (Postfix)\nSubject: hi\n\nbody\n"


@pytest.fixture
def rmail(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "rmail_sender_check", ROOT / "cloud-init/hub/rmail-sender-check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = tmp_path / "leaf-domains"
    table.write_text("# header\nleaf1.mesh.test leaf1.example App.Example\n"
                     "leaf2.mesh.test leaf2.example\n")
    fake = tmp_path / "sendmail"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\ncat > {tmp_path}/stdin\n')
    fake.chmod(0o755)
    monkeypatch.setattr(module, "LEAF_DOMAINS", str(table))
    monkeypatch.setattr(module, "SENDMAIL", str(fake))
    monkeypatch.setattr(module.syslog, "syslog", lambda *args: None)
    return module


def run(rmail, tmp_path, monkeypatch, data: bytes, leaf: str = LEAF,
        recipients: tuple[str, ...] = ("alice@internet.example",)) -> tuple[list[str], bytes]:
    monkeypatch.setenv("UU_MACHINE", leaf)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert rmail.main(["rmail", *recipients]) == 0
    argv = (tmp_path / "argv").read_text().splitlines()
    return argv, (tmp_path / "stdin").read_bytes()


@pytest.mark.parametrize(("sender", "passed_as"), [
    ("app@leaf1.example", "app@leaf1.example"),
    ("o'brien+tag@APP.example", "o'brien+tag@APP.example"),
    ("<app@leaf1.example>", "app@leaf1.example"),
    ("MAILER-DAEMON", ""),
    ("<>", ""),
])
def test_own_domains_and_the_null_sender_pass(rmail, sender, passed_as):
    first = f"From {sender}  Thu Nov 26 11:45:44 2026\n".encode()
    assert rmail.check(LEAF, ["leaf1.example", "app.example"], first, b"Received: x\n",
                       ["a@b.example"]) == (passed_as, None)


@pytest.mark.parametrize(("first", "second", "reason"), [
    (b"From bob@leaf2.example  Thu\n", b"Subject: x\n", "not an address in"),
    (b"From leaf2.example!bob  Thu\n", b"Subject: x\n", "not an address in"),
    (b"From bob%leaf2.example@leaf1.example  Thu\n", b"Subject: x\n", "not an address in"),
    (b"From bob@leaf2.example@leaf1.example  Thu\n", b"Subject: x\n", "not an address in"),
    (b"From @leaf2.example:bob@leaf1.example  Thu\n", b"Subject: x\n", "not an address in"),
    (b"From bob  Thu\n", b"Subject: x\n", "not an address in"),
    (b"From bob@leaf1.example.evil  Thu\n", b"Subject: x\n", "not an address in"),
    (ENVELOPE, b">From bob Thu Nov 26 11:45:44 2026 remote from leaf2.example\n", "chain"),
    (ENVELOPE, b"From bob Thu Nov 26 11:45:44 2026 remote from leaf2.example\n", "chain"),
    (b"From app@leaf1.example Thu Nov 26 2026 remote from leaf2.example\n", b"S: x\n", "chain"),
    (b"Subject: no envelope\n", b"\n", "no envelope line"),
])
def test_forged_or_routed_senders_are_refused(rmail, first, second, reason):
    sender, why = rmail.check(LEAF, ["leaf1.example"], first, second, ["a@b.example"])
    assert sender is None and reason in why


def test_option_like_recipients_are_refused(rmail):
    _, why = rmail.check(LEAF, ["leaf1.example"], ENVELOPE, b"S: x\n", ["-oQ/tmp", "a@b.example"])
    assert "bad recipient" in why


def test_an_unknown_caller_may_send_nothing_but_bounces(rmail):
    assert rmail.check("", [], ENVELOPE, b"S: x\n", ["a@b.example"])[0] is None
    assert rmail.check("", [], b"From MAILER-DAEMON Thu\n", b"S: x\n", ["a@b.example"])[0] == ""


def test_a_passed_message_goes_to_sendmail_with_exactly_the_checked_sender(
        rmail, tmp_path, monkeypatch):
    argv, stdin = run(rmail, tmp_path, monkeypatch, ENVELOPE + MESSAGE)
    assert argv == ["-i", "-f", "app@leaf1.example", "--", "alice@internet.example"]
    assert stdin == MESSAGE  # the envelope line is consumed, the rest byte for byte


def test_a_refused_message_bounces_to_the_leafs_postmaster_with_the_reason(
        rmail, tmp_path, monkeypatch):
    chain = b">From bob Thu Nov 26 11:45:44 2026 remote from leaf2.example\n"
    argv, stdin = run(rmail, tmp_path, monkeypatch, ENVELOPE + chain + MESSAGE)
    assert argv == ["-i", "-f", "", "--", "postmaster@leaf1.example"]
    text = stdin.decode()
    assert "Subject: Undelivered Mail: sender app@leaf1.example refused for leaf1.mesh.test" in text
    assert "UUCP forwarding chain" in text and "alice@internet.example" in text
    assert "remote from leaf2.example" in text  # the start of the refused message



@pytest.mark.parametrize(("script", "status"), [
    ("cat > /dev/null; kill -TERM $$", 75),  # killed: uuxqt keeps the job (EX_TEMPFAIL)
    ("exit 75", 75),  # sendmail's own temporary failure, before reading anything
    ("cat > /dev/null; exit 69", 69),  # a final failure stays final
])
def test_sendmail_cut_short_leaves_the_job_to_uuxqt_for_later(rmail, tmp_path, monkeypatch,
                                                               script, status):
    """A job killed half-way is a final failure for uuxqt (filed under .Failed, the message
    lost); a signal death of sendmail comes back as EX_TEMPFAIL instead."""
    fake = tmp_path / "dying-sendmail"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(rmail, "SENDMAIL", str(fake))
    monkeypatch.setenv("UU_MACHINE", LEAF)
    body = ENVELOPE + MESSAGE + b"x" * (1 << 20)  # more than a pipe holds
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert rmail.main(["rmail", "alice@internet.example"]) == status
