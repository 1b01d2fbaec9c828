"""tests/crash/test_restart.py — the lifecycle of roles (doc/ARCHITECTURE.md, "Restarts").

  * a role that dies is restarted alone: the other roles keep their pids, an SMTP session
    opened before keeps working, the mta keeps its outbound connection, no acknowledged
    mail is lost, ternd keeps answering (the queue is the exception: everything restarts);
  * killing the whole role tree over and over, and killing roles while the parent is still
    starting them, never stops the parent (a SIGTERM meant for a fresh child must not reach
    the parent's signal handlers);
  * an orderly stop (SIGTERM to the parent) logs no error line.

Two hooks of the test build keep this fast and the race wide open: TERN_RESTART_BACKOFF_MS
(the first restart delay, instead of 1 s) and TERN_SPAWN_DELAY_MS (a child waits this long
between fork and exec, where the race with the parent's signal handlers lives).
Owns: its ternd instances and aiosmtpd servers. Trusts: tests/e2e/conftest.py."""
import asyncio
import os
import random
import re
import signal
import smtplib
import time
import uuid

import pytest
from tern_e2e_conftest import RawSMTP, cmdline, descendants, free_port, wait_for

try:
    from aiosmtpd.controller import Controller
except ImportError:          # pragma: no cover - the test machine has python3-aiosmtpd
    Controller = None

ROLES = ["smtp", "lookup", "queue", "scheduler", "mda", "mta", "control"]
ERR_LINE = re.compile(r"^\S+ \S+\[\d+\] err: ", re.M)


# --------------------------------------------------------------------------- helpers

class Sink:
    """aiosmtpd handler: records transactions and which connection carried each."""

    def __init__(self, stall_first=0):
        self.conns = set()
        self.txns = []
        self.stall_first = stall_first

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.conns.add(id(session))
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.txns.append((id(session), list(envelope.rcpt_tos), bytes(envelope.original_content)))
        if len(self.txns) == 1 and self.stall_first:
            await asyncio.sleep(self.stall_first)
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def sink():
    if Controller is None:
        pytest.skip("python3-aiosmtpd is not installed")
    started = []

    def start(stall_first=0):
        handler, port = Sink(stall_first), free_port()
        c = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5.0)
        c.start()
        started.append(c)
        return handler, port

    yield start
    for c in started:
        c.stop()


def body_for(tag, rcpt):
    return (f"From: a@example.org\r\nTo: {rcpt}\r\nSubject: restart\r\n"
            f"Message-ID: <{tag}@test>\r\n\r\nbody {tag}\r\n").encode()


def send(tern, rcpts, tag=None):
    """One message over a fresh connection; returns its tag (acknowledged: 250)."""
    tag = tag or uuid.uuid4().hex
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail("a@example.org", rcpts, body_for(tag, rcpts[0]))
    return tag


def send_retrying(tern, rcpts, timeout=20.0):
    """Send until acknowledged (the roles may be restarting); returns the tag."""
    tag = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    while True:
        try:
            return send(tern, rcpts, tag)
        except (smtplib.SMTPException, OSError):
            if time.monotonic() > deadline or not tern.running():
                raise
            time.sleep(0.05)


def tags_in(raws):
    out = []
    for raw in raws:
        for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
            if line.startswith(b"body "):
                out.append(line[5:].strip().decode())
    return out


def transaction(sess, rcpt, tag, timeout=20.0):
    """A whole transaction on an open session; a 4xx (a peer restarting) makes it start
    over after RSET, on the same connection. Returns the final reply code."""
    deadline = time.monotonic() + timeout
    while True:
        steps = [("MAIL FROM:<a@example.org>", 250), (f"RCPT TO:<{rcpt}>", 250), ("DATA", 354)]
        code = None
        for line, want in steps:
            code, lines = sess.cmd(line)
            if code != want:
                break
        else:
            sess.send(body_for(tag, rcpt) + b".\r\n")
            code, lines = sess.reply()
            if code == 250:
                return code
        assert code is not None and 400 <= code < 500, f"{line}: {code} {lines}"
        assert time.monotonic() < deadline, f"still {code} {lines} after {timeout} s"
        assert sess.cmd("RSET")[0] == 250
        time.sleep(0.1)


