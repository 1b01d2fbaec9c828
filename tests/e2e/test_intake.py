"""tests/e2e/test_intake.py — what tern accepts at intake and what it sends on (issue 7,
"Intake that cannot be abused"), each case written as the attack it stops:

- backscatter: local addresses that cannot be delivered (an extension without a matching
  `.qmail-ext` / `-default` file) are refused at RCPT, postmaster always has a target (or a
  temporary failure, never a bounce), bounces quote at most `bouncemaxbytes`;
- duplicate recipients: one copy per recipient of a transaction, after canonicalisation and
  after alias expansion;
- NUL bytes: refused at SMTP DATA, at maildrop pickup and in the queue protocol; the mta
  never sends one and never sends a line over 998 octets.

Owns: nothing outside its temporary directories. Trusts: the Tern fixture (conftest.py),
the aiosmtpd recorder of test_mta.py and the sendmail binary of the test build.
"""
import os
import pathlib
import re
import subprocess
import time

import pytest

from conftest import split_message, wait_for
from test_mta import Recorder, aiosmtp  # noqa: F401  (aiosmtp is a fixture)
from test_qp import QP, start as qp_start

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("TERN_BINDIR", REPO / "build" / "tbin"))
SENDMAIL = str(BIN / "sendmail")
SENDER = "sender@example.org"
NOBODY = 65534


# --------------------------------------------------------------------------- helpers

def session(tern, sender=SENDER):
    c = tern.smtp()
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    return c


def rcpt(tern, addr):
    """(code, last reply line) of one RCPT in a fresh transaction."""
    with session(tern) as c:
        code, lines = c.cmd(f"RCPT TO:<{addr}>")
        c.cmd("QUIT")
        return code, lines[-1]


def send_raw(tern, rcpts, data, sender=SENDER):
    """One transaction with raw DATA bytes (dot and CRLF included by the caller); returns the
    reply to the end of data."""
    with session(tern, sender) as c:
        for r in rcpts:
            code, lines = c.cmd(f"RCPT TO:<{r}>")
            assert code == 250, (r, lines)
        assert c.cmd("DATA")[0] == 354
        c.send(data)
        reply = c.reply()
        c.cmd("QUIT")
        return reply


def queue_empty(tern):
    d = tern.spool / "env"
    return d.is_dir() and not [n for n in os.listdir(d) if not n.startswith(".")]


def queue_ready(tern):
    log = tern.log()
    return "event=recovered" in log[log.rfind("---- start"):]


def settle(tern, timeout=20):
    """Synchronisation point: every queued message has been dealt with."""
    assert wait_for(lambda: queue_empty(tern), timeout), tern.log_tail()


def home_file(tern, user, name, content, mode=0o644):
    """A file in a users-file user's home, owned by that user (nobody when root)."""
    p = tern.mail / user / name
    p.write_text(content)
    os.chmod(p, mode)
    if os.geteuid() == 0:
        os.chown(p, NOBODY, NOBODY)
    return p


def write_aliases(tern, text):
    path = tern.dir / "aliases"
    path.write_text(text)
    os.chmod(path, 0o644)
    tern.config["aliases"] = f"file:{path}"


def sendmail(tern, args, data):
    assert wait_for(lambda: queue_ready(tern), 10), tern.log_tail()
    env = dict(os.environ, TERN_CONF=str(tern.conf))
    r = subprocess.run([SENDMAIL, *args], input=data, env=env, capture_output=True, timeout=20)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return r


# --------------------------------------------------------------------------- backscatter

