"""tests/e2e/test_pop3.py — the POP3 server end to end: `listen pop3` and `listen pop3s`
served by the smtp role's POP3 session, logins checked by the lookup role, the user's
Maildir read by tern-pop3 forked by the parent with the user's uid; pop-before-smtp.

Peers: Python's poplib (USER/PASS, APOP, STLS, POP3_SSL), curl (pop3://, pop3s://) and raw
sockets. Certificates come from tests/e2e/tlsca.py. Every wait polls a condition.
Owns: its ternd instances and their directories. Trusts: conftest.Tern."""
import base64
import fcntl
import os
import poplib
import pwd
import shutil
import socket
import ssl
import struct
import subprocess
import termios
import time

import pytest

from conftest import REPO, descendants, free_port, rss_kb, wait_for
from tlsca import TestCA

TERNCTL = REPO / "build" / "tbin" / "ternctl"
UID, GID = 1500, 1500
PASSWORD = "s3cret pass"
APOPSECRET = "apop-secret"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (workers setuid)")


def digest(pw):
    out = subprocess.run([str(TERNCTL), "digest", "SSHA", pw], check=True,
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def role_uid(t):
    return pwd.getpwnam(t.config.get("user", "_tern")).pw_uid


class Box:
    """A POP3 test setup: a ternd with pop3/pop3s listeners, users joe (SSHA), ann ({PLAIN}
    for APOP), grp0 (gid 0) and roleuid (the uid of the roles' account)."""

    def __init__(self, make_tern, workdir, extra=None, env=None):
        self.ca = TestCA(workdir / "ca")
        leaf = self.ca.leaf("pop.tern.test", ips=["127.0.0.1"])
        self.pop, self.pops = free_port(), free_port()
        cfg = {"servercert": str(leaf.pem)}
        cfg.update(extra or {})
        self.t = make_tern(config=cfg, start=False, env=env)
        self.t.config["listen"] = self.t.config["listen"] + [
            f"pop3 127.0.0.1:{self.pop}", f"pop3s 127.0.0.1:{self.pops}"]
        self.t.config["users"] = "file:" + str(self.write_users())
        self.t.start()

    def home(self, user):
        return self.t.mail / user

    def maildir(self, user):
        return self.home(user) / "Maildir"

    def write_users(self):
        lines = []
        for user, uid, gid, pw in (("joe", UID, GID, digest(PASSWORD)),
                                   ("ann", UID + 1, GID, "{PLAIN}" + APOPSECRET),
                                   ("grp0", UID + 2, 0, digest(PASSWORD)),
                                   ("roleuid", role_uid(self.t), GID, digest(PASSWORD)),
                                   ("empty", UID + 3, GID, digest(PASSWORD))):
            home = self.home(user)
            home.mkdir(parents=True, exist_ok=True)
            dirs = [home]
            if user != "empty":                       # no mail delivered yet: no Maildir
                dirs += [home / "Maildir"] + [home / "Maildir" / s for s in ("new", "cur", "tmp")]
            for d in dirs:
                d.mkdir(exist_ok=True)
                os.chown(d, uid, gid)
                os.chmod(d, 0o700)
            lines.append(f"{user}:{uid}:{gid}:{home}:{pw}\n")
        path = self.t.dir / "users"
        path.write_text("".join(lines))
        os.chmod(path, 0o644)
        return path

    def put(self, user, name, text, sub="new", mtime=None):
        p = self.maildir(user) / sub / name
        p.write_bytes(text)
        os.chown(p, UID, GID)
        if mtime:
            os.utime(p, (mtime, mtime))
        return p

    def names(self, user, sub):
        return sorted(os.listdir(self.maildir(user) / sub))

    def client(self):
        return poplib.POP3("127.0.0.1", self.pop, timeout=10)

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        ctx.check_hostname = False
        return ctx

    def login(self, user="joe", pw=PASSWORD):
        c = self.client()
        c.user(user)
        c.pass_(pw)
        return c


@pytest.fixture
def box(make_tern, workdir):
    return Box(make_tern, workdir, {"authplaintext": "yes"})


MSG1 = b"Subject: one\n\nline 1\n.dotted\nline 3\n"
MSG2 = b"Subject: two\r\n\r\nbody two\r\n"


def fill(box):
    box.put("joe", "1700000001.M1P1.tern.test", MSG1, mtime=1700000001)
    box.put("joe", "1700000002.M2P2.tern.test:2,S", MSG2, sub="cur", mtime=1700000002)


def test_user_pass_list_retr_and_stable_uidl(box):
    fill(box)
    c = box.login()
    count, size = c.stat()
    assert count == 2
    # sizes as the client sees the message: LF sent as CRLF
    assert size == len(MSG1.replace(b"\n", b"\r\n")) + len(MSG2)
    resp, lines, _ = c.uidl()
    uidls = [l.split()[1] for l in lines]
    assert uidls == [b"1700000001.M1P1.tern.test", b"1700000002.M2P2.tern.test"]
    resp, lines, octets = c.retr(1)
    assert resp.startswith(b"+OK")
    assert lines == [b"Subject: one", b"", b"line 1", b".dotted", b"line 3"]   # un-stuffed
    resp, lines, _ = c.top(2, 0)
    assert lines == [b"Subject: two", b""]
    # new/ -> cur/ on listing, with the info part
    assert box.names("joe", "new") == []
    assert "1700000001.M1P1.tern.test:2," in box.names("joe", "cur")
    c.quit()
    c = box.login()
    assert [l.split()[1] for l in c.uidl()[1]] == uidls          # stable across sessions
    c.quit()
    assert "event=pop3_session" in box.t.log()


def test_dot_stuffing_on_the_wire(box):
    fill(box)
    with socket.create_connection(("127.0.0.1", box.pop), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(f"USER joe\r\nPASS {PASSWORD}\r\nRETR 1\r\nQUIT\r\n".encode())
        data = b""
        while not data.endswith(b"+OK bye\r\n"):
            chunk = f.read1(65536)
            assert chunk, data
            data += chunk
    assert b"\r\n..dotted\r\nline 3\r\n.\r\n" in data


def test_dele_quit_removes_and_drop_keeps(box):
    fill(box)
    c = box.login()
    c.dele(1)
    c.file.close()                                  # dropped: nothing removed (poplib's
    c.sock.close()                                  # file holds the socket open too)
    assert wait_for(lambda: "event=pop3_dropped" in box.t.log())
    assert len(box.names("joe", "cur")) == 2
    c = box.login()
    assert c.stat()[0] == 2
    c.dele(1)
    assert c.stat()[0] == 1
    c.rset()
    c.dele(2)
    c.quit()
    assert box.names("joe", "cur") == ["1700000001.M1P1.tern.test:2,"]


def test_no_maildir_yet_is_an_empty_maildrop(box):
    c = box.login("empty")
    assert c.stat() == (0, 0)
    assert c.list()[1] == []
    c.quit()
    assert not (box.home("empty") / "Maildir").exists()


def test_wrong_password(box):
    c = box.client()
    c.user("joe")
    with pytest.raises(poplib.error_proto) as e:
        c.pass_("wrong")
    assert b"-ERR" in e.value.args[0]
    c.quit()
    assert wait_for(lambda: "auth_fail" in box.t.log())
    assert "pop3_worker" not in box.t.log()


def mem_count(pid, needle):
    """How often needle is in the writable memory of process pid (read as root)."""
    n = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for ln in maps:
            a = ln.split()
            if "w" not in a[1] or (len(a) > 5 and a[5].startswith("[v")):
                continue
            lo, hi = (int(x, 16) for x in a[0].split("-"))
            try:
                mem.seek(lo)
                n += mem.read(hi - lo).count(needle)
            except OSError:
                pass
    return n


def test_passwords_wiped_after_a_login(box):
    """A refused password leaves no copy in the lookup role (the channel's input buffer) nor
    in the session's input buffer of the smtp role."""
    secret = "wipe-me-" + os.urandom(8).hex()
    c = box.client()
    c.user("joe")
    with pytest.raises(poplib.error_proto):
        c.pass_(secret)
    pids = box.t.role_pids()
    assert wait_for(lambda: "event=pop3_auth_fail" in box.t.log())
    c.capa()                                           # the session and loop went round
    assert mem_count(pids["lookup"], secret.encode()) == 0
    assert mem_count(pids["smtp"], secret.encode()) == 0
    c.quit()


def test_worker_runs_as_the_user(box):
    fill(box)
    c = box.login()
    c.stat()

    def worker_uids():
        uids = []
        for pid, _ in descendants(box.t.proc.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            uids.append(int(line.split()[1]))
            except OSError:
                pass
        return uids
    assert UID in worker_uids()
    c.quit()
    # the worker's own log line comes through the parent's pipe: it may trail the reply
    assert wait_for(lambda: f"event=pop3_open user=joe uid={UID}" in box.t.log(), 10), \
        box.t.log_tail()
    assert wait_for(lambda: UID not in worker_uids())


def worker_pid(box):
    for pid, _ in descendants(box.t.proc.pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                if any(l.startswith("Uid:") and int(l.split()[1]) == UID for l in f):
                    return pid
        except OSError:
            pass
    return None


def test_worker_has_no_stderr_or_session_of_the_daemon(box):
    """The worker runs as the user (dumpable after its exec): the user's processes can take
    its descriptors (pidfd_getfd, ptrace). It must not hold the daemon's log nor share its
    session (terminal); what it logs reaches the log through the parent, escaped."""
    fill(box)
    c = box.login()
    c.stat()
    assert wait_for(lambda: worker_pid(box))
    pid = worker_pid(box)
    daemon = box.t.proc.pid
    assert os.readlink(f"/proc/{pid}/fd/2") != os.readlink(f"/proc/{daemon}/fd/2")
    assert os.getsid(pid) != os.getsid(daemon)
    c.quit()
    assert wait_for(lambda: "event=pop3_quit user=joe" in box.t.log())


def test_worker_log_pipe_is_bounded(box):
    """What reaches the worker's stderr (the user's processes can write there too) is logged
    escaped, one line each, and at most 1000 lines of it per worker."""
    c = box.login()
    c.stat()
    assert wait_for(lambda: worker_pid(box))
    with open(f"/proc/{worker_pid(box)}/fd/2", "wb") as w:
        w.write(b"parent[1] info: event=forged\r\n" * 1500)
    c.quit()
    assert wait_for(lambda: "event=pop3_worker_log_dropped" in box.t.log())
    log = box.t.log()
    assert "parent[1] info: event=forged\\r" in log            # escaped, inside line="..."
    assert not any(l.startswith("parent[1]") for l in log.splitlines())
    assert log.count("event=forged") < 1000


@pytest.mark.parametrize("user", ["grp0", "roleuid"])
def test_privileged_accounts_refused(box, user):
    c = box.client()
    c.user(user)
    with pytest.raises(poplib.error_proto):
        c.pass_(PASSWORD)
    assert wait_for(lambda: "event=fork_refused kind=pop3" in box.t.log())
    assert "event=pop3_open" not in box.t.log()


def test_apop_with_a_cleartext_secret(box):
    box.put("ann", "1700000003.M3P3.tern.test", MSG1)
    c = box.client()
    assert c.apop("ann", APOPSECRET).startswith(b"+OK")
    assert c.stat()[0] == 1
    c.quit()
    c = box.client()
    with pytest.raises(poplib.error_proto):
        c.apop("ann", "wrong")


def test_sasl_plain_login_cram(box):
    fill(box)
    box.put("ann", "1700000003.M3P3.tern.test", MSG1)
    b64 = lambda b: base64.b64encode(b).decode()
    with socket.create_connection(("127.0.0.1", box.pop), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        resp = b64(f"\0joe\0{PASSWORD}".encode())
        s.sendall(b"AUTH PLAIN\r\n")
        assert f.readline().startswith(b"+ ")
        s.sendall(resp.encode() + b"\r\n")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"STAT\r\n")
        assert f.readline().startswith(b"+OK 2 ")
        s.sendall(f"AUTH PLAIN {resp}\r\n".encode())       # logged in: the worker's -ERR
        assert f.readline().startswith(b"-ERR")
        s.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
    with socket.create_connection(("127.0.0.1", box.pop), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"AUTH PLAIN *bad*\r\n")                # bad base64: -ERR, still usable
        assert f.readline().startswith(b"-ERR")
        s.sendall(b"AUTH LOGIN\r\n")
        assert f.readline() == b"+ VXNlcm5hbWU6\r\n"
        s.sendall(b64(b"joe").encode() + b"\r\n")
        assert f.readline() == b"+ UGFzc3dvcmQ6\r\n"
        s.sendall(b64(PASSWORD.encode()).encode() + b"\r\n")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
    import hmac
    with socket.create_connection(("127.0.0.1", box.pop), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"AUTH CRAM-MD5\r\n")
        line = f.readline()
        assert line.startswith(b"+ ")
        challenge = base64.b64decode(line[2:].strip())
        digest = hmac.new(APOPSECRET.encode(), challenge, "md5").hexdigest()
        s.sendall(b64(f"ann {digest}".encode()).encode() + b"\r\n")
        assert f.readline().startswith(b"+OK 1 messages")
        s.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")


def test_sasl_plain_authzid_as_on_smtp(box):
    """PLAIN's authorisation identity follows the lookup role's rule, the same for SMTP and
    POP3: empty, the login, or an address whose local part is the login's user."""
    fill(box)
    for authzid, ok in (("joe@localhost", True), ("JOE", True), ("ann", False)):
        with socket.create_connection(("127.0.0.1", box.pop), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()
            resp = base64.b64encode(f"{authzid}\0joe\0{PASSWORD}".encode()).decode()
            s.sendall(f"AUTH PLAIN {resp}\r\n".encode())
            line = f.readline()
            assert line.startswith(b"+OK" if ok else b"-ERR"), (authzid, line)
            s.sendall(b"QUIT\r\n")
            assert f.readline().startswith(b"+OK")


def test_plaintext_needs_tls_then_stls(make_tern, workdir):
    b = Box(make_tern, workdir)                              # authplaintext no (the default)
    fill(b)
    c = b.client()
    caps = c.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto):
        c.user("joe")
    c.stls(b.tls_context())
    caps = c.capa()
    assert "USER" in caps and "STLS" not in caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"]         # CRAM-MD5: taken, not advertised
    c.user("joe")
    c.pass_(PASSWORD)
    assert c.stat()[0] == 2
    c.quit()
    assert "tls=yes" in b.t.log()


def test_authmechs_applies_to_pop3(make_tern, workdir):
    """`authmechs` limits POP3's AUTH and its CAPA SASL line as it does SMTP AUTH; once
    logged in, CAPA lists the worker's TRANSACTION capabilities, no login method."""
    b = Box(make_tern, workdir, {"authplaintext": "yes", "authmechs": "LOGIN"})
    fill(b)
    c = b.client()
    assert c.capa()["SASL"] == ["LOGIN"]
    with pytest.raises(poplib.error_proto):
        c._shortcmd("AUTH PLAIN " + base64.b64encode(f"\0joe\0{PASSWORD}".encode()).decode())
    assert c._shortcmd("AUTH LOGIN").startswith(b"+ ")
    assert c._shortcmd(base64.b64encode(b"joe").decode()).startswith(b"+ ")
    assert c._shortcmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(b"+OK")
    caps = c.capa()
    assert "USER" not in caps and "SASL" not in caps and "UIDL" in caps
    c.quit()


def test_stls_pipelined_commands_dropped(box):
    with socket.create_connection(("127.0.0.1", box.pop), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"STLS\r\nUSER joe\r\n")
        assert f.readline().startswith(b"+OK")
        t = box.tls_context().wrap_socket(s)
        t.sendall(b"CAPA\r\n")
        tf = t.makefile("rb")
        assert tf.readline().startswith(b"+OK")
        t.sendall(b"QUIT\r\n")
    assert wait_for(lambda: "event=pop3_stls_pipelined" in box.t.log())


def test_pop3s(box):
    fill(box)
    c = poplib.POP3_SSL("127.0.0.1", box.pops, context=box.tls_context(), timeout=10)
    c.user("joe")
    c.pass_(PASSWORD)
    assert c.stat()[0] == 2
    assert c.retr(2)[1] == [b"Subject: two", b"", b"body two"]
    c.quit()


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_curl_pop3_and_pop3s(box):
    fill(box)
    user = f"joe:{PASSWORD}"
    out = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", user,
                          f"pop3://127.0.0.1:{box.pop}/"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.replace(b"\r\n", b"\n").split(b"\n")[:2] == [b"1 " + str(len(MSG1) + 5).encode(),
                                                                 b"2 " + str(len(MSG2)).encode()]
    out = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", user, "--cacert",
                          str(box.ca.cert), f"pop3s://127.0.0.1:{box.pops}/2"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == MSG2
    out = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", user, "--ssl-reqd",
                          "--cacert", str(box.ca.cert), f"pop3://127.0.0.1:{box.pop}/1"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == MSG1.replace(b"\n", b"\r\n")


def relay_rcpt(t):
    with t.smtp() as s:
        s.cmd("HELO client.test")
        s.cmd("MAIL FROM:<a@client.test>")
        code, _ = s.cmd("RCPT TO:<x@remote.test>")
        s.cmd("QUIT")
    return code


def test_pop_before_smtp(make_tern, workdir):
    b = Box(make_tern, workdir, {"authplaintext": "yes", "pbstimeout": "2"})
    assert relay_rcpt(b.t) >= 500
    c = b.login()
    c.quit()
    assert relay_rcpt(b.t) == 250
    assert wait_for(lambda: relay_rcpt(b.t) >= 500, timeout=10, step=0.2)   # expired


def raw(box):
    s = socket.create_connection(("127.0.0.1", box.pop), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    return s, f


def test_limits_line_length_and_bad_commands(box):
    s, f = raw(box)
    s.sendall(b"USER " + b"x" * 2000 + b"\r\n")
    assert f.readline().startswith(b"-ERR")
    assert f.readline() == b""                     # closed
    s.close()
    s, f = raw(box)
    for _ in range(10):
        s.sendall(b"BOGUS\r\n")
    lines = [f.readline() for _ in range(12)]
    assert all(l.startswith(b"-ERR") for l in lines[:10]), lines
    assert lines[10:] == [b"-ERR too many errors\r\n", b""]
    s.close()
    s, f = raw(box)
    s.sendall(b"STAT\r\nPASS x\r\n")               # TRANSACTION before login; PASS before USER
    assert f.readline().startswith(b"-ERR")
    assert f.readline().startswith(b"-ERR")
    s.close()


def test_pipelined_capa_without_reading_is_bounded(box):
    """A client pipelining commands without reading the answers: the session stops reading
    while its output is backed up, so the smtp role's memory stays bounded, and every
    answer still comes once the client reads."""
    pid = box.t.role_pids()["smtp"]
    before = rss_kb(pid)
    n = 200000                                         # 1.2 MB of CAPA, ~27 MB of answers
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(30)
    s.connect(("127.0.0.1", box.pop))
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    data = b"CAPA\r\n" * n
    s.setblocking(False)
    sent = s.send(data)                                # what the kernel takes at once
    limit = 8 * 1024

    def unsent():
        return struct.unpack("i", fcntl.ioctl(s, termios.TIOCOUTQ, b"\0" * 4))[0]
    # the server reads what it will read: all of it (unbounded), or until it pauses; the
    # wait ends early on the failure (all read, or the role grown past the limit)
    wait_for(lambda: unsent() == 0 or rss_kb(pid) - before > limit, timeout=3)
    other = box.client()                               # the loop went round since
    other.quit()
    grown = rss_kb(pid) - before
    assert grown < limit, f"smtp grew by {grown} kB while its client did not read"
    s.settimeout(30)
    s.sendall(data[sent:] + b"QUIT\r\n")
    got = 0
    while True:
        ln = f.readline()
        assert ln, got
        if ln == b"IMPLEMENTATION tern\r\n":
            got += 1
        if ln.startswith(b"+OK bye"):
            break
    assert got == n
    s.close()


def test_timeout(make_tern, workdir):
    b = Box(make_tern, workdir, {"authplaintext": "yes", "timeoutpop3d": "1"})
    s, f = raw(b)
    s.settimeout(10)
    assert f.readline() == b"-ERR timeout\r\n"
    assert f.readline() == b""
    s.close()


def test_login_waiting_for_a_lost_spawn_times_out(make_tern, workdir):
    """The parent drops M_POP_SPAWN (a test-build hook standing for a malformed one): the
    session, paused while it waits, still ends after timeoutpop3d with a temporary error."""
    b = Box(make_tern, workdir, {"authplaintext": "yes", "timeoutpop3d": "1"},
            env={"TERN_TEST_POP_DROP_SPAWN": "1"})
    s, f = raw(b)
    s.settimeout(8)
    s.sendall(f"USER joe\r\nPASS {PASSWORD}\r\n".encode())
    assert f.readline() == b"+OK\r\n"
    assert f.readline().startswith(b"-ERR [SYS/TEMP]")
    assert f.readline() == b""
    s.close()


def test_shutdown_cuts_sessions_and_keeps_mail(box):
    fill(box)
    c = box.login()
    c.dele(1)
    c.dele(2)
    started = time.monotonic()
    assert box.t.stop() == 0
    assert time.monotonic() - started < 5
    assert len(box.names("joe", "cur")) == 2         # no QUIT: nothing removed
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        c.stat()


def test_roles_with_secrets_are_not_dumpable(box):
    """The parent, lookup (password hashes) and smtp (the TLS key) roles are not dumpable:
    no core file, and their /proc files belong to root (the kernel's sign of it) although
    the roles run as their own accounts."""
    pids = box.t.role_pids()
    for name in ("smtp", "lookup"):
        st = os.stat(f"/proc/{pids[name]}/environ")
        assert os.stat(f"/proc/{pids[name]}").st_uid != 0, name        # runs as its account
        assert st.st_uid == 0, name

