"""tests/e2e/test_retry_floor.py — `retryremote 0` is the shortest schedule, not a hot loop
(issue 7: 31,500 connections in 30 s). A destination that always answers 451 is tried a
handful of times in a few seconds, never thousands.

Owns: a tiny SMTP server on loopback that counts transactions and defers every one.
Trusts: the fixtures of conftest.py."""
import smtplib
import socket
import threading
import time

from conftest import wait_for

class Deferrer:
    """Answers 220, 250 to EHLO/HELO/RSET/NOOP, 451 to MAIL; counts connections and MAILs."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.connections = 0
        self.mails = 0
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        with c:
            f = c.makefile("rb")
            try:
                c.sendall(b"220 deferrer ESMTP\r\n")
                for line in f:
                    verb = line[:4].upper()
                    if verb == b"MAIL":
                        self.mails += 1
                        c.sendall(b"451 4.3.0 try again later\r\n")
                    elif verb == b"QUIT":
                        c.sendall(b"221 bye\r\n")
                        return
                    else:
                        c.sendall(b"250 ok\r\n")
            except OSError:
                return

    def stop(self):
        self.stopped = True
        self.lsock.close()


def test_retry_zero_is_not_a_hot_loop(make_tern):
    srv = Deferrer()
    try:
        tern = make_tern(config={"relayclients": "127.0.0.1",
                                 "smtproutes": f"remote.test:127.0.0.1:{srv.port}",
                                 "retryremote": "0", "queuelifetime": "3600"})
        with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
            s.sendmail("joe@localhost", ["r@remote.test"], b"Subject: x\r\n\r\nretry me\r\n")
        assert wait_for(lambda: srv.mails >= 1, 15), tern.log_tail()
        first = time.monotonic()
        # the floor: 1 s between the first tries, growing with the age (sqrt(age)); the
        # schedule counts whole seconds, so five tries span at least about three of them
        assert wait_for(lambda: srv.mails >= 5, 20), f"{srv.mails} tries\n" + tern.log_tail()
        elapsed = time.monotonic() - first
        mails, conns = srv.mails, srv.connections
        assert elapsed >= 2.5 and mails <= 6, \
            f"{mails} transactions ({conns} connections) in {elapsed:.2f} s: a hot loop"
    finally:
        srv.stop()