def test_rcpt_extension_needs_a_dotqmail_file(make_tern):
    """bob exists but has no .qmail-anything: refused at RCPT (550 5.1.1), so no bounce can
    carry the body to a forged sender. Files that would deliver it are honoured: the exact
    .qmail-ext, a .qmail-default, and qmail's -default chain (.qmail-a-default)."""
    t = make_tern(users={"bob": None, "carol": None, "dave": None})
    home_file(t, "bob", ".qmail-foo", "./Maildir/\n")
    home_file(t, "carol", ".qmail-default", "./Maildir/\n")
    home_file(t, "dave", ".qmail-lists-default", "./Maildir/\n")
    code, line = rcpt(t, "bob-anything@localhost")
    assert code == 550 and line[4:].startswith("5.1.1"), line
    assert rcpt(t, "bob-foo@localhost")[0] == 250
    assert rcpt(t, "BOB-Foo@localhost")[0] == 250          # ext lowercased, as tern-local does
    assert rcpt(t, "bob@localhost")[0] == 250               # no extension: default delivery
    assert rcpt(t, "carol-x@localhost")[0] == 250
    assert rcpt(t, "carol-x-y@localhost")[0] == 250
    assert rcpt(t, "dave-lists-foo@localhost")[0] == 250
    assert rcpt(t, "dave-lists@localhost")[0] == 550
    assert rcpt(t, "dave-other@localhost")[0] == 550
    # what is accepted is delivered
    assert send_raw(t, ["bob-foo@localhost"], b"Subject: x\r\n\r\nfor bob-foo\r\n.\r\n")[0] == 250
    assert split_message(t.wait_delivered("bob", 1)[0])[1] == b"for bob-foo\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a home the lookup role cannot search")
def test_rcpt_extension_accepted_when_home_unreadable(make_tern):
    """The lookup role runs unprivileged: when it cannot tell (EACCES), it accepts as before —
    a temporary blindness never becomes "no such user"."""
    t = make_tern(users={"bob": None})
    home = t.mail / "bob"
    os.chmod(home, 0o700)                                 # owned by nobody; _tern cannot search
    assert rcpt(t, "bob-anything@localhost")[0] == 250
    assert "event=dotqmail_unknown" in t.log()


def test_postmaster_routed_to_the_postmaster_key(make_tern):
    """No user or alias postmaster: the postmaster key (an implicit alias) gives it a target;
    POSTMASTER in any case is accepted and delivered there."""
    t = make_tern(users={"bob": None}, config={"postmaster": "bob"})
    assert send_raw(t, ["POSTMASTER@localhost"], b"Subject: pm\r\n\r\nto postmaster\r\n.\r\n")[0] == 250
    assert split_message(t.wait_delivered("bob", 1)[0])[1] == b"to postmaster\n"
    settle(t)
    assert "event=bounce " not in t.log()


def test_postmaster_default_goes_through_aliases(make_tern):
    """The key's default is root, looked up like any alias target: the usual `root: admin`
    alias delivers postmaster mail without a postmaster alias."""
    t = make_tern(users={"bob": None}, start=False)
    write_aliases(t, "root: bob\n")
    t.start()
    assert send_raw(t, ["Postmaster@localhost"], b"Subject: pm\r\n\r\nvia root\r\n.\r\n")[0] == 250
    assert split_message(t.wait_delivered("bob", 1)[0])[1] == b"via root\n"


def test_postmaster_without_any_target_is_never_a_bounce(make_tern):
    """postmaster has no user, alias or deliverable postmaster key: RCPT is a temporary
    failure (the operator must fix the config), never a 250 followed by a bounce."""
    t = make_tern(users={"bob": None})
    code, line = rcpt(t, "postmaster@localhost")
    assert code == 451 and line[4:].startswith("4.3.0"), line
    assert "event=postmaster_undeliverable" in t.log()


