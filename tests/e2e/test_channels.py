"""tests/e2e/test_channels.py — the channel table (src/mail/channel.c) through a whole ternd:
every row of the table (the four built-ins and a `channel` line's own) is a scheduler channel
that the metrics list with its concurrency, and a recipient whose channel is not in the table
(a `channel` line removed after mail was routed to it) is deferred with a logged event and
never handed to the mta.

Owns: its temporary directories and the processes it starts. Trusts: conftest.py's fixtures
and the aiosmtpd helpers of test_mta.py."""
import smtplib
import subprocess

from conftest import TERND, wait_for

from test_mta import Recorder, aiosmtp  # noqa: F401  (aiosmtp is a fixture)
from test_metrics import parse_openmetrics, scrape, value, _scrape_ok
from test_mailq2 import start_live


def test_every_table_channel_is_a_scheduler_channel(make_tern, workdir):
    t = start_live(make_tern, workdir, listen_kind="metrics", config={
        "concurrencyremote": "7",
        "channel": ["bulk transport=smtp concurrency=5", "qmqp concurrency=3"]})
    assert wait_for(lambda: _scrape_ok(t.extra_port), 10), t.log_tail()
    f = parse_openmetrics(scrape(t.extra_port))
    assert value(f, "tern_channel_limit", channel="local") == 10
    assert value(f, "tern_channel_limit", channel="smtp") == 7      # concurrencyremote
    assert value(f, "tern_channel_limit", channel="qmqp") == 3      # its `channel` line
    assert value(f, "tern_channel_limit", channel="cluster") == 7
    assert value(f, "tern_channel_limit", channel="bulk") == 5


def test_bad_channel_line_is_a_config_error(make_tern):
    t = make_tern(start=False, config={"channel": "bulk transport=uucp"})
    t.write_config()
    r = subprocess.run([str(TERND), "-n", "-f", str(t.conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert f"{t.conf}:" in r.stderr + r.stdout and "uucp" in r.stderr + r.stdout


def _rcpts(rec):
    return sum(1 for cmds in rec.sessions.values() for c in cmds if c.startswith("RCPT"))


def test_unknown_channel_is_deferred_and_never_sent_to_the_mta(make_tern, aiosmtp):
    rec, port = aiosmtp(Recorder())
    tern = make_tern(config={"relayclients": "127.0.0.1", "retryremote": "1",
                             "smtproutes": f"remote.test:127.0.0.1:{port}"})
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail("joe@localhost", ["temp1@remote.test"], b"Subject: x\r\n\r\nbody\r\n")
    assert wait_for(lambda: "status=deferred" in tern.log(), 15), tern.log_tail()
    tern.stop()
    envs = list((tern.spool / "env").iterdir())
    assert len(envs) == 1
    data = envs[0].read_bytes()
    assert b" smtp\x1f" in data
    envs[0].write_bytes(data.replace(b" smtp\x1f", b" gone\x1f"))
    before = _rcpts(rec)
    tern.start()
    # the retry comes (retryremote 1): deferred by the queue, logged, every time
    assert wait_for(lambda: tern.log().count("event=channel_unknown") >= 2, 20), tern.log_tail()
    log = tern.log()
    assert "channel=gone" in log
    assert "event=unknown_channel" not in log          # the mta never saw it
    assert _rcpts(rec) == before                        # nothing reached the server
    assert list((tern.spool / "env").iterdir()) == envs  # still queued


def test_transports_route_a_domain_and_an_address_to_declared_channels(make_tern, aiosmtp,
                                                                      workdir):
    """`transports` sends a domain (and, more specifically, one address) to a declared channel;
    the mail arrives through that channel's transport, the log names the channel, and an entry
    naming no configured channel defers the recipient instead of taking another route (at RCPT
    for a local address; a relayed one is deferred by the queue)."""
    rec, port = aiosmtp(Recorder())
    bad = workdir / "transports"          # inline, an entry like these is a config error
    bad.write_text("nowhere.test:nosuch\ngone.test:nosuch\n")
    bad.chmod(0o644)
    tern = make_tern(config={
        "relayclients": "127.0.0.1", "rcpthosts": "fast.test, nowhere.test",
        "locals": "localhost, gone.test",
        "channel": ["fast transport=smtp concurrency=2", "vip transport=smtp"],
        "transports": [f"fast.test:fast:[127.0.0.1]:{port}",
                       f"boss@fast.test:vip:[127.0.0.1]:{port}",
                       f"file:{bad}"]})
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail("joe@localhost", ["a@fast.test", "boss@fast.test"],
                   b"Subject: x\r\n\r\nbody\r\n")
        s.mail("joe@localhost")
        code, text = s.rcpt("x@gone.test")
        assert code == 451, (code, text)
        s.rset()
        s.sendmail("joe@localhost", ["x@nowhere.test"], b"Subject: y\r\n\r\nbody\r\n")
    assert wait_for(lambda: tern.log().count("status=sent") >= 2, 15), tern.log_tail()
    assert wait_for(lambda: "names channel nosuch, which is not configured" in tern.log(), 15), \
        tern.log_tail()
    log = tern.log()
    assert "rcpt=<a@fast.test> channel=fast" in log, log
    assert "rcpt=<boss@fast.test> channel=vip" in log, log
    assert _rcpts(rec) == 2
