"""The mesh measured on the lab: latency and throughput over UUCP, then over plain SMTP and a
raw ssh pipe on the same nodes, in the same run.

Nodes: internet, hub and leaf1 of lab/Pulumi.lab.yaml, booted from the program's offline
render; a variant's `Tuning` is rendered into the user-data with the program's own renderer
(checked to give the offline render's bytes for the shipped default). Arrival is seen by
reading the receiving mailbox through the node's root on the host every few milliseconds;
each message ends with a marker line. All nodes share the host's clock.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.variants import describe
from components import keys
from components.render import (
    DEFAULT_TUNING,
    Tuning,
    compress_user_data,
    render_hub_user_data,
    render_leaf_user_data,
)
from lab import mesh, paths
from lab.runtime import INTERNET_NAME, Lab
from offline_render import RenderResult

HUB, LEAF = "hub.mesh.test", "leaf1.mesh.test"
LEAF_DOMAIN = "leaf1.test"
HUB_USER = "bench"  # a local mailbox on the hub: its Postfix delivers $myhostname locally
DRIVER = Path(__file__).with_name("driver.py")
NODE_DRIVER = "/root/mmbench-driver.py"
RAW_USER = "mmbench-raw"
MARK = re.compile(rb"MMBENCH-END ([0-9a-f]{32})")
MB = 1_000_000
SSH_CONFIG = "/etc/uucp/mailmesh/ssh_config"


@dataclass
class Sizes:
    latency_messages: int = 50
    latency_size: int = 1024
    # Sent poll interval / count apart: their arrival phases against the leaf's polls cover
    # one whole interval evenly, so the median is not biased by when the phase starts.
    inbound_messages: int = 8
    batch_messages: int = 1000
    batch_size: int = 4096
    bulk_bytes: int = 20 * MB


@dataclass
class RunFigures:
    """One run of every measurement on one path (mesh or plain SMTP)."""

    out_p50: float = 0.0
    out_p95: float = 0.0
    in_p50: float = 0.0
    in_max: float = 0.0
    batch_rate: float = 0.0  # messages per second, first submission to last delivery
    bulk_rate: float = 0.0  # MB/s, submission to delivery
    raw_ssh_rate: float = 0.0  # MB/s, only on the reference path
    misses: int = 0  # outbound messages that waited for a poll (over 5 s)


# ------------------------------------------------------------------------ watching mail


class MailboxWatch:
    """Notes when each marker first shows up in an mbox file, polling its new bytes."""

    def __init__(self, path: Path, interval: float = 0.005) -> None:
        self.path = path
        self.seen: dict[str, float] = {}
        self._offset = 0
        self._tail = b""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self.poll()
            time.sleep(interval)

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as mbox:
                size = os.fstat(mbox.fileno()).st_size
                if size < self._offset:  # truncated between phases
                    self._offset, self._tail = 0, b""
                if size == self._offset:
                    return
                mbox.seek(self._offset)
                data = mbox.read(size - self._offset)
        except FileNotFoundError:
            return
        now = time.time()
        buffer = self._tail + data
        with self._lock:
            for match in MARK.finditer(buffer):
                self.seen.setdefault(match.group(1).decode(), now)
        self._tail = buffer[-64:]
        self._offset += len(data)

    def wait(self, markers: list[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if all(m in self.seen for m in markers):
                    return {m: self.seen[m] for m in markers}
                missing = sum(m not in self.seen for m in markers)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{missing} of {len(markers)} messages not delivered to "
                                   f"{self.path} in {timeout:.0f} s")
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


@dataclass
class MeshBench:
    lab: Lab
    rendered: RenderResult
    variant: str
    tuning: Tuning
    sizes: Sizes
    log: list[str] = field(default_factory=list)

    @property
    def hub_address(self) -> str:
        return mesh.addresses(self.rendered)[HUB]

    @property
    def leaf_address(self) -> str:
        return mesh.addresses(self.rendered)[LEAF]

    @property
    def poll_interval(self) -> int:
        return mesh.mesh_config(self.rendered).poll_interval

    def say(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {self.variant}: {text}"
        self.log.append(line)
        print(line, flush=True)

    def mailbox(self, node: str, user: str) -> Path:
        return self.lab.get(node).root / "var/mail" / user

    def sh(self, node: str, script: str, timeout: float = 120) -> str:
        done = self.lab.exec(node, ["sh", "-ec", script], timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{node}: {script!r} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def drive(self, node: str, *argv: str, timeout: float = 900) -> dict:
        done = self.lab.exec(node, ["python3", NODE_DRIVER, *argv], timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{node}: driver {argv[0]} failed: "
                               f"{done.stderr.decode(errors='replace')}")
        return json.loads(done.stdout)

    # -- measurements --------------------------------------------------------------

    def outbound_latency(self, count: int) -> list[float]:
        """leaf sendmail -> hub mailbox, one message at a time."""
        watch = MailboxWatch(self.mailbox(HUB, HUB_USER))
        found = []
        try:
            for _ in range(count):
                sent = self.drive(LEAF, "sendmail", f"app@{LEAF_DOMAIN}", f"{HUB_USER}@{HUB}",
                                  str(self.sizes.latency_size))
                seen = watch.wait([sent["marker"]], timeout=3 * self.poll_interval + 60)
                found.append(seen[sent["marker"]] - sent["t0"])
        finally:
            watch.close()
        return found


    def inbound_latency(self) -> list[float]:
        """internet -> hub:25 -> leaf mailbox, sent at times unrelated to the leaf's polls."""
        watch = MailboxWatch(self.mailbox(LEAF, mesh.MAILBOX_USER))
        try:
            sent = self.drive(
                INTERNET_NAME, "smtp-spread", self.hub_address, "alice@internet.test",
                f"{mesh.MAILBOX_USER}@{LEAF_DOMAIN}", str(self.sizes.inbound_messages),
                str(self.poll_interval / self.sizes.inbound_messages),
            )["sent"]
            seen = watch.wait([s["marker"] for s in sent], timeout=3 * self.poll_interval + 60)
        finally:
            watch.close()
        return [seen[s["marker"]] - s["t0"] for s in sent]


    def batch_rate(self) -> float:
        """Many small messages submitted to the leaf's Postfix at once: messages per second from
        the first submission to the last delivery into the hub's mailbox."""
        watch = MailboxWatch(self.mailbox(HUB, HUB_USER))
        try:
            sent = self.drive(LEAF, "smtp-batch", "127.0.0.1", f"app@{LEAF_DOMAIN}",
                              f"{HUB_USER}@{HUB}", str(self.sizes.batch_messages),
                              str(self.sizes.batch_size))
            seen = watch.wait(sent["markers"], timeout=1800)
        finally:
            watch.close()
        return len(sent["markers"]) / (max(seen.values()) - sent["t0"])


    def bulk_rate(self) -> float:
        """One big message, leaf sendmail -> hub mailbox, in MB/s."""
        watch = MailboxWatch(self.mailbox(HUB, HUB_USER))
        try:
            sent = self.drive(LEAF, "sendmail", f"app@{LEAF_DOMAIN}", f"{HUB_USER}@{HUB}",
                              str(self.sizes.bulk_bytes))
            seen = watch.wait([sent["marker"]], timeout=600)
        finally:
            watch.close()
        return sent["bytes"] / MB / (seen[sent["marker"]] - sent["t0"])


    def empty_mailboxes(self) -> None:
        # Truncated, never created: Postfix's local(8) writes as the mailbox's owner.
        for node, user in ((HUB, HUB_USER), (LEAF, mesh.MAILBOX_USER)):
            self.sh(node, f"if [ -e /var/mail/{user} ]; then : > /var/mail/{user}; fi")


    def measure(self, path: str) -> RunFigures:
        figures = RunFigures()
        self.empty_mailboxes()
        outbound = self.outbound_latency(self.sizes.latency_messages)
        figures.out_p50, figures.out_p95 = percentile(outbound, 0.5), percentile(outbound, 0.95)
        figures.misses = sum(seconds > 5 for seconds in outbound)
        self.say(f"{path}: outbound p50 {figures.out_p50:.3f} s, p95 {figures.out_p95:.3f} s, "
                 f"max {max(outbound):.2f} s, {figures.misses} waited for a poll")
        inbound = self.inbound_latency()
        figures.in_p50, figures.in_max = statistics.median(inbound), max(inbound)
        self.say(f"{path}: inbound p50 {figures.in_p50:.2f} s, max {figures.in_max:.2f} s")
        self.empty_mailboxes()
        figures.batch_rate = self.batch_rate()
        self.say(f"{path}: {self.sizes.batch_messages} x {self.sizes.batch_size} B: "
                 f"{figures.batch_rate:.1f} msg/s")
        self.empty_mailboxes()
        figures.bulk_rate = self.bulk_rate()
        self.say(f"{path}: {self.sizes.bulk_bytes / MB:.0f} MB message: "
                 f"{figures.bulk_rate:.1f} MB/s")
        self.empty_mailboxes()
        return figures


