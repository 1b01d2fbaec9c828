"""tests/e2e/test_mta.py — the mta role (outbound SMTP) against real servers on loopback.

The role runs alone under tests/e2e/mta_driver.c (compiled here against build/libtern.a,
build/libmail.a and src/ternd/mta/mta*.c), which plays the queue and lookup peers: it sends the
jobs of a small script, answers M_MX_RESOLVE from the script's fake DNS table and prints one
line per recipient result. The servers are Postfix's smtp-sink and python3-aiosmtpd, started
and stopped by each test on 127.0.0.1 (or ::1) with free ports; every wait is bounded.

Owns: nothing outside its temporary directories. Trusts: build/ (run `make` first),
/usr/sbin/smtp-sink, aiosmtpd.
"""
import asyncio
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import build_driver, free_port

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP
except ImportError:          # pragma: no cover - the test machine has python3-aiosmtpd
    Controller = SMTP = None

SMTP_SINK = "/usr/sbin/smtp-sink"
RESULT_RE = re.compile(r"^result job=(\d+) rcpt=(\S+) status=(\w+) remote=(\S+) scope=\w+ diag=(.*)$")


# --------------------------------------------------------------------------- the driver

@pytest.fixture(scope="module")
def driver():
    # MTA_DRIVER_CFLAGS="-fsanitize=address,undefined" runs the role under the sanitizers
    d, exe = build_driver("mta_driver", ["tests/e2e/mta_driver.c", "src/ternd/mta/mta.c",
                                         "src/ternd/mta/mta_session.c", "src/ternd/mta/mta_qmqp.c",
                                         "src/ternd/mta/mta_cluster.c",
                                         "src/ternd/role.c", "src/ternd/dreq.c",
                                         "src/ternd/sandbox.c",
                                         "src/ternd/proto.c"],
                          "MTA_DRIVER_CFLAGS")
    yield exe
    shutil.rmtree(d, ignore_errors=True)


class Run:
    def __init__(self, proc):
        self.out = proc.stdout
        self.log = proc.stderr
        self.results = []
        for line in self.out.splitlines():
            m = RESULT_RE.match(line)
            if m:
                self.results.append(dict(job=int(m[1]), rcpt=m[2], status=m[3], remote=m[4],
                                         diag=m[5]))
        self.resolves = [line.split()[1:] for line in self.out.splitlines()
                         if line.startswith("resolve ")]
        self.exit = [line for line in self.out.splitlines() if line.startswith("exit ")]

    def by_rcpt(self):
        return {r["rcpt"]: r for r in self.results}

    def status(self):
        return {r["rcpt"]: r["status"] for r in self.results}

    def __repr__(self):
        return f"stdout:\n{self.out}\nstderr:\n{self.log}"


def run_mta(driver, workdir, script, timeoutremote=5, timeoutconnect=3, extra=None,
            limit=40):
    conf = workdir / "tern.conf"
    lines = ["me tern.test", "helohost client.tern.test", f"timeoutremote {timeoutremote}",
             f"timeoutconnect {timeoutconnect}", f"spool {workdir / 'spool'}"]
    conf.write_text("\n".join(lines + list(extra or [])) + "\n")
    env = dict(os.environ, MTA_DRIVER_TIMEOUT=str(limit))
    p = subprocess.run([str(driver), str(conf)], input=script, capture_output=True, text=True,
                       timeout=limit + 15, env=env, errors="replace")
    run = Run(p)
    assert run.exit == ["exit 0"], run
    return run


def message(workdir, body, name="msg"):
    path = workdir / name
    path.write_bytes(body)
    return path


# --------------------------------------------------------------------------- aiosmtpd

