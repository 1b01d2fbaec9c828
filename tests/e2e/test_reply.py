"""test_reply — tern-reply, the automatic reply any user names in a .qmail line
(doc/LOCAL.md "Automatic replies"), through a whole ternd: joe (a users-file user) has
`./Maildir/` and `|tern-reply ...` in his .qmail; alice, another local user, writes to him
and the reply reaches her Maildir through the queue. Every message is delivered to joe's
Maildir whether it is answered or not.
Run as root: /usr/bin/python3 -m pytest tests/e2e/test_reply.py
"""
import os
import subprocess

import pytest

from conftest import TERND, wait_for

REPLY = TERND.parent / "tern-reply"
TEXT = "I am away until Monday.\n"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: users run as nobody"),
    pytest.mark.skipif(not REPLY.exists(), reason="tern-reply not built"),
]


def own(path, mode):
    os.chmod(path, mode)
    os.chown(path, 65534, 65534)


@pytest.fixture
def t(make_tern):
    t = make_tern(users={"joe": None, "alice": None, "bob": None}, start=False)
    home = t.mail / "joe"
    # TERN_CONF: tern-local gives programs no TERN_CONF (doc/LOCAL.md), so the test names
    # its ternd's configuration for the tern-queue that tern-reply runs
    (home / ".qmail").write_text(
        f"./Maildir/\n|TERN_CONF={t.conf} {REPLY} -t 1h -m .replied vacation.msg\n")
    (home / "vacation.msg").write_text(TEXT)
    own(home / ".qmail", 0o644)
    own(home / "vacation.msg", 0o644)
    t.start()
    return t


def send(t, sender, rcpt="joe@localhost", headers="To: joe@localhost\r\n", subject="lunch"):
    body = (f"From: <{sender or 'MAILER-DAEMON@localhost'}>\r\n{headers}"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@x.test>\r\n\r\nhi\r\n")
    with t.smtp() as c:
        assert c.cmd("HELO t")[0] == 250
        assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(body.encode() + b".\r\n")
        assert c.reply()[0] == 250
        c.cmd("QUIT")


def joe_line(t, n):
    """the n-th delivery log line for joe (waits for it)"""
    def lines():
        return [ln for ln in t.log().splitlines()
                if "event=delivery " in ln and "rcpt=<joe@localhost>" in ln]
    assert wait_for(lambda: len(lines()) >= n, 20), t.log_tail()
    return lines()[n - 1]


def drop_commits(t):
    """replies that tern-queue put into the maildrop and the queue took in"""
    return [ln for ln in t.log().splitlines()
            if "event=committed " in ln and 'origin="maildrop' in ln]


def sync(t, n):
    """The synchronisation point for "no reply": bob writes to joe and gets a reply (the
    n-th reply in all). A reply made for an earlier message would have been committed to the
    maildrop before tern-local reported that message (tern-queue exits only after its
    commit), so before bob even wrote; once bob's reply is in, such a reply would be too."""
    send(t, "bob@localhost", subject=f"sync{n}")
    bob = t.wait_delivered("bob", 1)
    assert f"In-Reply-To: <sync{n}@x.test>".encode() in bob[-1]
    assert wait_for(lambda: len(drop_commits(t)) >= n, 20), t.log_tail()
    assert len(drop_commits(t)) == n, drop_commits(t)


def test_one_reply_per_sender_then_none(t):
    send(t, "alice@localhost", subject="first")
    msgs = t.wait_delivered("alice", 1)             # the reply came through the queue
    assert len(t.wait_delivered("joe", 1)) == 1
    reply = msgs[0].decode()
    head, _, body = reply.partition("\n\n")
    assert "Return-Path: <>\n" in head, head       # envelope sender <> (RFC 3834)
    assert "\nAuto-Submitted: auto-replied\n" in head, head
    assert "\nIn-Reply-To: <first@x.test>\n" in head, head
    assert "\nReferences: <first@x.test>\n" in head, head
    assert "\nSubject: Re: first\n" in head, head
    assert "\nFrom: <joe@localhost>\n" in head and "\nTo: <alice@localhost>\n" in head, head
    assert body == TEXT
    mem = t.mail / "joe" / ".replied"
    st = os.stat(mem)
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == 65534
    assert "alice@localhost" in mem.read_text()
    # the same sender again within the interval: delivered, not answered
    send(t, "alice@localhost", subject="second")
    assert len(t.wait_delivered("joe", 2)) == 2
    assert "status=sent" in joe_line(t, 2)
    sync(t, 2)
    assert len(t.maildir("alice")) == 1


@pytest.mark.parametrize("sender,headers", [
    ("alice@localhost", "To: joe@localhost\r\nPrecedence: list\r\n"),
    ("alice@localhost", "To: joe@localhost\r\nPrecedence: bulk\r\n"),
    ("", "To: joe@localhost\r\n"),
    ("MAILER-DAEMON@localhost", "To: joe@localhost\r\n"),
    ("alice@localhost", "To: someone@example.org\r\nCc: other@localhost\r\n"),
    ("alice@localhost", "To: joe@localhost\r\nList-Id: <l.x.test>\r\n"),
    ("alice@localhost", "To: joe@localhost\r\nAuto-Submitted: auto-replied\r\n"),
])
def test_no_reply_but_delivered(t, sender, headers):
    send(t, sender, headers=headers)
    assert len(t.wait_delivered("joe", 1)) == 1
    assert "status=sent" in joe_line(t, 1)
    sync(t, 1)                                      # only bob's reply was ever made
    assert t.maildir("alice") == []
    assert "alice" not in (t.mail / "joe" / ".replied").read_text()


# --- tern-reply run directly, as tern-local runs it: its lines and exit codes ------------

FAKE_QUEUE = """#!/bin/sh
# fake tern-queue: keeps the message and the envelope
cat > "$QOUT/msg"
cat 0<&1 1>"$QOUT/env"
exit ${QEXIT:-0}
"""
MSG = (b"Return-Path: <alice@example.net>\nDelivered-To: joe@example.org\n"
       b"From: alice@example.net\nTo: Joe <joe@example.org>\nSubject: hi\n"
       b"Message-ID: <m1@example.net>\n\nbody\n")


@pytest.fixture
def home(workdir):
    tmp_path = workdir
    h = tmp_path / "home"
    q = tmp_path / "q"
    h.mkdir()
    q.mkdir()
    (q / "tern-queue").write_text(FAKE_QUEUE)
    os.chmod(q / "tern-queue", 0o755)
    (h / "vacation.msg").write_text(TEXT)
    for p in (h, q, h / "vacation.msg"):
        os.chown(p, 65534, 65534)
    return h


def run_reply(home, *args, sender="alice@example.net", qexit=0):
    q = home.parent / "q"
    env = {"PATH": "/usr/bin:/bin", "SENDER": sender, "RECIPIENT": "joe@example.org",
           "HOME": str(home), "QMAILQUEUE": str(q / "tern-queue"), "QOUT": str(q),
           "QEXIT": str(qexit)}
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(REPLY), *args], input=MSG, env=env, cwd=home,
                       capture_output=True, timeout=20)
    return r.returncode, r.stdout.decode().strip()


