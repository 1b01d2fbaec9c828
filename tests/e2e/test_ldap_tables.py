"""tests/e2e/test_ldap_tables.py — `ldap:PATH` table references (src/mail/ldaptable.c, the
profile; src/ternd/lookup/lookup_tables.c, the asynchronous MAIL/RCPT checks; ldapc_search)
against a real slapd (tests/e2e/ldapinst.py).

Checked: rcpthosts from the directory (a listed domain accepted from anyone, another refused
553 5.7.1 relaying denied), badmailfrom (an address and an @domain entry: 553 5.7.1) and
badrcptto (550 5.7.1) from the directory with result_attribute, %u and %d, and `ternctl
verify` answering as RCPT does with those tables; filter
metacharacters in a key match nothing (`*@...` is not a wildcard); slapd frozen: the check
that needs it answers 451 4.3.0 once ldaptimeout passes while another session's check is
answered at once, and its verdict is dropped when the asking smtp role restarted meanwhile;
slapd stopped: 451 4.3.0 at MAIL and RCPT, never an accept; config errors (`ternd -n`,
exit 78) for bad profiles (with the profile's file:line), for ldap: on a routing key
(smtproutes, locals) and for ldap: tables without ldapserver.

Owns: its workdir, the slapd and ternd it starts. Trusts: ldapinst, conftest."""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import TERND, TMPROOT, ternctl, wait_for
from ldapinst import LdapInstance, ldap_usable

pytestmark = pytest.mark.skipif(ldap_usable() is not None, reason=str(ldap_usable()))

BASE = "dc=example,dc=test"


def ldif():
    out = ""
    for ou in ("relay", "badfrom", "badto"):
        out += f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
    # rcpthosts: one entry per accepted domain
    out += f"dn: ou=relayed.test,ou=relay,{BASE}\nobjectClass: organizationalUnit\nou: relayed.test\n\n"
    # badmailfrom: an address, a whole domain (the @domain form), a lookalike without the
    # result attribute (must not count)
    out += (f"dn: uid=spammer,ou=badfrom,{BASE}\nobjectClass: inetOrgPerson\nuid: spammer\n"
            f"cn: s\nsn: s\nmail: spammer@bad.test\ndescription: blocked\n\n")
    out += (f"dn: uid=evil,ou=badfrom,{BASE}\nobjectClass: inetOrgPerson\nuid: evil\n"
            f"cn: e\nsn: e\nmail: @evil.test\ndescription: blocked\n\n")
    out += (f"dn: uid=fine,ou=badfrom,{BASE}\nobjectClass: inetOrgPerson\nuid: fine\n"
            f"cn: f\nsn: f\nmail: fine@bad.test\n\n")
    # badrcptto: looked up by local part and domain (%u, %d)
    out += (f"dn: uid=victim,ou=badto,{BASE}\nobjectClass: inetOrgPerson\nuid: victim\n"
            f"cn: v\nsn: v\nmail: victim@localhost\n\n")
    return out


@pytest.fixture(scope="module")
def directory():
    d = pathlib.Path(tempfile.mkdtemp(prefix="tern-ldaptables-", dir=TMPROOT))
    os.chmod(d, 0o755)
    ldap = LdapInstance(d / "ldap")
    ldap.add(ldif())
    ldap.start()
    yield ldap, d
    ldap.stop()
    shutil.rmtree(d, ignore_errors=True)


def profile(d, name, text):
    p = d / name
    p.write_text(text)
    os.chmod(p, 0o644)
    return p


def profiles(d):
    return {
        "rcpthosts": profile(d, "relay.cf", "# domains we accept\nquery_filter = "
                             "(&(objectClass=organizationalUnit)(ou=%s))\n"
                             f"search_base = ou=relay,{BASE}\nscope = one\n"),
        "badmailfrom": profile(d, "badfrom.cf", "query_filter = (&(objectClass=inetOrgPerson)"
                               f"(mail=%s))\nsearch_base = ou=badfrom,{BASE}\n"
                               "result_attribute = description\n"),
        "badrcptto": profile(d, "badto.cf", "query_filter = (&(uid=%u)(mail=%u@%d))\n"
                             f"search_base = ou=badto,{BASE}\n"),
    }


def tern_for(make_tern, ldap, d, keys=("rcpthosts", "badmailfrom", "badrcptto"), **extra):
    p = profiles(d)
    config = {"ldapserver": ldap.url, "ldapbasedn": BASE, "ldaptimeout": "3",
              "loglevel": "3", "sandbox": "yes"}
    for k in keys:
        config[k] = f"ldap:{p[k]}"
    config.update(extra)
    return make_tern(config=config)


def code(reply):
    c, lines = reply
    m = re.match(r"\d{3}[ -](\d\.\d\.\d)", lines[-1])
    return (c, m.group(1) if m else "")


