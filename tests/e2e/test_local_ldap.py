"""test_local_ldap — tern-local delivering a directory (qmail-LDAP) user by the profile it gets
with -p (doc/LOCAL.md "Directory users", doc/LDAP.md "Delivery"), run directly as
test_local.py runs it: as uid 65534 under setpriv, the message on stdin from a regular file.
The profile is built here the way src/mail/ldapprof.c encodes it (key=value words, %XX
escapes). Forwards and auto-replies go to a fake tern-queue that keeps every injection.
Run as root: /usr/bin/python3 -m pytest tests/e2e/test_local_ldap.py
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from localhome import GID, UID, Home, chown_tree

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TERN_LOCAL_BIN", os.path.join(REPO, "build", "tbin", "tern-local"))
TIMEOUT = 20
MSG = (b"Received: from client by tern; Sat, 1 Jan 2000 00:00:00 +0000\n"
       b"From: Alice <alice@example.net>\n"
       b"To: joe@example.org\n"
       b"Subject: lunch?\n"
       b"Message-ID: <m1@example.net>\n"
       b"\n"
       b"Hello Joe.\n")
HEAD = b"Return-Path: <alice@example.net>\nDelivered-To: joe@example.org\n"
NOMAILBOX = "Sorry, no mailbox here by that name. (#5.1.1)"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to uid 65534"),
    pytest.mark.skipif(not os.path.exists(BIN), reason="tern-local not built"),
]

FAKE_QUEUE = """#!/bin/sh
# fake tern-queue: keeps each injection as N.msg and N.env
n=$(ls "$QOUT" | grep -c '\\.env$')
cat > "$QOUT/$n.msg"
cat 0<&1 1>"$QOUT/$n.env"
exit ${QEXIT:-0}
"""


def esc(v):
    out = []
    for b in v.encode():
        out.append("%%%02X" % b if b <= 0x20 or b >= 0x7f or b in b"%=" else chr(b))
    return "".join(out)


def profile(store=None, dotmode="ldaponly", modes=(), forwards=(), programs=(),
            quotasize=0, quotacount=0, sizemax=0, reply=""):
    w = []
    if store:
        w.append("store=" + esc(store))
    w.append("dotmode=" + dotmode)
    w += ["mode=" + m for m in modes]
    w += ["forward=" + esc(f) for f in forwards]
    w += ["program=" + esc(p) for p in programs]
    for k, v in (("quotasize", quotasize), ("quotacount", quotacount), ("sizemax", sizemax)):
        if v:
            w.append("%s=%d" % (k, v))
    if reply:
        w.append("reply=" + esc(reply))
    return " ".join(w)


class Env(Home):
    """A HOME (localhome.py) beside a fake queue, all owned by nobody, under one root."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="tern-ldaplocal-")
        os.chmod(self.root, 0o755)
        super().__init__(os.path.join(self.root, "home"))
        self.home = self.path
        self.q = os.path.join(self.root, "q")
        os.makedirs(os.path.join(self.q, "out"))
        with open(os.path.join(self.q, "tern-queue"), "w") as f:
            f.write(FAKE_QUEUE)
        os.chmod(os.path.join(self.q, "tern-queue"), 0o755)
        chown_tree(self.root)
        self.store = self.p("Maildir") + "/"

    def run(self, prof, *, local="joe", ext="", sender="alice@example.net", msg=MSG,
            aliasempty="./Default/", create=True, qexit=None, quota=None, age=0, opts=()):
        """prof None: no -p; quota: the -Q argument; age: the message file's age (s);
        opts: more options (before USER)"""
        args = ["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups", BIN]
        args += (["-c"] if create else []) + (["-Q", quota] if quota is not None else [])
        args += ["-p", prof] if prof is not None else []
        args += list(opts)
        args += ["nobody", self.home, local + ("-" + ext if ext else ""), "-" if ext else "",
                 ext, "example.org", sender, aliasempty]
        env = {"PATH": "/usr/bin:/bin", "TERN_QUEUE": os.path.join(self.q, "tern-queue"),
               "QOUT": os.path.join(self.q, "out")}
        if qexit is not None:
            env["QEXIT"] = str(qexit)
        with tempfile.TemporaryFile() as m:
            m.write(msg)
            m.flush()
            if age:
                t = time.time() - age
                os.utime(m.fileno(), (t, t))
            m.seek(0)
            r = subprocess.run(args, stdin=m, capture_output=True, timeout=TIMEOUT, env=env)
        out = r.stdout.decode(errors="replace")
        assert out.endswith("\n") and out.count("\n") == 1, "exactly one line: %r" % out
        return r.returncode, out[:-1]

    def new(self, name="Maildir"):
        d = self.p(name, "new")
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, f) for f in os.listdir(d))

    def injected(self):
        """[(envelope, message)] in the order injected"""
        out = os.path.join(self.q, "out")
        n = len([f for f in os.listdir(out) if f.endswith(".env")])
        res = []
        for i in range(n):
            with open(os.path.join(out, "%d.env" % i), "rb") as e, \
                    open(os.path.join(out, "%d.msg" % i), "rb") as m:
                res.append((e.read(), m.read()))
        return res