# ---------------------------------------------------------------------------- bring-up


def variant_user_data(rendered: RenderResult, tuning: Tuning) -> dict[str, bytes]:
    """Each node's user-data rendered with `tuning` by the program's renderer, from the same
    inputs the program used (config, derived keys, addresses)."""
    config = mesh.mesh_config(rendered)
    seed, hub = config.key_seed, config.hub
    host_key = keys.hub_host_keypair(seed, hub.name)
    admin = keys.admin_keypair(seed, hub.name).public_openssh
    found = {hub.name: compress_user_data(render_hub_user_data(hub, host_key, admin, tuning))}
    hub_address = mesh.addresses(rendered)[hub.name]
    for leaf in config.leaves:
        found[leaf.name] = render_leaf_user_data(
            leaf, hub, hub_address, host_key.public_openssh,
            keys.leaf_keypair(seed, leaf.name, leaf.key_version),
            keys.leaf_password(seed, leaf.name, leaf.key_version),
            config.poll_interval, tuning,
        ).encode()
    return found


def bring_up(lab: Lab, variant: str, tuning: Tuning, sizes: Sizes) -> MeshBench:
    lab.ensure_base()
    lab.start_switch()
    rendered = mesh.render(mesh.LAB_STACK, paths.run_dir() / "render")
    # The renderer called here must be the program's: for the shipped default it gives the
    # offline render's bytes, node for node.
    for node, data in variant_user_data(rendered, DEFAULT_TUNING).items():
        if data != rendered.path(f"nodes/{node}/user-data").read_bytes():
            raise RuntimeError(f"re-rendered user-data of {node} differs from the program's")
    user_data = variant_user_data(rendered, tuning)
    bench = MeshBench(lab, rendered, variant, tuning, sizes)
    bench.say(f"booting internet, {HUB}, {LEAF} ({describe(tuning)})")
    started = time.monotonic()
    ids = mesh.instance_ids(rendered)
    hosts = mesh.hosts_for(rendered)
    nodes = [mesh.boot_internet(lab, rendered)]
    for name in (HUB, LEAF):
        nodes.append(lab.boot(name, mesh.addresses(rendered)[name], user_data[name], hosts,
                              instance_id=f"iid-{ids[name]}-{variant}"))
    mesh.wait_ready(lab, nodes)
    mesh.register(rendered, LEAF)
    mesh.add_mailbox(lab, LEAF)
    bench.sh(HUB, f"id {HUB_USER} >/dev/null 2>&1 || useradd -m {HUB_USER}")
    for node in (INTERNET_NAME, HUB, LEAF):
        target = lab.get(node).root / NODE_DRIVER.lstrip("/")
        target.write_bytes(DRIVER.read_bytes())
    bench.say(f"mesh up in {time.monotonic() - started:.0f} s")
    # Warm up (first call, first delivery) outside the figures.
    bench.outbound_latency(2)
    return bench


