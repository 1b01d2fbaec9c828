"""tests/e2e/test_qmqp.py — QMQP (qmail's Quick Mail Queueing Protocol) both ways: tern's
`listen qmqp` server against a QMQP client written here (accepted -> delivered, D for
malformed, oversized and badly addressed requests, qmqpclients enforced, K only once
committed: a kill -9 right after K loses nothing); tern's qmqp channel (qmqpservers) against
a QMQP server written here (K/Z/D, failover, all down -> deferred and drained later); and two
ternds talking QMQP to each other.

Owns: nothing outside its temporary directories. Trusts: the fixtures of conftest.py."""
import os
import signal
import smtplib
import socket
import threading

import pytest

from conftest import free_port, wait_for


def ns(b):
    return b"%d:%s," % (len(b), b)


def qmqp_request(text, sender, rcpts):
    return ns(ns(text) + ns(sender) + b"".join(ns(r) for r in rcpts))


def qmqp_send(port, data, src="127.0.0.1", timeout=10):
    """Send a raw request; return the reply netstring's payload (b"" if closed without one)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            if b":" in buf:
                n, _, rest = buf.partition(b":")
                if len(rest) >= int(n) + 1:
                    return rest[:int(n)]
        return buf
    finally:
        s.close()


def server_tern(make_tern, **extra):
    qport = free_port()
    cfg = {"qmqpclients": "127.0.0.1"}
    cfg.update(extra)
    t = make_tern(config=cfg, start=False)
    t.config["listen"] = [f"smtp 127.0.0.1:{t.port}", f"qmqp 127.0.0.1:{qport}"]
    t.start()
    t.qport = qport
    return t


MSG = b"From: joe@example.org\nSubject: over qmqp\n\nbody line\n"


# ------------------------------------------------------------------------------ the server

def test_server_accepts_and_delivers(make_tern):
    t = server_tern(make_tern)
    r = qmqp_send(t.qport, qmqp_request(MSG, b"joe@example.org", [b"alice@localhost"]))
    assert r.startswith(b"K"), r
    msgs = t.wait_delivered("alice", 1)
    assert b"with QMQP" in msgs[0] and b"body line" in msgs[0]
    assert msgs[0].index(b"Received:") < msgs[0].index(b"Subject: over qmqp")


def test_server_refuses_bad_requests(make_tern):
    t = server_tern(make_tern, databytes="200")
    cases = [
        b"garbage",
        b"5:1:x,,",                                                      # no envelope
        qmqp_request(b"x" * 300, b"joe@example.org", [b"alice@localhost"]),   # > databytes
        qmqp_request(MSG, b"joe@example.org", [b"not an address"]),
        qmqp_request(MSG, b"joe@example.org", []),
        b"99999999999999:",                                               # length too large
    ]
    for data in cases:
        r = qmqp_send(t.qport, data)
        assert r.startswith(b"D"), (data, r)
    # nothing reached the queue: the next good one is delivered alone
    assert qmqp_send(t.qport, qmqp_request(MSG, b"", [b"alice@localhost"])).startswith(b"K")
    assert len(t.wait_delivered("alice", 1)) == 1
    wait_for(lambda: "event=qmqp_close" in t.log())


def long_rcpt(i):
    """A 252-octet recipient address (64-octet local part, long relayed domain)."""
    return (b"%064d@" % i) + b".".join([b"d" * 59] * 3) + b".example"


def test_server_bounds_the_envelope_to_one_ipc_frame(make_tern):
    # maxrcptcount 0: the recipients' octets would make an M_MSG_COMMIT frame larger than
    # MSG_MAXPAYLOAD (16 MiB), and the queue would drop the smtp role's channel. D instead.
    t = server_tern(make_tern, maxrcptcount="0")
    rcpts = [long_rcpt(i) for i in range(70000)]
    assert len(rcpts[0]) == 252
    r = qmqp_send(t.qport, qmqp_request(MSG, b"", rcpts), timeout=60)
    assert r.startswith(b"D") and b"5.5.3" in r, r
    # the queue's channel is whole: the next request is committed
    assert qmqp_send(t.qport, qmqp_request(MSG, b"", [b"alice@localhost"])).startswith(b"K")
    t.wait_delivered("alice", 1)
    assert "peer_lost" not in t.log() and "event=bad_commit" not in t.log()


def test_server_caps_recipients_at_the_queues_limit(make_tern):
    # maxrcptcount 0 allowed 1000000 recipients; the queue takes COMMIT_MAXRCPT (100000)
    t = server_tern(make_tern, maxrcptcount="0")
    rcpts = [b"r%d@localhost" % i for i in range(100001)]
    r = qmqp_send(t.qport, qmqp_request(MSG, b"", rcpts), timeout=60)
    assert r.startswith(b"D") and b"5.5.3" in r, r
    assert "event=bad_commit" not in t.log()


def test_server_closes_foreign_clients(make_tern):
    t = server_tern(make_tern)
    r = qmqp_send(t.qport, qmqp_request(MSG, b"", [b"alice@localhost"]), src="127.0.0.2")
    assert r == b""
    assert wait_for(lambda: "event=refused kind=qmqp ip=127.0.0.2 reason=qmqpclients" in t.log())
    # an allowed client still gets through afterwards (a synchronisation point)
    assert qmqp_send(t.qport, qmqp_request(MSG, b"", [b"bob@localhost"])).startswith(b"K")
    t.wait_delivered("bob", 1)
    assert t.maildir("alice") == []


def test_server_k_means_committed(make_tern):
    # kill -9 of the whole ternd at once after K: the message is in the spool and is
    # delivered after the restart (or was already, before the kill: never lost)
    t = server_tern(make_tern)
    r = qmqp_send(t.qport, qmqp_request(MSG, b"", [b"carol@localhost"]))
    assert r.startswith(b"K"), r
    t.kill(signal.SIGKILL)
    t.stop()
    t.start()
    msgs = t.wait_delivered("carol", 1)
    assert b"body line" in msgs[0]


def test_server_answers_only_after_the_commit(make_tern):
    # the queue role is stopped once the data file is open: the whole request is read and
    # the commit asked, yet no K comes until the queue runs again and commits
    t = server_tern(make_tern)
    queue = t.role_pids()["queue"]
    s = socket.create_connection(("127.0.0.1", t.qport), timeout=10)
    try:
        assert wait_for(lambda: "event=qmqp_opened" in t.log())
        os.kill(queue, signal.SIGSTOP)
        try:
            s.sendall(qmqp_request(MSG, b"", [b"erin@localhost"]))
            assert wait_for(lambda: "event=qmqp_commit" in t.log())
            s.setblocking(False)
            try:
                early = s.recv(100)
            except BlockingIOError:
                early = None
            assert early is None, early
        finally:
            os.kill(queue, signal.SIGCONT)
        s.setblocking(True)
        assert s.recv(100).split(b":", 1)[1].startswith(b"K")
    finally:
        s.close()
    t.wait_delivered("erin", 1)


# ------------------------------------------------------------------------------ the client

class QMQPServer:
    """A scripted QMQP server: reply(request) -> b"Kok" etc.; requests are recorded."""

    def __init__(self, port=None, reply=b"Kok", early=False):
        self.port = port or free_port()
        self.reply = reply
        self.early = early                 # reply at once, read nothing until released
        self.release = threading.Event()
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def parse(data):
        def take(b):
            n, _, rest = b.partition(b":")
            n = int(n)
            assert rest[n:n + 1] == b","
            return rest[:n], rest[n + 1:]
        body, rest = take(data)
        assert rest == b""
        text, body = take(body)
        sender, body = take(body)
        rcpts = []
        while body:
            r, body = take(body)
            rcpts.append(r)
        return text, sender, rcpts

    def serve(self, c):
        c.settimeout(10)
        if self.early:
            c.sendall(ns(self.reply))
            self.release.wait(30)
            return
        buf = b""
        while True:
            if b":" in buf:
                n = int(buf.partition(b":")[0])
                if len(buf) >= len(buf.partition(b":")[0]) + 1 + n + 1:
                    break
            chunk = c.recv(65536)
            if not chunk:
                return
            buf += chunk
        self.requests.append(self.parse(buf))
        c.sendall(ns(self.reply))
        c.recv(1)                          # the client closes

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.serve(c)
            except (OSError, AssertionError, ValueError):
                pass
            finally:
                c.close()

    def close(self):
        self.stopping = True
        self.release.set()
        self.thread.join(5)
        self.sock.close()


def client_tern(make_tern, servers, **extra):
    cfg = {"relayclients": "127.0.0.1", "qmqpservers": servers, "retryremote": "0",
           "timeoutconnect": "2"}
    cfg.update(extra)
    return make_tern(config=cfg)


def send(t, rcpts, sender="joe@localhost"):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=15) as s:
        s.sendmail(sender, rcpts, b"Subject: hi\r\n\r\nclient body\r\n")


def test_client_k_delivers_in_one_request(make_tern):
    srv = QMQPServer()
    try:
        t = client_tern(make_tern, f"127.0.0.1:{srv.port}")
        send(t, ["x@remote.test", "y@other.test"])
        assert wait_for(lambda: t.log().count("channel=qmqp") >= 2 and
                        t.log().count("status=sent") >= 2)
        assert len(srv.requests) == 1
        text, sender, rcpts = srv.requests[0]
        assert sender == b"joe@localhost"
        assert sorted(rcpts) == [b"x@remote.test", b"y@other.test"]
        assert b"client body" in text and text.startswith(b"Received:")
    finally:
        srv.close()


def test_client_d_bounces_with_its_text(make_tern):
    srv = QMQPServer(reply=b"Dsorry, no such mailbox here")
    try:
        t = client_tern(make_tern, f"127.0.0.1:{srv.port}")
        send(t, ["x@remote.test"])
        msgs = t.wait_delivered("joe", 1)
        assert b"sorry, no such mailbox here" in msgs[0]
    finally:
        srv.close()


def test_client_z_defers(make_tern):
    srv = QMQPServer(reply=b"Ztry later")
    try:
        t = client_tern(make_tern, f"127.0.0.1:{srv.port}", retryremote="30")
        send(t, ["x@remote.test"])
        assert wait_for(lambda: "status=deferred" in t.log() and "try later" in t.log())
        assert "status=sent" not in t.log() and "status=bounced" not in t.log()
    finally:
        srv.close()


@pytest.mark.parametrize("code", [b"K", b"Z", b"D"])
def test_client_reply_before_the_whole_request(make_tern, code):
    # the server answers at once and reads nothing: the request (a message larger than the
    # socket buffers) cannot have been sent whole. Only Z or D may come that early; an early
    # K is a protocol error and defers (it never marks the mail delivered)
    srv = QMQPServer(reply=code + b"early", early=True)
    try:
        t = client_tern(make_tern, f"127.0.0.1:{srv.port}", retryremote="30",
                        databytes="0")
        with smtplib.SMTP("127.0.0.1", t.port, timeout=30) as s:
            s.sendmail("joe@localhost", ["x@remote.test"],
                       b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 8000)
        if code == b"D":
            assert wait_for(lambda: "status=bounced" in t.log())
        else:
            assert wait_for(lambda: "status=deferred" in t.log())
            if code == b"K":
                assert "before the whole request" in t.log()
        srv.release.set()
        assert not [l for l in t.log().splitlines()
                    if "x@remote.test" in l and "status=sent" in l]
    finally:
        srv.close()


def test_client_fails_over_then_drains(make_tern):
    dead = free_port()
    srv = QMQPServer()
    try:
        t = client_tern(make_tern, f"127.0.0.1:{dead} 127.0.0.1:{srv.port}")
        send(t, ["x@remote.test"])
        assert wait_for(lambda: "status=sent" in t.log())
        assert f"server=[127.0.0.1]:{dead}" in t.log()
        assert len(srv.requests) == 1
    finally:
        srv.close()
    # every server down: deferred; the server comes back: drained
    port = free_port()
    t2 = client_tern(make_tern, f"127.0.0.1:{port}")
    send(t2, ["z@remote.test"])
    assert wait_for(lambda: "status=deferred" in t2.log())
    srv2 = QMQPServer(port=port)
    try:
        assert wait_for(lambda: "status=sent" in t2.log(), timeout=30)
        assert srv2.requests[0][2] == [b"z@remote.test"]
    finally:
        srv2.close()


def test_tern_to_tern(make_tern):
    b = server_tern(make_tern, locals="b.test")
    a = client_tern(make_tern, f"127.0.0.1:{b.qport}")
    send(a, ["dora@b.test"])
    msgs = b.wait_delivered("dora", 1)
    assert b"client body" in msgs[0] and b"with QMQP" in msgs[0]
    assert wait_for(lambda: "channel=qmqp" in a.log() and "status=sent" in a.log())
