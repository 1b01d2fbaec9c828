"""tests/e2e/test_disk_full.py — a full spool answers 452 4.3.1, leaves no partial message,
and mail flows again when space returns (doc/QUEUE.md "Disk full").

The spool is a small tmpfs mounted inside the test's private mount namespace (tests/run-all
runs pytest under unshare with its own mount namespace); needs root."""
import os
import smtplib
import subprocess
import time

import pytest

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