def session(t, sender, *rcpts):
    """MAIL's reply, then each RCPT's (none if MAIL was refused)"""
    with t.smtp() as s:
        assert s.cmd("EHLO client.test")[0] == 250
        m = s.cmd(f"MAIL FROM:<{sender}>")
        out = [code(m)]
        if m[0] == 250:
            out += [code(s.cmd(f"RCPT TO:<{r}>")) for r in rcpts]
        s.cmd("QUIT")
    return out


def test_rcpthosts_from_the_directory(directory, make_tern):
    ldap, d = directory
    t = tern_for(make_tern, ldap, d, keys=("rcpthosts",))
    got = session(t, "a@remote.test", "x@relayed.test", "x@RELAYED.test", "x@other.test",
                  "x@sub.relayed.test")
    assert got == [(250, "2.1.0"), (250, "2.1.5"), (250, "2.1.5"), (553, "5.7.1"),
                   (553, "5.7.1")], got


def test_badmailfrom_and_badrcptto_from_the_directory(directory, make_tern):
    ldap, d = directory
    t = tern_for(make_tern, ldap, d)
    assert session(t, "spammer@bad.test")[0] == (553, "5.7.1")
    assert session(t, "anyone@evil.test")[0] == (553, "5.7.1")      # the @domain entry
    assert session(t, "fine@bad.test", "joe@localhost") == [(250, "2.1.0"), (250, "2.1.5")]
    got = session(t, "a@remote.test", "victim@localhost", "joe@localhost", "victim@relayed.test")
    assert got == [(250, "2.1.0"), (550, "5.7.1"), (250, "2.1.5"), (250, "2.1.5")], got


def test_verify_answers_as_rcpt_does(directory, make_tern):
    """ternctl verify asks badrcptto and rcpthosts the way RCPT does, ldap: tables included
    (not "badrcptto table unreadable", not "relay-only" for a domain the directory lists)"""
    ldap, d = directory
    t = tern_for(make_tern, ldap, d)
    for addr, rc, want in [
            ("victim@localhost", 1, "victim@localhost: refused (550 5.7.1 badrcptto)"),
            ("<victim@localhost>", 1, "refused (550 5.7.1 badrcptto)"),
            ("joe@localhost", 0, "joe@localhost: deliverable"),
            ("x@relayed.test", 0, "rcpt: a remote domain in rcpthosts: accepted from any"),
            ("x@other.test", 0, "rcpt: a remote domain: accepted only from relayclients")]:
        p = ternctl(t, "verify", addr)
        assert want in p.stdout and p.returncode == rc, (addr, p.returncode, p.stdout,
                                                          p.stderr)


def test_filter_metacharacters_match_nothing(directory, make_tern):
    ldap, d = directory
    t = tern_for(make_tern, ldap, d)
    # unescaped, (mail=*@bad.test) would be a wildcard matching spammer@bad.test
    assert session(t, "*@bad.test")[0] == (250, "2.1.0")
    assert session(t, "*@evil.test")[0] == (553, "5.7.1")            # its @domain is listed
    for sender in ('"*)(objectClass=*"@bad.test', '"*)(mail=*"@relayed.test'):
        c = session(t, sender)[0]
        assert c in ((250, "2.1.0"), (501, "5.1.7"), (501, "5.1.3")), (sender, c)
    # a domain key with metacharacters is no wildcard either
    got = session(t, "a@remote.test", "x@relayed.test", "joe@localhost")
    assert got[1:] == [(250, "2.1.5"), (250, "2.1.5")]
    # the key went out escaped (the log doubles the backslash)
    assert "(mail=\\\\2a@bad.test))" in t.log()


def test_frozen_directory_tempfails_while_other_checks_answer(directory, make_tern):
    ldap, d = directory
    t = tern_for(make_tern, ldap, d, keys=("rcpthosts",))
    assert session(t, "a@remote.test", "x@relayed.test")[1] == (250, "2.1.5")
    ldap.freeze()
    try:
        with t.smtp() as a, t.smtp() as b:
            assert a.cmd("EHLO a.test")[0] == 250 and b.cmd("EHLO b.test")[0] == 250
            assert a.cmd("MAIL FROM:<a@remote.test>")[0] == 250
            t0 = time.monotonic()
            a.send(b"RCPT TO:<x@relayed.test>\r\n")        # parks: the directory is frozen
            assert b.cmd("MAIL FROM:<b@remote.test>")[0] == 250
            assert code(b.cmd("RCPT TO:<joe@localhost>")) == (250, "2.1.5")
            assert time.monotonic() - t0 < 2.0, "another session's check waited"
            assert code(a.reply()) == (451, "4.3.0")
            assert time.monotonic() - t0 >= 2.5               # after ldaptimeout, not before
    finally:
        ldap.thaw()


