"""tests/e2e/test_ldapc.py — the asynchronous LDAP client of the lookup role
(src/ternd/lookup/ldapc.c) against a real slapd (tests/e2e/ldapinst.py), run in tern's event
loop by tests/e2e/ldapc_driver.c (compiled here against build/libtern.a and libmail.a): users
found by mail, mailAlternateAddress and the @domain catch-all with their attributes mapped;
not found; a filter-injection address escaped; a frozen server answers TEMP within
ldaptimeout while the next request fails over to a second server; a stopped server answers
TEMP and the next request after its restart succeeds; StartTLS and ldaps verified against
the CA (a wrong CA is TEMP); ten requests in flight at once.

Owns: nothing beyond its workdir and the processes it starts. Trusts: ldapinst, tlsca."""
import os
import select
import shutil
import subprocess
import time

import pytest

from conftest import build_driver
from ldapinst import LdapInstance, ldap_usable
from tlsca import TestCA

pytestmark = pytest.mark.skipif(ldap_usable() is not None, reason=str(ldap_usable()))

PEOPLE = "ou=people,dc=example,dc=test"
LDIF = f"""\
dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: uid=joe,{PEOPLE}
objectClass: inetOrgPerson
objectClass: qmailUser
uid: joe
cn: Joe User
sn: User
mail: joe@example.test
mailAlternateAddress: joseph@example.test
mailMessageStore: joe/Maildir/
homeDirectory: /home/joe
qmailUID: 2001
qmailGID: 2002
mailHost: node-b.example.test
deliveryMode: noLocal
deliveryMode: noprogram
mailForwardingAddress: a@fwd.test
mailForwardingAddress: b@fwd.test
mailQuotaSize: 1000000
mailQuotaCount: 50
accountStatus: active
userPassword: secret
qmailDotMode: ldapwithprog
deliveryProgramPath: /usr/bin/procmail
mailReplyText: I am away
mailSizeMax: 2000000

dn: cn=catch,{PEOPLE}
objectClass: inetOrgPerson
objectClass: qmailUser
cn: catch
sn: All
mail: catch@alias.test
mailAlternateAddress: @alias.test
mailMessageStore: /var/mail/catch/

dn: uid=ann,{PEOPLE}
objectClass: inetOrgPerson
objectClass: qmailUser
uid: ann
cn: Ann
sn: Other
mail: ann@example.test
mailMessageStore: /var/mail/ann/
"""


@pytest.fixture(scope="module")
def driver():
    d, exe = build_driver("ldapc_driver", ["tests/e2e/ldapc_driver.c",
                                           "src/ternd/lookup/ldapc.c"], "LDAPC_DRIVER_CFLAGS")
    yield exe
    shutil.rmtree(d, ignore_errors=True)


