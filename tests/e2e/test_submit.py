"""test_submit — local submission end to end: bin/sendmail and bin/tern-queue write maildrop
files into a temporary spool (TERN_CONF points at a temporary config).

Checks the envelope and message of each file, sendmail's options (-t, -i, -f, -F, ...), the
header fix-ups (Bcc removal, From/Date/Message-ID), tern-queue's qmail-queue interface, the
exit codes, and that a failure never leaves anything behind (no tmp.* files).
Set TERN_BINDIR to test binaries other than <repo>/bin.
"""
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINDIR = os.environ.get("TERN_BINDIR", os.path.join(REPO, "build", "tbin"))
SENDMAIL = os.path.join(BINDIR, "sendmail")
TERNQUEUE = os.path.join(BINDIR, "tern-queue")
ME = "test.example"
USER = pwd.getpwuid(os.getuid()).pw_name

EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT = 0, 64, 65, 66
EX_TEMPFAIL, EX_NOPERM = 75, 77


class Spool:
    def __init__(self):
        # not under pytest's 0700 tmp dirs: the unprivileged tests must reach it
        self.root = tempfile.mkdtemp(prefix="tern-submit-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.spool = os.path.join(self.root, "spool")
        self.maildrop = os.path.join(self.spool, "maildrop")
        os.mkdir(self.spool)
        os.mkdir(self.maildrop)
        os.chmod(self.maildrop, 0o1733)
        self.conf = os.path.join(self.root, "tern.conf")
        self.write_conf(self.spool)
        self.env = dict(os.environ, TERN_CONF=self.conf)

    def write_conf(self, spool):
        with open(self.conf, "w") as f:
            f.write("spool %s\nme %s\n" % (spool, ME))
        os.chmod(self.conf, 0o644)

    def names(self):
        return sorted(os.listdir(self.maildrop)) if os.path.isdir(self.maildrop) else []

    def drops(self):
        names = self.names()
        assert not [n for n in names if n.startswith("tmp.")], names
        return [parse_drop(os.path.join(self.maildrop, n)) for n in names]

    def one(self):
        d = self.drops()
        assert len(d) == 1, d
        return d[0]

    def clear(self):
        for n in self.names():
            os.unlink(os.path.join(self.maildrop, n))


def parse_drop(path):
    data = open(path, "rb").read()
    st = os.stat(path)
    lines = data.split(b"\n")
    assert lines[0] == b"TERN-MAILDROP 1"
    d = {"rcpt": [], "origin": None, "mode": st.st_mode & 0o7777, "owner": st.st_uid}
    off = len(lines[0]) + 1
    for line in lines[1:]:
        off += len(line) + 1
        if line == b".":
            break
        tag, val = chr(line[0]), line[1:].decode()
        if tag == "U":
            d["uid"] = int(val)
        elif tag == "T":
            d["time"] = int(val)
        elif tag == "F":
            d["sender"] = val
        elif tag == "R":
            d["rcpt"].append(val)
        elif tag == "O":
            d["origin"] = val
        else:
            raise AssertionError("bad line %r" % line)
    d["body"] = data[off:]
    hdr, _, _ = d["body"].partition(b"\n\n")
    d["headers"] = hdr.decode("utf-8", "replace").split("\n")
    return d


def header(d, name):
    """values of the header fields called name (continuations unfolded)"""
    out = []
    for line in d["headers"]:
        if line[:1] in (" ", "\t") and out and cur:
            out[-1] += " " + line.strip()
            continue
        cur = line.lower().startswith(name.lower() + ":")
        if cur:
            out.append(line.split(":", 1)[1].strip())
    return out


@pytest.fixture
def sp():
    s = Spool()
    yield s
    shutil.rmtree(s.root, ignore_errors=True)


def sendmail(sp, args, msg=b"Subject: test\n\nhello\n", **kw):
    return subprocess.run([SENDMAIL] + args, input=msg, env=sp.env, capture_output=True,
                          timeout=30, **kw)


def tern_queue(sp, msg, envelope, **kw):
    """message on fd 0, envelope on fd 1 (a pipe we fill and close first)"""
    r, w = os.pipe()
    os.write(w, envelope)
    os.close(w)
    try:
        return subprocess.run([TERNQUEUE], input=msg, stdout=r, stderr=subprocess.PIPE,
                              env=sp.env, timeout=30, **kw)
    finally:
        os.close(r)


# --- sendmail -----------------------------------------------------------------------------------

def test_sendmail_basic(sp):
    p = sendmail(sp, ["a@x.example", "b"])
    assert p.returncode == EX_OK, p.stderr
    d = sp.one()
    assert d["sender"] == "%s@%s" % (USER, ME)
    assert d["rcpt"] == ["a@x.example", "b"]
    assert d["origin"] == "sendmail uid=%d" % os.getuid()
    assert d["uid"] == os.getuid()
    assert d["mode"] == 0o644
    assert header(d, "Subject") == ["test"]
    assert header(d, "From") == ["%s@%s" % (USER, ME)]
    assert len(header(d, "Date")) == 1
    mid = header(d, "Message-ID")
    assert len(mid) == 1 and mid[0].startswith("<") and mid[0].endswith("@%s>" % ME)
    assert d["body"].endswith(b"\n\nhello\n")


def test_sendmail_keeps_existing_headers(sp):
    msg = (b"From: Someone <s@else.example>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
           b"Message-ID: <x@y>\nSubject: s\n\nbody\n")
    p = sendmail(sp, ["-F", "Ignored Name", "r@x"], msg)
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["body"] == msg
    assert header(d, "From") == ["Someone <s@else.example>"]


def test_sendmail_t_and_bcc(sp):
    msg = (b"To: Alice <alice@a.example>, \"Bob, Jr.\" <bob@b.example>\n"
           b"Cc: undisclosed-recipients:;, carol@c.example (Carol)\n"
           b"Bcc: secret@s.example,\n\tother@s.example\n"
           b"Subject: t\n\nbody\nBcc: stays in the body\n")
    p = sendmail(sp, ["-t", "extra@e.example"], msg)
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["rcpt"] == ["extra@e.example", "alice@a.example", "bob@b.example",
                         "carol@c.example", "secret@s.example", "other@s.example"]
    assert header(d, "Bcc") == []
    assert b"secret@s.example" not in d["body"]
    assert b"other@s.example" not in d["body"]
    assert d["body"].endswith(b"\n\nbody\nBcc: stays in the body\n")
    assert header(d, "To") == ["Alice <alice@a.example>, \"Bob, Jr.\" <bob@b.example>"]


def test_sendmail_bcc_removed_without_t(sp):
    p = sendmail(sp, ["r@x"], b"Bcc: hidden@h\nSubject: s\n\nb\n")
    assert p.returncode == 0
    assert b"hidden" not in sp.one()["body"]


def test_sendmail_t_resent(sp):
    msg = b"To: old@o\nResent-To: new@n\nResent-Bcc: nb@n\nSubject: s\n\nb\n"
    assert sendmail(sp, ["-t"], msg).returncode == 0
    d = sp.one()
    assert d["rcpt"] == ["new@n", "nb@n"]
    assert b"nb@n" not in d["body"]


@pytest.mark.parametrize("args,msg", [
    ([], b"Subject: x\n\nb\n"),
    (["-t"], b"Subject: no recipients\n\nb\n"),
    (["-t"], b"To: undisclosed-recipients:;\n\nb\n"),
    (["-f", "s@x"], b"x\n"),
])
def test_sendmail_no_recipients(sp, args, msg):
    p = sendmail(sp, args, msg)
    assert p.returncode == EX_USAGE
    assert b"recipient" in p.stderr
    assert sp.names() == []


@pytest.mark.parametrize("args,body", [
    ([], b"line1\n"),                     # a lone "." ends the message
    (["-i"], b"line1\n.\nline2\n"),
    (["-oi"], b"line1\n.\nline2\n"),
    (["-ti"], b"line1\n.\nline2\n"),
])
def test_sendmail_dot(sp, args, body):
    rc = [] if "-ti" in args else ["r@x"]
    msg = b"To: r@x\nSubject: d\n\nline1\n.\nline2\n"
    p = sendmail(sp, args + rc, msg)
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["body"].endswith(b"\n\n" + body)


def test_sendmail_dot_crlf_and_header_only(sp):
    p = sendmail(sp, ["r@x"], b"Subject: x\r\n.\r\nnot part\r\n")
    assert p.returncode == 0
    d = sp.one()
    assert b"not part" not in d["body"] and b"\r" not in d["body"]
    assert header(d, "Subject") == ["x"]


def test_sendmail_crlf(sp):
    p = sendmail(sp, ["-i", "r@x"], b"Subject: c\r\n\r\nline\r\nbare\rcr\r\n")
    assert p.returncode == 0
    body = sp.one()["body"]
    assert body.startswith(b"Subject: c\n")
    assert b"\r\n" not in body
    assert body.endswith(b"\n\nline\nbare\rcr\n")


@pytest.mark.parametrize("args,sender", [
    (["-f", "s@x.example"], "s@x.example"),
    (["-fs@x.example"], "s@x.example"),
    (["-r", "s@x.example"], "s@x.example"),
    (["-f", "Some One <s@x.example>"], "s@x.example"),
    (["-f", "<>"], ""),
    (["-f", ""], ""),
    (["-f", "bare"], "bare"),
])
def test_sendmail_sender(sp, args, sender):
    p = sendmail(sp, args + ["r@x"])
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["sender"] == sender
    # the From: header stays the user's
    assert header(d, "From") == ["%s@%s" % (USER, ME)]


@pytest.mark.parametrize("name,want", [
    ("Full Name", "Full Name <%s@%s>" % (USER, ME)),
    ("Dr. Who", "\"Dr. Who\" <%s@%s>" % (USER, ME)),
    ("J\u00f6rg", "=?UTF-8?B?SsO2cmc=?= <%s@%s>" % (USER, ME)),
])
def test_sendmail_fullname(sp, name, want):
    for args in (["-F", name], ["-F" + name]):
        p = sendmail(sp, args + ["r@x"])
        assert p.returncode == 0, p.stderr
        assert header(sp.one(), "From") == [want]
        sp.clear()


def test_sendmail_unterminated_last_line(sp):
    assert sendmail(sp, ["r@x"], b"Subject: no newline").returncode == 0
    d = sp.one()
    assert header(d, "Subject") == ["no newline"]
    sp.clear()
    assert sendmail(sp, ["r@x"], b"Subject: s\n\nbody, no newline").returncode == 0
    assert sp.one()["body"].endswith(b"\n\nbody, no newline\n")


def test_sendmail_no_header_at_all(sp):
    p = sendmail(sp, ["r@x"], b"just a body line\nsecond\n")
    assert p.returncode == 0
    d = sp.one()
    assert len(header(d, "From")) == 1
    assert d["body"].endswith(b"\n\njust a body line\nsecond\n")


def test_sendmail_mbox_from_line_dropped(sp):
    p = sendmail(sp, ["r@x"], b"From someone Mon Jan  1 00:00:00 2024\nSubject: m\n\nb\n")
    assert p.returncode == 0
    assert not sp.one()["body"].startswith(b"From ")


@pytest.mark.parametrize("args", [
    ["-oem", "-odb", "-odi", "-oee", "-v", "-N", "never", "-B", "8BITMIME", "-R", "hdrs",
     "-X", "/dev/null", "-m", "-n", "-U", "-G", "-L", "lbl", "-h", "5", "-V", "envid"],
    ["-oQ/var/spool/x", "-oA/etc/aliases", "-bm", "--"],
])
def test_sendmail_ignored_options(sp, args):
    p = sendmail(sp, args + ["r@x"])
    assert p.returncode == 0, p.stderr
    assert sp.one()["rcpt"] == ["r@x"]


@pytest.mark.parametrize("args", [["-bv", "r@x"], ["-bd"], ["-Z", "r@x"], ["-f"], ["-bt"]])
def test_sendmail_usage(sp, args):
    assert sendmail(sp, args).returncode == EX_USAGE
    assert sp.names() == []


@pytest.mark.parametrize("rcpt", ["a\rb@x", "a\nb@x", "a" * 321, "x@\x01y", "b\xe9d@x"])
def test_sendmail_bad_address(sp, rcpt):
    p = subprocess.run([SENDMAIL.encode(), rcpt.encode("latin-1")], input=b"x\n", env=sp.env,
                       capture_output=True, timeout=30)
    assert p.returncode == EX_DATAERR, p.stderr
    assert sp.names() == []


def test_sendmail_bad_sender(sp):
    assert sendmail(sp, ["-f", "a@x, b@y", "r@x"]).returncode == EX_DATAERR
    assert sendmail(sp, ["-f", "x" * 400, "r@x"]).returncode == EX_DATAERR
    assert sp.names() == []


def test_sendmail_bad_header_recipient(sp):
    p = sendmail(sp, ["-t"], b"To: " + b"y" * 400 + b"@x\n\nb\n")
    assert p.returncode == EX_DATAERR
    assert sp.names() == []


def test_sendmail_missing_maildrop(sp):
    shutil.rmtree(sp.maildrop)
    p = sendmail(sp, ["r@x"])
    assert p.returncode == EX_TEMPFAIL
    assert sp.maildrop.encode() in p.stderr
    assert not os.path.exists(sp.maildrop)     # never created by the writer


def test_sendmail_bad_config(sp):
    with open(sp.conf, "w") as f:
        f.write("no_such_key 1\n")
    assert sendmail(sp, ["r@x"]).returncode == EX_TEMPFAIL
    assert sp.names() == []


def test_sendmail_C_option(sp):
    other = Spool()
    try:
        p = sendmail(sp, ["-C", other.conf, "r@x"])
        assert p.returncode == 0
        assert sp.names() == [] and len(other.drops()) == 1
    finally:
        shutil.rmtree(other.root, ignore_errors=True)


def test_sendmail_bs_and_q(sp):
    p = sendmail(sp, ["-bs"], b"")
    assert p.stdout.startswith(b"220 ") and b"sendmail -bs" in p.stdout.splitlines()[0]
    assert p.returncode == 0
    p = sendmail(sp, ["-q"], b"")
    assert p.returncode == 75              # no ternd runs on this spool: nothing to flush
    p = sendmail(sp, ["-q30m"], b"")
    assert p.returncode == 0
    assert sp.names() == []


def test_sendmail_bp_runs_mailq(sp):
    if not os.path.exists(os.path.join(BINDIR, "mailq")):
        pytest.skip("no mailq")
    p = sendmail(sp, ["-bp"], b"")
    assert p.returncode != EX_USAGE
    assert b"not supported" not in p.stderr


def drop_privs():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become nobody")
def test_sendmail_unprivileged(sp):
    """as nobody: the 1733 directory cannot be opened for fsync, the writer uses syncfs"""
    p = sendmail(sp, ["r@x"], preexec_fn=drop_privs)
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["owner"] == 65534 and d["uid"] == 65534
    assert d["sender"] == "nobody@" + ME
    sp.clear()
    os.chmod(sp.maildrop, 0o700)
    p = sendmail(sp, ["r@x"], preexec_fn=drop_privs)
    assert p.returncode == EX_NOPERM, p.stderr
    assert sp.names() == []


def test_sendmail_big_message(sp):
    body = b"".join(b"line %06d " % i + b"x" * 100 + b"\r\n" for i in range(20000))
    long_line = b"y" * 200000 + b"\n"
    p = sendmail(sp, ["-i", "r@x"], b"Subject: big\r\n\r\n" + body + long_line)
    assert p.returncode == 0
    d = sp.one()
    assert d["body"].endswith(body.replace(b"\r\n", b"\n") + long_line)


# --- tern-queue ---------------------------------------------------------------------------------

def test_queue_basic(sp):
    p = tern_queue(sp, b"Subject: q\r\n\r\nbody\r\n", b"Fs@x.example\0Ta@y\0Tb\0\0")
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["sender"] == "s@x.example"
    assert d["rcpt"] == ["a@y", "b"]
    assert d["origin"] == "tern-queue uid=%d" % os.getuid()
    first, rest = d["body"].split(b"\n", 1)
    assert first.startswith(b"Received: (tern-queue invoked by uid %d); " % os.getuid())
    assert rest == b"Subject: q\n\nbody\n"


def test_queue_null_sender_and_no_final_newline(sp):
    p = tern_queue(sp, b"Subject: q\n\nno newline", b"F\0Ta@y\0\0trailing junk ignored")
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["sender"] == ""
    assert d["body"].endswith(b"\n\nno newline\n")


@pytest.mark.parametrize("envelope,code", [
    (b"", 91),
    (b"Ts@x\0Ta@y\0\0", 91),          # no F first
    (b"Fs@x\0Ta@y\0", 91),            # EOF before the final \0
    (b"Fs@x\0Ta@y", 91),
    (b"Fs@x\0\0", 91),                # no recipients
    (b"Fs@x\0T\0\0", 91),             # empty recipient
    (b"Fs@x\0Xa@y\0\0", 91),
    (b"Fs@x\0Ta\ry\0\0", 91),         # CR in an address
    (b"Fs\nx\0Ta@y\0\0", 91),
    (b"Fs@x\0T" + b"a" * 321 + b"\0\0", 11),
    (b"F" + b"s" * 321 + b"\0Ta@y\0\0", 11),
    (b"F" + b"s" * 5000, 11),
])
def test_queue_bad_envelope(sp, envelope, code):
    p = tern_queue(sp, b"Subject: x\n\nb\n", envelope)
    assert p.returncode == code, p.stderr
    assert sp.names() == []


def test_queue_max_address_ok(sp):
    p = tern_queue(sp, b"x\n", b"F" + b"s" * 320 + b"\0T" + b"r" * 320 + b"\0\0")
    assert p.returncode == 0, p.stderr
    assert sp.one()["rcpt"] == ["r" * 320]


def test_queue_missing_spool(sp):
    shutil.rmtree(sp.maildrop)
    p = tern_queue(sp, b"x\n", b"Fs@x\0Ta@y\0\0")
    assert p.returncode == 61
    sp.write_conf(os.path.join(sp.root, "nowhere"))
    assert tern_queue(sp, b"x\n", b"Fs@x\0Ta@y\0\0").returncode == 61
    assert not os.path.exists(sp.maildrop)


def test_queue_read_errors(sp):
    # fd 0 a directory: read() fails with EISDIR
    fd = os.open(sp.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r, w = os.pipe()
        os.write(w, b"Fs@x\0Ta@y\0\0")
        os.close(w)
        p = subprocess.run([TERNQUEUE], stdin=fd, stdout=r, stderr=subprocess.PIPE,
                           env=sp.env, timeout=30)
        os.close(r)
        assert p.returncode == 54
    finally:
        os.close(fd)
    # fd 1 the write end of a pipe: reading it fails
    r, w = os.pipe()
    p = subprocess.run([TERNQUEUE], input=b"x\n", stdout=w, stderr=subprocess.PIPE,
                       env=sp.env, timeout=30)
    os.close(r)
    os.close(w)
    assert p.returncode == 54
    assert sp.names() == []


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become nobody")
def test_queue_unprivileged(sp):
    p = tern_queue(sp, b"x\n", b"Fs@x\0Ta@y\0\0", preexec_fn=drop_privs)
    assert p.returncode == 0, p.stderr
    d = sp.one()
    assert d["owner"] == 65534
    assert d["body"].startswith(b"Received: (tern-queue invoked by uid 65534); ")
    sp.clear()
    os.chmod(sp.maildrop, 0o700)
    p = tern_queue(sp, b"x\n", b"Fs@x\0Ta@y\0\0", preexec_fn=drop_privs)
    assert p.returncode == 61
    assert sp.names() == []


# --- disk full ----------------------------------------------------------------------------------

FULL_SCRIPT = r"""
set -u
mount -t tmpfs -o size=64k tmpfs "$SPOOL" || exit 200
mkdir -m 1733 "$SPOOL/maildrop"
head -c 300000 /dev/zero | tr '\0' 'x' | fold -w 70 > "$ROOT/big"
"$SENDMAIL" -i r@x < "$ROOT/big"; echo "sendmail=$?"
printf 'Fs@x\0Ta@y\0\0' > "$ROOT/env"
"$TERNQUEUE" < "$ROOT/big" 1< "$ROOT/env"; echo "ternqueue=$?"
echo small | "$SENDMAIL" r@x; echo "small=$?"
echo "files=$(ls -A "$SPOOL/maildrop" | grep -c '^tmp\.')"
echo "all=$(ls -A "$SPOOL/maildrop" | wc -l)"
"""


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare for a private tmpfs")
def test_disk_full(sp):
    env = dict(sp.env, SPOOL=sp.spool, ROOT=sp.root, SENDMAIL=SENDMAIL, TERNQUEUE=TERNQUEUE)
    try:
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            FULL_SCRIPT], env=env, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.skip("unshare/mount timed out")
    if p.returncode == 200 or b"sendmail=" not in p.stdout:
        pytest.skip("cannot mount a tmpfs here: %r" % p.stderr[-200:])
    res = dict(l.split("=", 1) for l in p.stdout.decode().split())
    assert res["sendmail"] == str(EX_TEMPFAIL), p.stderr
    assert res["ternqueue"] == "53", p.stderr
    assert res["small"] == "0", p.stderr        # space was given back
    assert res["files"] == "0"
    assert res["all"] == "1"
