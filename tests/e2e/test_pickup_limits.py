"""tests/e2e/test_pickup_limits.py — the maildrop pickup treats files as hostile (issue 7):
a file over `databytes` is quarantined without its bytes ever being copied into data/ (a
1 GiB sparse file once became a real 1 GiB spool file); stale `tmp.*` files are removed
(doc/MAILDROP.md); and a file name is logged escaped — a newline in it cannot forge a log
line.

Files are planted in <spool>/maildrop/ directly (we run as root or as the queue user), as a
local user could. Owns: nothing outside its temporary directory. Trusts: conftest.py."""
import os
import re
import time

from conftest import wait_for

LINE_RE = re.compile(r"^(---- start .*|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [a-z]+\[\d+\] "
                     r"(err|warn|info|debug): event=\S.*)$")


def drop_file(tern, name, rcpt="joe@localhost", body=b"Subject: dropped\n\nhello\n", size=None):
    path = tern.spool / "maildrop" / name
    tmp = tern.spool / "maildrop" / f"tmp.{os.getpid()}.{time.monotonic_ns()}"
    head = f"TERN-MAILDROP 1\nU0\nT{int(time.time())}\nFa@example.org\nR{rcpt}\n.\n".encode()
    with open(tmp, "wb") as f:                # written as tmp.*, renamed: as the writers do
        f.write(head + body)
        if size is not None:
            f.truncate(size)                  # a sparse file: no real blocks behind the hole
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
    return path


def quarantined(tern):
    q = tern.spool / "quarantine"
    return sorted(os.listdir(q)) if q.exists() else []


def data_bytes(tern):
    d = tern.spool / "data"
    return sum(os.stat(d / n).st_blocks * 512 for n in os.listdir(d))


def test_oversize_drop_is_quarantined_without_copying(make_tern):
    tern = make_tern(config={"databytes": "1000000"})
    big = drop_file(tern, "big.1", size=64 << 20)          # 64 MiB, over databytes
    drop_file(tern, "small.1")                              # the sync point: delivered
    tern.wait_delivered("joe", 1)
    assert wait_for(lambda: "maildrop_too_big" in tern.log(), 10), tern.log_tail()
    assert not big.exists()
    assert any("big.1" in q for q in quarantined(tern)), quarantined(tern)
    assert data_bytes(tern) < 1 << 20, "the oversize message was copied into data/"
    assert len(tern.maildir("joe")) == 1
    assert re.search(r"event=maildrop_too_big file=big\.1 uid=0 size=\d+ databytes=1000000",
                     tern.log()), tern.log_tail()


def test_stale_tmp_files_are_removed(make_tern):
    tern = make_tern()
    md = tern.spool / "maildrop"
    stale, fresh = md / "tmp.1.2.3.4.stale", md / "tmp.1.2.3.4.fresh"
    stale.write_bytes(b"TERN-MAILDROP 1\n")                # a crashed writer's leftover
    fresh.write_bytes(b"TERN-MAILDROP 1\n")                # a writer still at work
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    drop_file(tern, "sync.1")                               # a scan runs for it...
    tern.wait_delivered("joe", 1)                           # ...and is over once it arrived
    assert wait_for(lambda: not stale.exists(), 10), tern.log_tail()
    assert fresh.exists(), "a fresh tmp file (a writer at work) was removed"
    assert "event=maildrop_stale_tmp file=tmp.1.2.3.4.stale" in tern.log()


def test_file_names_cannot_forge_log_lines(make_tern):
    tern = make_tern()
    forged = "x\nevent=delivered id=0000000000000000 status=sent\rz"
    drop_file(tern, forged)                                   # a good file: committed
    bad = tern.spool / "maildrop" / "tmp.bad"                 # a bad one: quarantined
    bad.write_bytes(b"not a maildrop file\n")
    os.rename(bad, tern.spool / "maildrop" / "bad\nevent=forged_too")
    tern.wait_delivered("joe", 1)
    assert wait_for(lambda: "bad\\nevent=forged_too" in tern.log(), 10), tern.log_tail()
    log = tern.log()
    assert "file=x\\nevent=delivered id=0000000000000000 status=sent\\rz" in log, tern.log_tail()
    bad = [line for line in log.split("\n") if line and not LINE_RE.match(line)]
    assert not bad, f"lines that are not one event each: {bad[:5]}"
    assert "\r" not in log
