"""test_local — end-to-end tests of bin/tern-local (doc/LOCAL.md), run directly.

Each test builds a throw-away HOME owned by an unprivileged uid (65534, "nobody") and runs
tern-local under that uid with setpriv, the message on stdin from a regular file, exactly as
ternd's parent does. Only the root-refusal test runs it as root. Real readers check the
result: Python's mailbox module parses every Maildir and mbox, and mutt (under `script` for a
terminal) opens both and must list the messages. Every subprocess is bounded by a timeout.
Run as root: /usr/bin/python3 -m pytest tests/e2e/test_local.py
"""
import fcntl
import mailbox
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from localhome import GID, UID, chown_tree
from localhome import Home as BaseHome

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TERN_LOCAL_BIN", os.path.join(REPO, "build", "tbin", "tern-local"))
TIMEOUT = 20
RECIP = "joe@example.org"
MSG = (b"Received: from client by tern; Sat, 1 Jan 2000 00:00:00 +0000\n"
       b"From: Alice <alice@example.net>\n"
       b"To: joe@example.org\n"
       b"Subject: tern-local test\n"
       b"\n"
       b"Hello Joe,\n"
       b"From here on, a line that mbox must quote.\n"
       b">From this one too, once more.\n"
       b"Bye.\n")
HEAD = b"Return-Path: <alice@example.net>\nDelivered-To: joe@example.org\n"
PERMANENT = [100, 64, 65, 70, 76, 77, 78, 112]
TEMPORARY = [1, 2, 75, 111, 120]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to uid 65534"),
    pytest.mark.skipif(not os.path.exists(BIN), reason="bin/tern-local not built"),
]


class Home(BaseHome):
    """A temporary HOME owned by nobody (localhome.py), and tern-local run in it."""

    def run(self, *, local="joe", dash="", ext="", domain="example.org",
            sender="alice@example.net", aliasempty="./Maildir/", instr=None, msg=MSG,
            create=False, env=None, as_root=False, home=None, timeout=TIMEOUT,
            preexec=None, loose=False):
        args = [BIN] + (["-c"] if create else []) + (["-q"] if loose else [])
        args += ["nobody", home or self.path, local, dash, ext, domain, sender, aliasempty]
        if instr is not None:
            args.append(instr)
        if not as_root:
            args = ["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID,
                    "--clear-groups"] + args
        with tempfile.TemporaryFile() as m:
            m.write(msg)
            m.seek(0)
            e = {"PATH": "/usr/bin:/bin"}
            e.update(env or {})
            r = subprocess.run(args, stdin=m, capture_output=True, timeout=timeout, env=e,
                               preexec_fn=preexec)
        out = r.stdout.decode(errors="replace")
        assert out.endswith("\n") and out.count("\n") == 1, "exactly one line: %r" % out
        return r.returncode, out[:-1]

    def new_files(self, name="Maildir"):
        d = self.p(name, "new")
        return sorted(os.path.join(d, f) for f in os.listdir(d))

    def read(self, name):
        with open(self.p(name), "rb") as f:
            return f.read()


@pytest.fixture
def home():
    h = Home()
    yield h
    shutil.rmtree(h.path, ignore_errors=True)


# --- Maildir ----------------------------------------------------------------------

def test_maildir_delivery(home):
    home.maildir()
    rc, line = home.run()
    assert (rc, line) == (0, "delivered to Maildir ./Maildir/")
    files = home.new_files()
    assert len(files) == 1
    assert re.fullmatch(r"\d+\.M\d{6}P\d+_\d+\.[^/:]+", os.path.basename(files[0]))
    assert open(files[0], "rb").read() == HEAD + MSG      # body intact, no quoting
    assert os.listdir(home.p("Maildir", "tmp")) == []
    st = os.stat(files[0])
    assert st.st_uid == UID and stat.S_IMODE(st.st_mode) == 0o600


def test_maildir_two_deliveries_unique_names(home):
    home.maildir()
    for _ in range(3):
        assert home.run()[0] == 0
    assert len(home.new_files()) == 3