def test_direct_reply_and_memory(home):
    rc, line = run_reply(home, "vacation.msg")
    assert (rc, line) == (0, "tern-reply: reply sent to alice@example.net")
    q = home.parent / "q"
    assert (q / "env").read_bytes() == b"F\0Talice@example.net\0\0"
    assert b"\nAuto-Submitted: auto-replied\n" in (q / "msg").read_bytes()
    st = os.lstat(home / ".tern-reply")             # the default memory file
    assert st.st_mode & 0o777 == 0o600
    rc, line = run_reply(home, "vacation.msg")
    assert rc == 0 and "answered within 604800 seconds" in line, line
    rc, line = run_reply(home, "-a", "other@example.org", "vacation.msg",
                         sender="bob@example.net")
    assert (rc, line) == (0, "tern-reply: reply sent to bob@example.net")


def test_symlinked_memory_is_not_followed(home):
    # a memory file that is a symlink (even to a file the user may write) is never opened
    victim = home / "victim"
    victim.write_text("keep\n")
    os.chown(victim, 65534, 65534)
    os.symlink(victim, home / ".tern-reply")
    rc, line = run_reply(home, "vacation.msg")
    assert rc == 0 and "no reply: cannot open" in line, line
    assert victim.read_text() == "keep\n"
    assert not (home.parent / "q" / "env").exists()
    rc, line = run_reply(home, "-e", "vacation.msg")   # -e: the failure defers
    assert rc == 111 and "(#4.3.0)" in line, line


def test_failures_exit_0_unless_e(home):
    for args, code in ((["missing.msg"], 111), (["-t", "0", "vacation.msg"], 111), ([], 111)):
        assert run_reply(home, *args)[0] == 0, args
        rc, line = run_reply(home, "-e", *args)
        assert rc == code and "no reply" in line, (args, line)
    rc, line = run_reply(home, "-e", "vacation.msg", qexit=31)   # tern-queue: permanent
    assert rc == 100 and "(#5.3.0)" in line, line
    assert not (home / ".tern-reply").exists() or \
        "alice" not in (home / ".tern-reply").read_text()
    rc, line = run_reply(home, "vacation.msg", qexit=74)          # temporary, not -e
    assert rc == 0 and "tern-queue exited 74" in line, line