class Recorder:
    """An aiosmtpd handler that records every command and transaction and misbehaves on
    request: rcpt local parts starting perm/temp/drop get 550/451/a closed connection;
    data_reply replaces the 250 after the dot; stall sleeps before answering the dot;
    refuse_ehlo answers EHLO with 502; pipelining advertises PIPELINING."""

    def __init__(self, data_reply=None, stall=0, refuse_ehlo=False, pipelining=False):
        self.data_reply = data_reply
        self.stall = stall
        self.refuse_ehlo = refuse_ehlo
        self.pipelining = pipelining
        self.sessions = {}            # id(session) -> [command, ...]
        self.peers = {}               # id(session) -> (client address, port)
        self.txns = []
        self.waiting_at_mail = []     # bytes already buffered when MAIL was answered

    def _cmd(self, session, text):
        self.sessions.setdefault(id(session), []).append(text)
        self.peers[id(session)] = session.peer

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self._cmd(session, f"EHLO {hostname}")
        if self.refuse_ehlo:
            return ["502 5.5.2 EHLO is not for you"]
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        self._cmd(session, f"HELO {hostname}")
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, options):
        self._cmd(session, "MAIL")
        await asyncio.sleep(0.2)
        self.waiting_at_mail.append(len(server._reader._buffer))
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options):
        self._cmd(session, f"RCPT {address}")
        local = address.split("@")[0]
        if local.startswith("perm"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        if local.startswith("temp"):
            return "451 4.3.0 <%s>: try again later" % address
        if local.startswith("drop"):
            server.transport.close()
            return "250 2.1.5 Ok"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self._cmd(session, "DATA")
        self.txns.append(dict(session=id(session), mail_from=envelope.mail_from,
                              options=list(envelope.mail_options),
                              rcpts=list(envelope.rcpt_tos),
                              content=bytes(envelope.original_content)))
        if self.stall:
            await asyncio.sleep(self.stall)
        return self.data_reply or "250 2.0.0 Ok: queued as 4711"

    async def handle_RSET(self, server, session, envelope):
        self._cmd(session, "RSET")
        return "250 2.0.0 Ok"

    async def handle_QUIT(self, server, session, envelope):
        self._cmd(session, "QUIT")
        return "221 2.0.0 Bye"


class GreetingSMTP(SMTP if SMTP else object):
    """An aiosmtpd server whose greeting is not 220: it then answers only QUIT."""
    greeting = "554 5.7.1 no service for you"

    async def _handle_client(self):
        await self.push(self.greeting)
        try:
            while self.transport is not None:
                line = await self._reader.readuntil()
                if line.strip().upper() == b"QUIT":
                    await self.push("221 2.0.0 Bye")
                    break
                await self.push("503 5.5.1 no service")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        if self.transport is not None:
            self.transport.close()


class GreetingController(Controller if Controller else object):
    def __init__(self, greeting, *a, **kw):
        super().__init__(*a, **kw)
        self.greeting = greeting

    def factory(self):
        s = GreetingSMTP(self.handler, **self.SMTP_kwargs)
        s.greeting = self.greeting
        return s


@pytest.fixture
def aiosmtp():
    """aiosmtp(handler=None, host="127.0.0.1", greeting=None, port=None) -> (handler, port): a
    started aiosmtpd server; all are stopped at teardown."""
    if Controller is None:
        pytest.skip("python3-aiosmtpd is not installed")
    started = []

    def start(handler=None, host="127.0.0.1", greeting=None, port=None):
        handler = handler or Recorder()
        port = port or (free_port(host) if host != "::1" else free_port6())
        kw = dict(hostname=host, port=port, server_hostname="mx.test.example",
                  ready_timeout=5.0)
        c = GreetingController(greeting, handler, **kw) if greeting else Controller(handler, **kw)
        c.start()
        started.append(c)
        return handler, port

    yield start
    for c in started:
        c.stop()


def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def has_crlf_only(data):
    return b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")


# --------------------------------------------------------------------------- smtp-sink

@pytest.fixture
def sink(workdir):
    """sink(*options) -> (port, dumpdir): smtp-sink on 127.0.0.1, every message dumped."""
    if not os.path.exists(SMTP_SINK):
        pytest.skip("smtp-sink (postfix) is not installed")
    procs = []

    def start(*opts):
        port = free_port()
        dump = workdir / f"dump{len(procs)}"
        dump.mkdir()
        os.chmod(dump, 0o777)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        p = subprocess.Popen([SMTP_SINK, *user, *opts, "-d", f"{dump}/%M.",
                              f"127.0.0.1:{port}", "10"], stderr=subprocess.PIPE)
        procs.append(p)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        return port, dump

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


def sink_dumps(dump, n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(f for f in dump.iterdir() if f.is_file())
        if len(files) >= n:
            time.sleep(0.1)
            return [f.read_bytes() for f in files]
        time.sleep(0.05)
    return [f.read_bytes() for f in sorted(dump.iterdir())]


# --------------------------------------------------------------------------- tests

BODY = (b"Subject: dots and line ends\n\n.starts with a dot\n..two dots\n.\n"
        b"bare\rcr and crlf\r\nend \xc3\xa9")
WIRE = (b"Subject: dots and line ends\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\n"
        b"bare\r\ncr and crlf\r\nend \xc3\xa9\r\n")


def test_delivers_with_crlf_dot_stuffing_and_8bitmime(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    msg = message(workdir, BODY)
    run = run_mta(driver, workdir, f"job mx.test:{port} sender@a.test {msg} "
                                   f"one@b.test two@b.test\n")
    assert run.status() == {"one@b.test": "ok", "two@b.test": "ok"}, run
    r = run.by_rcpt()["one@b.test"]
    assert r["remote"] == "mx.test[127.0.0.1]"
    assert r["diag"] == "smtp; 250 2.0.0 Ok: queued as 4711 (in reply to end of DATA command)"
    assert run.resolves == [["mx.test", "1"]]
    assert len(h.txns) == 1
    t = h.txns[0]
    assert t["mail_from"] == "sender@a.test"
    assert t["rcpts"] == ["one@b.test", "two@b.test"]
    # aiosmtpd undoes the dot-stuffing; what is left must be the CRLF text exactly
    assert t["content"] == WIRE
    assert has_crlf_only(t["content"])
    assert "BODY=8BITMIME" in t["options"]
    assert f"SIZE={len(BODY)}" in t["options"]
    cmds = list(h.sessions.values())[0]
    assert cmds[0] == "EHLO client.tern.test"
    assert h.waiting_at_mail == [0], "pipelined without PIPELINING"
    assert re.search(r"event=delivered id=0000000000001001 job=1 rcpt=<one@b.test> "
                     r"remote=mx.test\[127.0.0.1\] reply=\"smtp; 250", run.log), run


def test_smtp_sink_pipelined_dump(driver, workdir, sink):
    port, dump = sink()
    msg = message(workdir, b"Subject: sink\n\n.hidden\nlast line without LF")
    run = run_mta(driver, workdir, f"job sink.test:{port} s@a.test {msg} r1@b.test r2@b.test\n")
    assert run.status() == {"r1@b.test": "ok", "r2@b.test": "ok"}, run
    dumps = sink_dumps(dump, 1)
    assert len(dumps) == 1
    d = dumps[0]
    assert b"X-Mail-Args: <s@a.test>" in d and b"X-Rcpt-Args: <r2@b.test>" in d
    assert b"\n.hidden\n" in d and b"\nlast line without LF\n" in d


def test_smtp_sink_soft_and_hard_rejects(driver, workdir, sink):
    soft, _ = sink("-r", "RCPT")
    hard, _ = sink("-f", "MAIL")
    msg = message(workdir, b"Subject: x\n\nhi\n")
    run = run_mta(driver, workdir, f"job soft.test:{soft} s@a {msg} r1@b r2@b\n"
                                   f"job hard.test:{hard} s@a {msg} r3@b\n")
    st = run.by_rcpt()
    assert st["r1@b"]["status"] == "temp" and st["r2@b"]["status"] == "temp", run
    assert st["r1@b"]["diag"].startswith("smtp; 450 4.3.0") and \
        st["r1@b"]["diag"].endswith("(in reply to RCPT TO command)")
    assert st["r3@b"]["status"] == "perm", run
    assert st["r3@b"]["diag"].startswith("smtp; 500 5.3.0")
    assert st["r3@b"]["diag"].endswith("(in reply to MAIL FROM command)")


def test_per_recipient_results(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    msg = message(workdir, b"Subject: x\n\nhi\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} ok@b perm1@b temp1@b\n")
    st = run.by_rcpt()
    assert run.status() == {"ok@b": "ok", "perm1@b": "perm", "temp1@b": "temp"}, run
    assert st["perm1@b"]["diag"] == ("smtp; 550 5.1.1 <perm1@b>: Recipient address rejected: "
                                     "no such user (in reply to RCPT TO command)")
    assert st["perm1@b"]["remote"] == "mx.test[127.0.0.1]"
    assert st["temp1@b"]["diag"].startswith("smtp; 451 4.3.0 <temp1@b>: try again later")
    assert h.txns[0]["rcpts"] == ["ok@b"]


@pytest.mark.parametrize("channel", ["bogus", "local", "SMTP", ""])
def test_unknown_channel_is_logged_and_deferred(driver, workdir, aiosmtp, channel):
    # the queue's channel word is parsed once; a word the mta does not know never becomes
    # smtp by default: nothing is sent, the job is deferred and the word logged
    h, port = aiosmtp()
    msg = message(workdir, b"Subject: x\n\nhi\n")
    word = channel or '""'
    script = f"chjob {channel} mx.test:{port} s@a {msg} ok@b\n" if channel else \
        f"job mx.test:{port} s@a {msg} ok@b\n"
    if channel:
        run = run_mta(driver, workdir, script)
        assert run.status() == {"ok@b": "temp"}, run
        assert "unknown delivery channel" in run.by_rcpt()["ok@b"]["diag"], run
        assert "event=unknown_channel" in run.log and f"channel={word}" in run.log, run
        assert h.txns == [] and h.sessions == {}
    else:                                  # no channel field at all: smtp, as before
        run = run_mta(driver, workdir, script)
        assert run.status() == {"ok@b": "ok"}, run


def test_no_accepted_recipient_skips_data(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} perm1@b perm2@b\n")
    assert run.status() == {"perm1@b": "perm", "perm2@b": "perm"}, run
    assert h.txns == []
    assert "DATA" not in list(h.sessions.values())[0]


@pytest.mark.parametrize("reply,status", [("451 4.3.0 disk trouble", "temp"),
                                          ("554 5.7.1 looks like spam", "perm")])
def test_reply_after_the_dot(driver, workdir, aiosmtp, reply, status):
    h, port = aiosmtp(Recorder(data_reply=reply))
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b perm9@b\n")
    st = run.by_rcpt()
    assert st["a@b"]["status"] == status, run
    assert st["a@b"]["diag"] == f"smtp; {reply} (in reply to end of DATA command)"
    assert st["perm9@b"]["status"] == "perm"          # its RCPT answer stands


def test_connection_dropped_after_rcpt(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} perm1@b drop@b after@b\n")
    st = run.by_rcpt()
    assert st["perm1@b"]["status"] == "perm", run
    assert st["drop@b"]["status"] == "temp" and st["after@b"]["status"] == "temp", run
    assert st["drop@b"]["diag"].startswith("lost connection with mx.test[127.0.0.1]")


def test_stalled_server_times_out(driver, workdir, aiosmtp):
    h, port = aiosmtp(Recorder(stall=20))
    msg = message(workdir, b"x\n")
    t0 = time.monotonic()
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b\n", timeoutremote=2)
    assert time.monotonic() - t0 < 15
    st = run.by_rcpt()["a@b"]
    assert st["status"] == "temp", run
    assert "timed out (no reply in 2 s, dot)" in st["diag"], run


@pytest.mark.parametrize("greeting,status", [("421 4.3.2 too busy", "temp"),
                                             ("450 4.3.2 come back later", "temp"),
                                             ("554 5.7.1 no service for you", "perm")])
def test_greeting_failures(driver, workdir, aiosmtp, greeting, status):
    h, port = aiosmtp(greeting=greeting)
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b c@d\n")
    st = run.by_rcpt()
    assert run.status() == {"a@b": status, "c@d": status}, run
    assert st["a@b"]["diag"] == f"smtp; {greeting} (in reply to initial greeting)"


def test_ehlo_refused_falls_back_to_helo(driver, workdir, aiosmtp):
    h, port = aiosmtp(Recorder(refuse_ehlo=True))
    msg = message(workdir, b"caf\xc3\xa9\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b\n")
    assert run.status() == {"a@b": "ok"}, run
    cmds = list(h.sessions.values())[0]
    assert cmds[:3] == ["EHLO client.tern.test", "HELO client.tern.test", "MAIL"]
    assert h.txns[0]["options"] == []                  # no SIZE=, no BODY= after HELO
    assert h.txns[0]["content"] == b"caf\xc3\xa9\r\n"  # 8-bit sent as is


def test_pipelining_when_offered(driver, workdir, aiosmtp):
    h, port = aiosmtp(Recorder(pipelining=True))
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b perm1@b c@d\n")
    assert run.status() == {"a@b": "ok", "perm1@b": "perm", "c@d": "ok"}, run
    # MAIL, the RCPTs and DATA came in one write: they wait while MAIL is answered
    assert h.waiting_at_mail[0] >= len("RCPT TO:<a@b>\r\n" * 3 + "DATA\r\n"), h.waiting_at_mail
    assert h.txns[0]["rcpts"] == ["a@b", "c@d"]


def test_two_messages_reuse_one_connection(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    m1 = message(workdir, b"Subject: one\n\n1\n", "m1")
    m2 = message(workdir, b"Subject: two\n\n2\n", "m2")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {m1} a@b\nwait\n"
                                   f"job mx.test:{port} - {m2} c@d\nwait\nterm\n")
    assert run.status() == {"a@b": "ok", "c@d": "ok"}, run
    assert len(h.sessions) == 1, h.sessions
    cmds = list(h.sessions.values())[0]
    assert cmds == ["EHLO client.tern.test", "MAIL", "RCPT a@b", "DATA", "RSET", "MAIL",
                    "RCPT c@d", "DATA", "QUIT"], cmds
    assert [t["content"] for t in h.txns] == [b"Subject: one\r\n\r\n1\r\n",
                                              b"Subject: two\r\n\r\n2\r\n"]
    assert h.txns[1]["mail_from"] == "<>"               # aiosmtpd spells the null sender so
    assert run.log.count("event=connect ") == 1
    assert run.resolves == [["mx.test", "1"]]          # no DNS for the reused connection


def test_failover_to_next_address(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"mx mx.test ok dead.test=127.0.0.2 mx.test=127.0.0.1\n"
                                   f"job mx.test:{port} s@a {msg} a@b\n")
    assert run.status() == {"a@b": "ok"}, run
    assert run.by_rcpt()["a@b"]["remote"] == "mx.test[127.0.0.1]"
    assert re.search(r"event=connect_failed host=mx.test:\d+ addr=127.0.0.2", run.log), run


def test_failover_after_a_4xx_greeting(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    aiosmtp(host="127.0.0.2", port=port, greeting="421 4.3.2 too busy")
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"mx mx.test ok busy.test=127.0.0.2 mx.test=127.0.0.1\n"
                                   f"job mx.test:{port} s@a {msg} a@b\n"
                                   f"job [127.0.0.2]:{port} s@a {msg} c@d\n")
    assert run.status() == {"a@b": "ok", "c@d": "temp"}, run
    assert run.by_rcpt()["a@b"]["remote"] == "mx.test[127.0.0.1]"
    assert "event=try_next_address" in run.log
    # the last (here: only) address: the greeting's words are the result
    assert run.by_rcpt()["c@d"]["diag"] == \
        "smtp; 421 4.3.2 too busy (in reply to initial greeting)"
    assert run.by_rcpt()["c@d"]["remote"] == "127.0.0.2[127.0.0.2]"


def test_all_addresses_fail(driver, workdir):
    port = free_port()
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"mx gone.test ok a.test=127.0.0.2 b.test=127.0.0.3\n"
                                   f"job gone.test:{port} s@a {msg} a@b\n")
    r = run.by_rcpt()["a@b"]
    assert r["status"] == "temp", run
    assert r["diag"].startswith("Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)")
    assert "b.test[127.0.0.3]" in r["diag"] and "Connection refused" in r["diag"]


@pytest.mark.parametrize("answer,status,text", [
    ("nodomain", "perm", "Sorry, I couldn't find any host named nowhere.test. (#5.1.2)"),
    ("nullmx", "perm", "Sorry, nowhere.test does not accept mail (null MX). (#5.1.10)"),
    ("temp", "temp", "Sorry, I couldn't look up nowhere.test: fake lookup says so. (#4.4.3)"),
])
def test_dns_failures(driver, workdir, answer, status, text):
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"mx nowhere.test {answer}\n"
                                   f"job nowhere.test s@a {msg} a@nowhere.test b@nowhere.test\n")
    assert run.resolves == [["nowhere.test", "0"]]      # a domain: MX lookup
    assert run.status() == {"a@nowhere.test": status, "b@nowhere.test": status}, run
    assert run.by_rcpt()["a@nowhere.test"]["diag"] == text
    assert run.by_rcpt()["a@nowhere.test"]["remote"] == "-"


def test_ipv6_literal(driver, workdir, aiosmtp):
    try:
        free_port6()
    except OSError:
        pytest.skip("no ::1 in this namespace")
    h, port = aiosmtp(host="::1")
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job [IPv6:::1]:{port} s@a {msg} a@b\n")
    assert run.status() == {"a@b": "ok"}, run
    assert run.by_rcpt()["a@b"]["remote"] == "::1[::1]"
    assert run.resolves == []                            # a literal needs no DNS


def test_large_message_is_streamed(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    line = b"0123456789" * 7 + b"\n"
    body = b"Subject: big\n\n" + line * 60000 + b".\n" + line * 1000    # about 4.3 MB
    msg = message(workdir, body)
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b\n")
    assert run.status() == {"a@b": "ok"}, run
    assert h.txns[0]["content"] == body.replace(b"\n", b"\r\n")


def test_connect_timeout_and_tcpto(driver, workdir, aiosmtp):
    """An address whose connect timed out twice is skipped afterwards (unless last)."""
    h, port = aiosmtp()
    hole = socket.socket()
    hole.bind(("127.0.0.3", port))
    hole.listen(0)
    filler = socket.create_connection(("127.0.0.3", port), timeout=2)   # fills the backlog
    msg = message(workdir, b"x\n")
    # three destinations (no connection reuse between them) sharing the dead address
    script = "".join(f"mx mx{i}.test ok hole.test=127.0.0.3 mx{i}.test=127.0.0.1\n"
                     for i in range(3))
    script += "".join(f"job mx{i}.test:{port} s@a {msg} r{i}@b\nwait\n" for i in range(3))
    try:
        t0 = time.monotonic()
        run = run_mta(driver, workdir, script, timeoutconnect=1)
        took = time.monotonic() - t0
    finally:
        filler.close()
        hole.close()
    assert run.status() == {"r0@b": "ok", "r1@b": "ok", "r2@b": "ok"}, run
    assert len(re.findall(r'event=connect_failed host=mx\d.test:\d+ addr=127.0.0.3 port=\d+ '
                          r'error="timed out"', run.log)) == 2, run
    assert re.search(r"event=tcpto_skip host=mx2.test:\d+ addr=127.0.0.3", run.log), run
    assert took < 15


def test_tcpto_never_skips_the_last_address(driver, workdir):
    hole = socket.socket()
    hole.bind(("127.0.0.3", 0))
    port = hole.getsockname()[1]
    hole.listen(0)
    filler = socket.create_connection(("127.0.0.3", port), timeout=2)
    msg = message(workdir, b"x\n")
    try:
        run = run_mta(driver, workdir, "".join(f"job [127.0.0.3]:{port} s@a {msg} r{i}@b\nwait\n"
                                               for i in range(3)), timeoutconnect=1)
    finally:
        filler.close()
        hole.close()
    assert run.status() == {"r0@b": "temp", "r1@b": "temp", "r2@b": "temp"}, run
    assert run.log.count('error="timed out"') == 3 and "tcpto_skip" not in run.log, run
    assert "timed out" in run.by_rcpt()["r2@b"]["diag"]


def test_outgoingip(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b\n",
                  extra=["outgoingip 127.0.0.5"])
    assert run.status() == {"a@b": "ok"}, run
    assert [p[0] for p in h.peers.values()] == ["127.0.0.5"]


def test_sigterm_defers_busy_and_quits_idle(driver, workdir, aiosmtp):
    busy, bport = aiosmtp(Recorder(stall=20))
    idle, iport = aiosmtp()
    msg = message(workdir, b"x\n")
    t0 = time.monotonic()
    run = run_mta(driver, workdir, f"job idle.test:{iport} s@a {msg} a@b\nwait\n"
                                   f"job busy.test:{bport} s@a {msg} c@d\nsleep 1000\nterm\n")
    assert time.monotonic() - t0 < 10
    assert run.status() == {"a@b": "ok", "c@d": "temp"}, run
    assert run.by_rcpt()["c@d"]["diag"] == "mta shutting down"
    assert list(idle.sessions.values())[0][-1] == "QUIT"
    assert "event=stopping" in run.log


def test_bad_route(driver, workdir):
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job bad:route:x s@a {msg} a@b\n")
    assert run.by_rcpt()["a@b"]["status"] == "temp"
    assert "bad destination" in run.by_rcpt()["a@b"]["diag"]


def test_malformed_address_never_reaches_the_wire(driver, workdir, aiosmtp):
    h, port = aiosmtp()
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} ok@b bad<x>@b\n"
                                   f"job mx.test:{port} s<@a {msg} c@d\n")
    st = run.by_rcpt()
    assert st["ok@b"]["status"] == "ok", run
    assert st["bad<x>@b"]["status"] == "perm"
    assert st["bad<x>@b"]["diag"] == "malformed recipient address (#5.1.3)"
    assert st["c@d"]["status"] == "perm"
    assert st["c@d"]["diag"] == "malformed sender address (#5.1.7)"
    assert [t["rcpts"] for t in h.txns] == [["ok@b"]]


# --------------------------------------------------------------------------- TLS (STARTTLS)
# The same role under the driver, against aiosmtpd with STARTTLS: the TLS paths of
# mta_session.c (handshake, reuse of an encrypted connection, the fallback to plaintext)
# where MTA_DRIVER_CFLAGS can put them under the sanitizers. test_tls_mta.py has the rest.

@pytest.fixture
def tls_server(workdir):
    if Controller is None:
        pytest.skip("python3-aiosmtpd is not installed")
    import ssl
    from tlsca import TestCA
    ca = TestCA(workdir / "ca")
    leaf = ca.leaf("mx.test")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
    started = []

    def start(handler):
        port = free_port()
        c = Controller(handler, hostname="127.0.0.1", port=port, tls_context=ctx,
                       require_starttls=True, server_hostname="mx.test", ready_timeout=5.0)
        c.start()
        started.append(c)
        return port

    yield ca, start
    for c in started:
        c.stop()


def test_starttls_verified_and_reused(driver, workdir, tls_server):
    ca, start = tls_server
    h = Recorder()
    port = start(h)
    m1 = message(workdir, b"Subject: one\n\n1\n", "m1")
    m2 = message(workdir, b"Subject: two\n\n2\n", "m2")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {m1} a@b\nwait\n"
                                   f"job mx.test:{port} s@a {m2} c@d\nwait\nterm\n",
                  extra=["smtptls verify", f"tlscafile {ca.cert}"])
    assert run.status() == {"a@b": "ok", "c@d": "ok"}, run
    # aiosmtpd starts a new session object after STARTTLS: one client port, one connection
    assert len(set(h.peers.values())) == 1, h.peers     # the encrypted connection, reused
    before, after = list(h.sessions.values())
    assert before == ["EHLO client.tern.test"], before
    assert after[0] == "EHLO client.tern.test" and "RSET" in after, after   # 3207: EHLO again
    assert run.log.count("event=connect ") == 1
    for r in run.results:
        assert r["diag"].endswith(", verified)") and "(TLS TLSv1." in r["diag"], r
    assert run.log.count("event=tls ") == 1
    assert "verified=yes name=mx.test" in run.log


