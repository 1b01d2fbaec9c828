"""tests/e2e/test_ldap_auth.py — SMTP AUTH and POP3 logins of directory users (`users ldap:`,
issue 9) against a real slapd (tests/e2e/ldapinst.py): userPassword in every digest format
({SSHA} {SHA} {SMD5} {MD5} {CRYPT} {CLEARTEXT}, made here with hashlib and `openssl passwd
-6`), PLAIN and LOGIN, CRAM-MD5 and APOP against a cleartext userPassword, accountStatus,
the directory down (454 4.7.0 / -ERR [SYS/TEMP], not counted by the throttle), ldaprebind
with an ACL that hides userPassword, POP3 serving the entry's mailMessageStore as its
qmailUID, a POP3 login homed on another cluster node refused (-ERR [SYS/PERM] naming
it) while its SMTP AUTH works, pop-before-smtp, filter injection in the login name, and the lookup role answering
other requests while a login waits for a frozen directory.

Owns: its slapd, its ternd and their directories. Trusts: conftest.Tern, ldapinst."""
import base64
import hashlib
import hmac
import os
import poplib
import smtplib
import subprocess
import time

import pytest

from conftest import LdapcDriver, free_port, wait_for
from ldapinst import LdapInstance, ldap_usable, qmail_user, ssha