# ------------------------------------------------------------ the reference: plain SMTP


def postconf_values(bench: MeshBench, node: str, names: list[str]) -> dict[str, str]:
    out = bench.sh(node, "postconf " + " ".join(names))
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in out.splitlines())}


def postconf_set(bench: MeshBench, node: str, values: dict[str, str], restart: bool) -> None:
    args = " ".join(mesh.shell_quote([f"{k}={v}"]) for k, v in values.items())
    bench.sh(node, f"postconf -e {args}; postfix check")
    bench.sh(node, "systemctl restart postfix" if restart else "postfix reload")


class PlainSmtp:
    """The same nodes with the mesh switched off: the leaf's Postfix relays straight to
    hub:25, and the hub relays the leaf's domain to leaf:25. Undone on exit."""

    def __init__(self, bench: MeshBench) -> None:
        self.bench = bench
        self.leaf_saved: dict[str, str] = {}
        self.hub_saved: dict[str, str] = {}

    def __enter__(self) -> PlainSmtp:
        bench = self.bench
        leaf_keys = ["default_transport", "relay_transport", "relayhost", "inet_interfaces"]
        hub_keys = ["mynetworks", "transport_maps"]
        self.leaf_saved = postconf_values(bench, LEAF, leaf_keys)
        self.hub_saved = postconf_values(bench, HUB, hub_keys)
        bench.sh(HUB, f"echo '{LEAF_DOMAIN} smtp:[{bench.leaf_address}]:25' "
                      "> /etc/postfix/mmbench-transport")
        postconf_set(bench, HUB, {
            "mynetworks": f"{self.hub_saved['mynetworks']} {bench.leaf_address}/32",
            "transport_maps": "texthash:/etc/postfix/mmbench-transport, "
                              + self.hub_saved["transport_maps"],
        }, restart=False)
        postconf_set(bench, LEAF, {
            "default_transport": "smtp", "relay_transport": "smtp",
            "relayhost": f"[{bench.hub_address}]:25", "inet_interfaces": "all",
        }, restart=True)
        return self

    def __exit__(self, *exc: object) -> None:
        postconf_set(self.bench, LEAF, self.leaf_saved, restart=True)
        postconf_set(self.bench, HUB, self.hub_saved, restart=False)
        self.bench.sh(HUB, "rm -f /etc/postfix/mmbench-transport")


