"""tests/e2e/test_mailq2.py — ZMailer's MAILQ v2 protocol (PROTOCOLS.md §1) byte for byte.

Two setups:
- the control role alone under tests/e2e/control_driver.c (compiled here against build/ and
  src/ternd/control/{control,admin,mailq2d,metrics}.c), whose fake scheduler and queue answer with
  canned, deterministic data: every reply format is compared byte for byte, with no masking,
  and every right, refusal and error path is exercised;
- a whole ternd (conftest's Tern) with `listen mailq`, where the same client logs in, sees a
  deferred message in SHOW QUEUE THREADS / SHOW THREAD (times masked) and KILLs it.

The client below is a plain MAILQ v2 client: it reads the greeting, answers the challenge
with MD5(challenge line + password) in lowercase hex and reads POP3-style multi-line replies.
The live ternd names its auth file with the `mailq_auth` key; the fake-peer driver still
passes it as TERN_MAILQ_AUTH.

Owns: its temporary directories and the processes it starts. Trusts: build/ (run make).
"""
import contextlib
import hashlib
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import peer_closed

from conftest import REPO, TMPROOT, free_port

DRIVER_SRC = ["tests/e2e/control_driver.c", "src/ternd/control/control.c", "src/ternd/control/admin.c",
              "src/ternd/control/mailq2d.c", "src/ternd/control/metrics.c", "src/ternd/role.c"]

AUTH = """# user:password:RIGHTS:ACL
alice:secret:ALL:
snmp:pw-snmp:SNMP:[127.0.0.0]/8 [IPv6:::1]/128
qq:pw-qq:QQ ETRN:
tt:pw-tt:TT:
none:pw-none:NONE:
killer:pw-kill:KILL:
v6only:pw-v6:ALL:[IPv6:::1]
notlo:pw-notlo:ALL:![127.0.0.1] [127.0.0.0]/8
"""

REFUSE = "-MAILQ2 Unknown command, or refused by access control; VERB='{}' REST='{}'\n"


# --------------------------------------------------------------------------- the driver

def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def control_driver():
    """Path of the compiled control_driver (built once per session)."""
    libs = [REPO / "build" / "t" / "libmail.a", REPO / "build" / "t" / "libtern.a"]
    for lib in libs:
        if not lib.exists():
            pytest.fail(f"{lib} is missing: run make first")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    d = pathlib.Path(tempfile.mkdtemp(prefix="tern-control-driver-", dir=TMPROOT))
    exe = d / "control_driver"
    m = re.search(r"^LIBS\s*:=\s*(.*)$", (REPO / "Makefile").read_text(), re.M)
    syslibs = m[1].split() if m else ["-levent_core", "-lcrypto", "-lcdb", "-lcrypt", "-lm"]
    extra = os.environ.get("CONTROL_DRIVER_CFLAGS", "").split()
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-DTERN_TEST", "-O1", "-g", *extra, "-I" + str(REPO / "src"),
                    "-o", str(exe), *[str(REPO / p) for p in DRIVER_SRC], *map(str, libs),
                    *syslibs], check=True, timeout=120)
    yield exe
    shutil.rmtree(d, ignore_errors=True)


