"""test_virtual — virtual domains end to end through a whole ternd (doc/CONFIG.md
virtualdomains, virtualusers): qmail's virtualdomains rewrite a recipient to the local part
prepend-localpart, delivered by that user's .qmail-localpart file; a virtualusers address is
delivered into its own Maildir as its own uid:gid; an unknown address of a listed virtual
domain is refused at RCPT with 550 5.1.1, and a virtual domain outside rcpthosts is not
accepted from a stranger (qmail: virtual domains belong in rcpthosts too).
"""
import os

import pytest

from conftest import maildir_files, ternctl, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (delivery uids)")

VUID = VGID = 54321      # a virtual mailbox owner: no account, above minuid, no role


def send(t, rcpt, subject="virtual"):
    """SMTP one message to rcpt; the RCPT reply (code, text)."""
    with t.smtp() as s:
        assert s.cmd("EHLO client.test")[0] == 250
        assert s.cmd("MAIL FROM:<sender@remote.test>")[0] == 250
        code, lines = s.cmd(f"RCPT TO:<{rcpt}>")
        if code == 250:
            assert s.cmd("DATA")[0] == 354
            s.send(f"From: sender@remote.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\n"
                   "hello\r\n.\r\n")
            assert s.reply()[0] == 250
        s.cmd("QUIT")
        return code, " ".join(lines)


def vtables(t):
    """A virtualusers file: alice's own Maildir, a catch-all, and a listed domain."""
    vdir = t.dir / "vmail"
    for box in ("alice", "catch"):
        for sub in ("new", "cur", "tmp"):
            (vdir / box / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(vdir):
        os.chown(root, VUID, VGID)
    os.chmod(t.dir / "vmail", 0o755)
    path = t.dir / "virtualusers"
    path.write_text(f"vm.test\nalice@vm.test {vdir}/alice/Maildir/ {VUID} {VGID}\n"
                    f"@catch.test {VUID}:{VGID}:{vdir}/catch/Maildir/\n")
    os.chmod(path, 0o644)
    return vdir


@pytest.fixture
def vtern(make_tern, workdir):
    t = make_tern(users={"pat": None}, start=False,
                  config={"virtualdomains": "virt.test:pat .sub.test:pat",
                          "rcpthosts": "virt.test .sub.test vm.test catch.test"})
    home = t.mail / "pat"
    (home / ".qmail-joe").write_text("./joebox/\n")
    for sub in ("new", "cur", "tmp"):
        (home / "joebox" / sub).mkdir(parents=True)
    for root, dirs, files in os.walk(home):
        for p in [root] + [os.path.join(root, f) for f in files]:
            os.chown(p, 65534, 65534)
    vdir = vtables(t)
    t.config["virtualusers"] = f"file:{t.dir / 'virtualusers'}"
    t.start()
    t.vdir = vdir
    return t


def test_virtualdomains_user_qmail_file(vtern):
    """joe@virt.test -> pat-joe: pat's .qmail-joe delivers it into ./joebox/"""
    code, text = send(vtern, "Joe@Virt.test")
    assert code == 250, text
    box = vtern.mail / "pat" / "joebox"
    assert wait_for(lambda: len(maildir_files(box)) == 1), vtern.log_tail()
    raw = maildir_files(box)[0].read_bytes()
    assert b"Delivered-To: pat-joe@virt.test" in raw
    # a subdomain through .suffix, same user and extension
    assert send(vtern, "joe@a.sub.test")[0] == 250
    assert wait_for(lambda: len(maildir_files(box)) == 2), vtern.log_tail()
    # pat has no .qmail-nobody: refused at RCPT like any unknown local address
    code, text = send(vtern, "nobody@virt.test")
    assert code == 550 and "5.1.1" in text, text


def test_virtualusers_maildir_and_owner(vtern):
    code, text = send(vtern, "alice@vm.test")
    assert code == 250, text
    box = vtern.vdir / "alice" / "Maildir"
    assert wait_for(lambda: len(maildir_files(box)) == 1), vtern.log_tail()
    st = maildir_files(box)[0].stat()
    assert (st.st_uid, st.st_gid) == (VUID, VGID)
    # the @domain catch-all
    assert send(vtern, "whoever@catch.test")[0] == 250
    cbox = vtern.vdir / "catch" / "Maildir"
    assert wait_for(lambda: len(maildir_files(cbox)) == 1), vtern.log_tail()
    assert maildir_files(cbox)[0].stat().st_uid == VUID


def test_virtualusers_unknown_550(vtern):
    code, text = send(vtern, "bob@vm.test")
    assert code == 550 and "5.1.1" in text, text


def test_verify_names_the_virtual_rule(vtern):
    """ternctl verify says which virtual table and rule decided"""
    def verify(addr):
        p = ternctl(vtern, "verify", addr)
        return p.stdout
    out = verify("joe@virt.test")
    assert "deliverable" in out, out
    assert "virtual: virtualdomains maps virt.test to prepend pat: local part pat-joe" in out, out
    out = verify("joe@a.sub.test")
    assert "virtual: virtualdomains maps a.sub.test to prepend pat: local part pat-joe" in out, out
    out = verify("nobody@virt.test")
    assert "unknown" in out and "virtualdomains maps virt.test to prepend pat" in out, out
    out = verify("alice@vm.test")
    assert "deliverable" in out, out
    assert f"virtual: virtualusers entry for alice@vm.test: {vtern.vdir}/alice/Maildir/" in out, out
    out = verify("whoever@catch.test")
    assert "virtual: virtualusers catch-all @catch.test" in out, out
    out = verify("bob@vm.test")
    assert "unknown" in out and "virtual: virtualusers lists vm.test, not bob@vm.test" in out, out
    out = verify("someone@elsewhere.test")                 # not virtual: no such line
    assert "virtual:" not in out, out


def test_virtual_domain_needs_rcpthosts(make_tern):
    """as qmail: a virtual domain not in rcpthosts is relaying for a stranger"""
    t = make_tern(users={"pat": None}, config={"virtualdomains": "virt.test:pat"})
    code, text = send(t, "joe@virt.test")
    assert code == 553 and "5.7.1" in text, text