@pytest.fixture
def env():
    e = Env()
    yield e
    shutil.rmtree(e.root, ignore_errors=True)


# --- the store -------------------------------------------------------------------------

def test_store_maildir_instead_of_default(env):
    env.maildir()
    rc, line = env.run(profile(env.store))
    assert (rc, line) == (0, "delivered to Maildir %s" % env.store)
    files = env.new()
    assert len(files) == 1 and not os.path.exists(env.p("Default"))
    data = open(files[0], "rb").read()
    assert data == HEAD + MSG
    assert files[0].endswith(",S=%d" % len(data))        # Maildir++ size in the name


def test_store_mbox(env):
    # the lookup role always hands a Maildir; an mbox store is a hand-made profile's
    rc, line = env.run(profile(env.p("mbox")))
    assert (rc, line) == (0, "delivered to mbox %s" % env.p("mbox"))
    data = open(env.p("mbox"), "rb").read()
    assert data.startswith(b"From alice@example.net ") and HEAD + MSG in data


def test_store_created_when_parent_is_the_users(env):
    os.mkdir(env.p("Mail"))
    os.chown(env.p("Mail"), UID, GID)
    store = env.p("Mail", "box") + "/"
    rc, line = env.run(profile(store))
    assert rc == 0, line
    for sub in ("tmp", "new", "cur"):
        assert stat.S_IMODE(os.stat(os.path.join(store, sub)).st_mode) == 0o700
    assert len(env.new("Mail/box")) == 1


def test_store_parent_missing_defers(env):
    store = env.p("nodir", "box") + "/"
    rc, line = env.run(profile(store))
    assert rc == 111 and "parent directory" in line and "missing" in line
    assert not os.path.exists(env.p("nodir"))


def test_store_parent_not_the_users_defers(env):
    os.mkdir(env.p("rootdir"))          # owned by root, writable by nobody via mode
    os.chmod(env.p("rootdir"), 0o777)
    rc, line = env.run(profile(env.p("rootdir", "box") + "/"))
    assert rc == 111 and "does not belong to the user" in line
    assert os.listdir(env.p("rootdir")) == []


def test_bad_profile_defers(env):
    env.maildir()
    for bad in ("dotmode=weird", "store", "quotasize=x", "forward=%ZZ",
                "store=relative/Maildir/", "program=a%0Ab"):
        rc, line = env.run(bad)
        assert rc == 111 and line.startswith("bad delivery profile"), (bad, line)
    assert env.new() == []


# --- qmailDotMode ------------------------------------------------------------------------

DOTQMAIL = "./Dot/\n"


def dot_env(env, with_file):
    env.maildir()
    env.maildir("Dot")
    if with_file:
        env.write(".qmail", DOTQMAIL)
        env.write(".qmail-ext", "./Dot/\n")


@pytest.mark.parametrize("with_file", [False, True])
@pytest.mark.parametrize("mode", ["ldaponly", "ldapwithprog", "none"])
def test_dotmode_directory_only_ignores_qmail(env, mode, with_file):
    dot_env(env, with_file)
    rc, line = env.run(profile(env.store, mode))
    assert (rc, line) == (0, "delivered to Maildir %s" % env.store)
    assert len(env.new()) == 1 and env.new("Dot") == []
    # an extension is ignored: mailbox delivery, never 5.1.1
    rc, line = env.run(profile(env.store, mode), ext="nosuch")
    assert rc == 0 and len(env.new()) == 2 and env.new("Dot") == []