class Driver:
    """One control role under the driver: .mailq / .mailq6 / .metrics ports, .spool,
    .conf; .send(cmd) talks to its stdin; .requests() are the fake peers' request lines."""

    def __init__(self, exe, base, auth=AUTH, extra=()):
        self.dir = pathlib.Path(base)
        self.spool = self.dir / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.spool, 0o755)
        (self.spool / "message.txt").write_text("Subject: hi\n\n.dot line\nbody\n")
        self.auth = self.dir / "mailq_auth"
        self.auth.write_text(auth)
        self.mailq, self.mailq6, self.metrics = free_port(), free_port6(), free_port()
        self.conf = self.dir / "tern.conf"
        self.conf.write_text("\n".join([
            f"spool {self.spool}", f"listen mailq 127.0.0.1:{self.mailq}",
            f"listen mailq [::1]:{self.mailq6}", f"listen metrics 127.0.0.1:{self.metrics}",
            *extra]) + "\n")
        os.chmod(self.conf, 0o644)
        self.out = open(self.dir / "driver.out", "w+")
        self.err = open(self.dir / "driver.err", "w+")
        env = dict(os.environ, TERN_MAILQ_AUTH=str(self.auth), TERN_CONF=str(self.conf))
        self.env = env
        self.proc = subprocess.Popen([str(exe), str(self.conf)], stdin=subprocess.PIPE,
                                     stdout=self.out, stderr=self.err, text=True, env=env)
        deadline = time.monotonic() + 10
        while "ready" not in self.stdout():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.02)
        time.sleep(0.1)

    def stdout(self):
        self.out.seek(0)
        return self.out.read()

    def log(self):
        self.err.seek(0)
        return f"stdout:\n{self.stdout()}\nstderr:\n{self.err.read()}"

    def requests(self):
        return [l for l in self.stdout().splitlines() if l not in ("ready",) and
                not l.startswith("did ") and not l.startswith("exit ")]

    def send(self, line):
        n = self.stdout().count("did ")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + 5
        while self.stdout().count("did ") == n and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return [l for l in self.stdout().splitlines() if l.startswith("exit ")]


@pytest.fixture
def make_driver(control_driver, workdir):
    drivers = []

    def make(**kw):
        d = Driver(control_driver, workdir / f"d{len(drivers)}", **kw)
        drivers.append(d)
        return d

    yield make
    for d in drivers:
        status = d.stop()
        assert status == ["exit 0"], d.log()


@pytest.fixture
def drv(make_driver):
    return make_driver()


# --------------------------------------------------------------------------- the client