def test_answer_to_a_restarted_smtp_role_is_dropped(directory, make_tern):
    """A RCPT check parked on a frozen directory whose smtp role dies meanwhile: its late
    verdict is dropped (the generation check), never sent on the new smtp role's channel."""
    ldap, d = directory
    t = tern_for(make_tern, ldap, d, keys=("rcpthosts",))
    assert session(t, "a@remote.test", "x@relayed.test")[1] == (250, "2.1.5")
    ldap.freeze()
    try:
        s = t.smtp()
        assert s.cmd("EHLO a.test")[0] == 250 and s.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        n = t.log().count("event=ldap_table_search")
        s.send(b"RCPT TO:<y@relayed.test>\r\n")
        assert wait_for(lambda: t.log().count("event=ldap_table_search") > n)
        os.kill(t.role_pids()["smtp"], 9)
        s.close()
        assert wait_for(lambda: "event=peer_new peer=smtp" in t.log())
        assert wait_for(lambda: "event=check_result_dropped" in t.log(), timeout=10)
    finally:
        ldap.thaw()
    assert wait_for(lambda: session(t, "a@remote.test", "x@relayed.test")[1:] == [(250, "2.1.5")],
                    timeout=15, step=0.3)


def test_stopped_directory_tempfails_never_accepts(directory, make_tern):
    ldap, d = directory
    t = tern_for(make_tern, ldap, d, keys=("rcpthosts", "badrcptto"))
    ldap.stop()
    try:
        got = session(t, "a@remote.test", "x@relayed.test", "x@other.test", "joe@localhost")
        assert got == [(250, "2.1.0"), (451, "4.3.0"), (451, "4.3.0"), (451, "4.3.0")], got
        t2 = tern_for(make_tern, ldap, d, keys=("badmailfrom",))
        assert session(t2, "someone@remote.test")[0] == (451, "4.3.0")
    finally:
        ldap.start()


def check_config(workdir, lines):
    conf = workdir / "bad.conf"
    conf.write_text(f"me x.test\nspool {workdir / 'spool'}\n" + "".join(l + "\n" for l in lines))
    r = subprocess.run([str(TERND), "-n", "-f", str(conf)], capture_output=True, text=True,
                       timeout=20)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("text,line,msg", [
    ("scope = sub\n", 1, "query_filter missing"),
    ("query_filter = (&(ou=%s)\n", 1, "unbalanced parentheses"),
    ("query_filter = (ou=%s)(ou=x)\n", 1, "text after the filter's last ')'"),
    ("# c\nquery_filter = (ou=%x)\n", 2, "unknown escape '%x'"),
    ("query_filter = (ou=x)\n", 1, "no %s, %u or %d"),
    ("query_filter = (ou=%s)\nserver_host = ldap://x/\n", 2, "unknown name 'server_host'"),
    ("query_filter = (ou=%s)\nscope = subtree\n", 2, "scope: expected sub, one or base"),
    ("query_filter = (ou=%s)\nquery_filter = (cn=%s)\n", 2, "'query_filter' set twice"),
    ("query_filter = (ou=%s)\nresult_attribute = a b\n", 2, "not one attribute name"),
])
def test_bad_profile_is_a_config_error(workdir, text, line, msg):
    p = profile(workdir, "bad.cf", text)
    rc, out = check_config(workdir, ["ldapserver ldap://127.0.0.1:1/", f"rcpthosts ldap:{p}"])
    assert rc == 78, out
    assert f"{p}:{line}: " in out and msg in out, out
    assert "rcpthosts: unusable LDAP profile" in out, out


def test_ldap_on_other_keys_and_without_server_is_a_config_error(workdir):
    p = profile(workdir, "ok.cf", "query_filter = (ou=%s)\n")
    rc, out = check_config(workdir, ["ldapserver ldap://127.0.0.1:1/", f"rcpthosts ldap:{p}"])
    assert rc == 0, out
    for key in ("smtproutes", "locals", "relayclients", "tlsdestinations"):
        rc, out = check_config(workdir, ["ldapserver ldap://127.0.0.1:1/", f"{key} ldap:{p}"])
        assert rc == 78 and f"ldap: tables are not supported for {key}" in out, (key, out)
    rc, out = check_config(workdir, [f"badrcptto ldap:{p}"])
    assert rc == 78 and "badrcptto: ldap: tables need ldapserver" in out, out
    rc, out = check_config(workdir, ["ldapserver ldap://127.0.0.1:1/",
                                     f"badmailfrom ldap:{workdir / 'missing.cf'}"])
    assert rc == 78 and "cannot read LDAP profile" in out, out