@pytest.mark.parametrize("with_file", [False, True])
def test_dotmode_dotonly(env, with_file):
    dot_env(env, with_file)
    prof = profile(env.store, "dotonly", forwards=["bob@example.com"], programs=["exit 100"])
    rc, line = env.run(prof)
    assert rc == 0
    if with_file:
        assert line == "delivered to Maildir ./Dot/" and env.new() == []
        assert len(env.new("Dot")) == 1
    else:   # the store is the default delivery; directory forwards/programs ignored
        assert line == "delivered to Maildir %s" % env.store and len(env.new()) == 1
    assert env.injected() == []
    rc, line = env.run(prof, ext="ext")
    if with_file:
        assert rc == 0 and len(env.new("Dot")) == 2
    else:
        assert (rc, line) == (100, NOMAILBOX)


@pytest.mark.parametrize("with_file", [False, True])
def test_dotmode_both(env, with_file):
    dot_env(env, with_file)
    rc, line = env.run(profile(env.store, "both"))
    assert rc == 0 and len(env.new()) == 1
    if with_file:
        assert line == ("delivered to Maildir %s; delivered to Maildir ./Dot/" % env.store)
        assert len(env.new("Dot")) == 1
    else:
        assert line == "delivered to Maildir %s" % env.store
    rc, line = env.run(profile(env.store, "both"), ext="ext")
    if with_file:
        assert rc == 0 and len(env.new("Dot")) == 2 and len(env.new()) == 2
    else:
        assert (rc, line) == (100, NOMAILBOX) and len(env.new()) == 1


def test_dotmode_both_checks_qmail_before_delivering(env):
    env.maildir()
    env.write(".qmail", "&bad address\n")
    rc, line = env.run(profile(env.store, "both"))
    assert rc == 111 and "not a valid delivery instruction" in line
    assert env.new() == []


# --- deliveryMode ------------------------------------------------------------------------

def test_nombox_with_forward(env):
    env.maildir()
    rc, line = env.run(profile(env.store, modes=["nombox"], forwards=["bob@example.com"]))
    assert (rc, line) == (0, "forwarded to 1 address")
    assert env.new() == []
    assert env.injected() == [(b"Falice@example.net\0Tbob@example.com\0\0",
                               b"Delivered-To: joe@example.org\n" + MSG)]


def test_nombox_with_nothing_left_bounces(env):
    env.maildir()
    rc, line = env.run(profile(env.store, modes=["nombox", "noforward"],
                               forwards=["bob@example.com"]))
    assert (rc, line) == (100, NOMAILBOX)
    assert env.new() == [] and env.injected() == []


def test_noforward(env):
    env.maildir()
    rc, line = env.run(profile(env.store, modes=["noforward"], forwards=["bob@example.com"]))
    assert (rc, line) == (0, "delivered to Maildir %s" % env.store)
    assert env.injected() == []


def test_noprogram(env):
    env.maildir()
    rc, line = env.run(profile(env.store, "ldapwithprog", modes=["noprogram"],
                               programs=["touch ran"]))
    assert (rc, line) == (0, "delivered to Maildir %s" % env.store)
    assert not os.path.exists(env.p("ran"))


# --- forwards ------------------------------------------------------------------------------

def test_forwards_with_store(env):
    env.maildir()
    rc, line = env.run(profile(env.store, forwards=["bob@example.com", "c%d@example.net"]))
    assert (rc, line) == (0, "delivered to Maildir %s; forwarded to 2 addresses" % env.store)
    assert env.injected() == [(b"Falice@example.net\0Tbob@example.com\0Tc%d@example.net\0\0",
                               b"Delivered-To: joe@example.org\n" + MSG)]
    assert len(env.new()) == 1


def test_forward_loop_detected(env):
    env.maildir()
    rc, line = env.run(profile(env.store, forwards=["bob@example.com"]),
                       msg=b"Delivered-To: joe@example.org\n" + MSG)
    assert rc == 100 and "(#5.4.6)" in line
    assert env.injected() == [] and env.new() == []


def test_forward_bounce_sender_kept_null(env):
    env.maildir()
    env.write(".qmail-owner", "./x/\n")    # ignored under ldaponly: no -owner sender
    rc, _ = env.run(profile(env.store, forwards=["bob@example.com"]), sender="")
    assert rc == 0 and env.injected()[0][0] == b"F\0Tbob@example.com\0\0"


def test_forward_bad_address_defers(env):
    env.maildir()
    rc, line = env.run(profile(env.store, forwards=["|/bin/evil"]))
    assert rc == 111 and "not a valid delivery instruction" in line
    assert env.new() == [] and env.injected() == []


# --- programs --------------------------------------------------------------------------------

