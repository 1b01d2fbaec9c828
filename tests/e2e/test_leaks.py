"""tests/e2e/test_leaks.py — clients that vanish in the middle of DATA leave nothing behind:
no data file in the spool, no descriptor in the smtp or queue role (issue 7: 1,000
DATA-then-disconnect sessions leaked both).

Owns: nothing outside its temporary directory. Trusts: the fixtures of conftest.py; /proc
for the roles' descriptor counts (we run as root or as the roles' own user)."""
import os
import socket
import struct
import threading

from conftest import wait_for

SESSIONS = int(os.environ.get("LEAK_SESSIONS", "300"))
THREADS = 6


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def send_message(tern, tag):
    with tern.smtp() as c:
        assert c.cmd("EHLO x")[0] == 250
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<joe@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, _ = c.cmd(f"Subject: {tag}\r\n\r\n{tag}\r\n.")
        assert code == 250
        c.cmd("QUIT")


def vanish(tern, i):
    """One session that sends DATA and a few lines, then goes away — in three ways."""
    c = tern.smtp()
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<joe@localhost>\r\nDATA\r\n")
        mode = i % 3
        if mode == 1:                    # lines right behind DATA, gone before the 354
            c.send("Subject: gone\r\n\r\nline\r\n")
            return
        for _ in range(4):               # EHLO, MAIL, RCPT, 354
            code, _ = c.reply()
        assert code == 354, code
        if mode == 0:                    # some lines, then close
            c.send("Subject: gone\r\n\r\n" + "line\r\n" * 50)
        else:                            # half a line, then a reset (RST)
            c.send("Subject: go")
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        c.close()


def spool_data(tern):
    return sorted(os.listdir(tern.spool / "data"))


def test_data_then_disconnect_leaks_nothing(tern):
    send_message(tern, "warm-up")                 # every lazily opened descriptor is open
    tern.wait_delivered("joe", 1)
    assert wait_for(lambda: spool_data(tern) == [], 10), spool_data(tern)
    roles = tern.role_pids()
    base = {r: fd_count(roles[r]) for r in ("smtp", "queue")}
    errors = []

    def worker(k):                     # a few clients at once, as an attack would
        try:
            for i in range(k, SESSIONS, THREADS):
                vanish(tern, i)
        except Exception as e:         # noqa: BLE001 — reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    # synchronisation point: a normal message after all of them is delivered and removed,
    # so every abort sent before it has been handled by the queue
    send_message(tern, "sync")
    tern.wait_delivered("joe", 2)
    assert wait_for(lambda: spool_data(tern) == [], 10), \
        f"stray data files: {spool_data(tern)[:5]} ({len(spool_data(tern))})\n" + tern.log_tail()
    assert tern.role_pids() == roles, "a role restarted"
    for r in ("smtp", "queue"):
        assert wait_for(lambda: fd_count(roles[r]) <= base[r], 10), \
            f"{r} role: {fd_count(roles[r])} descriptors, {base[r]} before"
