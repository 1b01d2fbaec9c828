"""tests/e2e/test_sched.py — the scheduler's concurrency feedback through a whole ternd
(src/ternd/scheduler/sched_core.c, doc/ARCHITECTURE.md "Scheduler") and every channel in the
management views:
- a declared channel reached through `transports` has its thread in MAILQ v2 SHOW QUEUE
  THREADS, in `ternctl stats` and in the metrics;
- a recipient greylisted at RCPT (451) is not the destination's failure: the window grows
  while the other mail of the same destination is delivered, nothing is marked dead;
- a destination that refuses connections is marked dead at window 1: its other queued mail is
  held (not tried: one connection attempt in all) until its retry time, the views show it
  dead; a flush lets one probe through, whose success revives it and delivers the rest.
Synchronisation is on the scheduler's own views (polled with a deadline), never on sleeps.

Owns: its temporary directories and the processes it starts. Trusts: conftest.py's fixtures,
the aiosmtpd Recorder of test_mta.py, the MAILQ client of test_mailq2.py."""
import os
import re

from conftest import free_port

from test_mta import Recorder, aiosmtp  # noqa: F401  (aiosmtp is a fixture)
from test_mailq2 import client, wait_for, _submit, _connects
from test_metrics import parse_openmetrics, scrape, value, _scrape_ok
from test_ternctl import ternctl

LOGIN = ("alice", "secret")


def _tern(make_tern, workdir, config, metrics=False):
    """A relaying ternd with a MAILQ v2 port (.mq) and, if asked, a metrics port (.mport)."""
    auth = workdir / "mailq_auth"
    auth.write_text("alice:secret:ALL:\n")
    os.chmod(auth, 0o644)
    t = make_tern(start=False, config={"relayclients": "127.0.0.1",
                                       "mailq_auth": f"file:{auth}", **config})
    t.mq, t.mport = free_port(), free_port()
    t.config["listen"] = [f"smtp 127.0.0.1:{t.port}", f"mailq 127.0.0.1:{t.mq}"]
    if metrics:
        t.config["listen"].append(f"metrics 127.0.0.1:{t.mport}")
    t.start()
    assert wait_for(lambda: _connects(t.mq), 10), t.log_tail()
    return t


def _stats(t):
    code, out, err = ternctl(t.conf, "stats")
    return out if code == 0 else ""


def _threads(t):
    with client(t.mq, login=LOGIN) as c:
        first, body = c.multi("SHOW QUEUE THREADS")
        assert first == "+OK until LF.LF\n", first
        return body.decode()


def test_declared_channel_thread_in_every_view(make_tern, workdir, aiosmtp):
    rec, port = aiosmtp(Recorder())
    t = _tern(make_tern, workdir, metrics=True, config={
        "rcpthosts": "fast.test",
        "channel": ["fast transport=smtp concurrency=3 perhost=2"],
        "transports": [f"fast.test:fast:[127.0.0.1]:{port}"]})
    assert _submit(t, ["temp1@fast.test"])          # 451 at RCPT: it stays queued
    host = f"[127.0.0.1]:{port}"
    assert wait_for(lambda: f"  thread fast/{host}: " in _stats(t), 20), t.log_tail()
    stats = _stats(t)
    assert re.search(r"^channel fast: limit 3, running \d+, threads 1$", stats, re.M), stats
    assert re.search(rf"^  thread fast/{re.escape(host)}: window \d of 2, running \d, "
                     r"recipients 1$", stats, re.M), stats
    body = _threads(t)
    lines = body.splitlines()
    assert "fast/*/0" in lines, body
    assert any(l.startswith(f"    fast/{host}/0") and "R=1" in l for l in lines), body
    group = lines[lines.index("fast/*/0") + 2]
    assert re.fullmatch(r"\tThreads: +1 Msgs: +1 Procs: +\d+ Idle: +0 Plim: +3 Flim: +0 "
                        r"Tlim: 0", group), body
    assert wait_for(lambda: _scrape_ok(t.mport), 10), t.log_tail()
    f = parse_openmetrics(scrape(t.mport))
    assert value(f, "tern_channel_threads", channel="fast") == 1
    assert value(f, "tern_channel_limit", channel="fast") == 3
    assert value(f, "tern_channel_dead_destinations", channel="fast") == 0
    for ch in ("local", "smtp", "qmqp", "cluster"):            # every row of the table
        assert value(f, "tern_channel_limit", channel=ch) is not None, ch