def test_maildir_missing_defers(home):
    rc, line = home.run()
    assert rc == 111 and "Maildir" in line
    assert not os.path.exists(home.p("Maildir"))


def test_maildir_created_with_c(home):
    rc, line = home.run(create=True, aliasempty="./Mail/box/")
    assert (rc, line) == (0, "delivered to Maildir ./Mail/box/")
    for sub in ("tmp", "new", "cur"):
        assert stat.S_IMODE(os.stat(home.p("Mail", "box", sub)).st_mode) == 0o700
    assert len(home.new_files("Mail/box")) == 1


def test_maildir_bounce_sender(home):
    home.maildir()
    assert home.run(sender="")[0] == 0
    assert open(home.new_files()[0], "rb").read().startswith(
        b"Return-Path: <>\nDelivered-To: joe@example.org\n")


# --- mbox -------------------------------------------------------------------------

FROM_RE = rb"From alice@example\.net \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n"


def quoted(msg):
    return re.sub(rb"(?m)^(>*From )", rb">\1", msg)


def test_mbox_delivery_and_append(home):
    rc, line = home.run(instr="./mbox")
    assert (rc, line) == (0, "delivered to mbox ./mbox")
    rc, _ = home.run(instr="./mbox", sender="")
    assert rc == 0
    data = home.read("mbox")
    one = FROM_RE + re.escape(HEAD + quoted(MSG) + b"\n")
    two = (rb"From MAILER-DAEMON .*\n" +
           re.escape(b"Return-Path: <>\nDelivered-To: joe@example.org\n" + quoted(MSG) +
                     b"\n"))
    assert re.fullmatch(one + two, data, re.S), data
    assert b"\n>From here on" in data and b"\n>>From this one" in data
    assert stat.S_IMODE(os.stat(home.p("mbox")).st_mode) == 0o600


def test_mbox_message_without_final_newline(home):
    rc, _ = home.run(instr="/" + home.p("mbox").lstrip("/"), msg=MSG + b"no newline")
    assert rc == 0
    assert home.read("mbox").endswith(b"Bye.\nno newline\n\n")


def test_mbox_lock_timeout_defers_and_leaves_file(home):
    home.write("mbox", b"")
    with open(home.p("mbox"), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        t = time.monotonic()
        rc, line = home.run(instr="./mbox", env={"TERN_LOCAL_LOCK_TIMEOUT": "1"})
        assert time.monotonic() - t < 10
    assert rc == 111 and "Timeout while locking" in line
    assert home.read("mbox") == b""


def test_mbox_not_a_regular_file_defers(home):
    rc, line = home.run(instr="/dev/null")
    assert (rc, line) == (111, "Uh-oh: mbox /dev/null is not a regular file. (#4.2.1)")
    os.mkfifo(home.p("fifo"))                  # never blocks on a FIFO without a reader
    os.chown(home.p("fifo"), UID, GID)
    rc, line = home.run(instr="./fifo")
    assert rc == 111 and "mbox ./fifo" in line


def test_mbox_unwritable_defers(home):
    os.mkdir(home.p("ro"), 0o555)
    os.chown(home.p("ro"), 0, 0)
    rc, line = home.run(instr="./ro/mbox")
    assert rc == 111 and "Unable to open mbox" in line


# --- real readers -----------------------------------------------------------------

def mutt_lists(path, count):
    """mutt, in a pseudo-terminal from script(1), opens path read-only and must count."""
    if not shutil.which("mutt") or not shutil.which("script"):
        pytest.skip("mutt or script not installed")
    cmd = ("mutt -n -F /dev/null -e 'set folder=%s' -R -f %s -e 'push <exit>'"
           % (os.path.dirname(path), path))
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                       timeout=TIMEOUT, env={"TERM": "vt100", "PATH": "/usr/bin:/bin",
                                             "HOME": "/tmp"})
    out = r.stdout.decode(errors="replace")
    assert "Msgs:%d " % count in out, out
    assert "tern-local test" in out