def relay_config(port):
    return {"relayclients": "127.0.0.1", "smtproutes": f"remote.test:127.0.0.1:{port}",
            "smtpreusetime": "300", "concurrencyremote": "1", "retryremote": "1",
            "retrylocal": "1"}


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- one role dies

@pytest.mark.parametrize("role", ["smtp", "lookup", "scheduler", "mda", "mta", "control"])
def test_only_the_dead_role_restarts(make_tern, sink, role):
    rec, port = sink()
    tern = make_tern(config=relay_config(port))
    first = send(tern, ["joe@localhost", "r0@remote.test"])
    local, remote = [first], [first]
    tern.wait_delivered("joe", 1)
    assert wait_for(lambda: len(rec.txns) == 1), tern.log_tail()
    before = tern.role_pids()
    assert sorted(before) == sorted(ROLES), before
    sess = None if role == "smtp" else tern.smtp()
    if sess:
        assert sess.cmd("EHLO client.test")[0] == 250

    kill(before[role])
    assert wait_for(lambda: tern.role_pids().get(role, before[role]) != before[role], 15), (
        f"{role} was not restarted\n" + tern.log_tail())
    after = tern.role_pids()
    # (a) only the dead role has a new pid
    assert {r: p for r, p in after.items() if r != role} == \
           {r: p for r, p in before.items() if r != role}, (before, after, tern.log_tail())

    # (b) the session opened before the kill completes a transaction
    if sess:
        tag = uuid.uuid4().hex
        assert transaction(sess, "joe@localhost", tag) == 250
        local.append(tag)
        assert sess.cmd("QUIT")[0] == 221
        sess.close()
    # (e) ternd answers new clients; (d) everything acknowledged arrives
    last = send_retrying(tern, ["joe@localhost", "r1@remote.test"])
    local.append(last)
    remote.append(last)
    assert wait_for(lambda: set(local) <= set(tags_in(tern.maildir("joe"))), 30), (
        f"acknowledged mail lost after killing {role}\n" + tern.log_tail())
    assert wait_for(lambda: set(remote) <= set(tags_in(t[2] for t in rec.txns)), 30), (
        f"acknowledged remote mail lost after killing {role}\n" + tern.log_tail())
    # (c) the mta's outbound connection outlived the restart of any other role
    if role != "mta":
        assert len(rec.conns) == 1, f"the mta reconnected after {role} died: {rec.txns}"
    assert tern.running()
    assert tern.role_pids()[role] != before[role]
    assert wait_for(lambda: not list((tern.spool / "env").iterdir()), 20), tern.log_tail()
    assert not ERR_LINE.search(tern.log()), tern.log_tail()


def test_remote_delivery_in_flight_when_mta_dies(make_tern, sink):
    """The mta dies in the middle of a transaction: the queue defers the recipient without
    counting an attempt and runs it again as soon as the new mta is there (not after the
    retry schedule: retryremote 20 would wait minutes)."""
    rec, port = sink(stall_first=30)
    cfg = relay_config(port)
    cfg["retryremote"] = "20"
    tern = make_tern(config=cfg)
    tag = send(tern, ["far@remote.test"])
    assert wait_for(lambda: len(rec.txns) == 1), tern.log_tail()
    kill(tern.role_pids()["mta"])
    assert wait_for(lambda: len(rec.txns) >= 2, 15), tern.log_tail()
    assert tags_in([rec.txns[1][2]]) == [tag]
    assert "event=deliveries_deferred peer=mta n=1" in tern.log()
    assert wait_for(lambda: not list((tern.spool / "env").iterdir()), 10), tern.log_tail()


