"""tests/e2e/test_ldapctl.py — the operator's tools for the directory and routing (issue 9):
`ternctl verify ADDRESS` (qmail-verify) and `ternctl ldaplookup ADDRESS`
(qmail-ldaplookup), answered by the running ternd: the control role asks the lookup role
(M_EXPLAIN -> M_EXPLAIN_RESULT), which walks the same routing session as RCPT and delivery
and asks its directory client (doc/ADMIN.md).

Checked: a file-table user, an alias, a remote address, an unknown one and a badrcptto one,
with their exit codes (0 deliverable, 1 permanent, 2 temporary; 75 without ternd); against a
real slapd (tests/e2e/ldapinst.py): the entry's attributes printed, the userPassword value
never, not found, a stopped slapd is temporary (exit 2); the IPC table refuses M_EXPLAIN
from every role but control (TERN_TEST_EVIL); readers without rights are refused; `ternctl
showctl` explains every key and never prints ldappassword.
qmail-ldaplookup's -u and -p: `ldaplookup -u UID` (the entry by uid, then the route of its
mail address; found, no mail, not found, temporary) and `ldaplookup -p` with the password on
stdin (ok, wrong, no password stored, temporary; not counted by the AUTH throttle — an SMTP
AUTH right after several wrong checks succeeds at once —, refused to a read-only caller,
never in ternd's log, one check a second).

Owns: its temporary directories and the processes it starts. Trusts: conftest's fixtures,
ldapinst."""
import base64
import os
import pwd
import re
import smtplib
import subprocess
import time

import pytest

from conftest import free_port, ternctl, wait_for
from ldapinst import ldap_usable, qmail_user, ssha

M_EXPLAIN = 190

SUFFIX = "dc=example,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
HASH = "{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g/BZ9oc2FsdA=="
LDIF = (f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n" +
        qmail_user("joe", cn="Joe User", sn="User", mailAlternateAddress="joseph@example.test",
                   mailMessageStore="joe/Maildir/", homeDirectory="/home/joe", qmailUID=2001,
                   qmailGID=2002, mailHost="node-b.example.test", deliveryMode="noprogram",
                   mailForwardingAddress="a@fwd.test", mailQuotaSize=1000000,
                   mailQuotaCount=50, accountStatus="active", userPassword=HASH,
                   qmailDotMode="ldapwithprog", deliveryProgramPath="/usr/bin/procmail",
                   mailReplyText="I am away", mailSizeMax=2000000))


def file_tern(make_tern, config=None):
    """users alice and bob in a file table, an alias team -> alice, badrcptto evil@"""
    t = make_tern(users={"alice": None, "bob": None}, start=False,
                  config={"badrcptto": "evil@localhost", **(config or {})})
    aliases = t.dir / "aliases"
    aliases.write_text("team: alice, bob\n")
    os.chmod(aliases, 0o644)
    t.config["aliases"] = str(aliases)
    return t.start()