@pytest.mark.parametrize("code,rc", [(0, 0), (99, 0), (100, 100), (111, 111), (64, 100),
                                     (1, 111)])
def test_program_exit_codes(env, code, rc):
    env.maildir()
    prof = profile(env.store, "ldapwithprog", programs=["cat > prog.out; exit %d" % code,
                                                        "touch second"])
    got, line = env.run(prof)
    assert got == rc, line
    assert open(env.p("prog.out"), "rb").read() == HEAD + MSG
    assert len(env.new()) == 1                           # the store comes first
    assert os.path.exists(env.p("second")) == (code == 0)


def test_program_environment(env):
    env.maildir()
    prof = profile(env.store, "ldapwithprog", modes=["nombox"],
                   programs=["echo \"$SENDER $RECIPIENT $USER $HOME\" > env.out"])
    rc, line = env.run(prof)
    assert rc == 0, line
    assert open(env.p("env.out")).read() == ("alice@example.net joe@example.org nobody %s\n"
                                             % env.home)


def test_ldaponly_never_runs_programs(env):
    env.maildir()
    rc, line = env.run(profile(env.store, "ldaponly", programs=["touch ran"]))
    assert (rc, line) == (0, "delivered to Maildir %s" % env.store)
    assert not os.path.exists(env.p("ran"))


# --- quota -----------------------------------------------------------------------------------

def msgsize(msg=MSG):
    return len(HEAD) + len(msg)


def maildirsize(env):
    return open(env.p("Maildir", "maildirsize")).read()


BOUNCE = "0,0,0,"     # -Q with quotabounce 0: over quota bounces at once


def test_quota_size_bounce_and_maildirsize(env):
    env.maildir()
    n = msgsize()
    prof = profile(env.store, quotasize=2 * n)
    assert env.run(prof)[0] == 0
    assert maildirsize(env) == "%dS\n0 0\n%d 1\n" % (2 * n, n)
    assert env.run(prof)[0] == 0
    rc, line = env.run(prof, quota=BOUNCE)
    assert rc == 100 and "(#5.2.2)" in line and "full" in line
    assert len(env.new()) == 2


def test_quota_defers_until_quotabounce_days(env):
    # over quota is temporary (4.2.2) by default and with quotabounce N until the message
    # (its queue file's mtime) is N days old; then it bounces (5.2.2)
    env.maildir()
    prof = profile(env.store, quotacount=1)
    assert env.run(prof)[0] == 0
    rc, line = env.run(prof)
    assert rc == 111 and "(#4.2.2)" in line and "full" in line, line
    rc, line = env.run(prof, age=4 * 86400)                  # default: 5 days
    assert rc == 111 and "(#4.2.2)" in line, line
    rc, line = env.run(prof, age=6 * 86400)
    assert rc == 100 and "(#5.2.2)" in line, line
    rc, line = env.run(prof, quota="0,0,2,", age=86400)
    assert rc == 111 and "(#4.2.2)" in line, line
    rc, line = env.run(prof, quota="0,0,2,", age=3 * 86400)
    assert rc == 100 and "(#5.2.2)" in line, line
    assert len(env.new()) == 1


def test_quota_count_bounce(env):
    env.maildir()
    prof = profile(env.store, quotacount=1)
    assert env.run(prof)[0] == 0
    rc, line = env.run(prof, quota=BOUNCE)
    assert rc == 100 and "(#5.2.2)" in line
    assert len(env.new()) == 1


def test_quota_recounted_when_missing_or_changed(env):
    env.maildir()
    env.write("Maildir/cur/1.M1P1_1.host,S=1000:2,S", b"x" * 10)   # counts 1000 by name
    env.write("Maildir/new/2.M2P2_2.host", b"y" * 50)              # counts its 50 bytes
    os.makedirs(env.p("Maildir", ".Sent", "cur"))
    env.write("Maildir/.Sent/cur/3.M3P3_3.host,S=7", b"z")
    chown_tree(env.p("Maildir"))
    assert env.run(profile(env.store, quotasize=100000, quotacount=50))[0] == 0
    n = msgsize()
    assert maildirsize(env) == "100000S,50C\n1057 3\n%d 1\n" % n
    # new limits: the file is made again for them
    assert env.run(profile(env.store, quotasize=200000))[0] == 0
    assert maildirsize(env) == "200000S\n%d 4\n%d 1\n" % (1057 + n, n)


