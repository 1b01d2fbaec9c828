"""tests/e2e/test_disk_full.py — a full spool answers 452 4.3.1, leaves no partial message,
and mail flows again when space returns (doc/QUEUE.md "Disk full").

The spool is a small tmpfs mounted inside the test's private mount namespace (tests/run-all
runs pytest under unshare with its own mount namespace); needs root."""
import os
import smtplib
import subprocess
import time

import pytest

from conftest import REPO, wait_for
from test_mta import aiosmtp  # noqa: F401  (a fixture)

TERNCTL = REPO / "build" / "tbin" / "ternctl"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave):
    """Write a filler file until at most `leave` bytes are free."""
    f = path / "filler"
    with open(f, "wb") as out:
        while free_bytes(path) > leave:
            chunk = min(65536, free_bytes(path) - leave)
            if chunk <= 0:
                break
            out.write(b"\0" * chunk)
            out.flush()
            os.fsync(out.fileno())
    return f


def spool_gone(tern, timeout=5.0):
    """The queue removes a refused message's data file once the smtp role's abort reaches
    it, which may be just after the client has its 452: wait for that, bounded."""
    deadline = time.monotonic() + timeout
    while spool_files(tern) and time.monotonic() < deadline:
        time.sleep(0.02)
    return spool_files(tern) == []


def spool_files(tern):
    out = []
    for d in ("data", "env", "tmp"):
        p = tern.spool / d
        if p.exists():
            out += [f"{d}/{x}" for x in os.listdir(p)]
    return out


@pytest.fixture
def small_spool(make_tern):
    tern = make_tern(config={"databytes": "1000000", "queuefreebytes": "200000"}, start=False)
    tern.spool.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(tern.spool)],
                   check=True, timeout=10)
    try:
        yield tern
    finally:
        tern.stop()
        subprocess.run(["umount", "-l", str(tern.spool)], timeout=10)


def send(tern, body=b"Subject: t\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        return s.sendmail("a@example.org", ["joe@localhost"], body)


def test_full_spool_refuses_with_452_and_recovers(small_spool):
    tern = small_spool
    tern.start()
    filler = fill(tern.spool, 150000)          # below 2 x databytes: the queue refuses
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(tern)
    assert e.value.smtp_code == 452 and e.value.smtp_error.startswith(b"4.3.1"), e.value
    assert spool_gone(tern), f"a refused message left files behind: {spool_files(tern)}"
    assert "event=spool_full" in tern.log()
    filler.unlink()
    send(tern, b"Subject: after\r\n\r\nspace is back\r\n")
    msgs = tern.wait_delivered("joe", 1, timeout=20)
    assert b"space is back" in msgs[0]
    assert len(tern.maildir("joe")) == 1


def test_acknowledged_mail_survives_a_full_spool(small_spool):
    """Mail accepted before the disk filled up is still delivered after space returns."""
    tern = small_spool
    home = tern.mail / "joe"
    tern.start()
    send(tern, b"Subject: before\r\n\r\naccepted before the disk filled\r\n")
    tern.wait_delivered("joe", 1, timeout=20)
    filler = fill(tern.spool, 50000)
    with pytest.raises(smtplib.SMTPDataError):
        send(tern)
    filler.unlink()
    send(tern, b"Subject: later\r\n\r\nlater\r\n")
    tern.wait_delivered("joe", 2, timeout=20)
    assert home.exists()


def test_disk_fills_during_data(make_tern, small_spool):
    """The free-space check passes but the disk fills while the message is written: the
    write fails, the client gets 452 4.3.1, and no partial message stays in the spool."""
    tern = small_spool
    tern.config["queuefreebytes"] = "1"
    tern.start()
    filler = fill(tern.spool, 300000)
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 600      # ~600 KB
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(tern, big)
    assert e.value.smtp_code == 452 and e.value.smtp_error.startswith(b"4.3.1"), e.value
    assert spool_gone(tern), spool_files(tern)
    filler.unlink()
    send(tern, big)
    msgs = tern.wait_delivered("joe", 1, timeout=20)
    assert msgs[0].count(b"x" * 998) == 600


def fill_up(path):
    """Fill the filesystem completely (until ENOSPC): a filler file, as anything could."""
    f = path / "filler"
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * chunk) > 0:
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return f


def log_lines(tern):
    return tern.log().count("\n")


def test_full_spool_backs_off_and_drains(make_tern, aiosmtp):
    """The disk is filled by someone else while messages wait for a destination that is
    down. The queue must not spin on the failing journal appends (issue 7: 16.5 million log
    lines in two minutes): it logs each kind of failure once per interval with a count, and
    when the destination comes back it delivers — delivery frees space — and the spool
    drains. When the filler goes, new mail is accepted again."""
    from conftest import free_port
    from test_mta import Recorder
    port = free_port()
    tern = make_tern(config={"databytes": "1000000", "queuefreebytes": "200000",
                             "relayclients": "127.0.0.1", "retryremote": "300",
                             "smtproutes": f"remote.test:127.0.0.1:{port}",
                             "timeoutconnect": "2"}, start=False)
    tern.spool.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(tern.spool)],
                   check=True, timeout=10)
    try:
        tern.start()
        # 30 recipients with long names: each delivery attempt appends ~5 KB of journal per
        # message, more than a page, so every append needs a new block of the full disk
        rcpts = [f"r{i:02d}-" + "x" * 56 + "@remote.test" for i in range(30)]
        for n in range(3):
            with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
                s.sendmail("joe@localhost", rcpts, f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode())
        assert wait_for(lambda: tern.log().count("status=deferred") >= 90, 20), tern.log_tail()
        filler = fill_up(tern.spool)
        before = log_lines(tern)
        flush = [str(TERNCTL), "flush"]
        env = dict(os.environ, TERN_CONF=str(tern.conf))
        subprocess.run(flush, env=env, timeout=10, capture_output=True)   # appends fail now
        assert wait_for(lambda: "journal_append_failed" in tern.log()
                        or tern.logfile.stat().st_size > 5e6, 20), tern.log_tail()
        rec, _ = aiosmtp(Recorder(), port=port)                            # it comes back
        got = lambda: sum(len(t["rcpts"]) for t in rec.txns)             # noqa: E731

        def delivered():
            """flush until everything arrived: a recipient whose failed attempt was still
            on its way when we flushed waits for its (long) retry otherwise"""
            if got() >= 90 or tern.logfile.stat().st_size > 5e6:
                return True
            subprocess.run(flush, env=env, timeout=10, capture_output=True)
            return False
        assert wait_for(delivered, 30, step=1.0), \
            f"{got()} of 90 recipients delivered\n" + tern.log_tail()
        assert tern.logfile.stat().st_size < 5e6, "the log exploded"
        assert wait_for(lambda: not os.listdir(tern.spool / "env"), 20), tern.log_tail()
        added = log_lines(tern) - before
        assert added < 1000, f"{added} log lines while the disk was full\n" + tern.log_tail()
        assert got() == 90
        filler.unlink()
        send(tern, b"Subject: after\r\n\r\nspace is back\r\n")
        assert b"space is back" in tern.wait_delivered("joe", 1, timeout=20)[0]
    finally:
        tern.stop()
        subprocess.run(["umount", "-l", str(tern.spool)], timeout=10)
