"""tests/e2e/test_ldap_fixture.py — proves the private slapd of tests/e2e/ldapinst.py works
before any LDAP code of tern relies on it (issue 9): it starts on a random loopback port with
qmail-ldap's schema, holds qmailUser and qmailGroup entries found by the filters tern will
use, checks user passwords made by `ternctl digest SSHA`, speaks StartTLS and ldaps with a
certificate from tests/e2e/tlsca.py (verified against the CA), restarts on its port, and is
gone after stop().

Owns: nothing beyond its workdir. Trusts: ldapinst.LdapInstance, tlsca.TestCA, the test
build's ternctl."""
import os
import socket

import pytest

from ldapinst import LdapError, LdapInstance, ldap_usable, ssha
from tlsca import TestCA

PEOPLE = "ou=people,dc=example,dc=test"
JOE = f"uid=joe,{PEOPLE}"
LIST = f"cn=staff,{PEOPLE}"

pytestmark = pytest.mark.skipif(ldap_usable() is not None, reason=str(ldap_usable()))


def people_ldif():
    return f"""\
dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {JOE}
objectClass: inetOrgPerson
objectClass: qmailUser
uid: joe
cn: Joe User
sn: User
mail: joe@example.test
mailAlternateAddress: joseph@example.test
mailAlternateAddress: @alias.example.test
mailMessageStore: /var/mail/joe/Maildir/
qmailUID: 2001
qmailGID: 2001
mailHost: node-b.example.test
deliveryMode: nolocal
deliveryMode: noprogram
accountStatus: active
userPassword: {ssha("joe-pw")}

dn: {LIST}
objectClass: organizationalRole
objectClass: qmailGroup
cn: staff
mail: staff@example.test
mailAlternateAddress: team@example.test
mailMessageStore: /var/mail/staff/
rfc822member: joe@example.test
rfc822member: ann@other.test
"""


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def listening_addresses(pid):
    """The local addresses of slapd's listening TCP sockets (from /proc/net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:        # LISTEN
                    addr, port = cols[1].split(":")
                    out.append((table[-4:], addr, int(port, 16)))
    return out


def test_slapd_serves_qmail_users_and_groups(workdir):
    ldap = LdapInstance(workdir / "ldap")
    ldap.add(people_ldif())                       # slapadd before the first start
    try:
        ldap.start()
        assert ldap.url == f"ldap://127.0.0.1:{ldap.port}/"
        # only 127.0.0.1:port, nothing else (no ldapi, no wildcard, no IPv6)
        assert listening_addresses(ldap.proc.pid) == [("/tcp", "0100007F", ldap.port)]

        [joe] = ldap.search("(mail=joe@example.test)")
        assert joe.dn == JOE
        assert joe["mailMessageStore"] == ["/var/mail/joe/Maildir/"]
        assert joe["qmailUID"] == ["2001"] and joe["qmailGID"] == ["2001"]
        assert joe["mailHost"] == ["node-b.example.test"]
        assert sorted(joe["deliveryMode"]) == ["nolocal", "noprogram"]
        assert joe["userPassword"][0].startswith("{SSHA}")
        # mailAlternateAddress is caseIgnoreIA5Match: tern's lookups are case-insensitive
        assert [e.dn for e in ldap.search("(mailAlternateAddress=JOSEPH@Example.Test)")] == [JOE]
        assert [e.dn for e in ldap.search("(mailAlternateAddress=@alias.example.test)")] == [JOE]
        assert ldap.search("(mail=nobody@example.test)") == []

        [staff] = ldap.search("(&(objectClass=qmailGroup)(mail=staff@example.test))")
        assert staff.dn == LIST
        assert sorted(staff["rfc822member"]) == ["ann@other.test", "joe@example.test"]

        # the user binds with the password ternctl hashed; a wrong one is refused (49)
        assert ldap.bind(JOE, "joe-pw") is True
        assert ldap.bind(JOE, "wrong") is False
        # userPassword is readable by the entry itself, not anonymously
        [anon] = ldap.search("(uid=joe)", bind=("", ""))
        assert "userPassword" not in anon and anon["mail"] == ["joe@example.test"]
        [own] = ldap.search("(uid=joe)", bind=(JOE, "joe-pw"), attrs=["userPassword"])
        assert own["userPassword"][0].startswith("{SSHA}")

        # entries change while it runs (ldapadd/ldapmodify/ldapdelete as the rootdn)
        ldap.modify(f"dn: {JOE}\nchangetype: modify\nreplace: mailHost\n"
                    "mailHost: node-c.example.test\n")
        assert ldap.search("(uid=joe)")[0]["mailHost"] == ["node-c.example.test"]
        ldap.add(f"dn: uid=ann,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: qmailUser\n"
                 "uid: ann\ncn: Ann\nsn: Ann\nmail: ann@example.test\n")
        assert len(ldap.search("(objectClass=qmailUser)")) == 2
        ldap.delete(f"uid=ann,{PEOPLE}")
        assert ldap.search("(mail=ann@example.test)") == []
        # the schema is enforced: qmailGroup must have mailMessageStore
        with pytest.raises(LdapError, match="exit 65"):
            ldap.add(f"dn: cn=bad,{PEOPLE}\nobjectClass: organizationalRole\n"
                     "objectClass: qmailGroup\ncn: bad\nmail: bad@example.test\n"
                     "mailAlternateAddress: b@example.test\n")

        # restart on the same port keeps the data (tern's reconnect tests need that)
        port = ldap.port
        ldap.stop()
        assert not port_open(port)
        ldap.start()
        assert ldap.port == port
        assert ldap.search("(uid=joe)")[0]["mailHost"] == ["node-c.example.test"]

        # a frozen server (SIGSTOP) still accepts connections (the kernel does); thawed, it
        # answers again
        ldap.freeze()
        assert port_open(port)
        ldap.thaw()
        assert ldap.bind(JOE, "joe-pw") is True
    finally:
        ldap.stop()
    assert not ldap.running()
    assert not port_open(ldap.port)               # gone after stop
    with pytest.raises(LdapError):
        ldap.search("(uid=joe)")


def test_slapd_tls_starttls_and_ldaps_verify_the_ca(workdir):
    ca = TestCA(workdir / "ca")
    leaf = ca.leaf("ldap.example.test", ips=["127.0.0.1"])
    ldap = LdapInstance(workdir / "ldap", cert=leaf)
    ldap.add(people_ldif())
    try:
        ldap.start()
        assert ldap.ldaps_url == f"ldaps://127.0.0.1:{ldap.ldaps_port}/"
        assert sorted(p for _, _, p in listening_addresses(ldap.proc.pid)) == \
            sorted([ldap.port, ldap.ldaps_port])
        for tls in ("starttls", "ldaps"):
            [joe] = ldap.search("(mail=joe@example.test)", tls=tls, cafile=ca.cert)
            assert joe.dn == JOE
            assert ldap.bind(JOE, "joe-pw", tls=tls, cafile=ca.cert) is True
            assert ldap.bind(JOE, "wrong", tls=tls, cafile=ca.cert) is False
        # a CA the client does not trust: the handshake fails, nothing is sent
        other = TestCA(workdir / "other", name="untrusted CA")
        for tls in ("starttls", "ldaps"):
            with pytest.raises(LdapError):
                ldap.search("(uid=joe)", tls=tls, cafile=other.cert)
    finally:
        ldap.stop()
    assert not port_open(ldap.port) and not port_open(ldap.ldaps_port)
    # a certificate from the trusted CA but for another address: the client checks the name
    wrong = LdapInstance(workdir / "wrong", cert=ca.leaf("other.example.test",
                                                         ips=["127.0.0.2"]))
    try:
        wrong.start()
        for tls in ("starttls", "ldaps"):
            with pytest.raises(LdapError):
                wrong.search("(uid=joe)", tls=tls, cafile=ca.cert)
        assert wrong.search("(objectClass=*)", scope="base")[0].dn == wrong.suffix
    finally:
        wrong.stop()


def test_slapd_cn_config_from_shared_qmail_ldif(workdir):
    """The same server built as cn=config (slapadd -n0) from ../shared/ref/qmail.ldif."""
    ldap = LdapInstance(workdir / "ldap", config="ldif")
    ldap.add(people_ldif())
    try:
        ldap.start()
        assert [e.dn for e in ldap.search("(mailAlternateAddress=team@example.test)")] == [LIST]
        assert ldap.bind(JOE, "joe-pw") is True
        assert ldap.bind(JOE, "wrong") is False
    finally:
        ldap.stop()
    assert not port_open(ldap.port)