def test_local_delivery_in_flight_when_mda_dies(make_tern):
    """The mda dies while tern-local runs: the recipient is delivered at least once, and its
    delivery is started again by the new mda at once."""
    tern = make_tern(config={"retrylocal": "20"}, start=False)
    home = tern.mail / "slow"
    home.mkdir(parents=True, exist_ok=True)
    (home / ".qmail").write_text("|sleep 2\n./Maildir/\n")
    os.chmod(home / ".qmail", 0o644)
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam(tern.config.get("user", "_tern"))
        for p in (home, home / ".qmail"):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    tern.start()
    tag = send(tern, ["slow@localhost"])
    assert wait_for(lambda: any("sleep" in " ".join(cmdline(p)) for p, _ in
                                descendants(tern.proc.pid)), 10), tern.log_tail()
    kill(tern.role_pids()["mda"])
    assert wait_for(lambda: "event=deliveries_deferred peer=mda n=1" in tern.log(), 10), tern.log_tail()
    assert wait_for(lambda: tag in tags_in(tern.maildir("slow")), 15), tern.log_tail()
    assert wait_for(lambda: not list((tern.spool / "env").iterdir()), 15), tern.log_tail()


def test_etrn_while_the_scheduler_is_down(make_tern):
    """ETRN relayed by the queue to a scheduler that is dead (or dies before answering) is
    answered 458 (RFC 1985: try again later) at once, not left waiting for ever: one ETRN
    sent right after the kill (the queue may still relay it to the dead channel), one after
    the queue has noticed. Both sessions then go on; the new scheduler answers ETRN."""
    tern = make_tern(env={"TERN_RESTART_BACKOFF_MS": "3000"})
    early, late = tern.smtp(), tern.smtp()
    for s in (early, late):
        assert s.cmd("EHLO client.test")[0] == 250
    before = tern.role_pids()
    kill(before["scheduler"])
    early.sock.settimeout(2.0)
    assert early.cmd("ETRN example.net")[0] == 458, tern.log_tail()
    assert wait_for(lambda: re.search(r"queue\[\d+\] warn: event=peer_lost peer=scheduler",
                                      tern.log()), 5), tern.log_tail()
    assert "scheduler" not in tern.role_pids(), "the scheduler came back too early"
    late.sock.settimeout(2.0)
    assert late.cmd("ETRN example.net")[0] == 458, tern.log_tail()
    for s in (early, late):
        assert s.cmd("NOOP")[0] == 250
        assert s.cmd("QUIT")[0] == 221
        s.close()
    assert wait_for(lambda: tern.role_pids().get("scheduler", before["scheduler"])
                    != before["scheduler"], 15), tern.log_tail()
    assert wait_for(lambda: "event=peer_new peer=scheduler" in tern.log(), 10), tern.log_tail()
    with tern.smtp() as s:
        assert s.cmd("EHLO client.test")[0] == 250
        assert s.cmd("ETRN example.net")[0] in (251, 253), tern.log_tail()
    assert not ERR_LINE.search(tern.log()), tern.log_tail()


def test_queue_death_restarts_everything(make_tern):
    """The exception: the queue's peers start over with it (a fresh recovery)."""
    tern = make_tern(env={"TERN_RESTART_BACKOFF_MS": "50"})
    tag = send(tern, ["joe@localhost"])
    before = tern.role_pids()
    kill(before["queue"])
    assert wait_for(lambda: all(tern.role_pids().get(r, before[r]) != before[r]
                                for r in ROLES), 15), tern.log_tail()
    tag2 = send_retrying(tern, ["joe@localhost"])
    assert wait_for(lambda: {tag, tag2} <= set(tags_in(tern.maildir("joe"))), 30), tern.log_tail()


def test_role_that_keeps_dying_backs_off(make_tern):
    """A role killed as soon as it is back waits longer each time (1 s doubling, here 200 ms
    doubling): the restarts of one role do not come in a hot loop."""
    tern = make_tern(env={"TERN_RESTART_BACKOFF_MS": "200"})
    seen = []
    pid = tern.role_pids()["lookup"]
    for _ in range(4):
        kill(pid)
        t0 = time.monotonic()
        assert wait_for(lambda: tern.role_pids().get("lookup", pid) != pid, 15), tern.log_tail()
        seen.append(time.monotonic() - t0)
        pid = tern.role_pids()["lookup"]
    assert seen[3] > seen[0] + 0.8, seen           # 200, 400, 800, 1600 ms
    assert re.search(r"event=restarting role=lookup .*backoff_ms=1600", tern.log()), tern.log_tail()
    send_retrying(tern, ["joe@localhost"])
    tern.wait_delivered("joe", 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="the role accounts exist only for root")
