"""tests/e2e/test_ldap_users.py — `users ldap:`: directory (qmailUser) users answer RCPT
checks and routing in the lookup role (src/ternd/lookup/lookup_ldap.c), against a real slapd
(tests/e2e/ldapinst.py) with qmail.schema.

RCPT: 250 for mail, mailAlternateAddress, any case, an extension address, the @domain
catch-all, a noaccess account and a user homed on another cluster node; 550 5.1.1 for an
unknown address and a deleted account; 550 5.2.1 for a disabled one; 451 4.3.0 for an entry
that cannot be used (qmailUID 0, an unknown accountStatus), with slapd stopped and with
slapd frozen (timeout); filter metacharacters in an address match nobody. Delivery: SMTP
into the user's Maildir as qmailUID; a disabled account at delivery bounces 5.2.1; mail
routed while the directory is down is deferred and delivered exactly once after it is
back (ternctl flush reroutes deferred routes). The cache: 20 RCPTs to one user cost one
search (counted in slapd's stats log). The connection setup is asynchronous (StartTLS to a
frozen slapd does not hold other questions); another node's user goes to channel cluster
and reaches that node through the mta. The sandbox is on (production-like).

Owns: its workdir, the slapd and ternd it starts. Trusts: ldapinst, conftest."""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import REPO, TMPROOT, wait_for
from ldapinst import LdapInstance, ldap_usable

pytestmark = pytest.mark.skipif(ldap_usable() is not None, reason=str(ldap_usable()))

BINDIR = REPO / "build" / "tbin"
PEOPLE = "ou=people,dc=example,dc=test"
UID = 2001


def person(uid, home, extra=""):
    return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: qmailUser\n"
            f"uid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.test\n"
            f"qmailUID: {UID}\nqmailGID: {UID}\nhomeDirectory: {home}/{uid}\n"
            f"mailMessageStore: {home}/{uid}/Maildir/\n{extra}\n")


def ldif(home):
    out = f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
    out += person("joe", home, "mailAlternateAddress: joseph@example.test\n")
    out += person("dee", home)
    out += person("burst", home)
    out += person("gone", home, "accountStatus: deleted\n")
    out += person("off", home, "accountStatus: disabled\n")
    out += person("noacc", home, "accountStatus: noaccess\n")
    out += person("odd", home, "accountStatus: sleeping\n")
    out += person("far", home, "mailHost: node-b.example.test\n")
    out += person("here", home, "mailHost: TERN.test\n")
    # two entries answer twin@example.test: a tempfail, never either of them
    out += person("twin1", home, "mailAlternateAddress: twin@example.test\n")
    out += person("twin2", home, "mailAlternateAddress: twin@example.test\n")
    # a system group (ssl-cert is 103 on Debian): unusable, never a delivery's gid
    out += person("sysgrp", home).replace(f"qmailGID: {UID}", "qmailGID: 103")
    out += (f"dn: uid=rooty,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: qmailUser\n"
            f"uid: rooty\ncn: r\nsn: r\nmail: rooty@example.test\nqmailUID: 0\nqmailGID: 0\n"
            f"homeDirectory: {home}/rooty\n\n")
    out += (f"dn: uid=catch,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: qmailUser\n"
            f"uid: catch\ncn: c\nsn: c\nmail: catch@catch.test\n"
            f"mailAlternateAddress: @catch.test\nqmailUID: {UID}\nqmailGID: {UID}\n"
            f"homeDirectory: {home}/catch\n\n")
    return out


@pytest.fixture(scope="module")
def directory():
    d = pathlib.Path(tempfile.mkdtemp(prefix="tern-ldapusers-", dir=TMPROOT))
    os.chmod(d, 0o755)
    home = d / "home"
    home.mkdir()
    os.chmod(home, 0o755)
    for u in ("joe", "dee", "burst", "noacc", "here", "catch"):
        (home / u).mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(home / u, UID, UID)
    ldap = LdapInstance(d / "ldap", debug="stats")
    ldap.add(ldif(home))
    ldap.start()
    yield ldap, home
    ldap.stop()
    shutil.rmtree(d, ignore_errors=True)


def tern_for(make_tern, ldap, **extra):
    config = {"users": "ldap:", "ldapserver": ldap.url, "ldapbasedn": "dc=example,dc=test",
              "ldaptimeout": "2", "locals": ["localhost", "example.test", "catch.test"],
              "ldapcluster": "yes", "loglevel": "3", "sandbox": "yes"}
    config.update(extra)
    return make_tern(config=config)


def rcpt(t, *addrs):
    with t.smtp() as s:
        assert s.cmd("EHLO client.test")[0] == 250
        assert s.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        out = [s.cmd(f"RCPT TO:<{a}>") for a in addrs]
        s.cmd("QUIT")
    return out


def code(reply):
    c, lines = reply
    m = re.match(r"\d{3}[ -](\d\.\d\.\d)", lines[-1])
    return (c, m.group(1) if m else "")