def test_starttls_verify_fails_for_an_untrusted_ca(driver, workdir, tls_server):
    ca, start = tls_server
    h = Recorder()
    port = start(h)
    msg = message(workdir, b"x\n")
    run = run_mta(driver, workdir, f"job mx.test:{port} s@a {msg} a@b\n",
                  extra=["smtptls verify"])             # the system store: not our test CA
    assert run.status() == {"a@b": "temp"}, run
    d = run.by_rcpt()["a@b"]["diag"]
    assert "does not verify for mx.test" in d and "(#4.7.5)" in d, d
    assert h.txns == []


def test_starttls_handshake_failure_falls_back(driver, workdir):
    from test_tls_mta import BrokenTLSPeer
    peer = BrokenTLSPeer("garbage")
    try:
        msg = message(workdir, b"x\n")
        run = run_mta(driver, workdir, f"job mx.test:{peer.port} s@a {msg} a@b\nwait\n"
                                       f"job mx.test:{peer.port} s@a {msg} c@d\n",
                      extra=["smtpreusecount 1"])
        assert run.status() == {"a@b": "ok", "c@d": "ok"}, run
        assert peer.starttls == 1                         # remembered: no second attempt
        assert len(peer.messages) == 2
        assert "action=retry_plaintext" in run.log and "fallback=plaintext" in run.log
    finally:
        peer.close()


def test_starttls_verify_an_address_literal(driver, workdir, tls_server):
    """A destination written as an address literal is verified against the certificate's
    IP address (iPAddress SAN), there being no host name."""
    ca, start = tls_server
    leaf = ca.leaf("literal", ips=["127.0.0.1"])
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
    h = Recorder()
    port = free_port()
    c = Controller(h, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                   ready_timeout=5.0)
    c.start()
    try:
        msg = message(workdir, b"x\n")
        run = run_mta(driver, workdir, f"job [127.0.0.1]:{port} s@a {msg} a@b\n",
                      extra=["smtptls verify", f"tlscafile {ca.cert}"])
        assert run.status() == {"a@b": "ok"}, run
        assert "verified=yes name=127.0.0.1" in run.log
    finally:
        c.stop()
