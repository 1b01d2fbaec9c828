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

from conftest import LdapcDriver
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


@pytest.fixture
def slapd(make_slapd):
    return make_slapd(LDIF)


def test_found_by_mail_and_alternate_with_fields_mapped(ldapc_driver, workdir, slapd):
    pwfile = workdir / "ldap.pw"                            # ldappassword file:PATH
    pwfile.write_text(slapd.rootpw + "\n")
    d = LdapcDriver(ldapc_driver, workdir, [slapd.url],
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


def test_wrong_bind_password_is_temp(ldapc_driver, workdir, slapd):
    d = LdapcDriver(ldapc_driver, workdir, [slapd.url],
               extra=[f"ldaplogin {slapd.rootdn}", "ldappassword wrong"])
    assert d.lookup("joe@example.test")[0] == "temp"
    d.close()


def test_filter_injection_is_escaped(ldapc_driver, workdir, slapd):
    d = LdapcDriver(ldapc_driver, workdir, [slapd.url])
    for addr in ("*)(uid=*", "*", "joe*", "*@example.test", "joe@example.test)(uid=*",
                 "\\2a", "x)(|(mail=*"):
        status, f = d.lookup(addr)
        assert status == "notfound", (addr, f)
    d.close()


def test_frozen_server_is_temp_in_time_and_fails_over(ldapc_driver, workdir, slapd):
    second = LdapInstance(workdir / "ldap2")
    second.add(LDIF)
    second.start()
    try:
        d = LdapcDriver(ldapc_driver, workdir, [slapd.url, second.url], timeout=1)
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


def test_stopped_server_is_temp_then_reconnects(ldapc_driver, workdir, slapd):
    d = LdapcDriver(ldapc_driver, workdir, [slapd.url], timeout=2)
    assert d.lookup("joe@example.test")[0] == "found"
    slapd.stop()
    assert d.lookup("joe@example.test")[0] == "temp"
    assert d.lookup("joe@example.test")[0] == "temp"            # still down: never notfound
    slapd.start()
    assert d.lookup("joe@example.test")[0] == "found"           # the next one reconnects
    d.close()


def test_ten_requests_in_flight(ldapc_driver, workdir, slapd):
    d = LdapcDriver(ldapc_driver, workdir, [slapd.url])
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
def test_tls_verifies_the_ca(ldapc_driver, workdir, tls_slapd, mode):
    ldap, ca, other = tls_slapd
    url = ldap.url if mode == "starttls" else ldap.ldaps_url
    extra = ["ldaptls yes"] if mode == "starttls" else []
    good = LdapcDriver(ldapc_driver, workdir, [url], extra=extra + [f"ldapcafile {ca.cert}"])
    status, f = good.lookup("joe@example.test")
    assert status == "found" and f["uid"] == "joe", f
    good.close()
    bad = LdapcDriver(ldapc_driver, workdir, [url], extra=extra + [f"ldapcafile {other.cert}"])
    assert bad.lookup("joe@example.test")[0] == "temp"
    bad.close()
    log = (workdir / "ldapc_driver.log").read_text()
    assert "event=ldap_server_down" in log
