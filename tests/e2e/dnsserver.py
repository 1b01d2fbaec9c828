"""tests/e2e/dnsserver.py — a real DNS server for tests: Debian's `unbound`, started on
127.0.0.1:<free port> and answering only from the records a test gives it.

Owns: one unbound process per DnsServer (its config, log and pid file in a directory of its
own under the test's temporary directory). Trusts: /usr/sbin/unbound (package `unbound`,
installed by scripts/deps test). Not a pytest test file: tests import it.

    from dnsserver import DnsServer
    with DnsServer(tmpdir, records=["example.test. MX 10 mx1.example.test.",
                                    "mx1.example.test. A 192.0.2.1"],
                   servfail=["broken.test"]) as dns:
        ... point tern's `resolver` at 127.0.0.1:{dns.port} ...

- `records`: unbound `local-data` lines (owner, optional TTL/class, type, rdata), e.g.
  `"a.test. AAAA 2001:db8::1"`, `"nullmx.test. MX 0 ."`.
- `zones`: the zones they live in; by default the last two labels of each owner. Each zone is
  `local-zone: static` with an SOA, so a name without data answers NXDOMAIN and a name with
  other types answers NODATA, as an authoritative server would.
- `servfail`: zones whose queries end in SERVFAIL: they are forwarded to a loopback port
  where nothing listens.
- `refuse`: zones answered with REFUSED.
- `blackhole`: zones whose queries get no answer for a long time: they are forwarded to a
  loopback UDP port that this object holds open and never reads (a silent server).
Everything else (the root zone) answers NXDOMAIN from the server itself: the server never
sends a query anywhere but to loopback, so DNS never leaves the machine.
"""
import os
import pathlib
import random
import socket
import struct
import subprocess
import tempfile
import time

UNBOUND = os.environ.get("TERN_UNBOUND", "/usr/sbin/unbound")

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}


def free_udp_port(host="127.0.0.1"):
    """A port where neither UDP nor TCP is bound right now (bind to 0 and give it back)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def query(port, name, qtype="A", host="127.0.0.1", timeout=1.0):
    """One UDP query: returns (rcode name, answer count), or None when nothing answered."""
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)   # RD, one question
    packet += encode_name(name) + struct.pack(">HH", TYPES.get(qtype, qtype) if
                                              isinstance(qtype, str) else qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, (host, port))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data, _ = s.recvfrom(4096)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    flags, _qd, an = struct.unpack(">HHH", data[2:8])
                    return RCODES.get(flags & 0xF, str(flags & 0xF)), an
        except OSError:
            return None
    return None


def _zone_of(owner):
    labels = owner.rstrip(".").split(".")
    return ".".join(labels[-2:]).lower()


class DnsServer:
    def __init__(self, tmpdir, records=(), zones=None, servfail=(), refuse=(), blackhole=(),
                 timeout=10.0):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="dns-", dir=str(tmpdir)))
        self.records = list(records)
        self.zones = sorted(set(zones if zones is not None else
                                (_zone_of(r.split()[0]) for r in self.records)))
        self.servfail = list(servfail)
        self.refuse = list(refuse)
        self.blackhole = list(blackhole)
        self.silent = None            # the socket that swallows blackhole queries
        self.port = None
        self.proc = None
        self.timeout = timeout
        self.conf = self.dir / "unbound.conf"
        self.logfile = self.dir / "unbound.log"

    # ------------------------------------------------------------------ config
    def config_text(self):
        dead = free_udp_port()
        q = lambda s: '"' + s + '"'   # noqa: E731
        lines = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.port}",
            "  do-daemonize: no",
            '  chroot: ""',
            '  username: ""',
            f"  directory: {q(str(self.dir))}",
            f"  pidfile: {q(str(self.dir / 'unbound.pid'))}",
            f"  logfile: {q(str(self.logfile))}",
            "  use-syslog: no",
            "  verbosity: 1",
            "  log-queries: yes",
            "  num-threads: 1",
            "  do-ip6: no",
            "  so-reuseport: no",
            "  access-control: 127.0.0.0/8 allow",
            "  do-not-query-localhost: no",
            '  module-config: "iterator"',
            "  outgoing-range: 64",
            "  num-queries-per-thread: 64",
            "  infra-keep-probing: yes",
            '  local-zone: "." static',
        ]
        for z in self.zones:
            lines.append(f'  local-zone: "{z}." static')
            lines.append(f'  local-data: "{z}. 60 IN SOA ns.{z}. hostmaster.{z}. 1 3600 600 86400 60"')
        for r in self.records:   # TXT data carries double quotes: wrap it in single ones
            lines.append(f"  local-data: '{r}'" if '"' in r else f"  local-data: {q(r)}")
        for z in self.servfail + self.blackhole:
            lines.append(f'  local-zone: "{z}." transparent')
        for z in self.refuse:
            lines.append(f'  local-zone: "{z}." refuse')
        lines += ["remote-control:", "  control-enable: no"]
        for z in self.servfail:
            lines += ["forward-zone:", f'  name: "{z}."', f"  forward-addr: 127.0.0.1@{dead}",
                      "  forward-tcp-upstream: yes"]
        for z in self.blackhole:
            lines += ["forward-zone:", f'  name: "{z}."',
                      f"  forward-addr: 127.0.0.1@{self.silent.getsockname()[1]}"]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ process
    def start(self):
        self.port = free_udp_port()
        if self.blackhole and not self.silent:
            self.silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.silent.bind(("127.0.0.1", 0))
        self.conf.write_text(self.config_text())
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "unbound.stderr", "wb"))
        deadline = time.monotonic() + self.timeout
        probe = self.zones[0] if self.zones else "."
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"unbound exited with {self.proc.returncode}:\n{self.log()}")
            if query(self.port, probe, "SOA", timeout=0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"unbound did not answer within {self.timeout} s:\n{self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.silent:
            self.silent.close()
            self.silent = None

    def log(self):
        out = ""
        for f in (self.logfile, self.dir / "unbound.stderr"):
            try:
                out += f.read_text(errors="replace")
            except OSError:
                pass
        return out

    @property
    def resolver(self):
        """the value of tern's `resolver` key for this server"""
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