def test_quota_recount_saturates_huge_sizes(env):
    # ",S=" sizes are the user's to write: their sum must saturate, not wrap to a negative
    # usage that reads as an empty mailbox
    env.maildir()
    env.write("Maildir/cur/1.M1P1_1.host,S=18446744073709551615:2,S", b"x")
    env.write("Maildir/cur/2.M2P2_2.host,S=9223372036854775807:2,S", b"x")
    env.write("Maildir/cur/3.M3P3_3.host,S=9223372036854775807:2,S", b"x")
    rc, line = env.run(profile(env.store, quotasize=100000), quota=BOUNCE)
    assert rc == 100 and "(#5.2.2)" in line, line
    assert len(env.new()) == 0


def test_quota_stale_maildirsize_recounted_fresh_one_trusted(env):
    env.maildir()
    env.write("Maildir/maildirsize", "5000S\n4999 1\n", mode=0o600)
    prof = profile(env.store, quotasize=5000)
    rc, line = env.run(prof, quota=BOUNCE)    # fresh and over: trusted, bounced
    assert rc == 100 and "(#5.2.2)" in line
    old = time.time() - 3600
    os.utime(env.p("Maildir", "maildirsize"), (old, old))
    rc, line = env.run(prof)                  # old and over: counted again, room after all
    assert rc == 0, line
    assert maildirsize(env) == "5000S\n0 0\n%d 1\n" % msgsize()


def test_quota_mbox_size_only(env):
    store = env.p("mbox")
    prof = profile(store, quotasize=1000, quotacount=1)
    assert env.run(prof)[0] == 0
    assert env.run(prof)[0] == 0                  # the count is not checked for an mbox
    big = MSG + b"x" * 1000 + b"\n"
    rc, line = env.run(prof, msg=big)
    assert rc == 111 and "(#4.2.2)" in line
    rc, line = env.run(prof, msg=big, quota=BOUNCE)
    assert rc == 100 and "(#5.2.2)" in line
    assert b"xxxx" not in open(store, "rb").read()


def test_sizemax(env):
    env.maildir()
    prof = profile(env.store, sizemax=len(MSG))
    assert env.run(prof)[0] == 0
    rc, line = env.run(prof, msg=MSG + b"one byte too many\n")
    assert rc == 100 and "(#5.2.3)" in line and "too large for this user" in line
    assert len(env.new()) == 1


# --- the automatic reply -------------------------------------------------------------------

REPLY = "I am away.\nBack on Monday."


def test_reply_sent_once(env):
    env.maildir()
    prof = profile(env.store, modes=["reply"], reply=REPLY)
    rc, line = env.run(prof)
    assert (rc, line) == (0, "delivered to Maildir %s; auto-reply sent to alice@example.net"
                          % env.store)
    [(envl, msg)] = env.injected()
    assert envl == b"F\0Talice@example.net\0\0"
    head, body = msg.split(b"\n\n", 1)
    h = head.decode()
    assert "\nAuto-Submitted: auto-replied\n" in h
    assert "\nSubject: Re: lunch?\n" in h
    assert "\nIn-Reply-To: <m1@example.net>\n" in h and "\nReferences: <m1@example.net>\n" in h
    assert h.startswith("From: <joe@example.org>\nTo: <alice@example.net>\n")
    assert body == (REPLY + "\n").encode()
    assert os.stat(env.p("Maildir", "tern-replied")).st_uid == UID
    # the second message from the same sender within 7 days: delivered, no reply
    rc, line = env.run(prof, sender="ALICE@example.net")
    assert rc == 0 and "auto-reply suppressed" in line and "within 7 days" in line
    assert len(env.injected()) == 1 and len(env.new()) == 2
    # another sender gets one
    assert env.run(prof, sender="bob@example.com")[0] == 0
    assert len(env.injected()) == 2


def test_reply_again_after_the_window(env):
    env.maildir()
    prof = profile(env.store, modes=["reply"], reply=REPLY)
    env.write("Maildir/tern-replied", "%d alice@example.net\n" % (time.time() - 8 * 86400))
    rc, line = env.run(prof)
    assert rc == 0 and "auto-reply sent" in line
    assert len(env.injected()) == 1