def test_readers_parse_maildir_and_mbox(home):
    for _ in range(2):
        assert home.run(create=True)[0] == 0
        assert home.run(instr="./mbox")[0] == 0
    for box in (mailbox.Maildir(home.p("Maildir"), create=False),
                mailbox.mbox(home.p("mbox"), create=False)):
        msgs = list(box)
        assert len(msgs) == 2
        for m in msgs:
            assert m["Return-Path"] == "<alice@example.net>"
            assert m["Delivered-To"] == RECIP
            assert m["Subject"] == "tern-local test"
            body = m.get_payload()
            assert body.startswith("Hello Joe,\n")
            assert "From here on" in body
    mutt_lists(home.p("Maildir"), 2)
    mutt_lists(home.p("mbox"), 2)


# --- loop detection ---------------------------------------------------------------

def test_loop_detected(home):
    home.maildir()
    msg = b"Delivered-To: someone@else\nDelivered-To: joe@example.org\n" + MSG
    rc, line = home.run(msg=msg)
    assert (rc, line) == (100, "This message is looping: it already has my Delivered-To "
                               "line. (#5.4.6)")
    assert home.new_files() == []


def test_loop_check_is_case_sensitive(home):
    """qmail-local compares its Delivered-To line byte for byte: a line that differs only in
    case is someone else's, and the mail is delivered (issue 10)."""
    home.maildir()
    for line in (b"Delivered-To: JOE@example.org\n", b"delivered-to: joe@example.org\n",
                 b"Delivered-To: joe@EXAMPLE.ORG\n"):
        rc, out = home.run(msg=line + MSG)
        assert (rc, out) == (0, "delivered to Maildir ./Maildir/")
    assert len(home.new_files()) == 3


def test_delivered_to_in_body_is_not_a_loop(home):
    home.maildir()
    rc, _ = home.run(msg=MSG + b"Delivered-To: joe@example.org\n")
    assert rc == 0 and len(home.new_files()) == 1


# --- programs ---------------------------------------------------------------------

def test_program_environment_and_stdin(home):
    home.write(".qmail-lists-default",
               "|env > prog.env; cat > prog.in; pwd > prog.pwd; echo 'done here'\n")
    rc, line = home.run(local="joe-lists-foo-bar", dash="-", ext="lists-foo-bar",
                        domain="mail.dept.example.org")
    assert (rc, line) == (0, "program exited 0: done here")
    env = dict(l.split("=", 1) for l in home.read("prog.env").decode().split("\n")
               if "=" in l and not l.startswith((" ", "\t")))
    want = {
        "SENDER": "alice@example.net", "NEWSENDER": "alice@example.net",
        "RECIPIENT": "joe-lists-foo-bar@mail.dept.example.org", "USER": "nobody",
        "HOME": home.path, "LOCAL": "joe-lists-foo-bar",
        "HOST": "mail.dept.example.org", "HOST2": "mail.dept.example",
        "HOST3": "mail.dept", "HOST4": "mail",
        "EXT": "lists-foo-bar", "EXT2": "foo-bar", "EXT3": "bar", "EXT4": "",
        "DEFAULT": "foo-bar",
        "DTLINE": "Delivered-To: joe-lists-foo-bar@mail.dept.example.org",
        "RPLINE": "Return-Path: <alice@example.net>",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "QMAILQUEUE": os.path.join(os.path.dirname(os.path.realpath(BIN)), "tern-queue"),
    }
    for k, v in want.items():
        assert env.get(k) == v, k
    assert re.fullmatch(r"From alice@example\.net \w{3} \w{3} [ \d]\d [\d:]{8} \d{4}",
                        env["UFLINE"])
    assert home.read("prog.in") == (b"Return-Path: <alice@example.net>\n"
                                    b"Delivered-To: joe-lists-foo-bar@mail.dept.example.org\n"
                                    + MSG)
    assert home.read("prog.pwd").decode().strip() == home.path