def test_greylisted_recipient_is_not_a_site_failure(make_tern, workdir, aiosmtp):
    rec, port = aiosmtp(Recorder())
    t = _tern(make_tern, workdir, config={
        "rcpthosts": "grey.test", "channel": ["grey transport=smtp perhost=8"],
        "transports": [f"grey.test:grey:[127.0.0.1]:{port}"]})
    host = f"[127.0.0.1]:{port}"
    assert _submit(t, ["temp1@grey.test"])          # every recipient of the job: 451 at RCPT
    # synchronisation: the job's result reached the scheduler (the queue logs it first, and
    # the stats below are asked after); the window stays 4: a greylisting answer neither
    # grows it (no connections more for a server that defers everybody) nor halves it to 2
    assert wait_for(lambda: re.search(r"event=delivery .*rcpt=<temp1@grey.test> .*status=deferred",
                                      t.log()), 20), t.log_tail()
    assert wait_for(lambda: f"  thread grey/{host}: window 4 of 8, running 0, recipients 1\n"
                    in _stats(t), 20), (_stats(t), t.log_tail())
    for i in range(3):
        assert _submit(t, [f"ok{i}@grey.test"])
    assert wait_for(lambda: f"  thread grey/{host}: window 7 of 8, running 0, recipients 1\n"
                    in _stats(t), 20), (_stats(t), t.log_tail())
    got = sorted(r for x in rec.txns for r in x["rcpts"])
    assert got == ["ok0@grey.test", "ok1@grey.test", "ok2@grey.test"], rec.txns
    assert "event=destination_dead" not in t.log()
    assert "S=dead" not in _threads(t)


def test_refusing_destination_is_dead_until_its_retry_time(make_tern, workdir, aiosmtp):
    dead = free_port()                               # nothing listens there (yet)
    host = f"[127.0.0.1]:{dead}"
    t = _tern(make_tern, workdir, config={"channel": ["smtp perhost=1"],
                                          "smtproutes": f"dead.test:{host}"})
    assert _submit(t, ["a@dead.test"])
    assert wait_for(lambda: f"event=destination_dead channel=smtp host={host} next="
                    in t.log(), 20), t.log_tail()
    for i in range(2):
        assert _submit(t, [f"b{i}@dead.test"])
    # synchronisation: both new recipients are ready in the scheduler and held for the
    # destination until its probe time ("dead; retry in …"), not in flight
    with client(t.mq, login=LOGIN) as c:
        def held():
            lines = c.multi(f"SHOW THREAD smtp {host}")[1].decode().splitlines()
            reasons = [l.split("\t")[7] for l in lines]
            waiting = [r for r in reasons if re.fullmatch(r"dead; retry in \S+", r)]
            return lines if len(lines) == 3 and len(waiting) == 2 else None
        lines = wait_for(held, 20)
        assert lines, c.multi(f"SHOW THREAD smtp {host}")[1].decode()
        first, body = c.multi("SHOW QUEUE THREADS")
        line = [l for l in body.decode().splitlines() if l.startswith(f"    smtp/{host}/0")]
        assert len(line) == 1 and re.search(r"R=3 +A=\d+ +W=\d+s QA=\S+ S=dead$", line[0]), line
    stats = _stats(t)
    assert re.search(rf"^  thread smtp/{re.escape(host)}: window 1 of 1, running 0, "
                     r"recipients 3, dead: probe in \S+$", stats, re.M), stats
    log = t.log()
    assert log.count("event=connect_failed") == 1, log    # only the first message was tried
    assert "event=destination_probe" not in log
    # the destination comes back; a flush lets the probe through at once, its success revives
    # the destination and the held mail goes
    rec, _ = aiosmtp(Recorder(), port=dead)
    code, out, err = ternctl(t.conf, "flush")
    assert code == 0, err
    assert wait_for(lambda: len(rec.txns) == 3, 20), t.log_tail()
    assert sorted(r for x in rec.txns for r in x["rcpts"]) == \
        ["a@dead.test", "b0@dead.test", "b1@dead.test"]
    log = t.log()
    d = log.index(f"event=destination_dead channel=smtp host={host}")
    p = log.index(f"event=destination_probe channel=smtp host={host}")
    a = log.index(f"event=destination_alive channel=smtp host={host}")
    assert d < p < a, log
    assert log.count("event=destination_dead") == 1 and log.count("event=destination_alive") == 1