def test_verify_file_user_alias_remote_unknown(make_tern):
    t = file_tern(make_tern)
    p = ternctl(t, "verify", "alice@localhost")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr, t.log_tail())
    lines = p.stdout.splitlines()
    assert lines[0] == "alice@localhost: deliverable", p.stdout
    assert re.search(r"target 1: channel=local host=\"\" address=alice@localhost user=alice "
                     r"uid=\d+ gid=\d+ home=\S+/mail/alice instruction=\(default delivery\)",
                     p.stdout), p.stdout

    p = ternctl(t, "verify", "team@localhost")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.startswith("team@localhost: deliverable\n"), p.stdout
    assert "user=alice" in p.stdout and "user=bob" in p.stdout, p.stdout

    p = ternctl(t, "verify", "someone@remote.test")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.startswith("someone@remote.test: deliverable\n"), p.stdout
    assert "accepted only from relayclients" in p.stdout, p.stdout
    assert "target 1: channel=smtp host=remote.test address=someone@remote.test" in p.stdout

    p = ternctl(t, "verify", "nosuch@localhost")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout.startswith("nosuch@localhost: unknown (550 5.1.1 "), p.stdout
    assert "target" not in p.stdout and "permanent" in p.stderr

    p = ternctl(t, "verify", "evil@localhost")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout.startswith("evil@localhost: refused (550 5.7.1 badrcptto)"), p.stdout

    # ldaplookup without a directory: says so, then the same route
    p = ternctl(t, "ldaplookup", "alice@localhost")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.startswith("directory: no directory configured (ldapserver is not set)\n"
                               "alice@localhost: deliverable\n"), p.stdout
    p = ternctl(t, "ldaplookup", "nosuch@localhost")
    assert p.returncode == 1, (p.stdout, p.stderr)

    # usage, and the bytes of an address never reach the terminal raw
    assert ternctl(t, "verify").returncode == 64
    p = ternctl(t, "verify", "x\x1b[31m@remote.test")
    assert "\x1b" not in p.stdout and "x\\x1b[31m@remote.test" in p.stdout, p.stdout

    t.stop()
    p = ternctl(t, "verify", "alice@localhost")
    assert p.returncode == 75 and "not running" in p.stderr, (p.returncode, p.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another uid needs root")
def test_verify_needs_rights(make_tern):
    t = file_tern(make_tern)
    p = ternctl(t, "verify", "alice@localhost", user="nobody")
    assert p.returncode == 1 and "permission denied" in p.stderr, (p.returncode, p.stderr)
    assert p.stdout == ""


# ---- against a real slapd ----------------------------------------------------------------------

needs_ldap = pytest.mark.skipif(ldap_usable() is not None, reason=str(ldap_usable()))


@pytest.fixture
def slapd(make_slapd):
    return make_slapd(LDIF)


def ldap_tern(make_tern, slapd):
    return make_tern(users={"alice": None}, config={
        "locals": "localhost, example.test",
        "ldapserver": slapd.url, "ldapbasedn": SUFFIX, "ldaplogin": slapd.rootdn,
        "ldappassword": slapd.rootpw, "ldaptimeout": "3", "ldapmessagestore": "/var/mail"})


@needs_ldap
def test_ldaplookup_prints_the_entry_never_the_password(make_tern, slapd):
    t = ldap_tern(make_tern, slapd)
    p = ternctl(t, "ldaplookup", "JOSEPH@example.test")
    out = p.stdout
    assert out.startswith("directory: found\n"), (out, p.stderr, t.log_tail())
    want = [f"dn: uid=joe,{PEOPLE}", "uid: joe", "qmailUID: 2001", "qmailGID: 2002",
            "homeDirectory: /home/joe", "mailMessageStore: /var/mail/joe/Maildir/",
            "accountStatus: active", "deliveryMode: noprogram", "qmailDotMode: ldapwithprog",
            "mailForwardingAddress: a@fwd.test", "deliveryProgramPath: /usr/bin/procmail",
            "mailQuotaSize: 1000000", "mailQuotaCount: 50", "mailSizeMax: 2000000",
            "mailReplyText: I am away", "mailHost: node-b.example.test",
            "userPassword: present", "found by: address"]
    got = [line.strip() for line in out.splitlines()]
    for w in want:
        assert w in got, (w, out)
    # the hash (or any part of it) never leaves the lookup role
    assert "SSHA" not in out and "W6ph5" not in out and "SSHA" not in p.stderr
    # the route part follows (the users backend is the file table here: joe is not in it)
    assert "JOSEPH@example.test: unknown (550 5.1.1" in out, out
    assert p.returncode == 1, (p.returncode, p.stderr)

    p = ternctl(t, "ldaplookup", "nobody@example.test")
    assert p.stdout.startswith("directory: not found\nnobody@example.test: unknown"), p.stdout
    assert p.returncode == 1

    p = ternctl(t, "ldaplookup", "alice@localhost")           # in the file table
    assert p.stdout.startswith("directory: not found\nalice@localhost: deliverable\n"), p.stdout
    assert p.returncode == 0

    slapd.stop()
    p = ternctl(t, "ldaplookup", "joe@example.test")
    assert p.stdout.startswith("directory: temporary error (451 4.3.0)"), p.stdout
    assert p.returncode == 2 and "directory did not answer" in p.stderr, (p.returncode, p.stderr)
    assert "SSHA" not in t.log()


CATCHALL = qmail_user("catchall", mailAlternateAddress="@example.test",
                      mailMessageStore="catchall/Maildir/", qmailUID=2201, qmailGID=2201)


@needs_ldap
def test_ldaplookup_walks_the_way_routing_does(make_tern, make_slapd):
    """the entry is the one routing ends on: the whole address, the extension removed at
    each '-', then the @domain catch-all; and the line says which step found it"""
    t = users_tern(make_tern, make_slapd(LDIF + "\n" + CATCHALL))
    for addr, dn, step in [
            ("joe@example.test", "joe", "address"),
            ("joe-foo@example.test", "joe", "extension foo removed"),
            ("Joseph-x-y@example.test", "joe", "extension x-y removed"),
            ("nobody-x@example.test", "catchall", "catch-all @example.test")]:
        p = ternctl(t, "ldaplookup", addr)
        got = [line.strip() for line in p.stdout.splitlines()]
        assert got[0] == "directory: found", (addr, p.stdout, p.stderr)
        assert f"dn: uid={dn},{PEOPLE}" in got, (addr, p.stdout)
        assert f"found by: {step}" in got, (addr, p.stdout)
        # the verify part routes to the same user
        assert f"{addr}: " in p.stdout and f"user={dn} " in p.stdout, (addr, p.stdout)
    p = ternctl(t, "ldaplookup", "nobody@other.test")
    assert p.stdout.startswith("directory: not found\n"), p.stdout


# ---- ldaplookup -u UID, ldaplookup -p (qmail-ldaplookup's -u and -p) --------------------------

PW = "pass word:1"


PEOPLE2 = (qmail_user("pwuser", qmailUID=2101, qmailGID=2101, userPassword=ssha(PW),
                      mailMessageStore="pwuser/Maildir/") +
           qmail_user("nopw", qmailUID=2101, qmailGID=2101, mailMessageStore="nopw/Maildir/") +
           # qmailUser requires mail: an inetOrgPerson (found with ldapobjectclass so)
           f"dn: uid=nomail,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: nomail\ncn: n\nsn: n\n"
           f"userPassword: {ssha(PW)}\n\n")


@pytest.fixture
def slapd2(make_slapd):
    return make_slapd(LDIF + "\n" + PEOPLE2)


def users_tern(make_tern, slapd, extra=None):
    """users ldap: — logins (SMTP AUTH) and routing by the directory"""
    return make_tern(config={
        "locals": "localhost, example.test", "users": "ldap:",
        "ldapserver": slapd.url, "ldapbasedn": SUFFIX, "ldaplogin": slapd.rootdn,
        "ldappassword": slapd.rootpw, "ldaptimeout": "2", "ldapmessagestore": "/var/mail",
        "authplaintext": "yes", "authfailclose": "2", "authfaildelaymax": "8", **(extra or {})})


def check_pw(t, *args, pw=PW, **kw):
    return ternctl(t, "ldaplookup", "-p", *args, stdin=pw + "\n", **kw)


@needs_ldap
def test_ldaplookup_by_uid(make_tern, slapd2):
    t = users_tern(make_tern, slapd2, {"ldapobjectclass": "inetOrgPerson"})
    p = ternctl(t, "ldaplookup", "-u", "pwuser")
    out = p.stdout
    assert out.startswith("directory: found\n"), (out, p.stderr, t.log_tail())
    got = [line.strip() for line in out.splitlines()]
    assert f"dn: uid=pwuser,{PEOPLE}" in got and "mail: pwuser@example.test" in got, out
    # then the route of the entry's mail address, as for an address
    assert "pwuser@example.test: deliverable" in got, out
    assert re.search(r"target 1: channel=local .*address=pwuser@example.test user=pwuser "
                     r"uid=2101 gid=2101", out), out
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "password:" not in out          # not asked

    p = ternctl(t, "ldaplookup", "-u", "JOE")     # uid as a login gives it
    assert "dn: uid=joe," + PEOPLE in p.stdout and "joe@example.test: " in p.stdout, p.stdout

    p = ternctl(t, "ldaplookup", "-u", "nomail")
    assert p.stdout.startswith("directory: found\n"), p.stdout
    assert "  mail: (none)\n" in p.stdout, p.stdout
    assert p.stdout.endswith("uid nomail: no mail address\n"), p.stdout
    assert p.returncode == 1, (p.returncode, p.stderr)

    p = ternctl(t, "ldaplookup", "-u", "ghost")
    assert p.stdout == "directory: not found\nuid ghost: not found\n", p.stdout
    assert p.returncode == 1
    p = ternctl(t, "ldaplookup", "-u", "*)(uid=*")   # no injection: nobody
    assert "directory: not found" in p.stdout and p.returncode == 1, p.stdout
    p = ternctl(t, "ldaplookup", "-u", "joe@example.test")   # a uid has no '@'
    assert p.stdout.startswith("directory: not asked (not a uid)"), p.stdout
    assert p.returncode == 1
    assert ternctl(t, "ldaplookup", "-u").returncode == 64
    assert ternctl(t, "ldaplookup", "-x", "joe").returncode == 64

    slapd2.stop()
    p = ternctl(t, "ldaplookup", "-u", "pwuser")
    assert p.stdout.startswith("directory: temporary error (451 4.3.0)"), p.stdout
    assert "uid pwuser: temporary (451 4.3.0 " in p.stdout, p.stdout
    assert p.returncode == 2, (p.returncode, p.stderr)


@needs_ldap
def test_ldaplookup_password(make_tern, slapd2):
    t = users_tern(make_tern, slapd2)
    p = check_pw(t, "pwuser@example.test")
    assert "\npassword: ok\n" in p.stdout, (p.stdout, p.stderr, t.log_tail())
    assert "pwuser@example.test: deliverable" in p.stdout and p.returncode == 0, p
    p = check_pw(t, "-u", "pwuser")                          # by uid, -p first or second
    assert "\npassword: ok\n" in p.stdout and p.returncode == 0, p
    p = ternctl(t, "ldaplookup", "-u", "-p", "pwuser", stdin=PW + "\r\n")   # CRLF too
    assert "\npassword: ok\n" in p.stdout and p.returncode == 0, p

    # wrong, several times: never counted by the login throttle
    t0 = time.monotonic()
    for _ in range(3):
        p = check_pw(t, "pwuser@example.test", pw="not it")
        assert "\npassword: wrong\n" in p.stdout, p.stdout
        assert p.returncode == 1 and "wrong password" in p.stderr, (p.returncode, p.stderr)
    assert time.monotonic() - t0 >= 1.5        # one check a second (for all callers)
    s = smtplib.SMTP("127.0.0.1", t.port, timeout=20)
    s.ehlo("client.test")
    t0 = time.monotonic()
    code, text = s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0pwuser\0{PW}".encode()).decode())
    assert code == 235, (code, text, t.log_tail())
    assert time.monotonic() - t0 < 1.0, "the checks were counted: AUTH waited"
    s.quit()
    assert "event=auth_fail" not in t.log() and "event=pbs_add" not in t.log()

    p = check_pw(t, "nopw@example.test")
    assert "\npassword: no password stored\n" in p.stdout, p.stdout
    assert p.returncode == 1
    p = check_pw(t, "ghost@example.test")
    assert "directory: not found\npassword: no password stored (no entry)\n" in p.stdout
    assert p.returncode == 1

    # the password comes from stdin only: none there is a usage error, nothing asked
    p = ternctl(t, "ldaplookup", "-p", "pwuser@example.test", stdin="")
    assert p.returncode == 64 and "stdin" in p.stderr, (p.returncode, p.stderr)

    slapd2.stop()
    p = check_pw(t, "pwuser@example.test")
    assert "password: temporary" in p.stdout, p.stdout
    assert p.returncode == 2, (p.returncode, p.stderr)

    log = t.log()
    assert PW not in log and "not it" not in log, "a password in ternd's log"
    assert PW.encode().hex() not in log and "not it".encode().hex() not in log
    assert "SSHA" not in log


@needs_ldap
def test_ldaplookup_password_by_rebind(make_tern, slapd2):
    """ldaprebind yes: the bind as the entry decides, as for a login"""
    t = users_tern(make_tern, slapd2, {"ldaprebind": "yes"})
    p = check_pw(t, "-u", "pwuser")
    assert "\npassword: ok\n" in p.stdout, (p.stdout, p.stderr, t.log_tail())
    p = check_pw(t, "-u", "pwuser", pw="not it")
    assert "\npassword: wrong\n" in p.stdout and p.returncode == 1, p.stdout


@needs_ldap
@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another uid needs root")
def test_ldaplookup_password_needs_change_rights(make_tern, slapd2):
    t = users_tern(make_tern, slapd2)
    try:
        group = pwd.getpwnam(t.config.get("queueuser", "_ternq")).pw_gid
    except KeyError:
        pytest.skip("no queue account")
    reader = (4242, group)                   # the queue account's group: may read
    p = ternctl(t, "ldaplookup", "pwuser@example.test", ids=reader)
    assert p.returncode == 0 and "directory: found" in p.stdout, (p.returncode, p.stderr)
    p = check_pw(t, "pwuser@example.test", ids=reader)
    assert p.returncode == 1 and "may only read" in p.stderr, (p.returncode, p.stderr)
    assert p.stdout == ""
    assert "password=1" not in t.log()       # never sent to the lookup role
    p = check_pw(t, "pwuser@example.test")   # root may
    assert "\npassword: ok\n" in p.stdout, p.stdout


# ---- the IPC table -------------------------------------------------------------------------------

def test_only_control_may_send_explain(make_tern):
    """An evil smtp, queue and mta each send the lookup role a well-formed M_EXPLAIN: every
    one is refused by the codec before the lookup role acts on it, and nothing answers."""
    t = make_tern()
    t.stop()
    t.env["TERN_TEST_EVIL"] = "smtp,queue,mta"
    t.start()
    log = lambda: t.log().rsplit("---- start ", 1)[-1]   # noqa: E731
    for evil in ("smtp", "queue", "mta"):
        pat = rf"lookup\[\d+\] err: event=ipc_refused peer={evil} type={M_EXPLAIN} "
        assert wait_for(lambda: re.search(pat, log()), 10), (evil, t.log_tail())
    assert "event=explain" not in log()
    t.stop()
    del t.env["TERN_TEST_EVIL"]
    t.start()
    p = ternctl(t, "verify", "postmaster@localhost")
    assert p.returncode == 0, (p.stdout, p.stderr)


# ---- showctl -----------------------------------------------------------------------------------

def test_showctl_explains_every_key_and_hides_the_password(make_tern):
    t = make_tern(start=False, config={"ldapserver": f"ldap://127.0.0.1:{free_port()}/",
                                       "ldappassword": "s3cr3t-value"})
    p = ternctl(t, "showctl")
    assert p.returncode == 0, p.stderr
    keys = {}
    for line in p.stdout.splitlines()[1:]:
        m = re.match(r"(\S+)\s+(\S*)\s+(.*)$", line)
        assert m, line
        keys[m[1]] = m[3]
    for k in ("ldapserver", "ldapbasedn", "ldaplogin", "ldappassword", "ldaptimeout",
              "ldaprebind", "ldapobjectclass", "ldapuid", "ldapgid", "ldapmessagestore",
              "ldapdefaultdotmode", "ldapcluster", "ldapclusterhosts", "ldaptls", "ldapcafile"):
        assert k in keys, k
    for k, doc in keys.items():
        if k.startswith(("ldap", "smtpcluster", "qmqp")):
            assert len(doc.split()) >= 3, (k, doc)
    assert "s3cr3t-value" not in p.stdout
    assert re.search(r"^ldappassword\s+\(set\)\s", p.stdout, re.M), p.stdout