pytestmark = [pytest.mark.skipif(ldap_usable() is not None, reason=str(ldap_usable())),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (POP3 workers setuid)")]

PEOPLE = "ou=people,dc=example,dc=test"
PW = "pass word 1"
UID = 2101


def smd5(pw, salt=b"pepper"):
    return "{SMD5}" + base64.b64encode(hashlib.md5(pw.encode() + salt).digest() + salt).decode()


def sha(pw):
    return "{SHA}" + base64.b64encode(hashlib.sha1(pw.encode()).digest()).decode()


def md5(pw):
    return "{MD5}" + base64.b64encode(hashlib.md5(pw.encode()).digest()).decode()


def crypt6(pw):
    r = subprocess.run(["openssl", "passwd", "-6", "-salt", "ternsalt", pw], check=True,
                       capture_output=True, text=True, timeout=10)
    return "{CRYPT}" + r.stdout.strip()


HASHES = {"ssha": ssha, "sha": sha, "smd5": smd5, "md5": md5, "crypt": crypt6,
          "clear": lambda pw: "{CLEARTEXT}" + pw}


def entry(uid, pw, store, **attrs):
    return qmail_user(uid, mailAlternateAddress=f"{uid}.alt@example.test", userPassword=pw,
                      mailMessageStore=store, **attrs)


def people(storedir):
    ids = {"qmailUID": UID, "qmailGID": UID}
    out = [f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"]
    for name, fn in HASHES.items():
        out.append(entry(name, fn(PW), f"{storedir}/{name}/Maildir/", **ids))
    for status in ("noaccess", "disabled", "deleted", "active"):
        out.append(entry(status, ssha(PW), f"{storedir}/{status}/Maildir/", **ids,
                         accountStatus=status))
    out.append(entry("rootuid", ssha(PW), f"{storedir}/rootuid/Maildir/", qmailUID=0,
                     qmailGID=0))
    # homed on another cluster node (ldapcluster yes): SMTP AUTH yes, POP3 there
    out.append(entry("faraway", ssha(PW), f"{storedir}/faraway/Maildir/", **ids,
                     mailHost="node2.example.test"))
    # relative store (ldapmessagestore prefix), ids from ldapuid/ldapgid
    out.append(entry("popper", "{CLEARTEXT}" + PW, "popper/Maildir/"))
    return "".join(out)


def make_maildir(path, uid):
    for sub in ("", "new", "cur", "tmp"):
        d = path / sub
        d.mkdir(parents=True, exist_ok=True)
        os.chown(d, uid, uid)
        os.chmod(d, 0o700)
    os.chown(path.parent, uid, uid)


class Dir:
    """A slapd with the users above and a ternd whose users are the directory."""

    def __init__(self, make_tern, workdir, anonymous=False, extra=None):
        self.store = workdir / "store"
        self.store.mkdir(mode=0o755)
        os.chmod(workdir, 0o755)
        self.ldap = LdapInstance(workdir / "ldap")
        self.ldap.add(people(self.store))
        self.ldap.start()
        for name in list(HASHES) + ["active", "popper"]:
            make_maildir(self.store / name / "Maildir", UID)
        self.pop = free_port()
        cfg = {"users": "ldap:", "ldapserver": self.ldap.url,
               "ldapbasedn": "dc=example,dc=test", "ldaptimeout": "2",
               "ldapmessagestore": str(self.store), "ldapuid": str(UID),
               "ldapgid": str(UID), "authplaintext": "yes", "authfaildelaymax": "0",
               "authfailclose": "0", "pbstimeout": "60", "ldapcluster": "yes"}
        if not anonymous:
            cfg.update({"ldaplogin": self.ldap.rootdn, "ldappassword": self.ldap.rootpw})
        cfg.update(extra or {})
        self.t = make_tern(config=cfg, start=False)
        self.t.config["listen"] = self.t.config["listen"] + [f"pop3 127.0.0.1:{self.pop}"]
        self.t.start()

    def stop(self):
        self.ldap.stop()

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.t.port, timeout=20)
        s.ehlo("client.test")
        return s

    def pop3(self):
        return poplib.POP3("127.0.0.1", self.pop, timeout=20)


@pytest.fixture
def d(make_tern, workdir):
    x = Dir(make_tern, workdir)
    yield x
    x.stop()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def auth_plain(s, user, pw, authzid=""):
    return s.docmd("AUTH", "PLAIN " + b64(f"{authzid}\0{user}\0{pw}"))


def auth_login(s, user, pw):
    code, _ = s.docmd("AUTH", "LOGIN")
    assert code == 334
    code, _ = s.docmd(b64(user))
    assert code == 334
    return s.docmd(b64(pw))


def auth_cram(s, user, pw):
    code, ch = s.docmd("AUTH", "CRAM-MD5")
    assert code == 334
    dg = hmac.new(pw.encode(), base64.b64decode(ch), hashlib.md5).hexdigest()
    return s.docmd(b64(f"{user} {dg}"))


def one(d, fn, user, pw, **kw):
    s = d.smtp()
    try:
        return fn(s, user, pw, **kw)
    finally:
        s.close()


@pytest.mark.parametrize("name", list(HASHES))
def test_auth_plain_and_login_every_digest(d, name):
    code, text = one(d, auth_plain, name, PW)
    assert code == 235, (name, text)
    assert one(d, auth_login, name, PW)[0] == 235
    assert one(d, auth_plain, f"{name}@example.test", PW)[0] == 235     # by mail
    assert one(d, auth_plain, f"{name}.alt@example.test", PW)[0] == 235  # by alternate
    code, text = one(d, auth_plain, name, PW + "x")
    assert code == 535 and b"5.7.8" in text, text
    assert one(d, auth_login, name, "wrong")[0] == 535


def test_cram_md5_only_with_a_cleartext_password(d):
    assert one(d, auth_cram, "clear", PW)[0] == 235
    assert one(d, auth_cram, "clear", "wrong")[0] == 535
    assert one(d, auth_cram, "ssha", PW)[0] == 535
    assert wait_for(lambda: "reason=no_cleartext" in d.t.log())


@pytest.mark.parametrize("status", ["noaccess", "disabled", "deleted"])
def test_account_status_refuses(d, status):
    code, text = one(d, auth_plain, status, PW)
    assert code == 535, text
    assert wait_for(lambda: f"reason=account_{status}" in d.t.log())
    assert one(d, auth_plain, "active", PW)[0] == 235


def test_injected_login_names_match_nobody(d):
    for login in ("*", "joe)(uid=*", "*)(uid=*", "ssha)(|(uid=*", "*@example.test",
                  "@example.test", "ssha*", "(uid=ssha)"):
        code, text = one(d, auth_plain, login, PW)
        assert code == 535, (login, text)


def test_directory_down_is_454_and_not_counted(make_tern, workdir):
    x = Dir(make_tern, workdir, extra={"authfailclose": "2"})
    try:
        assert one(x, auth_plain, "ssha", PW)[0] == 235
        x.ldap.stop()
        for _ in range(3):                     # more than authfailclose: none counted
            code, text = one(x, auth_plain, "ssha", PW)
            assert code == 454 and b"4.7.0" in text, text
        p = x.pop3()
        p.user("popper")
        with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
            p.pass_(PW)
        p.close()
        x.ldap.start()
        assert wait_for(lambda: one(x, auth_plain, "ssha", PW)[0] == 235, timeout=15,
                        step=0.3)
    finally:
        x.stop()


def test_frozen_directory_parks_logins_only(make_tern, workdir):
    """A login waiting for a frozen directory does not hold up the lookup role: a MAIL
    check of another session is answered meanwhile; the login answers 454 at ldaptimeout."""
    x = Dir(make_tern, workdir)
    try:
        assert one(x, auth_plain, "ssha", PW)[0] == 235
        x.ldap.freeze()
        s = x.smtp()
        s.sock.sendall(f"AUTH PLAIN {b64(chr(0) + 'sha' + chr(0) + PW)}\r\n".encode())
        t0 = time.monotonic()
        other = x.smtp()
        assert other.docmd("MAIL", "FROM:<a@client.test>")[0] == 250
        assert time.monotonic() - t0 < 1.5
        other.close()
        code, text = s.getreply()
        assert code == 454, text
        x.ldap.thaw()
        s.close()
    finally:
        x.stop()


def test_rebind_when_userpassword_is_hidden(make_tern, workdir):
    # anonymous: the ACL (ldapinst) lets nobody but the entry itself read userPassword
    x = Dir(make_tern, workdir, anonymous=True)
    try:
        code, _ = one(x, auth_plain, "ssha", PW)
        assert code == 535
        assert wait_for(lambda: "reason=no_password" in x.t.log())
    finally:
        x.stop()


def test_rebind_checks_by_binding(make_tern, workdir):
    x = Dir(make_tern, workdir, anonymous=True, extra={"ldaprebind": "yes"})
    try:
        for name in ("ssha", "crypt", "smd5"):         # what slapd itself can check
            assert one(x, auth_plain, name, PW)[0] == 235, name
            assert one(x, auth_login, name, PW + "x")[0] == 535, name
        assert one(x, auth_plain, "ssha", "")[0] != 235        # never an unauthenticated bind
        code, _ = one(x, auth_plain, "disabled", PW)
        assert code == 535
        assert wait_for(lambda: "reason=account_disabled" in x.t.log())
        assert one(x, auth_plain, "nobody-here", PW)[0] == 535
        p = x.pop3()
        p.user("ssha")
        assert p.pass_(PW).startswith(b"+OK")
        p.quit()
    finally:
        x.stop()


def put(d, name, text):
    p = d.store / name / "Maildir" / "new" / "1700000000.1.host"
    p.write_bytes(text)
    os.chown(p, UID, UID)


def test_pop3_user_pass_serves_the_message_store(d):
    put(d, "popper", b"Subject: from the store\r\n\r\nhello popper\r\n")
    p = d.pop3()
    p.user("popper")                            # relative store, ldapuid/ldapgid
    assert p.pass_(PW).startswith(b"+OK")
    assert p.stat()[0] == 1
    assert b"hello popper" in b"\n".join(p.retr(1)[1])
    p.quit()
    assert wait_for(lambda: f"uid={UID}" in d.t.log())
    put(d, "ssha", b"Subject: s\r\n\r\nhello ssha\r\n")
    p = d.pop3()
    p.user("ssha@example.test")                 # absolute store, qmailUID
    p.pass_(PW)
    assert b"hello ssha" in b"\n".join(p.retr(1)[1])
    p.quit()


def test_pop3_apop_with_cleartext(d):
    put(d, "popper", b"Subject: a\r\n\r\napop body\r\n")
    p = d.pop3()
    assert p.apop("popper", PW).startswith(b"+OK")
    assert b"apop body" in b"\n".join(p.retr(1)[1])
    p.quit()
    p = d.pop3()
    with pytest.raises(poplib.error_proto):
        p.apop("popper", "wrong")
    p.close()


def test_pop3_refuses_uid_0_and_bad_accounts(d):
    p = d.pop3()
    p.user("rootuid")
    with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
        p.pass_(PW)
    p.close()
    # refused by routing's own mapping of the entry (lookup_ldap_map), as delivery is
    assert wait_for(lambda: "event=ldap_user_unusable dn=\"uid=rootuid," in d.t.log())
    p = d.pop3()
    p.user("noaccess")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(PW)
    assert b"SYS/TEMP" not in str(e.value).encode()
    p.close()


def test_pop3_login_homed_on_another_node(d):
    p = d.pop3()
    p.user("faraway")
    with pytest.raises(poplib.error_proto, match=r"SYS/PERM.*node2\.example\.test"):
        p.pass_(PW)
    p.close()
    assert wait_for(lambda: "event=pop3_refused" in d.t.log() and
                    "mailhost=node2.example.test" in d.t.log())
    # SMTP AUTH works: relaying from anywhere in the cluster is fine
    assert one(d, auth_plain, "faraway", PW)[0] == 235


def relay_code(d):
    s = d.smtp()
    try:
        s.docmd("MAIL", "FROM:<a@client.test>")
        return s.docmd("RCPT", "TO:<x@remote.test>")[0]
    finally:
        s.close()


def test_pop_before_smtp_for_directory_logins(d):
    assert relay_code(d) >= 500
    p = d.pop3()
    p.user("popper")
    p.pass_(PW)
    p.quit()
    assert relay_code(d) == 250


def test_answer_to_a_restarted_smtp_role_is_dropped(make_tern, workdir):
    """A login parked on a frozen directory whose asking smtp role dies meanwhile: its late
    answer is dropped (the generation check), never sent to the new smtp role's channel."""
    x = Dir(make_tern, workdir)
    try:
        assert one(x, auth_plain, "ssha", PW)[0] == 235
        x.ldap.freeze()
        s = x.smtp()
        s.sock.sendall(f"AUTH PLAIN {b64(chr(0) + 'sha' + chr(0) + PW)}\r\n".encode())
        assert wait_for(lambda: x.t.log().count("event=ldap_login_asked") == 2)
        os.kill(x.t.role_pids()["smtp"], 9)
        s.close()
        assert wait_for(lambda: "event=peer_new peer=smtp" in x.t.log())
        assert wait_for(lambda: "event=login_result_dropped" in x.t.log(), timeout=10)
        x.ldap.thaw()
        assert wait_for(lambda: one(x, auth_plain, "ssha", PW)[0] == 235, timeout=15,
                        step=0.3)
    finally:
        x.stop()


# ---- ldapc_login and ldapc_bind through tests/e2e/ldapc_driver.c -------------------------

def drive(d, cmd, timeout=10):
    d.n += 1
    tag = f"r{d.n}"
    d.p.stdin.write(f"{cmd.split(' ', 1)[0]} {tag} {cmd.split(' ', 1)[1]}\n")
    d.p.stdin.flush()
    return tag


def answer(d, timeout=10):
    rtag, status, fields = d.result(timeout)
    return rtag, status, fields


@pytest.fixture
def slapd2(workdir, make_slapd):
    store = workdir / "store2"
    other = ("dn: ou=other,dc=example,dc=test\nobjectClass: organizationalUnit\nou: other\n\n"
             + qmail_user("ssha", base="ou=other,dc=example,dc=test", cn="x", sn="x",
                          mail="other@example.test")
             + entry("dup", ssha(PW), "/x/") +
             "dn: cn=dup2,ou=other,dc=example,dc=test\nobjectClass: inetOrgPerson\n"
             "objectClass: qmailUser\ncn: dup2\nsn: x\nuid: dup2\nmail: dup2@example.test\n"
             "mailAlternateAddress: dup@example.test\n\n")
    return make_slapd(people(store) + other, name="ldap2")


def test_ldapc_login_rule(ldapc_driver, workdir, slapd2):
    d = LdapcDriver(ldapc_driver, workdir, [slapd2.url],
               extra=[f"ldaplogin {slapd2.rootdn}", f"ldappassword {slapd2.rootpw}"])
    try:
        for name, dn in (("sha", f"uid=sha,{PEOPLE}"), ("md5@example.test", f"uid=md5,{PEOPLE}"),
                         ("SMD5.alt@Example.Test", f"uid=smd5,{PEOPLE}"),
                         ("other@example.test", "uid=ssha,ou=other,dc=example,dc=test")):
            drive(d, f"login {name}")
            _, status, f = answer(d)
            assert status == "found" and f["dn"] == dn, (name, f)
            assert f["catchall"] == "0"
        drive(d, "login sha")
        assert answer(d)[2]["pw"] == sha(PW)
        # no entry, several entries (uid ssha twice; dup@ as mail and as an alternate), or
        # a name that would be a filter: nobody
        for name in ("nobody", "ssha", "dup@example.test", "*", "joe)(uid=*", "*)(uid=*",
                     "ss*", "@example.test", "*@example.test", "sha)(|(uid=*"):
            drive(d, f"login {name}")
            assert answer(d)[1] == "notfound", name
        assert wait_for(lambda: "event=ldap_login_ambiguous" in
                        (workdir / "ldapc_driver.log").read_text())
    finally:
        d.close()


def test_ldapc_bind_one_at_a_time(ldapc_driver, workdir, slapd2):
    d = LdapcDriver(ldapc_driver, workdir, [slapd2.url])               # anonymous, as ldaprebind's
    try:
        tags = {}
        for i in range(8):                                  # in flight together
            name = ("ssha", "crypt", "sha", "md5")[i % 4]
            pw = PW if i % 2 == 0 else "wrong"
            tags[drive(d, f"bind uid={name},{PEOPLE} {pw}")] = "found" if i % 2 == 0 else \
                "notfound"
        got = dict(answer(d)[:2] for _ in tags)
        assert got == tags
        drive(d, f"bind uid=ssha,{PEOPLE} ")               # empty: never an anonymous bind
        assert answer(d)[1] == "notfound"
        drive(d, f"bind uid=ghost,{PEOPLE} {PW}")
        assert answer(d)[1] == "notfound"
        slapd2.stop()
        drive(d, f"bind uid=ssha,{PEOPLE} {PW}")
        assert answer(d)[1] == "temp"
    finally:
        d.close()