def test_bounce_quotes_at_most_16_kib(make_tern):
    """A 1 MiB message that fails: the bounce to the sender returns its header only (RFC 3462
    text/rfc822-headers), well under 16 KiB plus the report, not the whole body."""
    t = make_tern(users={"bob": None, "alice": None})
    home_file(t, "bob", ".qmail-fail", "|exit 100\n")
    body = b"".join(b"line %06d of a long message, long enough to matter...\r\n" % i
                    for i in range(1024 * 1024 // 56))
    assert len(body) > 1000000
    reply = send_raw(t, ["bob-fail@localhost"], b"Subject: big\r\n\r\n" + body + b".\r\n",
                     sender="alice@localhost")
    assert reply[0] == 250, reply
    bounce = t.wait_delivered("alice", 1, timeout=30)[0]
    assert b"text/rfc822-headers" in bounce
    assert b"Subject: big" in bounce
    assert len(bounce) < 16384 + 8192, len(bounce)


# --------------------------------------------------------------------------- duplicates

def test_1000_identical_rcpts_one_delivery(make_tern):
    t = make_tern(users={"bob": None})
    with session(t) as c:
        c.send("RCPT TO:<bob@localhost>\r\n" * 1000)
        for _ in range(1000):
            code, lines = c.reply()
            assert code == 250, lines
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: dup\r\n\r\nonce\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250, lines
    t.wait_delivered("bob", 1)
    settle(t)
    assert len(t.maildir("bob")) == 1
    assert "nrcpt=1 " in t.log()                             # recorded once at intake


def test_case_and_quote_variants_one_delivery(make_tern):
    """bob, BOB, "bob", bob@LOCALHOST: one local recipient (qmail folds local parts of local
    domains to lower case), so one copy."""
    t = make_tern(users={"bob": None})
    rcpts = ["bob@localhost", "BOB@localhost", '"bob"@localhost', "bob@LOCALHOST", "Bob@LocalHost"]
    assert send_raw(t, rcpts, b"Subject: v\r\n\r\nvariants\r\n.\r\n")[0] == 250
    t.wait_delivered("bob", 1)
    settle(t)
    assert len(t.maildir("bob")) == 1


def test_alias_list_containing_the_recipient_one_delivery(make_tern):
    """alice + a list containing alice = one copy for alice (Postfix's duplicate filter)."""
    t = make_tern(users={"alice": None, "carol": None}, start=False)
    write_aliases(t, "team: alice, carol\n")
    t.start()
    assert send_raw(t, ["alice@localhost", "team@localhost"],
                    b"Subject: l\r\n\r\nlist\r\n.\r\n")[0] == 250
    t.wait_delivered("alice", 1)
    t.wait_delivered("carol", 1)
    settle(t)
    assert len(t.maildir("alice")) == 1 and len(t.maildir("carol")) == 1


# --------------------------------------------------------------------------- NUL and long lines

def test_smtp_data_with_nul_refused(make_tern):
    t = make_tern(users={"bob": None})
    code, lines = send_raw(t, ["bob@localhost"], b"Subject: nul\r\n\r\nbad\x00byte\r\n.\r\n")
    assert code == 554 and lines[-1][4:].startswith("5.6.0"), lines
    assert "NUL" in lines[-1]
    # the smuggling shape: nothing is stored either
    code, lines = send_raw(t, ["bob@localhost"], b"Subject: s\r\n\r\nx\r\n\x00.\r\nMAIL FROM:<>\r\n.\r\n")
    assert code == 554, lines
    # synchronisation point: a clean message behind them is delivered, and only it
    assert send_raw(t, ["bob@localhost"], b"Subject: ok\r\n\r\nclean\r\n.\r\n")[0] == 250
    t.wait_delivered("bob", 1)
    settle(t)
    msgs = t.maildir("bob")
    assert len(msgs) == 1 and b"\x00" not in msgs[0]


def relay_tern(make_tern, port):
    return make_tern(config={"relayclients": "127.0.0.1",
                             "smtproutes": f"remote.test:127.0.0.1:{port}"})


def test_maildrop_nul_quarantined_long_lines_folded(make_tern, aiosmtp):
    """sendmail input is not SMTP: a NUL byte is refused at pickup (quarantine, with a log
    line); a 5,000-octet line is relayed as lines of at most 1,000 octets with CRLF."""
    rec, port = aiosmtp(Recorder())
    t = relay_tern(make_tern, port)
    sendmail(t, ["nul@remote.test"], b"Subject: nul\n\nbad\x00byte\n\x00.\nafter\n")
    assert wait_for(lambda: "reason=\"message contains NUL characters\"" in t.log(), 10), \
        t.log_tail()
    long_line = b"".join(b"%04d-" % i for i in range(1000))      # 5,000 octets, no blank
    sendmail(t, ["long@remote.test"], b"Subject: long\nX-Long: " + long_line + b"\n\n" +
             long_line + b"\nshort line\n.dot line\n")
    assert wait_for(lambda: len(rec.txns) >= 1, 20), t.log_tail()
    settle(t)
    assert len(rec.txns) == 1 and rec.txns[0]["rcpts"] == ["long@remote.test"]
    data = rec.txns[0]["content"]
    assert b"\x00" not in data
    lines = data.split(b"\r\n")
    assert max(len(ln) for ln in lines) <= 998, max(len(ln) for ln in lines)
    assert b"\n" not in data.replace(b"\r\n", b"")
    # nothing was lost: unfolding gives the line back, and the dot line survived
    assert long_line in data.replace(b"\r\n ", b"")
    assert b"\r\nshort line\r\n.dot line\r\n" in data
    quarantine = t.spool / "quarantine"
    assert quarantine.is_dir() and len(os.listdir(quarantine)) == 1


def test_qp_message_with_nul_refused(make_tern):
    t = qp_start(make_tern, users={"bob": None})
    q = QP(t.qport).login()
    assert q.code("QCREA") == 1000
    assert q.code("QSTOR FROM sender@localhost -") == 1000
    assert q.code("QSTOR TO bob@localhost bob@localhost 0") == 1000
    msg = b"Subject: nul\r\n\r\nbad\x00byte\r\n"
    q.send(b"QSTOR MESSAGE %d\r\n" % len(msg) + msg)
    code, lines = q.reply()
    assert code == 3010 and "NUL" in lines[-1], lines
    assert q.code("QRUN") != 1000                          # the entry was discarded
    q.close()
    settle(t)
    assert t.maildir("bob") == []


def test_requeued_recipient_is_not_its_own_duplicate(make_tern, aiosmtp, workdir):
    """REQUEUE ROUTER withdraws a routed slot and routes its address again: the new target
    equals the withdrawn one's, which must not count as a copy already delivered."""
    from conftest import free_port
    from test_mailq2 import client
    auth = workdir / "mailq_auth"
    auth.write_text("alice:secret:ALL:\n")
    os.chmod(auth, 0o644)
    dead, mport = free_port(), free_port()
    t = make_tern(start=False, config={"relayclients": "127.0.0.1", "retryremote": "30",
                                       "smtproutes": f"remote.test:127.0.0.1:{dead}",
                                       "mailq_auth": f"file:{auth}"})
    t.config["listen"] = [f"smtp 127.0.0.1:{t.port}", f"mailq 127.0.0.1:{mport}"]
    t.start()
    reply = send_raw(t, ["x@remote.test"], b"Subject: rq\r\n\r\nrequeue\r\n.\r\n")
    msgid = re.search(r"\b([0-9a-f]{16})\b", reply[1][-1])[1]
    assert wait_for(lambda: "status=deferred" in t.log(), 15), t.log_tail()
    with client(mport, login=("alice", "secret")) as c:
        assert wait_for(lambda: c.cmd(f"REQUEUE ROUTER {msgid}") ==
                        "+OK; REQUEUEd something.\n", 10), t.log_tail()
    assert wait_for(lambda: t.log().count(f"event=routed id={msgid}") >= 2, 10), t.log_tail()
    assert "event=duplicate" not in t.log()
    # the new slot is tried at once and deferred again: then the server comes up
    assert wait_for(lambda: t.log().count("status=deferred") >= 2, 15), t.log_tail()
    rec, _ = aiosmtp(Recorder(), port=dead)
    with t.smtp() as c:
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("ETRN remote.test")[0] == 253
    assert wait_for(lambda: len(rec.txns) == 1, 15), t.log_tail()
    settle(t)
    assert rec.txns[0]["rcpts"] == ["x@remote.test"]
