"""tests/e2e/test_remote.py — remote delivery through a whole ternd: the queue hands remote
recipients to the mta role, which speaks SMTP to real servers on loopback (aiosmtpd scripted
per recipient, Postfix's smtp-sink, a second ternd). Routes come from smtproutes (MX
resolution against a real DNS server is in test_dns_delivery.py). Retry and expiry use
shortened schedules (retryremote 1, small queuelifetime), never real hours.

Owns: nothing outside its temporary directories. Trusts: the fixtures of conftest.py and the
aiosmtpd helpers of test_mta.py."""
import email
import email.policy
import smtplib
import time

import pytest

from conftest import wait_for

from test_mta import Recorder, aiosmtp  # noqa: F401  (aiosmtp is a fixture)




def relay_tern(make_tern, port, **extra):
    cfg = {"relayclients": "127.0.0.1", "smtproutes": f"remote.test:127.0.0.1:{port}",
           "retryremote": "1", "concurrencyremote": "4"}
    cfg.update(extra)
    return make_tern(config=cfg)


def send(tern, rcpts, body=b"Subject: hello\r\n\r\nbody line\r\n.leading dot\r\n", sender="joe@localhost"):
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        return s.sendmail(sender, rcpts, body)


def test_one_transaction_for_several_recipients(make_tern, aiosmtp):
    rec, port = aiosmtp(Recorder(pipelining=True))
    tern = relay_tern(make_tern, port)
    send(tern, ["a@remote.test", "b@remote.test", "c@remote.test"])
    assert wait_for(lambda: len(rec.txns) >= 1), tern.log_tail()
    time.sleep(0.5)
    assert len(rec.txns) == 1, "MMDF's smtp channel: the address list, then one copy of the text"
    t = rec.txns[0]
    assert sorted(t["rcpts"]) == ["a@remote.test", "b@remote.test", "c@remote.test"]
    assert t["mail_from"] == "joe@localhost"
    data = t["content"]
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")   # no bare LF leaves
    assert b"\r\n.leading dot\r\n" in data       # unstuffed by the server: stuffing was right
    assert data.startswith(b"Received: from ")
    assert wait_for(lambda: not list((tern.spool / "env").iterdir())), tern.log_tail()


def test_per_recipient_results_and_bounce(make_tern, aiosmtp):
    """550 for one recipient bounces it (RFC 3464, with the remote host's words); 451 for
    another defers it; the good one is delivered once."""
    rec, port = aiosmtp(Recorder())
    tern = relay_tern(make_tern, port, queuelifetime="3")
    send(tern, ["good@remote.test", "perm1@remote.test", "temp1@remote.test"])
    assert wait_for(lambda: any("good@remote.test" in t["rcpts"] for t in rec.txns))
    bounces = tern.wait_delivered("joe", 1, timeout=30)
    msg = email.message_from_bytes(bounces[0], policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg["To"] and "joe@localhost" in msg["To"]
    status = bounces[0].decode(errors="replace")
    assert "Final-Recipient: rfc822; perm1@remote.test" in status
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "Remote-MTA: dns; 127.0.0.1\n" in status
    assert "550 5.1.1" in status                 # the remote host's words
    assert "temp1@remote.test" in status         # expired after queuelifetime: 3 s
    assert sum(t["rcpts"].count("good@remote.test") for t in rec.txns) == 1
    assert wait_for(lambda: not list((tern.spool / "env").iterdir()), 20), tern.log_tail()


def test_connection_reuse(make_tern, aiosmtp):
    rec, port = aiosmtp(Recorder())
    tern = relay_tern(make_tern, port, concurrencyremote="1")
    for i in range(4):
        send(tern, [f"r{i}@remote.test"])
    assert wait_for(lambda: len(rec.txns) >= 4), tern.log_tail()
    ehlos = [c for cmds in rec.sessions.values() for c in cmds if c.startswith("EHLO")]
    assert len(ehlos) < 4, f"each message opened its own connection: {rec.sessions}"
    assert any("RSET" in cmds for cmds in rec.sessions.values())


def test_deferred_then_etrn(make_tern, aiosmtp):
    """The server is down: the recipient is deferred; once it is up, ETRN starts the queue
    for the domain at once (the schedule alone would wait far longer)."""
    from conftest import free_port
    port = free_port()
    tern = relay_tern(make_tern, port, retryremote="30", timeoutconnect="2")
    send(tern, ["late@remote.test"])
    assert wait_for(lambda: "status=deferred" in tern.log(), 15), tern.log_tail()
    rec, _ = aiosmtp(Recorder(), port=port)
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.ehlo()
        code, text = s.docmd("ETRN", "remote.test")
        assert code == 253, (code, text)
        code, text = s.docmd("ETRN", "nothing.test")
        assert code == 251, (code, text)
    assert wait_for(lambda: len(rec.txns) == 1, 15), tern.log_tail()


def test_round_trip_between_two_ternds(make_tern):
    b = make_tern(config={"locals": "b.test"})
    a = make_tern(config={"relayclients": "127.0.0.1",
                          "smtproutes": f"b.test:127.0.0.1:{b.port}"})
    body = b"Subject: round trip\r\nMessage-ID: <rt@test>\r\n\r\nfrom a to b\r\n"
    with smtplib.SMTP("127.0.0.1", a.port, timeout=15) as s:
        s.sendmail("x@a.test", ["ann@b.test"], body)
    msgs = b.wait_delivered("ann", 1, timeout=30)
    m = email.message_from_bytes(msgs[0], policy=email.policy.default)
    assert m["Subject"] == "round trip"
    assert len(m.get_all("Received")) >= 2       # a's and b's
    assert m["Return-Path"] == "<x@a.test>"
    assert b"from a to b" in msgs[0]


def test_relay_to_smtp_sink(make_tern, tmp_path):
    import subprocess
    from conftest import free_port
    port = free_port()
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{port}", "100"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        tern = relay_tern(make_tern, port)
        for i in range(20):
            send(tern, [f"s{i}@remote.test"])
        assert wait_for(lambda: tern.log().count("channel=smtp") >= 20
                        and "status=sent" in tern.log(), 30), tern.log_tail()
        assert tern.log().count("status=sent") >= 20
    finally:
        sink.terminate()
        sink.wait(10)


def test_reuse_count_one_means_a_connection_per_message(make_tern, aiosmtp):
    rec, port = aiosmtp(Recorder())
    tern = relay_tern(make_tern, port, concurrencyremote="1", smtpreusecount="1")
    for i in range(3):
        send(tern, [f"n{i}@remote.test"])
    assert wait_for(lambda: len(rec.txns) >= 3), tern.log_tail()
    ehlos = [c for cmds in rec.sessions.values() for c in cmds if c.startswith("EHLO")]
    assert len(ehlos) == 3, rec.sessions
