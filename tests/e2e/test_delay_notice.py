"""tests/e2e/test_delay_notice.py — the delay channel (issue 10, seed 004's MMDF delay
channel): a message still not delivered `delaywarn` seconds after arrival, to a recipient
already tried, gets ONE RFC 3464 "delayed" notice to its sender (doc/QUEUE.md, "Delay
notices"); the W journal record keeps a restart from sending it again; never when delaywarn
is 0, never for a bounce (sender <>).

Owns: a loopback SMTP server that answers 451 to every MAIL. Trusts: conftest.py's
fixtures and test_retry_floor.py's Deferrer."""
import email
import email.policy
import smtplib

from conftest import wait_for

from test_retry_floor import Deferrer


def relay(make_tern, port, env=None, **extra):
    cfg = {"relayclients": "127.0.0.1", "smtproutes": f"remote.test:127.0.0.1:{port}",
           "retryremote": "0", "queuelifetime": "3600", "delaywarn": "2"}
    cfg.update(extra)
    return make_tern(config=cfg, env=env)


def send(tern, sender="joe@localhost", rcpts=("r1@remote.test", "r2@remote.test")):
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail(sender, list(rcpts), b"Subject: slow\r\nMessage-ID: <slow@test>\r\n\r\nslow\r\n")


def notices(tern):
    return [m for m in tern.maildir("joe") if b"report-type=delivery-status" in m]


def check_notice(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert "joe@localhost" in msg["To"]
    parts = list(msg.iter_parts())
    status = parts[1].as_string()
    assert status.count("Action: delayed") == 2, status
    assert "Action: failed" not in status
    assert "rfc822; r1@remote.test" in status and "rfc822; r2@remote.test" in status
    assert "Status: 4.3.0" in status, status                  # the peer's 451 4.3.0
    assert "451 4.3.0 try again later" in status.replace("\n ", " ")
    assert "Will-Retry-Until:" in status
    assert "slow" in msg.as_string()


def deferred_twice(tern):
    return tern.log().count("status=deferred") >= 4        # two rounds of two recipients


def test_one_delay_notice_survives_restart(make_tern):
    srv = Deferrer()
    try:
        tern = relay(make_tern, srv.port)
        send(tern)
        got = tern.wait_delivered("joe", 1, timeout=20)
        check_notice(got[0])
        assert "event=delay_notice" in tern.log()
        # tries go on; the restart replays the journal's W record: no second notice
        assert wait_for(lambda: srv.mails >= 3, 20), tern.log_tail()
        tern.restart()
        n = srv.mails
        assert wait_for(lambda: srv.mails >= n + 2, 20), tern.log_tail()
        assert len(notices(tern)) == 1, tern.log_tail()
        assert list((tern.spool / "env").iterdir()), "the original is still queued"
    finally:
        srv.stop()


def test_no_notice_when_delaywarn_is_zero(make_tern):
    srv = Deferrer()
    try:
        tern = relay(make_tern, srv.port, delaywarn="0")
        send(tern)
        assert wait_for(lambda: srv.mails >= 3, 20), tern.log_tail()   # past 2 s of age
        assert "event=delay_notice" not in tern.log()
        assert tern.maildir("joe") == []
    finally:
        srv.stop()


def test_no_notice_for_a_bounce(make_tern):
    srv = Deferrer()
    try:
        tern = relay(make_tern, srv.port)
        send(tern, sender="")
        send(tern, sender="joe@localhost", rcpts=("r3@remote.test",))
        # the ordinary message's notice comes; the bounce (sender <>) tried as often gets none
        got = tern.wait_delivered("joe", 1, timeout=20)
        assert wait_for(lambda: srv.mails >= 6, 20), tern.log_tail()
        assert tern.log().count("event=delay_notice") == 1, tern.log_tail()
        assert len(got) == 1 and b"r3@remote.test" in got[0]
        assert b"r1@remote.test" not in tern.maildir("joe")[0]
    finally:
        srv.stop()


def test_crash_after_the_record_sends_one(make_tern):
    """The queue dies right after the W record is durable: the restart sends no second."""
    point = "queue:after_delay_record"
    srv = Deferrer()
    try:
        tern = relay(make_tern, srv.port, env={"TERN_CRASHPOINT": point})
        send(tern)
        assert wait_for(lambda: f"name={point}" in tern.log(), 20), tern.log_tail()
        assert wait_for(lambda: "event=restarting" in tern.log(), 10), tern.log_tail()
        tern.wait_delivered("joe", 1, timeout=20)
        n = srv.mails
        assert wait_for(lambda: srv.mails >= n + 2, 20), tern.log_tail()
        assert len(notices(tern)) == 1, tern.log_tail()
    finally:
        srv.stop()


def test_crash_between_commit_and_record_is_at_least_once(make_tern):
    """The notice is committed, the queue dies before its W record: the restart sends it
    again — the documented duplicate window, at most one extra copy."""
    point = "queue:before_delay_record"
    srv = Deferrer()
    try:
        tern = relay(make_tern, srv.port, env={"TERN_CRASHPOINT": point})
        send(tern)
        assert wait_for(lambda: f"name={point}" in tern.log(), 20), tern.log_tail()
        assert wait_for(lambda: "event=restarting" in tern.log(), 10), tern.log_tail()
        tern.wait_delivered("joe", 1, timeout=20)
        n = srv.mails
        assert wait_for(lambda: srv.mails >= n + 2, 20), tern.log_tail()
        assert 1 <= len(notices(tern)) <= 2, tern.log_tail()
        for raw in notices(tern):
            check_notice(raw)
    finally:
        srv.stop()
