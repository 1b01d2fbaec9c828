"""tests/e2e/test_lmtp.py — the lmtp channel (RFC 2033, doc/LMTP.md) through a whole ternd into
a real Dovecot (tests/e2e/dovecotinst.py): SMTP in, `transports` to channel lmtp (a domain to
Dovecot's unix socket, one address to its TCP listener), the mail read back over IMAP. One
message for several users: the known ones are delivered, the unknown one bounces (Dovecot
refuses it at RCPT: 5.1.1), the one over quota is deferred alone (452 4.2.2 after the dot, the
recipient's own trouble: scope=rcpt); a second message goes over the same LMTP connection.
Bad lmtp nexthops (a bare domain, a socket outside lmtpsocketdirs) defer with a diagnostic
that says why, and nothing is sent anywhere.

Owns: its temporary directories and the processes it starts. Trusts: conftest.py's fixtures,
dovecotinst.py, Dovecot."""
import email
import re
import smtplib

import pytest

from conftest import wait_for
import dovecotinst

pytestmark = pytest.mark.skipif(bool(dovecotinst.available()), reason=dovecotinst.available())


@pytest.fixture
def dovecot(workdir):
    # upper case in the socket's path: a path keeps its case through the transports key
    d = dovecotinst.Dovecot(workdir / "Dovecot", {"alice": None, "bob": None, "carol": None,
                                                   "full": 300})
    d.start()
    yield d
    d.stop()


def delivery(t, rcpt, status):
    return [ln for ln in t.log().splitlines()
            if "event=delivery " in ln and f"rcpt=<{rcpt}>" in ln and f"status={status}" in ln]


def lmtp_tern(make_tern, dovecot, extra=None):
    config = {
        "relayclients": "127.0.0.1",
        "rcpthosts": "example.org",
        "lmtpsocketdirs": str(dovecot.dir),
        "transports": [f"example.org:lmtp:unix:{dovecot.lmtp_socket}",
                       f"bob@example.org:lmtp:[127.0.0.1]:{dovecot.lmtp_port}"],
        "retryremote": "1", "retrylocal": "1",
    }
    config.update(extra or {})
    return make_tern(config=config)


def send(t, rcpts, subject, body="Hello from tern.\r\n"):
    msg = (f"From: joe@localhost\r\nTo: team@example.org\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '.')}@tern.test>\r\n\r\n{body}").encode()
    with smtplib.SMTP("127.0.0.1", t.port, timeout=15) as s:
        refused = s.sendmail("joe@localhost", rcpts, msg)
    assert refused == {}


def test_one_message_for_several_users_into_dovecot(make_tern, dovecot):
    t = lmtp_tern(make_tern, dovecot)
    rcpts = ["alice@example.org", "nobody@example.org", "full@example.org", "carol@example.org",
             "bob@example.org"]
    send(t, rcpts, "first one", body="x" * 400 + "\r\n.a line with a dot\r\n")
    assert wait_for(lambda: delivery(t, "alice@example.org", "sent") and
                    delivery(t, "carol@example.org", "sent") and
                    delivery(t, "bob@example.org", "sent") and
                    delivery(t, "nobody@example.org", "bounced") and
                    delivery(t, "full@example.org", "deferred"), 20), t.log_tail()
    # alice and carol over the unix socket, bob (an address key) over TCP
    for u in ("alice", "carol", "bob"):
        msgs = dovecot.messages(u)
        assert len(msgs) == 1, (u, msgs)
        m = email.message_from_bytes(msgs[0])
        assert m["Subject"] == "first one"
        assert m["Message-ID"] == "<first.one@tern.test>"
        assert m["Return-Path"] == "<joe@localhost>"
        assert "by " in m["Received"] and "LMTP" in msgs[0].decode()
        body = m.get_payload()
        assert "x" * 400 in body and "\n.a line with a dot" in body   # dot-stuffing undone
    log = t.log()
    assert re.search(r"event=delivered .*rcpt=<alice@example.org> remote=unix:" +
                     re.escape(dovecot.lmtp_socket), log), log
    assert re.search(r"event=delivered .*rcpt=<bob@example.org> remote=127\.0\.0\.1"
                     r"\[127\.0\.0\.1\]", log), log
    # over quota: 452 4.2.2 after the dot, the recipient's own trouble, deferred alone
    d = [ln for ln in log.splitlines() if "event=deferred" in ln and "full@example.org" in ln]
    assert d and "452 4.2.2" in d[0] and "scope=rcpt" in d[0], d
    assert dovecot.maildir_count("full") == 0
    assert "Quota exceeded" in dovecot.log()
    # the quota raised, the next try delivers it
    dovecot.set_quota("full", 10 ** 7)
    assert wait_for(lambda: delivery(t, "full@example.org", "sent"), 30), t.log_tail()
    assert email.message_from_bytes(dovecot.messages("full")[0])["Subject"] == "first one"
    # the unknown user: Dovecot's 550 5.1.1 at RCPT, a bounce to the sender once the
    # message is done
    assert "5.1.1" in delivery(t, "nobody@example.org", "bounced")[0]
    assert wait_for(lambda: any(b"nobody@example.org" in m and b"5.1.1" in m
                                for m in t.maildir("joe")), 20), t.log_tail()


