"""test_dns — src/ternd/lookup/dns.c (the lookup role's resolver) against a real DNS server: Debian's
unbound on 127.0.0.1 (tests/e2e/dnsserver.py), driven by tests/e2e/dns_probe.c, which this
module compiles with dns.c and links with build/libtern.a and build/libmail.a (`make` first).

Covers RFC 5321 §5 / RFC 7505 as dns.h states them: MX preference order with equal
preferences shuffled, A then AAAA per host, the implicit MX, null MX, NXDOMAIN, SERVFAIL and
REFUSED, MX hosts that fail or stay silent (skipped, or MX_TEMP when nothing is left), a
resolver where nothing listens (MX_TEMP within the timeout), mode 1 (A/AAAA only), address
literals, and the host/address limits. DNS never leaves the machine: every query goes to the
unbound this module starts, which answers everything itself or forwards to loopback ports.
"""
import collections
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from dnsserver import UNBOUND, DnsServer, free_udp_port  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
TMPROOT = os.environ.get("TERN_TEST_TMP", "/tmp")

MX_OK, MX_NODOMAIN, MX_NULLMX, MX_TEMP = 0, 1, 2, 3

RECORDS = [
    # preference order; mx1 has A and AAAA; mx2 and mx3 share a preference
    "example.test. MX 20 mx2.example.test.",
    "example.test. MX 10 mx1.example.test.",
    "example.test. MX 20 mx3.example.test.",
    "mx1.example.test. A 192.0.2.1",
    "mx1.example.test. AAAA 2001:db8::1",
    "mx2.example.test. A 192.0.2.2",
    "mx3.example.test. A 192.0.2.3",
    # no MX: the implicit MX
    "aonly.test. A 192.0.2.9",
    "v6only.test. AAAA 2001:db8::9",
    "cn.test. CNAME aonly.test.",
    "txtonly.test. TXT \"no mail here\"",
    # RFC 7505
    "nullmx.test. MX 0 .",
    # MX hosts that do not resolve
    "dangling.test. MX 10 nohost.example.test.",
    "partial.test. MX 10 mx.broken.test.",
    "partial.test. MX 20 mx2.example.test.",
    "allbroken.test. MX 10 mx.broken.test.",
    "partialslow.test. MX 10 mx.slow.test.",
    "partialslow.test. MX 20 mx3.example.test.",
    "slowonly.test. MX 10 mx.slow.test.",
    "mixednull.test. MX 0 .",
    "mixednull.test. MX 10 mx1.example.test.",
]
# many.test: 12 MX hosts with 3 addresses each (limits: 10 hosts, 20 addresses)
for i in range(12):
    RECORDS.append(f"many.test. MX {i} h{i:02d}.many.test.")
    for k in range(3):
        RECORDS.append(f"h{i:02d}.many.test. A 198.51.100.{i * 3 + k + 1}")

TIMEOUT_MS = 2500


@pytest.fixture(scope="module")
def probe():
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler")
    libs = [REPO / "build" / "libmail.a", REPO / "build" / "libtern.a"]
    for lib in libs:
        assert lib.exists(), f"{lib} missing: run make first"
    d = tempfile.mkdtemp(prefix="tern-dnsprobe-", dir=TMPROOT)
    exe = os.path.join(d, "dns_probe")
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-Wall", "-Wextra",
                    "-Werror", "-Wno-unused-parameter", "-I" + str(REPO / "src"), "-o", exe,
                    str(REPO / "tests/e2e/dns_probe.c"), str(REPO / "src/ternd/lookup/dns.c")]
                   + [str(lib) for lib in libs] + ["-levent_core", "-lunbound"],
                   check=True, timeout=120)
    yield exe
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def dns():
    if not os.access(UNBOUND, os.X_OK):
        pytest.skip(f"{UNBOUND} missing (Debian package unbound; scripts/deps test)")
    d = tempfile.mkdtemp(prefix="tern-dns-", dir=TMPROOT)
    with DnsServer(d, records=RECORDS, servfail=["broken.test"], refuse=["refused.test"],
                   blackhole=["slow.test"]) as server:
        yield server
    shutil.rmtree(d, ignore_errors=True)


Result = collections.namedtuple("Result", "status ms diag addrs")


def resolve(probe, resolver, *requests, timeout_ms=TIMEOUT_MS):
    """requests: (mode, name) pairs, resolved at once; returns one Result per request"""
    args = [probe, resolver, str(timeout_ms)] + [f"{m}:{n}" for m, n in requests]
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout_ms / 1000 + 30)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    results = [None] * len(requests)
    addrs = collections.defaultdict(list)
    for line in p.stdout.splitlines():
        f = line.split(" ", 4)
        if f[0] == "result":
            results[int(f[1])] = (int(f[2]), int(f[3]), f[4] if len(f) > 4 else "")
        elif f[0] == "addr":
            pref, host, addr = f[2], f[3], f[4]
            addrs[int(f[1])].append((int(pref), host, addr))
    assert None not in results, p.stdout
    return [Result(r[0], r[1], r[2], addrs[i]) for i, r in enumerate(results)]


def one(probe, dns, mode, name, **kw):
    return resolve(probe, dns.resolver, (mode, name), **kw)[0]


# ------------------------------------------------------------------------------ MX