def test_quoted_sender_forms(home):
    """qmail-local's forms of a quoted sender: Return-Path keeps the quotes, SENDER (and
    the mbox From_ line) carry qmail's unquoted form (issue 10)."""
    home.maildir()
    home.write(".qmail", "./Maildir/\n./mbox\n|env > prog.env\n")
    rc, _ = home.run(sender='"a b"@x.org')
    assert rc == 0
    want = b'Return-Path: <"a b"@x.org>\nDelivered-To: joe@example.org\n'
    assert open(home.new_files()[0], "rb").read().startswith(want)
    assert re.match(rb"From a-b@x\.org \w{3} ", home.read("mbox"))
    assert want in home.read("mbox")
    env = dict(l.split("=", 1) for l in home.read("prog.env").decode().split("\n")
               if "=" in l)
    assert env["SENDER"] == "a b@x.org" and env["NEWSENDER"] == "a b@x.org"
    assert env["RPLINE"] == 'Return-Path: <"a b"@x.org>'
    assert env["UFLINE"].startswith("From a-b@x.org ")


def test_program_no_default_without_default_match(home):
    rc, _ = home.run(instr='|test -z "${DEFAULT+x}"')
    assert rc == 0


@pytest.mark.parametrize("code", [0, 99] + PERMANENT + TEMPORARY)
def test_program_exit_codes(home, code):
    home.maildir()
    home.write(".qmail", "|echo said %d; exit %d\n./Maildir/\n" % (code, code))
    rc, line = home.run()
    if code in (0, 99):
        assert rc == 0 and line.startswith("program exited %d: said %d" % (code, code))
        assert len(home.new_files()) == (1 if code == 0 else 0)    # 99 stops the file
    else:
        assert rc == (100 if code in PERMANENT else 111)
        assert line == "Program exited %d: said %d" % (code, code)
        assert home.new_files() == []


def test_program_killed_by_signal_is_temporary(home):
    rc, line = home.run(instr="|kill -9 $$")
    assert rc == 111 and "signal 9" in line


def test_program_output_is_bounded_and_one_line(home):
    rc, line = home.run(instr="|yes 'many lines of output' | head -c 200000; exit 100")
    assert rc == 100 and len(line) <= 1000 and "many lines" in line


def test_program_ignoring_big_stdin(home):
    big = MSG + b"x" * 2_000_000 + b"\n"
    rc, line = home.run(instr="|exit 0", msg=big)
    assert (rc, line) == (0, "program exited 0")


def test_program_background_child_does_not_hang(home):
    t = time.monotonic()
    rc, _ = home.run(instr="|sleep 30 & echo started", timeout=15)
    assert rc == 0 and time.monotonic() - t < 10


# --- forwards ---------------------------------------------------------------------

FAKE_QUEUE = """#!/bin/sh
# fake tern-queue: records the message (fd 0) and the envelope (fd 1)
cat > "$QOUT/msg"
cat 0<&1 1>"$QOUT/env"
echo "fake queue says hi" >&2
exit ${QEXIT:-0}
"""