class MailqClient:
    """A MAILQ v2 client: .version and .challenge after connecting."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.version = self.f.readline()
        self.challenge = self.f.readline()

    def line(self):
        return self.f.readline().decode("utf-8", errors="replace")

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\n")
        return self.line()

    def multi(self, text):
        """(first line, body as bytes) of a multi-line reply (body still dot-stuffed)."""
        first = self.cmd(text)
        if not first.startswith("+OK until LF.LF"):
            return first, None
        body = b""
        while True:
            l = self.f.readline()
            assert l, f"connection closed inside the reply to {text!r}"
            if l == b".\n":
                return first, body
            body += l

    def response(self, password):
        return hashlib.md5(self.challenge.rstrip(b"\n") + password.encode()).hexdigest()

    def auth(self, user, password):
        return self.cmd(f"AUTH {user} {self.response(password)}")

    def closed(self, timeout=5):
        return peer_closed(self.sock, self.f, timeout)

    def close(self):
        with contextlib.suppress(OSError):
            self.f.close()
            self.sock.close()


@contextlib.contextmanager
def client(port, host="127.0.0.1", login=None):
    c = MailqClient(port, host)
    try:
        if login:
            assert c.auth(*login) == "+OK\n"
        yield c
    finally:
        c.close()


# --------------------------------------------------------------------------- expected bodies

SNMP = ("Kids: 2  Idle:  0  Msgs:   3  Thrds:   3  Rcpnts:    5  Uptime: 3723 sec\n"
        "Msgs in 12 out 9 stored 3 Rcpnts in 20 out 15 stored 5\n")
GLOBALS = ("Kids: 2  Idle:  0  Msgs:   3  Thrds:   3  Rcpnts:    5  Uptime: 1h2m3s\n"
           "Msgs in 12 out 9 stored 3 Rcpnts in 20 out 15 stored 5\n")
GROUP_LOCAL = "\tThreads:    1 Msgs:     1 Procs:   1 Idle:   0 Plim:  10 Flim:   0 Tlim: 0\n"
GROUP_SMTP = "\tThreads:    2 Msgs:     3 Procs:   1 Idle:   0 Plim:  20 Flim:   0 Tlim: 0\n"
SHORT = "local/*/0\n" + GROUP_LOCAL + "smtp/*/0\n" + GROUP_SMTP + GLOBALS
THREADS = ("local/*/0\n"
           "    local//0\t\t\tN=1   R=1   A=0  QA=1m5s\n" + GROUP_LOCAL +
           "smtp/*/0\n"
           "    smtp/example.com/0\t\tN=2   R=3   A=4  W=300s QA=1d18h S=dead\n"
           "    smtp/a-very-long-host-name.example.org/0 N=1   R=1   A=1  QA=11h11m28s\n" +
           GROUP_SMTP + GLOBALS)
THREADS2 = ("local\t\tN=1\tR=1\tA=0\tQA=1m5s\n"
            "smtp\texample.com\tN=2\tR=3\tA=4\tQA=1d18h\tS=dead\n"
            "smtp\ta-very-long-host-name.example.org\tN=1\tR=1\tA=1\tQA=11h11m28s\n")
THREAD = ("0123456789abcdef\t<a@b>\t2\t1604800\t1088282\t999000\t3\tretry in 1d31m22s\t"
          "451 try later\n"
          "fedcba9876543210\t<>\t0\t1604800\t0\t0\t0\tchannel\t\n")


# --------------------------------------------------------------------------- login

def test_greeting_and_challenge(drv):
    challenges = set()
    for _ in range(3):
        with client(drv.mailq) as c:
            assert c.version == b"version zmailer 2.0\n"
            assert re.fullmatch(rb"220 MAILQ-V2-CHALLENGE: [0-9a-f]{32}\n", c.challenge)
            challenges.add(c.challenge)
    assert len(challenges) == 3


def test_login_and_retry_after_a_bad_password(drv):
    with client(drv.mailq) as c:
        t0 = time.monotonic()
        assert c.cmd("AUTH alice " + "0" * 32) == "-BAD USER OR PASSWORD\n"
        assert time.monotonic() - t0 >= 0.2            # a failed login is answered late
        assert c.cmd("AUTH ghost " + c.response("secret")) == "-BAD USER OR PASSWORD\n"
        assert c.cmd("AUTH alice") == "-BAD USER OR PASSWORD\n"
        assert c.auth("alice", "secret") == "+OK\n"     # the connection stayed usable
        assert c.multi("SHOW SNMP") == ("+OK until LF.LF\n", SNMP.encode())
        # AUTH again after login is not a command
        assert c.cmd("AUTH alice x") == REFUSE.format("AUTH", "alice x")


def test_uppercase_hex_and_crlf_are_accepted(drv):
    with client(drv.mailq) as c:
        c.sock.sendall(f"AUTH alice {c.response('secret').upper()}\r\n".encode())
        assert c.line() == "+OK\n"
        c.sock.sendall(b"SHOW SNMP\r\n")
        assert c.line() == "+OK until LF.LF\n"


def test_failed_logins_slow_down(drv):
    with client(drv.mailq) as c:
        delays = []
        for _ in range(4):
            t0 = time.monotonic()
            assert c.cmd("AUTH alice " + "f" * 32) == "-BAD USER OR PASSWORD\n"
            delays.append(time.monotonic() - t0)
        assert delays[-1] > delays[0] * 2, delays
        # other clients are not blocked while one waits (a timer, not a sleep)
        c.sock.sendall(("AUTH alice " + "f" * 32 + "\n").encode())
        t0 = time.monotonic()
        with client(drv.mailq, login=("alice", "secret")) as other:
            assert other.multi("SHOW SNMP")[0] == "+OK until LF.LF\n"
        assert time.monotonic() - t0 < 1.0
        assert c.line() == "-BAD USER OR PASSWORD\n"


def test_commands_before_login(drv):
    with client(drv.mailq) as c:
        for cmd in ("SHOW SNMP", "ETRN example.com", "KILL MSG 0123456789abcdef", "NOOP"):
            assert c.cmd(cmd) == "-BAD; USER MUST AUTHENTICATE\n"
        assert c.cmd("quit") == "+Bye bye\n"
        assert c.closed()


@pytest.mark.parametrize("word", ["QUIT", "EXIT", "exit", "Quit"])
def test_quit_is_case_insensitive(drv, word):
    with client(drv.mailq, login=("alice", "secret")) as c:
        assert c.cmd(word) == "+Bye bye\n"
        assert c.closed()


# --------------------------------------------------------------------------- access control

def test_no_entry_admits_the_address(make_driver):
    d = make_driver(auth="ops:pw:ALL:[IPv6:::1]\nmon:pw:SNMP:![127.0.0.1] [127.0.0.0]/8\n")
    with client(d.mailq) as c:
        assert c.version == b"550 NO ACCESS FOR YOU\n"
        assert c.challenge == b""                     # and closed
    with client(d.mailq6, host="::1", login=("ops", "pw")) as c:
        assert c.version == b"version zmailer 2.0\n"
        assert c.multi("SHOW SNMP")[1] == SNMP.encode()


def test_acl_v4_v6_and_negation(drv):
    # v6only: only from ::1
    with client(drv.mailq) as c:
        assert c.auth("v6only", "pw-v6") == "-BAD USER OR PASSWORD\n"
    with client(drv.mailq6, host="::1") as c:
        assert c.auth("v6only", "pw-v6") == "+OK\n"
    # notlo: 127.0.0.0/8 except 127.0.0.1 — the first matching pattern decides
    with client(drv.mailq) as c:
        assert c.auth("notlo", "pw-notlo") == "-BAD USER OR PASSWORD\n"
    # snmp: [127.0.0.0]/8 and [IPv6:::1]/128 both admit
    for port, host in ((drv.mailq, "127.0.0.1"), (drv.mailq6, "::1")):
        with client(port, host) as c:
            assert c.auth("snmp", "pw-snmp") == "+OK\n"


def test_unix_socket_client_counts_as_loopback(make_driver, workdir):
    path = workdir / "mailq.sock"
    d = make_driver(auth="lo:pw:SNMP:[127.0.0.1]\n", extra=[f"listen mailq unix:{path}"])
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        f = s.makefile("rb")
        assert f.readline() == b"version zmailer 2.0\n"
        ch = f.readline().rstrip(b"\n")
        s.sendall(b"AUTH lo " + hashlib.md5(ch + b"pw").hexdigest().encode() + b"\n")
        assert f.readline() == b"+OK\n"
        s.sendall(b"SHOW SNMP\n")
        assert f.readline() == b"+OK until LF.LF\n"
    assert d.requests() == ["snapshot 0 - -"]


def test_auth_file_is_reread_when_it_changes(drv):
    with client(drv.mailq) as c:
        assert c.auth("late", "pw") == "-BAD USER OR PASSWORD\n"
    drv.auth.write_text(AUTH + "late:pw:SNMP:\n")
    with client(drv.mailq) as c:
        assert c.auth("late", "pw") == "+OK\n"


# --------------------------------------------------------------------------- every format

@pytest.mark.parametrize("cmd,body", [
    ("SHOW SNMP", SNMP), ("SHOW QUEUE SHORT", SHORT), ("SHOW QUEUE THREADS", THREADS),
    ("SHOW QUEUE THREADS2", THREADS2), ("SHOW THREAD smtp example.com", THREAD),
    ("SHOW THREAD smtp nowhere.example", ""),
])
def test_show_formats(drv, cmd, body):
    with client(drv.mailq, login=("alice", "secret")) as c:
        first, got = c.multi(cmd)
        assert first == "+OK until LF.LF\n"
        assert got.decode() == body


def test_show_asks_the_scheduler(drv):
    with client(drv.mailq, login=("alice", "secret")) as c:
        c.multi("SHOW QUEUE SHORT")
        c.multi("SHOW THREAD smtp example.com")
    assert drv.requests() == ["snapshot 0 - -", "snapshot 1 smtp example.com"]


def test_pipelined_commands_answer_in_order(drv):
    with client(drv.mailq) as c:
        c.sock.sendall(f"AUTH alice {c.response('secret')}\nSHOW SNMP\nETRN example.com\n"
                       "SHOW QUEUE THREADS2\nQUIT\n".encode())
        data = c.f.read()
    assert data.decode() == ("+OK\n+OK until LF.LF\n" + SNMP + ".\n"
                             "+OK; an ETRN started something.\n"
                             "+OK until LF.LF\n" + THREADS2 + ".\n+Bye bye\n")


def test_etrn(drv):
    with client(drv.mailq, login=("qq", "pw-qq")) as c:
        assert c.cmd("ETRN example.com") == "+OK; an ETRN started something.\n"
        assert c.cmd("ETRN other.example") == "+OK; an ETRN didn't start anything.\n"
        assert c.cmd("ETRN") == REFUSE.format("ETRN", "")
    assert drv.requests() == ["etrn example.com", "etrn other.example"]


def test_kill_and_requeue(drv):
    with client(drv.mailq, login=("killer", "pw-kill")) as c:
        assert c.cmd("KILL MSG 0123456789abcdef") == "+OK; KILLed something.\n"
        assert c.cmd("KILL MSG 00000000000000ff") == "-No such message; nothing KILLed.\n"
        assert c.cmd("KILL MSG 12-34") == \
            "-Bad spool id; tern's spool ids are 16 lowercase hex digits.\n"
        assert c.cmd("KILL THREAD smtp example.com") == "+OK; KILLed something.\n"
        assert c.cmd("KILL THREAD smtp nowhere.example") == "-No such thread; nothing KILLed.\n"
        assert c.cmd("REQUEUE ROUTER 0123456789abcdef") == "+OK; REQUEUEd something.\n"
        assert c.cmd("REQUEUE ROUTER 00000000000000ff") == \
            "-No such message; nothing REQUEUEd.\n"
        assert c.cmd("KILL MSG") == REFUSE.format("KILL", "MSG")
    assert drv.requests() == [
        "op 5 0123456789abcdef - -", "op 5 00000000000000ff - -",
        "op 6 0000000000000000 smtp example.com", "op 6 0000000000000000 smtp nowhere.example",
        "op 7 0123456789abcdef - -", "op 7 00000000000000ff - -"]


# --------------------------------------------------------------------------- rights and refusals

ALLCMDS = {
    "SHOW SNMP": "SNMP", "SHOW QUEUE SHORT": "QQ", "SHOW QUEUE THREADS": "TT",
    "SHOW QUEUE THREADS2": "TT", "SHOW THREAD smtp example.com": "TT",
    "ETRN example.com": "ETRN", "KILL MSG 0123456789abcdef": "KILL",
    "KILL THREAD smtp example.com": "KILL", "REQUEUE ROUTER 0123456789abcdef": "KILL",
}
USERS = {"snmp": ("pw-snmp", {"SNMP"}), "qq": ("pw-qq", {"QQ", "ETRN"}),
         "tt": ("pw-tt", {"TT"}), "none": ("pw-none", set()), "killer": ("pw-kill", {"KILL"}),
         "alice": ("secret", {"SNMP", "QQ", "TT", "ETRN", "KILL"})}


@pytest.mark.parametrize("user", sorted(USERS))
def test_rights(drv, user):
    pw, rights = USERS[user]
    with client(drv.mailq, login=(user, pw)) as c:
        for cmd, right in ALLCMDS.items():
            reply = c.cmd(cmd)
            if right in rights:
                assert reply.startswith("+"), (cmd, reply)
                if reply.startswith("+OK until"):
                    while c.f.readline() != b".\n":
                        pass
            elif right == "ETRN":
                assert reply == "-No ETRN allowed for you.\n"
            else:
                verb, _, rest = cmd.partition(" ")
                assert reply == REFUSE.format(verb, rest), (cmd, reply)


@pytest.mark.parametrize("line,verb,rest", [
    ("FOO bar", "FOO", "bar"), ("show snmp", "show", "snmp"),
    ("SHOW QUEUE  SOMETHING  else", "SHOW", "QUEUE  SOMETHING  else"),
    ("SHOW THREAD smtp", "SHOW", "THREAD smtp"), ("kill msg x", "kill", "msg x"),
    ("", "", ""), ("NOOP\x01", "NOOP?", ""),
])
def test_unknown_commands(drv, line, verb, rest):
    with client(drv.mailq, login=("alice", "secret")) as c:
        assert c.cmd(line) == REFUSE.format(verb, rest)


def test_line_limit(drv):
    with client(drv.mailq, login=("alice", "secret")) as c:
        c.sock.sendall(b"SHOW " + b"x" * 15000 + b"\n")
        assert c.line().startswith("-MAILQ2 Unknown command")
        c.sock.sendall(b"SHOW " + b"x" * (17 * 1024))
        assert c.closed()


def test_peer_gone_is_a_temporary_failure(drv):
    with client(drv.mailq, login=("alice", "secret")) as c:
        drv.send("close scheduler")
        assert c.cmd("SHOW SNMP").startswith("-Temporary failure")
        assert c.cmd("ETRN example.com").startswith("-Temporary failure")
        assert c.cmd("KILL MSG 0123456789abcdef") == "+OK; KILLed something.\n"
        drv.send("close queue")
        assert c.cmd("KILL MSG 0123456789abcdef").startswith("-Temporary failure")


def test_request_in_flight_when_the_peer_goes(drv):
    drv.send("hang scheduler")
    with client(drv.mailq, login=("alice", "secret")) as c:
        c.sock.sendall(b"SHOW SNMP\n")
        time.sleep(0.3)
        drv.send("close scheduler")
        assert c.line().startswith("-Temporary failure")


def _from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def test_connection_limit(drv):
    """16 connections per client address, 64 in all (doc/ADMIN.md): one address cannot take
    the listener from the others, and the total still holds."""
    conns = [_from("127.0.0.1", drv.mailq) for _ in range(16)]
    try:
        for s in conns:
            assert s.makefile("rb").readline() == b"version zmailer 2.0\n"
        extra = _from("127.0.0.1", drv.mailq)
        assert extra.recv(100) == b""                   # over the per-address limit: closed
        extra.close()
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):   # 64 in all
            for _ in range(16):
                conns.append(_from(src, drv.mailq))
                assert conns[-1].makefile("rb").readline() == b"version zmailer 2.0\n"
        extra = _from("127.0.0.5", drv.mailq)
        assert extra.recv(100) == b""                   # over the total: closed
        extra.close()
        conns.pop().close()                              # one of 127.0.0.4's

        def served():
            with contextlib.closing(_from("127.0.0.5", drv.mailq)) as s:
                return s.makefile("rb").readline() == b"version zmailer 2.0\n"
        assert wait_for(served, 5)                       # a slot is free again
    finally:
        for s in conns:
            s.close()


# --------------------------------------------------------------------------- a whole ternd

def tabs(prefix):
    """The TABs after a THREADS line's "    channel/host/0": to the next stop of 8 while the
    text (plus 7) is short, then one TAB, or a blank from column 39 on (ZMailer's layout)."""
    w = len(prefix) + 7
    return "\t" * sum(w < stop - 1 for stop in (16, 24, 32)) + ("\t" if w < 39 else " ")


def mask(text):
    """Times in MAILQ text: QA=/W= ages and Uptime become stable tokens."""
    text = re.sub(r"(QA=|Uptime: )(\d+d)?(\d+h)?(\d+m)?(\d+s)?", r"\1T", text)
    return re.sub(r" W=\d+s", " W=Ns", text)


def wait_for(fn, timeout=20, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def start_live(make_tern, workdir, listen_kind="mailq", env=None, config=None):
    """A ternd with a `listen KIND` port (.extra_port) and a route for remote.test to a port
    where nothing listens, so that mail for it stays deferred; relaying from 127.0.0.1."""
    port, dead = free_port(), free_port()
    t = make_tern(start=False, env=env, config={
        "relayclients": "127.0.0.1", "smtproutes": f"remote.test:[127.0.0.1]:{dead}",
        **(config or {})})
    t.config["listen"] = [f"smtp 127.0.0.1:{t.port}", f"{listen_kind} 127.0.0.1:{port}"]
    t.start()
    t.extra_port, t.dead_port = port, dead
    return t


@pytest.fixture
def live(make_tern, workdir):
    auth = workdir / "mailq_auth"
    auth.write_text(AUTH)
    os.chmod(auth, 0o644)
    t = start_live(make_tern, workdir, config={"mailq_auth": f"file:{auth}"})
    assert wait_for(lambda: _connects(t.extra_port), 10), t.log_tail()
    return t


def _connects(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(20).startswith(b"version")
    except OSError:
        return False


def _submit(t, rcpts):
    s = t.smtp()
    assert s.cmd("EHLO client.test")[0] == 250
    assert s.cmd("MAIL FROM:<sender@client.test>")[0] == 250
    for r in rcpts:
        assert s.cmd(f"RCPT TO:<{r}>")[0] == 250
    assert s.cmd("DATA")[0] == 354
    code, lines = s.cmd("Subject: mailq test\r\n\r\nhello\r\n.")
    assert code == 250, lines
    s.cmd("QUIT")
    s.close()
    m = re.search(r"\b([0-9a-f]{16})\b", lines[-1])
    return m[1] if m else None


def test_live_queue_threads_and_kill(live):
    msgid = _submit(live, ["a@remote.test", "b@remote.test"])
    assert msgid
    with client(live.extra_port, login=("alice", "secret")) as c:
        def threads():
            first, body = c.multi("SHOW QUEUE THREADS")
            assert first == "+OK until LF.LF\n"
            return body.decode() if f":{live.dead_port}/0" in body.decode() else None
        body = wait_for(threads)
        assert body, live.log_tail()
        lines = mask(body).splitlines()
        host = f"[127.0.0.1]:{live.dead_port}"
        assert "smtp/*/0" in lines
        thread = [l for l in lines if l.startswith(f"    smtp/{host}/0")]
        assert len(thread) == 1, lines
        assert re.fullmatch(re.escape(f"    smtp/{host}/0") + tabs(f"    smtp/{host}/0") +
                            r"N=1   R=2   A=\d +( W=Ns)? QA=T", thread[0]), thread
        assert re.fullmatch(r"\tThreads: +\d+ Msgs: +\d+ Procs: +\d+ Idle: +0 Plim: +20 "
                            r"Flim: +0 Tlim: 0", lines[lines.index("smtp/*/0") + 2]), lines
        assert re.fullmatch(r"Kids: \d+  Idle:  0  Msgs: +\d+  Thrds: +\d+  Rcpnts: +\d+  "
                            r"Uptime: T", lines[-2])
        assert re.fullmatch(r"Msgs in \d+ out \d+ stored \d+ Rcpnts in \d+ out \d+ stored \d+",
                            lines[-1])
        first, body = c.multi("SHOW QUEUE THREADS2")
        assert re.search(r"^smtp\t" + re.escape(host) + r"\tN=1\tR=2\tA=\d+\tQA=\S+$",
                         body.decode(), re.M)
        first, body = c.multi(f"SHOW THREAD smtp {host}")
        items = body.decode().splitlines()
        assert len(items) == 2
        for it in items:
            f = it.split("\t")
            assert len(f) == 9 and f[0] == msgid and f[1] == "<sender@client.test>", f
            assert f[2].isdigit() and f[3].isdigit() and f[4].isdigit() and f[6].isdigit()
        first, body = c.multi("SHOW SNMP")
        assert re.fullmatch(r"Kids: \d+  Idle:  0  Msgs: +\d+  Thrds: +\d+  Rcpnts: +\d+  "
                            r"Uptime: \d+ sec\nMsgs in \d+ out \d+ stored \d+ Rcpnts in \d+ "
                            r"out \d+ stored \d+\n", body.decode())
        assert c.cmd("ETRN remote.test") in ("+OK; an ETRN started something.\n",
                                             "+OK; an ETRN didn't start anything.\n")
        # recipients in flight cannot be expired: retry until the attempt is over
        assert wait_for(lambda: c.cmd(f"KILL MSG {msgid}") == "+OK; KILLed something.\n")
        # the recipients expired: the thread is gone (a bounce to the sender may follow)
        assert wait_for(lambda: host not in c.multi("SHOW QUEUE THREADS2")[1].decode())
        assert c.cmd("KILL MSG 00000000000000ff") == "-No such message; nothing KILLed.\n"