def maildir(home, user):
    out = []
    for sub in ("new", "cur"):
        p = home / user / "Maildir" / sub
        if p.is_dir():
            out += [f for f in p.iterdir() if f.is_file()]
    return out


def sendmail(t, sender, rcpt_to, body=b"Subject: t\n\nhello\n"):
    env = dict(os.environ, TERN_CONF=str(t.conf))
    p = subprocess.run([str(BINDIR / "sendmail"), "-f", sender, rcpt_to], input=body,
                       env=env, capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr


def ternctl(t, *args):
    env = dict(os.environ, TERN_CONF=str(t.conf))
    return subprocess.run([str(BINDIR / "ternctl"), *args], env=env, capture_output=True,
                          text=True, timeout=20)


def test_rcpt_verdicts(directory, make_tern):
    ldap, _ = directory
    t = tern_for(make_tern, ldap)
    cases = [
        ("joe@example.test", (250, "2.1.5")),
        ("joseph@example.test", (250, "2.1.5")),       # mailAlternateAddress
        ("JoE@Example.TEST", (250, "2.1.5")),           # case-insensitive
        ("joe-foo-bar@example.test", (250, "2.1.5")),   # extension, no .qmail needed
        ("anyone@catch.test", (250, "2.1.5")),          # @domain catch-all
        ("noacc@example.test", (250, "2.1.5")),         # noaccess: mail still delivered
        ("far@example.test", (250, "2.1.5")),           # another cluster node's user
        ("nobody@example.test", (550, "5.1.1")),
        ("gone@example.test", (550, "5.1.1")),          # accountStatus deleted
        ("off@example.test", (550, "5.2.1")),           # accountStatus disabled
        ("rooty@example.test", (451, "4.3.0")),         # qmailUID 0: never root
        ("odd@example.test", (451, "4.3.0")),           # unknown accountStatus
        ("twin@example.test", (451, "4.3.0")),          # two entries for one address
        ("sysgrp@example.test", (451, "4.3.0")),        # qmailGID below minuid
        ("*@example.test", (550, "5.1.1")),             # no catch-all in example.test
    ]
    got = rcpt(t, *[a for a, _ in cases])
    for (addr, want), reply in zip(cases, got):
        assert code(reply) == want, (addr, reply)
    assert "Mailbox disabled" in got[9][1][-1]
    # refused by the SMTP syntax check already, or by the directory: never another user
    for addr in ("*)(uid=*@example.test", "joe)(mail=*@example.test",
                 '"*)(uid=*"@example.test', '"joe)(|(mail=*"@example.test', "jo\\2a@example.test"):
        c = code(rcpt(t, addr)[0])
        assert c in ((550, "5.1.1"), (501, "5.1.3")), (addr, c)
    assert "reason=\"unknown accountStatus sleeping\"" in t.log()
    assert "qmailGID 103 is below minuid" in t.log()
    assert "qmailUID" in t.log()


def test_smtp_delivery_into_the_store_as_qmailuid(directory, make_tern):
    ldap, home = directory
    t = tern_for(make_tern, ldap)
    before = len(maildir(home, "joe"))
    with t.smtp() as s:
        s.cmd("EHLO client.test")
        assert s.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        assert s.cmd("RCPT TO:<joseph@example.test>")[0] == 250
        assert s.cmd("DATA")[0] == 354
        assert s.cmd("Subject: to the directory\r\n\r\nhello joe\r\n.")[0] == 250
        s.cmd("QUIT")
    assert wait_for(lambda: len(maildir(home, "joe")) > before, timeout=20)
    new = maildir(home, "joe")
    assert len(new) == before + 1
    f = sorted(new, key=lambda p: p.stat().st_mtime_ns)[-1]
    assert b"hello joe" in f.read_bytes()
    if os.geteuid() == 0:
        assert f.stat().st_uid == UID


def test_disabled_at_delivery_bounces_5_2_1(directory, make_tern):
    ldap, home = directory
    t = tern_for(make_tern, ldap)
    before = len(maildir(home, "dee"))
    sendmail(t, "dee@example.test", "off@example.test")
    assert wait_for(lambda: len(maildir(home, "dee")) > before, timeout=20)
    bounce = sorted(maildir(home, "dee"), key=lambda p: p.stat().st_mtime_ns)[-1].read_bytes()
    assert b"Status: 5.2.1" in bounce, bounce[:2000]


def test_directory_down_tempfails_and_deferred_mail_drains(directory, make_tern):
    ldap, home = directory
    t = tern_for(make_tern, ldap, ldapcachettl="0")
    before = len(maildir(home, "dee"))
    ldap.stop()
    try:
        assert code(rcpt(t, "dee@example.test")[0]) == (451, "4.3.0")
        sendmail(t, "a@remote.test", "dee@example.test")
        assert wait_for(lambda: "event=route_deferred" in t.log(), timeout=20)
    finally:
        ldap.start()
    assert len(maildir(home, "dee")) == before
    assert ternctl(t, "flush").returncode == 0
    assert wait_for(lambda: len(maildir(home, "dee")) > before, timeout=20)
    assert code(rcpt(t, "dee@example.test")[0]) == (250, "2.1.5")
    assert ternctl(t, "flush").returncode == 0
    # a sync point: a second message sent after the flush is delivered; then exactly two
    sendmail(t, "a@remote.test", "dee@example.test", b"Subject: second\n\nafter\n")
    assert wait_for(lambda: len(maildir(home, "dee")) >= before + 2, timeout=20)
    assert len(maildir(home, "dee")) == before + 2      # the deferred one once, no duplicate


def test_frozen_directory_tempfails_within_the_timeout(directory, make_tern):
    ldap, _ = directory
    t = tern_for(make_tern, ldap, ldapcachettl="0")
    assert code(rcpt(t, "joe@example.test")[0]) == (250, "2.1.5")
    ldap.freeze()
    try:
        start = time.monotonic()
        assert code(rcpt(t, "joe@example.test")[0]) == (451, "4.3.0")
        assert time.monotonic() - start < 6
    finally:
        ldap.thaw()
    assert wait_for(lambda: code(rcpt(t, "joe@example.test")[0]) == (250, "2.1.5"), timeout=20,
             step=0.5)


def test_cache_burst_costs_one_search(directory, make_tern):
    ldap, _ = directory
    t = tern_for(make_tern, ldap, ldapcachettl="60")

    def searches():
        return len(re.findall(r"SRCH base=.*mail=burst@example\.test", ldap.log()))

    n0 = searches()
    replies = rcpt(t, *["burst@example.test"] * 20)
    assert all(code(r) == (250, "2.1.5") for r in replies)
    assert searches() - n0 == 1


def test_starttls_to_a_stalled_directory_does_not_block_the_lookup_role(make_tern, workdir):
    """The connection setup is asynchronous: while a new connection's StartTLS waits for a
    frozen slapd, the lookup role answers other questions (a relay check) at once."""
    from tlsca import TestCA
    ca = TestCA(workdir / "ca")
    ldap = LdapInstance(workdir / "ldaps", cert=ca.leaf("ldap.example.test",
                                                        ips=["127.0.0.1"]))
    ldap.add(f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n")
    ldap.start()
    os.chmod(workdir / "ca", 0o755)
    os.chmod(ca.cert, 0o644)
    try:
        t = tern_for(make_tern, ldap, ldaptls="yes", ldapcafile=str(ca.cert), ldaptimeout="3")
        assert code(rcpt(t, "nobody@example.test")[0]) == (550, "5.1.1")   # TLS works
        t.stop()
        ldap.freeze()
        t.start()
        with t.smtp() as a, t.smtp() as b:
            for s in (a, b):
                assert s.cmd("EHLO client.test")[0] == 250
                assert s.cmd("MAIL FROM:<a@remote.test>")[0] == 250
            a.send("RCPT TO:<joe@example.test>\r\n")
            assert wait_for(lambda: "event=ldap_search addr=joe@example.test" in t.log(),
                            timeout=10)
            start = time.monotonic()
            assert code(b.cmd("RCPT TO:<x@elsewhere.test>")) == (553, "5.7.1")
            assert time.monotonic() - start < 1.5
            assert code(a.reply()) == (451, "4.3.0")
    finally:
        ldap.thaw()
        ldap.stop()


def test_cluster_user_is_handed_to_the_mta(directory, make_tern):
    """A user whose mailHost is another node (ldapcluster yes) is routed to channel cluster
    at that host as an smtproutes relay; the queue and scheduler hand it to the mta, which
    delivers it to the node (here a second ternd that takes example.test)."""
    ldap, _ = directory
    b = make_tern(config={"locals": ["localhost", "example.test"]})
    ldap.modify(f"dn: uid=far,{PEOPLE}\nchangetype: modify\nreplace: mailHost\n"
                f"mailHost: [127.0.0.1]:{b.port}\n")
    try:
        a = tern_for(make_tern, ldap, ldapcachettl="0")
        with a.smtp() as s:
            s.cmd("EHLO client.test")
            assert s.cmd("MAIL FROM:<a@remote.test>")[0] == 250
            assert s.cmd("RCPT TO:<far@example.test>")[0] == 250
            assert s.cmd("DATA")[0] == 354
            assert s.cmd("Subject: to node b\r\n\r\nfor far\r\n.")[0] == 250
            s.cmd("QUIT")
        msgs = b.wait_delivered("far", 1)
        assert b"for far" in msgs[0]
        assert re.search(r"event=delivery .*rcpt=<far@example.test> channel=cluster .*status=sent", a.log())
    finally:
        ldap.modify(f"dn: uid=far,{PEOPLE}\nchangetype: modify\nreplace: mailHost\n"
                    f"mailHost: node-b.example.test\n")
