"""tests/e2e/test_ldap_lists.py — mailing lists held in the directory (qmail-ldap's
qmailGroup, doc/LISTS.md "Directory groups") against a real slapd with qmail.schema: a group
address routes to the list channel; its members come from rfc822member, dnmember (the
entry's mail) and filtermember (every matching entry's mail); membersonly refuses a
stranger (5.7.2) and rfc822sender lets one in; GROUP-owner reaches the bounceAdmin; a
moderated group (rfc822moderator) holds the post until the moderator accepts.

Owns: its workdir, the slapd and ternd it starts. Trusts: ldapinst, conftest."""
import email
import email.policy
import os
import pathlib
import re
import shutil
import smtplib
import tempfile

import pytest

from conftest import TMPROOT, wait_for
from ldapinst import LdapInstance, ldap_usable

pytestmark = pytest.mark.skipif(ldap_usable() is not None, reason=str(ldap_usable()))

PEOPLE = "ou=people,dc=example,dc=test"
UID = 2001
USERS = ("alice", "bob", "dee", "joe", "mod", "out")


def person(uid, home):
    return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: qmailUser\n"
            f"uid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.test\n"
            f"qmailUID: {UID}\nqmailGID: {UID}\nhomeDirectory: {home}/{uid}\n"
            f"mailMessageStore: {home}/{uid}/Maildir/\n\n")


def group(name, extra):
    return (f"dn: cn={name},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: qmailUser\n"
            f"objectClass: qmailGroup\ncn: {name}\nsn: {name}\nuid: {name}\n"
            f"mail: {name}@example.test\nmailAlternateAddress: {name}-alt@example.test\n"
            f"mailMessageStore: /nonexistent/\nbounceAdmin: joe@example.test\n{extra}\n")


def ldif(home):
    out = f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
    for u in USERS:
        out += person(u, home)
    out += group("team", "rfc822member: alice@example.test\n"
                 f"dnmember: uid=bob,{PEOPLE}\nfiltermember: (uid=dee)\n"
                 "membersonly: TRUE\nrfc822sender: out@example.test\n")
    out += group("mods", "rfc822member: alice@example.test\n"
                 "rfc822moderator: mod@example.test\n")
    return out


@pytest.fixture(scope="module")
def directory():
    d = pathlib.Path(tempfile.mkdtemp(prefix="tern-ldaplists-", dir=TMPROOT))
    os.chmod(d, 0o755)
    home = d / "home"
    home.mkdir()
    os.chmod(home, 0o755)
    ldap = LdapInstance(d / "ldap")
    ldap.add(ldif(home))
    ldap.start()
    yield ldap, home
    ldap.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def homes(directory):
    _, home = directory
    for u in USERS:
        shutil.rmtree(home / u, ignore_errors=True)
        (home / u).mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(home / u, UID, UID)
    return home


def tern_for(make_tern, ldap):
    return make_tern(config={"users": "ldap:", "ldapserver": ldap.url,
                             "ldapbasedn": "dc=example,dc=test", "ldaptimeout": "2",
                             "locals": ["localhost", "example.test"], "loglevel": "3"})


def mails(home, user):
    out = []
    for sub in ("new", "cur"):
        p = home / user / "Maildir" / sub
        if p.is_dir():
            out += [f.read_bytes() for f in sorted(p.iterdir()) if f.is_file()]
    return out


def send(t, sender, rcpt):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=15) as s:
        s.sendmail(sender, [rcpt], f"From: {sender}\r\nTo: {rcpt}\r\nSubject: hi\r\n"
                   "\r\nhello group\r\n".encode())


def test_group_expands_to_every_kind_of_member(directory, homes, make_tern):
    ldap, _ = directory
    t = tern_for(make_tern, ldap)
    send(t, "alice@example.test", "team@example.test")
    for u in ("alice", "bob", "dee"):
        assert wait_for(lambda: mails(homes, u), 20), (u, t.log_tail())
        m = email.message_from_bytes(mails(homes, u)[0], policy=email.policy.default)
        assert m["List-Id"] == "<team.example.test>"
        assert m["Return-Path"] == "<team-owner@example.test>"
    assert mails(homes, "joe") == []


def test_membersonly_group_and_allowed_sender(directory, homes, make_tern):
    ldap, _ = directory
    t = tern_for(make_tern, ldap)
    send(t, "joe@example.test", "team@example.test")        # not a member: bounced
    assert wait_for(lambda: mails(homes, "joe"), 20), t.log_tail()
    assert b"5.7.2" in mails(homes, "joe")[0]
    send(t, "out@example.test", "team@example.test")        # rfc822sender: allowed
    assert wait_for(lambda: mails(homes, "alice"), 20), t.log_tail()
    assert len(mails(homes, "alice")) == 1


def test_group_owner_is_the_bounce_admin(directory, homes, make_tern):
    ldap, _ = directory
    t = tern_for(make_tern, ldap)
    send(t, "alice@example.test", "team-owner@example.test")
    assert wait_for(lambda: mails(homes, "joe"), 20), t.log_tail()
    assert b"hello group" in mails(homes, "joe")[0]


def test_moderated_group_holds_until_accepted(directory, homes, make_tern):
    ldap, _ = directory
    t = tern_for(make_tern, ldap)
    send(t, "bob@example.test", "mods@example.test")
    assert wait_for(lambda: mails(homes, "mod"), 20), t.log_tail()
    req = email.message_from_bytes(mails(homes, "mod")[0], policy=email.policy.default)
    accept = req["Reply-To"]
    assert re.fullmatch(r"mods-accept-[0-9a-f]{48}@example.test", accept), accept
    assert mails(homes, "alice") == []
    send(t, "mod@example.test", accept)
    assert wait_for(lambda: mails(homes, "alice"), 20), t.log_tail()