@pytest.mark.parametrize("sender,extra", [
    ("", b""),
    ("MAILER-DAEMON@example.net", b""),
    ("postmaster@example.net", b""),
    ("owner-list@example.net", b""),
    ("list-request@example.net", b""),
    ("alice@example.net", b"Precedence: bulk\n"),
    ("alice@example.net", b"Precedence: list\n"),
    ("alice@example.net", b"Precedence: junk\n"),
    ("alice@example.net", b"List-Id: <l.example.net>\n"),
    ("alice@example.net", b"List-Unsubscribe: <mailto:u@example.net>\n"),
    ("alice@example.net", b"Auto-Submitted: auto-generated\n"),
])
def test_reply_not_sent(env, sender, extra):
    env.maildir()
    prof = profile(env.store, modes=["reply"], reply=REPLY)
    rc, line = env.run(prof, sender=sender, msg=extra + MSG)
    assert rc == 0 and "auto-reply suppressed" in line, line
    assert env.injected() == [] and len(env.new()) == 1


def test_reply_auto_submitted_no_is_answered(env):
    env.maildir()
    prof = profile(env.store, modes=["reply"], reply=REPLY)
    rc, line = env.run(prof, msg=b"Auto-Submitted: no\n" + MSG)
    assert rc == 0 and "auto-reply sent" in line


BCC = MSG.replace(b"To: joe@example.org\n", b"To: list@example.net\n")


@pytest.mark.parametrize("msg,sent", [
    (BCC, False),                                                   # reached by Bcc
    (BCC.replace(b"Subject", b"Cc: Joe <JOE@EXAMPLE.ORG>\nSubject"), True),
    (BCC.replace(b"Subject", b"Resent-To: x@y, joe@example.org\nSubject"), True),
    (BCC.replace(b"Subject", b"Bcc: joe@example.org\nSubject"), False),
    (BCC.replace(b"list@", b"xjoe@example.org, joe@example.org.evil, list@"), False),
], ids=["bcc", "cc", "resent-to", "bcc-field", "lookalikes"])
def test_reply_only_when_named_in_to_or_cc(env, msg, sent):
    # RFC 3834 §2: spam sent by Bcc with a forged sender must not be answered
    env.maildir()
    prof = profile(env.store, modes=["reply"], reply=REPLY)
    rc, line = env.run(prof, msg=msg)
    assert rc == 0 and len(env.new()) == 1
    if sent:
        assert "auto-reply sent" in line, line
    else:
        assert "auto-reply suppressed: recipient not in To or Cc" in line, line
        assert env.injected() == []


@pytest.mark.parametrize("tail", [b"Auto-Submitted: auto-generated\n", b""],
                         ids=["auto-submitted", "plain"])
def test_reply_header_longer_than_read_suppresses(env, tail):
    # a field beyond the 64 KiB read could forbid the reply: such a header never gets one
    env.maildir()
    prof = profile(env.store, modes=["reply"], reply=REPLY)
    pad = b"".join(b"X-Pad-%d: %s\n" % (i, b"p" * 70) for i in range(1000))
    head, body = MSG.split(b"\n\n", 1)
    rc, line = env.run(prof, msg=head + b"\n" + pad + tail + b"\n" + body)
    assert rc == 0 and len(env.new()) == 1
    assert "auto-reply suppressed: header section too long" in line, line
    assert env.injected() == []


def test_reply_failure_does_not_undo_delivery(env):
    env.maildir()
    prof = profile(env.store, modes=["reply"], reply=REPLY)
    rc, line = env.run(prof, qexit=81)
    assert rc == 0 and "auto-reply not sent" in line and len(env.new()) == 1
    assert not os.path.exists(env.p("Maildir", "tern-replied"))


def test_reply_only_address(env):
    env.maildir()
    prof = profile(env.store, modes=["nombox", "reply"], reply=REPLY)
    rc, line = env.run(prof)
    assert (rc, line) == (0, "auto-reply sent to alice@example.net")
    assert env.new() == []


def test_reply_memory_in_home_for_mbox_store(env):
    prof = profile(env.p("mbox"), modes=["reply"], reply=REPLY)
    assert env.run(prof)[0] == 0
    assert re.fullmatch(r"\d+ alice@example\.net\n", open(env.p(".tern-replied")).read())


def test_without_profile_nothing_changes(env):
    env.maildir("Default")
    args = ["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups", BIN,
            "nobody", env.home, "joe", "", "", "example.org", "a@b", "./Default/"]
    with tempfile.TemporaryFile() as m:
        m.write(MSG)
        m.seek(0)
        r = subprocess.run(args, stdin=m, capture_output=True, timeout=TIMEOUT,
                           env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout == b"delivered to Maildir ./Default/\n"
    assert not os.listdir(env.p("Default", "new"))[0].count(",S=")