@pytest.fixture
def fakeq():
    d = tempfile.mkdtemp(prefix="tern-fakeq-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "tern-queue"), "w") as f:
        f.write(FAKE_QUEUE)
    os.chmod(os.path.join(d, "tern-queue"), 0o755)
    os.mkdir(os.path.join(d, "out"))
    chown_tree(d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def qenv(fakeq, **kw):
    e = {"TERN_QUEUE": os.path.join(fakeq, "tern-queue"), "QOUT": os.path.join(fakeq, "out")}
    e.update(kw)
    return e


def qread(fakeq, name):
    with open(os.path.join(fakeq, "out", name), "rb") as f:
        return f.read()


def test_forward_envelope_and_message(home, fakeq):
    home.maildir()
    home.write(".qmail", "&bob@example.com\n./Maildir/\ncarol@example.net\n# done\n")
    rc, line = home.run(env=qenv(fakeq))
    assert (rc, line) == (0, "delivered to Maildir ./Maildir/; forwarded to 2 addresses")
    assert qread(fakeq, "env") == (b"Falice@example.net\0Tbob@example.com\0"
                                   b"Tcarol@example.net\0\0")
    assert qread(fakeq, "msg") == b"Delivered-To: joe@example.org\n" + MSG
    assert len(home.new_files()) == 1


def test_forward_bounce_keeps_null_sender_even_with_owner(home, fakeq):
    home.write(".qmail-owner", "./owner/\n")
    rc, _ = home.run(sender="", instr="&bob@example.com", env=qenv(fakeq))
    assert rc == 0
    assert qread(fakeq, "env") == b"F\0Tbob@example.com\0\0"


def test_forward_owner_sender(home, fakeq):
    home.write(".qmail-lists", "&member@example.com\n")
    home.write(".qmail-lists-owner", "&listadmin@example.com\n")
    rc, _ = home.run(local="joe-lists", dash="-", ext="lists", env=qenv(fakeq))
    assert rc == 0
    assert qread(fakeq, "env") == (b"Fjoe-lists-owner@example.org\0"
                                   b"Tmember@example.com\0\0")


@pytest.mark.parametrize("qexit,want,status", [
    (53, 111, "4.3.0"), (81, 111, "4.3.0"), (72, 111, "4.4.1"), (41, 111, "4.3.0"),
    (11, 100, "5.1.3"), (31, 100, "5.3.0"), (12, 100, "5.3.0"), (40, 100, "5.3.0"),
])
def test_forward_queue_failure(home, fakeq, qexit, want, status):
    """qmail-queue's exit codes as qmail-local reads them: 11-40 permanent, the rest
    temporary; every failure line ends in its enhanced status (issue 10)."""
    rc, line = home.run(instr="&bob@example.com", env=qenv(fakeq, QEXIT=str(qexit)))
    assert rc == want
    assert re.fullmatch(r"Unable to forward message: tern-queue exited %d \([^)]+\): "
                        r"fake queue says hi \(#%s\)" % (qexit, re.escape(status)), line), line


def test_forward_queue_missing_defers(home):
    rc, line = home.run(instr="&bob@example.com", env={"TERN_QUEUE": "/nonexistent/q"})
    assert rc == 111 and "tern-queue exited 120" in line and line.endswith("(#4.3.0)")


def test_unreadable_dotqmail_and_mbox_directory_status(home):
    """qmail-local's codes: a .qmail it cannot open is a system problem (#4.3.0); an mbox
    that is a directory is a mailbox problem (#4.2.1) (issue 10)."""
    home.write(".qmail", "./mbox\n", 0o000)
    os.chmod(home.path, 0o711)
    rc, line = home.run()
    assert rc == 111 and line.startswith("Unable to open .qmail: ") and \
        line.endswith("(#4.3.0)"), line
    os.chmod(home.path, 0o755)
    os.unlink(home.p(".qmail"))
    os.mkdir(home.p("box"))
    rc, line = home.run(instr="./box")
    assert rc == 111 and "mbox ./box" in line and line.endswith("(#4.2.1)"), line


def test_forward_finds_tern_queue_next_to_binary(home, fakeq):
    shutil.copy(BIN, os.path.join(fakeq, "tern-local"))
    os.chmod(os.path.join(fakeq, "tern-local"), 0o755)
    args = ["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups",
            os.path.join(fakeq, "tern-local"), "nobody", home.path, "joe", "", "",
            "example.org", "a@b", "./Maildir/", "&bob@example.com"]
    with tempfile.TemporaryFile() as m:
        m.write(MSG)
        m.seek(0)
        r = subprocess.run(args, stdin=m, capture_output=True, timeout=TIMEOUT,
                           env={"QOUT": os.path.join(fakeq, "out"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout
    assert qread(fakeq, "env") == b"Fa@b\0Tbob@example.com\0\0"


def test_forward_after_99_still_injected(home, fakeq):
    home.maildir()
    home.write(".qmail", "&bob@example.com\n|exit 99\n./Maildir/\n&never@example.com\n")
    rc, _ = home.run(env=qenv(fakeq))
    assert rc == 0
    assert qread(fakeq, "env") == b"Falice@example.net\0Tbob@example.com\0\0"
    assert home.new_files() == []


# --- .qmail lookup ----------------------------------------------------------------

def ext_run(home, ext, **kw):
    home.write("which.sh", 'echo "$1 default=${DEFAULT-unset}" > which.out\n')
    return home.run(local="joe-" + ext, dash="-", ext=ext, **kw)


@pytest.mark.parametrize("files,ext,want", [
    ([".qmail-a-b", ".qmail-a-default", ".qmail-default"], "a-b", ".qmail-a-b default=unset"),
    ([".qmail-a-default", ".qmail-default"], "a-b", ".qmail-a-default default=b"),
    ([".qmail-default"], "a-b", ".qmail-default default=a-b"),
    ([".qmail-a-b-default"], "a-b-c", ".qmail-a-b-default default=c"),
    ([".qmail-lists:x"], "Lists.X", ".qmail-lists:x default=unset"),
])
def test_extension_lookup(home, files, ext, want):
    for f in files:
        home.write(f, "|sh which.sh %s\n" % f)
    rc, _ = ext_run(home, ext)
    assert rc == 0
    assert home.read("which.out").decode().strip() == want


def test_extension_without_file_bounces(home):
    home.write(".qmail", "./Maildir/\n")        # .qmail is not a catch-all for extensions
    home.write(".qmail-other", "./Maildir/\n")
    rc, line = ext_run(home, "a-b")
    assert (rc, line) == (100, "Sorry, no mailbox here by that name. (#5.1.1)")


def test_no_dotqmail_uses_default_delivery(home):
    home.maildir()
    rc, line = home.run(aliasempty="./mbox\n./Maildir/\n")
    assert (rc, line) == (0, "delivered to mbox ./mbox; delivered to Maildir ./Maildir/")


def test_empty_dotqmail_uses_default_delivery(home):
    home.write(".qmail", "")
    rc, line = home.run(aliasempty="./mbox")
    assert (rc, line) == (0, "delivered to mbox ./mbox")


def test_dotqmail_directory_is_no_such_file(home):
    """qmail-local skips a .qmail* that is not a regular file: the next candidate, then
    the default delivery; it never defers for it (issue 10)."""
    os.mkdir(home.p(".qmail-a-b"))
    home.write(".qmail-a-default", "|sh which.sh .qmail-a-default\n")
    rc, _ = ext_run(home, "a-b")
    assert rc == 0
    assert home.read("which.out").decode().strip() == ".qmail-a-default default=b"
    os.mkdir(home.p(".qmail"))
    rc, line = home.run(aliasempty="./mbox")
    assert (rc, line) == (0, "delivered to mbox ./mbox")
    os.rmdir(home.p(".qmail-a-b"))
    os.unlink(home.p(".qmail-a-default"))
    os.mkdir(home.p(".qmail-a-default"))
    rc, line = ext_run(home, "a-b")
    assert (rc, line) == (100, "Sorry, no mailbox here by that name. (#5.1.1)")


def test_instruction_overrides_dotqmail(home):
    home.write(".qmail", "./never\n")
    rc, line = home.run(instr="./mbox")
    assert (rc, line) == (0, "delivered to mbox ./mbox")
    assert not os.path.exists(home.p("never"))


def test_blank_first_line_defers(home):
    home.write(".qmail", "\n./mbox\n")
    rc, line = home.run()
    assert rc == 111 and "first line" in line
    assert not os.path.exists(home.p("mbox"))


def test_comments_only_discards(home):
    home.write(".qmail", "# nothing here\n")
    rc, line = home.run()
    assert rc == 0 and "discarded" in line


def test_bad_line_defers_before_any_delivery(home):
    home.write(".qmail", "./mbox\n&bob@x, carol@y\n")
    rc, line = home.run()
    assert rc == 111 and "line 2" in line
    assert not os.path.exists(home.p("mbox"))


@pytest.mark.parametrize("content,mode", [
    ("./mbox\n&bob@example.com\n", 0o744),
    ("|echo hi\n", 0o744),
    ("+list\n&bob@example.com\n./Maildir/\n", 0o644),
])
def test_forward_only_file_refuses_local_delivery(home, fakeq, content, mode):
    home.write(".qmail", content, mode)
    rc, line = home.run(env=qenv(fakeq), create=True)
    assert rc == 111 and "forward-only" in line
    assert not os.path.exists(home.p("mbox")) and not os.path.exists(home.p("Maildir"))
    assert not os.path.exists(os.path.join(fakeq, "out", "env"))


def test_forward_only_file_forwards(home, fakeq):
    home.write(".qmail", "+list\n&bob@example.com\n", 0o755)
    rc, _ = home.run(env=qenv(fakeq))
    assert rc == 0 and qread(fakeq, "env") == b"Falice@example.net\0Tbob@example.com\0\0"


def test_plus_list_affects_only_the_lines_after_it(home, fakeq):
    """qmail-local's +list makes the rest of the file forward-only; lines before it are
    delivered (issue 10). A local delivery after it is still refused before anything is
    done."""
    home.write(".qmail", "./mbox\n|echo before\n+list\n&bob@example.com\n")
    rc, line = home.run(env=qenv(fakeq))
    assert (rc, line) == (0, "delivered to mbox ./mbox; program exited 0: before; "
                             "forwarded to 1 address")
    assert qread(fakeq, "env") == b"Falice@example.net\0Tbob@example.com\0\0"
    home.write(".qmail", "./mbox2\n+list\n&bob@example.com\n|echo after\n")
    rc, line = home.run(env=qenv(fakeq))
    assert rc == 111 and "forward-only" in line
    assert not os.path.exists(home.p("mbox2"))


# --- safety -----------------------------------------------------------------------

def test_world_writable_home_defers(home):
    os.chmod(home.path, 0o777)
    rc, line = home.run(create=True)
    assert rc == 111 and "home directory is writable" in line
    assert not os.path.exists(home.p("Maildir"))


def test_sticky_home_defers(home):
    os.chmod(home.path, 0o1755)
    rc, line = home.run(create=True)
    assert rc == 111 and "sticky" in line


def test_world_writable_dotqmail_defers(home):
    home.write(".qmail", "./mbox\n", 0o646)
    rc, line = home.run()
    assert rc == 111 and "writable" in line


OTHER = 4242            # neither the user nor the home's owner


def test_dotqmail_owned_by_another_user_defers(home):
    """dotqmailcheck strict (doc/LOCAL.md): someone else's .qmail is not the user's word;
    -q (dotqmailcheck qmail) is qmail-local's rule, which follows it."""
    home.write(".qmail", "./mbox\n")
    os.chown(home.p(".qmail"), OTHER, GID)
    rc, line = home.run()
    assert rc == 111, line
    assert line == "Uh-oh: .qmail is owned by uid 4242, not by the user or the home's owner. (#4.7.0)"
    assert not os.path.exists(home.p("mbox"))
    assert home.run(loose=True) == (0, "delivered to mbox ./mbox")


def test_dotqmail_owned_by_root_or_home_owner_is_followed(home):
    home.write(".qmail", "./mbox\n")
    os.chown(home.p(".qmail"), 0, 0)
    assert home.run() == (0, "delivered to mbox ./mbox")
    os.chown(home.path, OTHER, GID)                   # the home's owner is another account
    os.chown(home.p(".qmail"), OTHER, GID)
    os.chown(home.p("mbox"), UID, GID)
    assert home.run() == (0, "delivered to mbox ./mbox")


def test_group_writable_dotqmail_with_a_shared_group_defers(home):
    """Group root has a member besides nobody (root itself): its members could edit it."""
    home.write(".qmail-ext", "./mbox\n", 0o664)
    os.chown(home.p(".qmail-ext"), UID, 0)
    rc, line = home.run(local="joe-ext", dash="-", ext="ext")
    assert rc == 111, line
    assert line == "Uh-oh: .qmail-ext is group-writable and group 0 has other members. (#4.7.0)"
    assert home.run(local="joe-ext", dash="-", ext="ext", loose=True)[0] == 0
    os.chmod(home.p(".qmail-ext"), 0o644)             # not group-writable: fine
    assert home.run(local="joe-ext", dash="-", ext="ext")[0] == 0


def test_symlinked_dotqmail_owner_checked_on_link_and_target(home):
    home.write(".qmail-real", "./mbox\n")
    os.symlink(".qmail-real", home.p(".qmail"))
    os.lchown(home.p(".qmail"), UID, GID)
    assert home.run() == (0, "delivered to mbox ./mbox")
    os.lchown(home.p(".qmail"), OTHER, GID)           # a link planted by someone else
    rc, line = home.run()
    assert rc == 111 and "symlink owned by uid 4242" in line, line
    os.lchown(home.p(".qmail"), UID, GID)
    os.chown(home.p(".qmail-real"), OTHER, GID)       # pointing at someone else's file
    rc, line = home.run()
    assert rc == 111 and ".qmail is owned by uid 4242" in line, line
    assert home.run(loose=True)[0] == 0


def test_missing_home_defers(home):
    rc, line = home.run(home=home.p("nonexistent"))
    assert rc == 111 and "home directory" in line


def test_dry_run_prints_the_plan(home, fakeq):
    """tern-local -n, like qmail-local -n: one line per delivery it would make, nothing
    delivered, no loop check, no forward injected (issue 10)."""
    home.write(".qmail-x", "./Maildir/\n./mbox\n# note\n|echo hi\n&bob@example.com\n"
               "carol@example.net\n")
    args = ["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups", BIN, "-n",
            "nobody", home.path, "joe-x", "-", "x", "example.org", "a@b", "./Maildir/"]
    with tempfile.TemporaryFile() as m:
        m.write(b"Delivered-To: joe-x@example.org\n" + MSG)
        m.seek(0)
        r = subprocess.run(args, stdin=m, capture_output=True, timeout=TIMEOUT,
                           env=qenv(fakeq, PATH="/usr/bin:/bin"))
    assert r.returncode == 0, r.stdout
    assert r.stdout.decode() == ("maildir ./Maildir/\nmbox ./mbox\nprogram echo hi\n"
                                 "forward bob@example.com\nforward carol@example.net\n")
    assert sorted(os.listdir(home.path)) == [".qmail-x"]
    assert not os.path.exists(os.path.join(fakeq, "out", "env"))


def test_relative_home_refused(home):
    home.maildir()
    rc, line = home.run(home=".")
    assert rc == 111 and "absolute" in line
    rc, line = home.run(home="tmp")
    assert rc == 111 and "absolute" in line


def test_refuses_root(home):
    home.maildir()
    rc, line = home.run(as_root=True)
    assert rc == 111 and "root" in line
    assert home.new_files() == []


def test_usage_error_defers(home):
    r = subprocess.run(["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups",
                        BIN, "only", "three", "args"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 111 and r.stdout.startswith(b"usage: tern-local")


def test_hostile_parent_state(home):
    """SIGCHLD ignored, SIGALRM blocked and stderr closed by the parent change nothing."""
    import signal

    def hostile():
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        os.close(2)
    home.write("mbox", b"")
    rc, line = home.run(instr="|echo ran; exit 0", preexec=hostile)
    assert (rc, line) == (0, "program exited 0: ran")
    with open(home.p("mbox"), "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        rc, line = home.run(instr="./mbox", preexec=hostile,
                            env={"TERN_LOCAL_LOCK_TIMEOUT": "1"})
    assert rc == 111 and "Timeout while locking" in line


def test_message_on_a_pipe_defers(home):
    r = subprocess.run(["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups",
                        BIN, "nobody", home.path, "joe", "", "", "example.org", "a@b",
                        "./Maildir/"], input=MSG, capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 111 and b"seekable" in r.stdout