class Driver:
    """ldapc_driver as a child: commands in, result lines out, each read with a deadline."""

    def __init__(self, exe, workdir, servers, timeout=2, extra=()):
        conf = workdir / "ldapc.conf"
        conf.write_text("\n".join([f"ldapserver {' '.join(servers)}",
                                   "ldapbasedn dc=example,dc=test",
                                   f"ldaptimeout {timeout}", "ldapmessagestore /var/mail",
                                   "ldapuid 3000", "ldapgid 3001", *extra]) + "\n")
        self.log = open(workdir / "ldapc_driver.log", "w")
        self.p = subprocess.Popen([str(exe), str(conf)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, text=True,
                                  bufsize=1)
        self.buf = ""
        assert self.line(10) == "ready"
        self.n = 0

    def line(self, timeout):
        deadline = time.monotonic() + timeout
        while "\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                raise AssertionError(f"no answer in {timeout}s")
            chunk = os.read(self.p.stdout.fileno(), 65536).decode()
            if not chunk:
                raise AssertionError("driver exited")
            self.buf += chunk
        line, self.buf = self.buf.split("\n", 1)
        return line

    def send(self, addr):
        self.n += 1
        tag = f"r{self.n}"
        self.p.stdin.write(f"lookup {tag} {addr}\n")
        self.p.stdin.flush()
        return tag

    def result(self, timeout=10):
        parts = self.line(timeout).split(" ")
        assert parts[0] == "result", parts
        fields = dict(p.split("=", 1) for p in parts[3:])
        return parts[1], parts[2], fields

    def lookup(self, addr, timeout=10):
        tag = self.send(addr)
        rtag, status, fields = self.result(timeout)
        assert rtag == tag
        return status, fields

    def close(self):
        self.p.stdin.close()
        try:
            assert self.line(10) == "exit 0"
        finally:
            rc = self.p.wait(timeout=10)
            self.log.close()
        assert rc == 0, f"driver exit {rc} (sanitizer report in ldapc_driver.log?)"


@pytest.fixture
def slapd(workdir):
    ldap = LdapInstance(workdir / "ldap")
    ldap.add(LDIF)
    ldap.start()
    yield ldap
    ldap.stop()


def test_found_by_mail_and_alternate_with_fields_mapped(driver, workdir, slapd):
    pwfile = workdir / "ldap.pw"                            # ldappassword file:PATH
    pwfile.write_text(slapd.rootpw + "\n")
    d = Driver(driver, workdir, [slapd.url],
               extra=[f"ldaplogin {slapd.rootdn}", f"ldappassword file:{pwfile}"])
    status, f = d.lookup("joe@example.test")
    assert status == "found", f
    assert f["dn"] == f"uid=joe,{PEOPLE}" and f["uid"] == "joe"
    assert (f["quid"], f["qgid"]) == ("2001", "2002")
    assert f["store"] == "/var/mail/joe/Maildir/"          # relative: ldapmessagestore prefix
    assert f["home"] == "/home/joe" and f["host"] == "node-b.example.test"
    assert f["mode"] == "nolocal,noprogram" and f["fwd"] == "a@fwd.test,b@fwd.test"
    assert (f["qsize"], f["qcount"], f["status"], f["pw"]) == ("1000000", "50", "active",
                                                                 "secret")
    assert (f["dotmode"], f["prog"], f["reply"], f["smax"]) == ("ldapwithprog",
                                                                "/usr/bin/procmail", "9",
                                                                "2000000")
    assert f["catchall"] == "0"
    status, f = d.lookup("JOSEPH@example.test")             # case-insensitive
    assert status == "found" and f["uid"] == "joe", f
    status, f = d.lookup("ann@example.test")                # defaults
    assert (status, f["quid"], f["qgid"], f["store"]) == ("found", "3000", "3001",
                                                          "/var/mail/ann/")
    status, f = d.lookup("anything@alias.test")             # @domain catch-all
    assert (status, f["dn"], f["catchall"]) == ("found", f"cn=catch,{PEOPLE}", "1")
    status, f = d.lookup("catch@alias.test")
    assert (status, f["catchall"]) == ("found", "0")
    assert d.lookup("nobody@example.test")[0] == "notfound"
    d.close()


def test_wrong_bind_password_is_temp(driver, workdir, slapd):
    d = Driver(driver, workdir, [slapd.url],
               extra=[f"ldaplogin {slapd.rootdn}", "ldappassword wrong"])
    assert d.lookup("joe@example.test")[0] == "temp"
    d.close()


def test_filter_injection_is_escaped(driver, workdir, slapd):
    d = Driver(driver, workdir, [slapd.url])
    for addr in ("*)(uid=*", "*", "joe*", "*@example.test", "joe@example.test)(uid=*",
                 "\\2a", "x)(|(mail=*"):
        status, f = d.lookup(addr)
        assert status == "notfound", (addr, f)
    d.close()


def test_frozen_server_is_temp_in_time_and_fails_over(driver, workdir, slapd):
    second = LdapInstance(workdir / "ldap2")
    second.add(LDIF)
    second.start()
    try:
        d = Driver(driver, workdir, [slapd.url, second.url], timeout=1)
        assert d.lookup("joe@example.test")[0] == "found"        # first server, connected
        slapd.freeze()
        t0 = time.monotonic()
        status, f = d.lookup("joe@example.test", timeout=5)
        assert status == "temp", f
        assert time.monotonic() - t0 < 2.5                     # within ldaptimeout (1 s)
        status, f = d.lookup("joe@example.test", timeout=5)    # the second server answers
        assert status == "found" and f["uid"] == "joe", f
        slapd.thaw()
        d.close()
    finally:
        second.stop()


def test_stopped_server_is_temp_then_reconnects(driver, workdir, slapd):
    d = Driver(driver, workdir, [slapd.url], timeout=2)
    assert d.lookup("joe@example.test")[0] == "found"
    slapd.stop()
    assert d.lookup("joe@example.test")[0] == "temp"
    assert d.lookup("joe@example.test")[0] == "temp"            # still down: never notfound
    slapd.start()
    assert d.lookup("joe@example.test")[0] == "found"           # the next one reconnects
    d.close()


def test_ten_requests_in_flight(driver, workdir, slapd):
    d = Driver(driver, workdir, [slapd.url])
    tags = {d.send("joe@example.test" if i % 2 else f"none{i}@example.test"): i
            for i in range(10)}
    got = {}
    for _ in range(10):
        tag, status, _f = d.result()
        got[tag] = status
    assert set(got) == set(tags)
    for tag, i in tags.items():
        assert got[tag] == ("found" if i % 2 else "notfound")
    d.close()


@pytest.fixture
def tls_slapd(workdir):
    ca = TestCA(workdir / "ca")
    ldap = LdapInstance(workdir / "ldaps", cert=ca.leaf("ldap.example.test",
                                                         ips=["127.0.0.1"]))
    ldap.add(LDIF)
    ldap.start()
    other = TestCA(workdir / "other", name="untrusted CA")
    yield ldap, ca, other
    ldap.stop()


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_tls_verifies_the_ca(driver, workdir, tls_slapd, mode):
    ldap, ca, other = tls_slapd
    url = ldap.url if mode == "starttls" else ldap.ldaps_url
    extra = ["ldaptls yes"] if mode == "starttls" else []
    good = Driver(driver, workdir, [url], extra=extra + [f"ldapcafile {ca.cert}"])
    status, f = good.lookup("joe@example.test")
    assert status == "found" and f["uid"] == "joe", f
    good.close()
    bad = Driver(driver, workdir, [url], extra=extra + [f"ldapcafile {other.cert}"])
    assert bad.lookup("joe@example.test")[0] == "temp"
    bad.close()
    log = (workdir / "ldapc_driver.log").read_text()
    assert "event=ldap_server_down" in log