def test_mx_preference_order_and_shuffle(probe, dns):
    orders = set()
    for r in resolve(probe, dns.resolver, *[(0, "example.test")] * 40):
        assert r.status == MX_OK, r
        assert r.addrs[:2] == [(10, "mx1.example.test", "192.0.2.1"),
                               (10, "mx1.example.test", "2001:db8::1")], r
        assert sorted(r.addrs[2:]) == [(20, "mx2.example.test", "192.0.2.2"),
                                       (20, "mx3.example.test", "192.0.2.3")], r
        orders.add(tuple(a[1] for a in r.addrs[2:]))
    # equal preferences come in both orders (a fixed order would show up 40 times in a row)
    assert orders == {("mx2.example.test", "mx3.example.test"),
                      ("mx3.example.test", "mx2.example.test")}


def test_mx_host_with_a_and_aaaa(probe, dns):
    r = one(probe, dns, 1, "mx1.example.test")
    assert r.status == MX_OK
    assert r.addrs == [(0, "mx1.example.test", "192.0.2.1"),
                       (0, "mx1.example.test", "2001:db8::1")]


def test_no_mx_falls_back_to_address(probe, dns):
    a, v6, cn = resolve(probe, dns.resolver, (0, "aonly.test"), (0, "v6only.test"),
                        (0, "CN.test."))
    assert (a.status, a.addrs) == (MX_OK, [(0, "aonly.test", "192.0.2.9")])
    assert (v6.status, v6.addrs) == (MX_OK, [(0, "v6only.test", "2001:db8::9")])
    assert (cn.status, cn.addrs) == (MX_OK, [(0, "cn.test", "192.0.2.9")])   # CNAME followed


def test_null_mx(probe, dns):
    r = one(probe, dns, 0, "nullmx.test")
    assert (r.status, r.addrs) == (MX_NULLMX, [])
    assert "null MX" in r.diag
    # a "." beside real MX records is not a null MX: the real host is used
    r = one(probe, dns, 0, "mixednull.test")
    assert r.status == MX_OK and [a[1] for a in r.addrs] == ["mx1.example.test"] * 2


def test_nxdomain_and_no_address(probe, dns):
    nx, nxsub, dangling, txt = resolve(probe, dns.resolver, (0, "nope.example.test"),
                                       (0, "nope.nope.test"), (0, "dangling.test"),
                                       (0, "txtonly.test"))
    for r in (nx, nxsub, dangling, txt):
        assert (r.status, r.addrs) == (MX_NODOMAIN, []), r
    assert "NXDOMAIN" in nx.diag


def test_servfail_and_refused_are_temporary(probe, dns):
    sf, ref = resolve(probe, dns.resolver, (0, "broken.test"), (0, "refused.test"))
    assert (sf.status, sf.addrs) == (MX_TEMP, []), sf
    assert "SERVFAIL" in sf.diag
    assert (ref.status, ref.addrs) == (MX_TEMP, []), ref


def test_failing_mx_host_is_skipped(probe, dns):
    part, allb = resolve(probe, dns.resolver, (0, "partial.test"), (0, "allbroken.test"))
    assert (part.status, part.addrs) == (MX_OK, [(20, "mx2.example.test", "192.0.2.2")])
    assert (allb.status, allb.addrs) == (MX_TEMP, []), allb


def test_silent_mx_host_hits_the_deadline(probe, dns):
    part, only = resolve(probe, dns.resolver, (0, "partialslow.test"), (0, "slowonly.test"),
                         timeout_ms=1500)
    assert (part.status, part.addrs) == (MX_OK, [(20, "mx3.example.test", "192.0.2.3")])
    assert (only.status, only.addrs) == (MX_TEMP, []), only
    assert "timeout" in only.diag
    for r in (part, only):
        assert 1400 <= r.ms <= 3500, r


def test_dead_resolver_is_temporary_within_the_timeout(probe):
    port = free_udp_port()   # nothing listens there
    mx, host = resolve(probe, f"127.0.0.1:{port}", (0, "example.test"), (1, "relay.test"),
                       timeout_ms=1500)
    for r in (mx, host):
        assert (r.status, r.addrs) == (MX_TEMP, []), r
        assert r.ms <= 3500, r


def test_mode_1_asks_only_for_addresses(probe, dns):
    mxname, cn, lit4, lit6, bad = resolve(probe, dns.resolver, (1, "example.test"),
                                          (1, "cn.test"), (1, "[192.0.2.55]"),
                                          (1, "[IPv6:2001:DB8::55]"), (1, "[bogus]"))
    assert (mxname.status, mxname.addrs) == (MX_NODOMAIN, [])    # its MX is not used
    assert (cn.status, cn.addrs) == (MX_OK, [(0, "cn.test", "192.0.2.9")])
    assert (lit4.status, lit4.addrs) == (MX_OK, [(0, "192.0.2.55", "192.0.2.55")])
    assert (lit6.status, lit6.addrs) == (MX_OK, [(0, "2001:db8::55", "2001:db8::55")])
    assert (bad.status, bad.addrs) == (MX_NODOMAIN, [])


def test_limits(probe, dns):
    r = one(probe, dns, 0, "many.test")
    assert r.status == MX_OK
    assert len(r.addrs) == 20
    # the 20 addresses of the lowest preferences, in order: hosts h00..h06 (3 each, 21 > 20)
    assert [a[0] for a in r.addrs] == sorted(a[0] for a in r.addrs)
    # within one host the server's order stands (unbound rotates its RRsets)
    assert sorted(r.addrs[:3]) == [(0, "h00.many.test", f"198.51.100.{k}") for k in (1, 2, 3)]
    assert {a[1] for a in r.addrs} == {f"h{i:02d}.many.test" for i in range(7)}


def test_invalid_names(probe, dns):
    for name in ("bad..name", "-" * 64 + ".test", "a b.test", "x" * 254):
        r = one(probe, dns, 0, name)
        assert (r.status, r.addrs) == (MX_NODOMAIN, []), (name, r)