class RawSsh:
    """A throwaway hub user whose key runs `cat > /dev/null`, reached from the leaf with the
    mesh's own ssh client settings: the bare pipe's throughput."""

    def __init__(self, bench: MeshBench) -> None:
        self.bench = bench

    def __enter__(self) -> RawSsh:
        bench = self.bench
        with tempfile.TemporaryDirectory() as folder:
            key = Path(folder) / "key"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", RAW_USER,
                            "-f", str(key)], check=True)
            private, public = key.read_bytes(), (Path(folder) / "key.pub").read_text().strip()
        bench.sh(HUB, f"""
id {RAW_USER} >/dev/null 2>&1 || useradd -m -s /bin/sh {RAW_USER}
install -d -m 0700 -o {RAW_USER} -g {RAW_USER} /home/{RAW_USER}/.ssh
echo 'restrict,command="cat >/dev/null" {public}' > /home/{RAW_USER}/.ssh/authorized_keys
chown {RAW_USER}: /home/{RAW_USER}/.ssh/authorized_keys
echo 'AllowUsers {RAW_USER}@{bench.leaf_address}' > /etc/ssh/sshd_config.d/05-mmbench.conf
sshd -t && systemctl reload ssh
""")
        target = bench.lab.get(LEAF).root / "root/mmbench-raw"
        target.write_bytes(private)
        target.chmod(0o600)
        bench.sh(LEAF, f"head -c {bench.sizes.bulk_bytes} /dev/urandom > /root/mmbench-payload")
        return self

    def rate(self) -> float:
        bench = self.bench
        done = bench.drive(LEAF, "raw-ssh", "/root/mmbench-payload", "-F", SSH_CONFIG,
                           "-i", "/root/mmbench-raw", "-o", f"User={RAW_USER}",
                           "-o", "RequestTTY=no", "mailmesh-hub")
        return bench.sizes.bulk_bytes / MB / (done["t1"] - done["t0"])

    def __exit__(self, *exc: object) -> None:
        self.bench.sh(HUB, f"rm -f /etc/ssh/sshd_config.d/05-mmbench.conf; "
                           f"systemctl reload ssh; userdel -r {RAW_USER} 2>/dev/null || true")
        self.bench.sh(LEAF, "rm -f /root/mmbench-raw /root/mmbench-payload")


def reference(bench: MeshBench) -> RunFigures:
    with PlainSmtp(bench):
        figures = bench.measure("plain SMTP")
    with RawSsh(bench) as raw:
        figures.raw_ssh_rate = raw.rate()
    bench.say(f"raw ssh pipe: {figures.raw_ssh_rate:.1f} MB/s")
    return figures
