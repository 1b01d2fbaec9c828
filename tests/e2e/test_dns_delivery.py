"""tests/e2e/test_dns_delivery.py — remote delivery through a whole ternd whose resolver is a
real DNS server (unbound, tests/e2e/dnsserver.py) started on 127.0.0.1 by the test: MX order
and fallback, the implicit MX, null MX (RFC 7505) and NXDOMAIN bounce, SERVFAIL defers.
The SMTP peers listen on 127.0.0.1:25 and 127.0.0.2:25 inside the test's private network
namespace (MX targets use port 25); needs root to bind port 25."""
import os
import smtplib
import time

import pytest

from conftest import wait_for

from dnsserver import DnsServer
from test_mta import Recorder, aiosmtp  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="binding port 25 needs root")

RECORDS = [
    "mx.test. MX 10 mx1.mx.test.",
    "mx.test. MX 20 mx2.mx.test.",
    "mx1.mx.test. A 127.0.0.2",          # nothing listens there: fall back to mx2
    "mx2.mx.test. A 127.0.0.1",
    "plain.test. A 127.0.0.1",           # no MX: the address itself
    "nullmx.test. MX 0 .",
]


@pytest.fixture
def dns(workdir):
    with DnsServer(workdir, records=RECORDS, servfail=["broken.test"]) as d:
        yield d




def tern_with_dns(make_tern, dns, **extra):
    cfg = {"relayclients": "127.0.0.1", "resolver": f"127.0.0.1:{dns.port}",
           "retryremote": "1", "timeoutconnect": "2"}
    cfg.update(extra)
    return make_tern(config=cfg)


def send(tern, rcpts, sender="joe@localhost"):
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail(sender, rcpts, b"Subject: dns\r\n\r\nvia the MX\r\n")


def test_mx_in_preference_order_with_fallback(make_tern, dns, aiosmtp):
    rec, _ = aiosmtp(Recorder(), port=25)
    tern = tern_with_dns(make_tern, dns)
    send(tern, ["someone@mx.test"])
    assert wait_for(lambda: len(rec.txns) == 1), tern.log_tail()
    assert rec.txns[0]["rcpts"] == ["someone@mx.test"]
    log = tern.log()
    assert log.index("127.0.0.2") < log.index("status=sent")   # tried mx1 first


def test_implicit_mx(make_tern, dns, aiosmtp):
    rec, _ = aiosmtp(Recorder(), port=25)
    tern = tern_with_dns(make_tern, dns)
    send(tern, ["x@plain.test"])
    assert wait_for(lambda: len(rec.txns) == 1), tern.log_tail()


@pytest.mark.parametrize("domain,status", [("nullmx.test", "5.1.10"), ("missing.test", "5.1.2")])
def test_null_mx_and_nxdomain_bounce(make_tern, dns, domain, status):
    tern = tern_with_dns(make_tern, dns)
    send(tern, [f"x@{domain}"])
    bounces = tern.wait_delivered("joe", 1, timeout=30)
    text = bounces[0].decode(errors="replace")
    assert f"Final-Recipient: rfc822; x@{domain}" in text
    assert f"Status: {status}" in text, text


def test_servfail_defers(make_tern, dns):
    tern = tern_with_dns(make_tern, dns)
    send(tern, ["x@broken.test"])
    assert wait_for(lambda: "status=deferred" in tern.log(), 30), tern.log_tail()
    assert "4.4.3" in tern.log()
    assert tern.maildir("joe") == []