def dropped(pid):
    """The process runs as an account other than root (it has dropped its privileges)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(l.startswith("Uid:") and l.split()[1] != "0" for l in f)
    except OSError:
        return False


def test_restarted_role_with_a_config_error_stops_ternd(make_tern):
    """Exit code 78 (a configuration error a restart will not fix) still stops ternd when
    it comes from a role restarted alone: here the config names an account that does not
    exist by the time lookup starts again."""
    tern = make_tern(env={"TERN_RESTART_BACKOFF_MS": "50"})
    # every role has read the file and dropped to its account before the file changes:
    # else a role still starting (mda, also `user`) would be the one to meet the error
    assert wait_for(lambda: all(dropped(p) for p in tern.role_pids().values())
                    and len(tern.role_pids()) >= 6, 10), tern.log_tail()
    tern.config["user"] = "no-such-user-h3"
    tern.write_config()
    kill(tern.role_pids()["lookup"])
    assert wait_for(lambda: not tern.running(), 15), tern.log_tail()
    assert tern.proc.returncode == 78, tern.log_tail()
    assert "event=fatal role=lookup" in tern.log()


# --------------------------------------------------------------------------- the whole tree

def test_kill_whole_tree_repeatedly(make_tern):
    """Kill -9 every role at once, then one of the children the parent starts next while it
    is still starting them, 20 times: the parent keeps running and delivers all the mail
    acknowledged before each cycle."""
    tern = make_tern(env={"TERN_RESTART_BACKOFF_MS": "10", "TERN_SPAWN_DELAY_MS": "100"})
    rnd = random.Random(7)
    acked = []
    t_end = time.monotonic() + 150
    for cycle in range(20):
        assert time.monotonic() < t_end, f"cycle {cycle}: too slow\n" + tern.log_tail()
        acked.append(send_retrying(tern, ["joe@localhost"], timeout=30))
        old = {pid for pid, _ in descendants(tern.proc.pid)}
        for pid in old:
            kill(pid)
        # the parent starts new children: kill one of the first ones at once, so that the
        # parent stops the others while they are between fork and exec
        fresh = []
        assert wait_for(lambda: not tern.running() or fresh.extend(
            p for p, _ in descendants(tern.proc.pid) if p not in old) or fresh, 15, 0.005), (
            f"cycle {cycle}: no restart\n" + tern.log_tail())
        assert tern.running(), f"cycle {cycle}: the parent stopped\n" + tern.log_tail()
        kill(rnd.choice(fresh))
        assert wait_for(lambda: not tern.running() or len(tern.role_pids()) == len(ROLES), 20), (
            f"cycle {cycle}: roles {tern.role_pids()}\n" + tern.log_tail())
        assert tern.running(), f"cycle {cycle}: the parent stopped\n" + tern.log_tail()
    # a delivery child killed with the tree defers its recipient on qmail's schedule
    # ("tern-local crashed", next try minutes later): ask for a flush (SIGUSR1, what ternctl
    # flush falls back to) until everything acknowledged has arrived
    delivered = lambda: set(acked) <= set(tags_in(tern.maildir("joe")))
    for _ in range(20):
        os.kill(tern.proc.pid, signal.SIGUSR1)
        if wait_for(delivered, 3):
            break
    assert delivered(), (
        f"lost: {set(acked) - set(tags_in(tern.maildir('joe')))}\n" + tern.log_tail())
    assert tern.running()


# --------------------------------------------------------------------------- orderly stop

def test_orderly_stop_logs_no_error(make_tern, sink):
    rec, port = sink()
    tern = make_tern(config=relay_config(port))
    send(tern, ["joe@localhost", "r0@remote.test"])
    tern.wait_delivered("joe", 1)
    assert wait_for(lambda: len(rec.txns) == 1), tern.log_tail()
    with RawSMTP("127.0.0.1", tern.port) as s:      # a client connected during the stop
        assert s.cmd("EHLO client.test")[0] == 250
        assert tern.stop() == 0
    assert "event=stopped" in tern.log(), tern.log_tail()
    assert not ERR_LINE.search(tern.log()), ERR_LINE.findall(tern.log()) or tern.log_tail()