def test_connection_reuse_and_lhlo(make_tern, dovecot):
    t = lmtp_tern(make_tern, dovecot, {"smtpreusetime": "30"})
    send(t, ["alice@example.org"], "msg one")
    assert wait_for(lambda: delivery(t, "alice@example.org", "sent"), 20), t.log_tail()
    send(t, ["alice@example.org", "carol@example.org"], "msg two")
    assert wait_for(lambda: len(delivery(t, "alice@example.org", "sent")) == 2 and
                    delivery(t, "carol@example.org", "sent"), 20), t.log_tail()
    assert [email.message_from_bytes(m)["Subject"] for m in dovecot.messages("alice")] == \
        ["msg one", "msg two"]
    # one LMTP connection carried both (the mta's log and Dovecot's agree)
    connects = [ln for ln in t.log().splitlines() if "event=connect " in ln and
                "protocol=lmtp" in ln]
    assert len(connects) == 1, connects
    assert dovecot.log().count("Connect from local") == 1, dovecot.log()
    assert "Received: from tern.test" in dovecot.messages("carol")[0].decode()  # our LHLO name
    t.stop()                                   # QUIT on the way out
    assert wait_for(lambda: "Disconnect from local: Logged out" in dovecot.log(), 10), \
        dovecot.log()                          # Dovecot's word for a QUIT


@pytest.mark.parametrize("entry,why", [
    ("bare.test:lmtp", "lmtp needs a nexthop"),
    ("bare.test:lmtp:unix:/run/elsewhere/lmtp", "not under lmtpsocketdirs"),
    ("bare.test:lmtp:unix:{dir}/../x/lmtp", "'..' component"),
])
def test_bad_lmtp_nexthop_defers_with_a_reason(make_tern, dovecot, entry, why):
    t = lmtp_tern(make_tern, dovecot, {"rcpthosts": "example.org, bare.test"})
    t.config["transports"] = [entry.format(dir=dovecot.dir)]
    t.restart()
    send(t, ["who@bare.test"], "nowhere")
    assert wait_for(lambda: delivery(t, "who@bare.test", "deferred"), 20), t.log_tail()
    assert why in delivery(t, "who@bare.test", "deferred")[0]
    assert "event=lmtp_bad_destination" in t.log()
    assert "Connect from local" not in dovecot.log()


def test_unix_socket_needs_lmtpsocketdirs(make_tern, dovecot):
    """without lmtpsocketdirs no unix socket is used (and the mta's filter allows none)"""
    t = lmtp_tern(make_tern, dovecot, {"lmtpsocketdirs": None})
    send(t, ["alice@example.org"], "no dirs")
    assert wait_for(lambda: delivery(t, "alice@example.org", "deferred"), 20), t.log_tail()
    assert "not under lmtpsocketdirs" in delivery(t, "alice@example.org", "deferred")[0]
    assert "Connect from local" not in dovecot.log()


def test_lmtp_is_a_channel_of_the_table(make_tern, workdir):
    """the built-in row: the metrics list channel lmtp with concurrencylocal as its limit"""
    from test_mailq2 import start_live
    from test_metrics import parse_openmetrics, scrape, value, _scrape_ok
    t = start_live(make_tern, workdir, listen_kind="metrics", config={"concurrencylocal": "7"})
    assert wait_for(lambda: _scrape_ok(t.extra_port), 10), t.log_tail()
    f = parse_openmetrics(scrape(t.extra_port))
    assert value(f, "tern_channel_limit", channel="lmtp") == 7
