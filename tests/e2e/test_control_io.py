"""tests/e2e/test_control_io.py — the control role's sessions on the one connection layer
(src/lib/io.h, issue 8): a large answer to a client that does not read is produced only as
its socket drains, so the control role's memory stays flat however big the message is:

- QP: QRETR … MESSAGE of a 20 MB entry (the data is streamed from the file in chunks while
  less than 128 KiB of output waits);
- the control socket: `show message ID` of the same entry (refilled below 64 KiB).

Each test stops reading, synchronises (the answer has started, another session of the same
kind has been served since), checks the control role's resident memory grew by far less than
the message, then reads everything and checks it.

Owns: nothing outside its temporary directories. Trusts: conftest.py (the Tern fixture)."""
import hashlib
import re
import socket

from conftest import free_port, rss_kb

SECRET = "s3cret-pass"
BIG_LINES = 200000                      # of 100 octets: 20 MB on the wire
LINE = b"x" * 98 + b"\r\n"
SLACK_KB = 8 * 1024                     # growth allowed: far below the 20 MB answer


class QP:
    """Just enough of the queue protocol: CRLF lines, `NNNN text` replies."""

    def __init__(self, port, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")
        challenge = self.line().split()[2]
        assert self.cmd("AUTH " + hashlib.md5((challenge + SECRET).encode()).hexdigest()) == "1000 OK"

    def line(self):
        return self.f.readline(100000).decode().rstrip("\r\n")

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def close(self):
        self.f.close()
        self.sock.close()


def start(make_tern):
    """A ternd whose QP entries made with QCREA 900 wait at stage 900 (no agent)."""
    t = make_tern(start=False, env={"TERN_QP_STAGES": "900"},
                  config={"qp_secret": SECRET, "qp_agentpolicy": "hold", "databytes": "0"})
    t.qport = free_port()
    t.config["listen"] = [f"smtp 127.0.0.1:{t.port}", f"qp 127.0.0.1:{t.qport}"]
    t.start()
    return t


def big_entry(t):
    """A 20 MB entry held at stage 900: its name (900-<id>) and its wire octets."""
    q = QP(t.qport)
    msg = b"Subject: big\r\n\r\n" + LINE * BIG_LINES
    assert q.cmd("QCREA 900").startswith("1000 ")
    assert q.cmd("QSTOR FROM sender@localhost -").startswith("1000 ")
    assert q.cmd("QSTOR TO joe@localhost joe@localhost 0").startswith("1000 ")
    q.sock.sendall(b"QSTOR MESSAGE %d\r\n" % len(msg) + msg)
    assert q.line().startswith("1000 ")
    m = re.match(r"^1000 (900-[0-9a-f]{16}) OK$", q.cmd("QRUN"))
    assert m
    q.close()
    return m[1], msg


def test_qp_large_read_is_paced_by_the_socket(make_tern):
    t = start(make_tern)
    name, msg = big_entry(t)
    pid = t.role_pids()["control"]
    before = rss_kb(pid)
    r = QP(t.qport, rcvbuf=65536)
    r.sock.sendall(b"QRETR %s MESSAGE\r\n" % name.encode())
    m = re.match(r"^2023 (\d+) MESSAGE follows$", r.line())     # the stream has begun
    assert m and int(m[1]) > len(msg)
    other = QP(t.qport)                                          # the loop went round since
    assert other.cmd("NOOP") == "1000 OK"
    grown = rss_kb(pid) - before
    assert grown < SLACK_KB, f"control grew by {grown} kB while its client did not read"
    data = r.f.read(int(m[1]))
    assert data.endswith(b"\r\n\r\n" + LINE * BIG_LINES)
    assert r.line() == "1000 OK"
    assert other.cmd("QUIT") == "1000 OK Signing Off"
    r.close()
    other.close()


def test_admin_show_message_is_paced_by_the_socket(make_tern):
    t = start(make_tern)
    name, msg = big_entry(t)
    pid = t.role_pids()["control"]
    before = rss_kb(pid)
    s = socket.socket(socket.AF_UNIX)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(30)
    s.connect(str(t.spool / "ternctl.sock"))
    s.sendall(b"show message %s\n" % name[4:].encode())
    f = s.makefile("rb")
    assert f.readline().startswith(b"--- envelope of " + name[4:].encode())   # it has begun
    q = QP(t.qport)                                              # the loop went round since
    assert q.cmd("NOOP") == "1000 OK"
    grown = rss_kb(pid) - before
    assert grown < SLACK_KB, f"control grew by {grown} kB while its client did not read"
    rest = f.read()
    assert rest.endswith(b"\n.\n0 ok\n")
    assert (b"x" * 98 + b"\n") * BIG_LINES in rest                # stored with LF line ends
    f.close()
    s.close()
    q.close()
