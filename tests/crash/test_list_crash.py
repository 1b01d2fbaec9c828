"""tests/crash/test_list_crash.py — the list channel's at-least-once rule (doc/LISTS.md,
doc/QUEUE.md "Mailing lists"): the queue dies after the members' copy is committed and
before the list slot's result is recorded; after the restart the list is expanded again, so
every member gets the post once or twice (the documented duplicate), never not at all, and
the spool ends empty. Owns: its list directory. Trusts: the e2e fixtures."""
import os
import smtplib

from tern_e2e_conftest import wait_for

POINT = "queue:list_before_done"


def test_crash_between_list_copy_and_slot_result(make_tern):
    tern = make_tern(users={u: None for u in ("alice", "bob", "carol", "owner")}, start=False,
                     env={"TERN_CRASHPOINT": POINT})
    d = tern.dir / "lists" / "dev"
    d.mkdir(parents=True)
    for p in (tern.dir / "lists", d):
        os.chmod(p, 0o755)
    (d / "members").write_text("alice@localhost\nbob@localhost\n")
    (d / "config").write_text("owner = owner@localhost\n")
    for f in ("members", "config"):
        os.chmod(d / f, 0o644)
    tern.config["lists"] = f"dev@localhost:{d}"
    tern.start()
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail("carol@localhost", ["dev@localhost"],
                   b"Subject: crash\r\nMessage-ID: <c1@test>\r\n\r\nlist body\r\n")
    assert wait_for(lambda: f"event=crashpoint name={POINT}" in tern.log(), 20), tern.log_tail()
    for u in ("alice", "bob"):
        got = tern.wait_delivered(u, 1, timeout=40)
        assert b"list body" in got[0] and b"List-Id: <dev.localhost>" in got[0]
    assert wait_for(lambda: not any(list((tern.spool / sub).iterdir())
                                    for sub in ("env", "data", "tmp")), 40), tern.log_tail()
    for u in ("alice", "bob"):
        assert 1 <= len(tern.maildir(u)) <= 2, tern.log_tail()
    assert tern.log().count("event=list_expand") == 2, tern.log_tail()
