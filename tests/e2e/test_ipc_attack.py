"""tests/e2e/test_ipc_attack.py — a compromised role against the (receiver, sender, type)
table of src/ternd/ipc_acl.c (doc/IPC.md, "Who may say what").

The test build's hook TERN_TEST_EVIL=ROLE[,ROLE] makes that role, before it starts, send each
peer every message type the peer must refuse from it (the dangerous ones well-formed:
M_Q_OP remove all, M_Q_READ and M_SCHED_CTL of a queued message, M_SCHED_FLUSH, M_ROUTE,
M_FORK_LOCAL with a descriptor...), every type the peer accepts with a malformed payload, and
one accepted type with a descriptor it never carries; it logs
`event=evil_sent peer=P refused=N malformed=M`. The evil smtp role first opens a data file
through the queue, tries to read it back (`event=evil_data_fd`) and to commit it at a queue
stage past every agent (`event=evil_staged_commit`).

TERN_TEST_EVIL_RESULTS=1 makes the mda, on each delivery request, claim in well-formed
M_DELIVERED frames that the message queued just before was delivered, under every request
number: the queue believes a result only from the role its request went to.

Checked: every forbidden frame is refused (one `event=ipc_refused` line each at the receiver),
malformed payloads are logged (`event=ipc_malformed`) and dropped, no role exits or restarts,
the queued messages are all still there, and ternd still takes and delivers mail.

Owns: its temporary directories and processes. Trusts: the fixtures of conftest.py."""
import re
import socket
import subprocess

from conftest import REPO, free_port, wait_for
from test_mailq2 import _submit

TERNCTL = REPO / "build" / "tbin" / "ternctl"

# proto.h numbers of the frames the issue names
M_ROUTE, M_SCHED_FLUSH, M_FORK_LOCAL, M_Q_OP, M_Q_READ = 20, 33, 50, 110, 114


def deferring_tern(make_tern):
    """A ternd whose remote.test mail stays queued: its route points where nothing listens."""
    return make_tern(config={"relayclients": "127.0.0.1",
                             "smtproutes": f"remote.test:[127.0.0.1]:{free_port()}"})


def since_start(t):
    """The log of the current run only (after the last start marker)."""
    return t.log().rsplit("---- start ", 1)[-1]


def sent(t, evil, peer):
    """(refused, malformed) the evil role says it sent to peer, once it has said it."""
    pat = rf"{evil}\[\d+\] warn: event=evil_sent peer={peer} refused=(\d+) malformed=(\d+)"
    assert wait_for(lambda: re.search(pat, since_start(t)), 10), t.log_tail()
    m = re.search(pat, since_start(t))
    return int(m[1]), int(m[2])


def lines(t, receiver, event, peer):
    return re.findall(rf"^.*{receiver}\[\d+\] err: event={event} peer={peer} type=(\d+).*$",
                      since_start(t), re.M)


def refused_types(t, receiver, peer, n):
    """The types receiver refused from peer, once it has refused n frames (never more)."""
    assert wait_for(lambda: len(lines(t, receiver, "ipc_refused", peer)) >= n, 10), \
        f"{receiver} refused {len(lines(t, receiver, 'ipc_refused', peer))} of {n} frames " \
        f"from {peer}\n{t.log_tail()}"
    got = lines(t, receiver, "ipc_refused", peer)
    assert len(got) == n, got
    return {int(x) for x in got}


def queued_ids(t):
    return sorted(p.name for p in (t.spool / "env").iterdir())


def restart_evil(t, roles, victim=""):
    t.stop()
    t.env["TERN_TEST_EVIL"] = roles
    t.env["TERN_TEST_EVIL_ID"] = victim
    t.start()


def still_works(t, pids):
    """No role exited or was restarted, and a new message is delivered."""
    log = since_start(t)
    assert "event=restarting" not in log, t.log_tail()
    assert t.role_pids() == pids, t.log_tail()
    s = t.smtp()
    assert s.cmd("HELO client.test")[0] == 250
    assert s.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert s.cmd("RCPT TO:<bob@localhost>")[0] == 250
    assert s.cmd("DATA")[0] == 354
    assert s.cmd("Subject: after the attack\r\n\r\nstill here\r\n.")[0] == 250
    s.cmd("QUIT")
    s.close()
    assert b"after the attack" in t.wait_delivered("bob", 1)[0]


def test_evil_smtp_is_refused(make_tern):
    t = deferring_tern(make_tern)
    ids = [_submit(t, [f"r{i}@remote.test"]) for i in range(3)]
    assert all(ids) and wait_for(lambda: queued_ids(t) == sorted(ids)), t.log_tail()

    restart_evil(t, "smtp", ids[0])
    pids = t.role_pids()
    to_queue, bad_queue = sent(t, "smtp", "queue")
    to_lookup, bad_lookup = sent(t, "smtp", "lookup")
    to_parent, bad_parent = sent(t, "smtp", "parent")
    assert {M_Q_OP, M_Q_READ, M_SCHED_FLUSH} <= refused_types(t, "queue", "smtp", to_queue)
    assert M_ROUTE in refused_types(t, "lookup", "smtp", to_lookup)
    assert M_FORK_LOCAL in refused_types(t, "parent", "smtp", to_parent)
    # the malformed payloads of the types they do accept: logged and dropped, each once
    assert bad_parent == 0
    for receiver, n in (("queue", bad_queue), ("lookup", bad_lookup)):
        assert wait_for(lambda: len(lines(t, receiver, "ipc_malformed", "smtp")) >= n, 10), \
            t.log_tail()
        assert len(lines(t, receiver, "ipc_malformed", "smtp")) == n, t.log_tail()
    # the data descriptor the queue hands the smtp role is write-only
    m = re.search(r"smtp\[\d+\] warn: event=evil_data_fd write=(-?\d+) read=(-?\d+) "
                  r"read_errno=(\d+)", since_start(t))
    assert m and m[1] == "1" and m[2] == "-1" and m[3] == "9", t.log_tail()   # EBADF
    # and it cannot commit a message past the stage agents (a stage is control's to give)
    assert re.search(r"smtp\[\d+\] warn: event=evil_staged_commit status=554\b",
                     since_start(t)), t.log_tail()

    # nothing was removed, and the queue still answers its owner
    assert queued_ids(t) == sorted(ids), t.log_tail()
    out = subprocess.run([str(TERNCTL), "show", "queue"], capture_output=True, text=True,
                         env={**t.env, "TERN_CONF": str(t.conf)}, timeout=30).stdout
    assert all(i in out for i in ids), out
    still_works(t, pids)


def test_evil_mda_cannot_claim_another_roles_delivery(make_tern):
    """An mda that answers, well-formed, for requests it was never given is not believed: the
    victim's remote recipient is in flight at the mta (its server accepted the connection and
    stalls), the evil mda claims it delivered under every request number when it gets a
    local delivery; the queue refuses each claim (event=bad_result) and the victim stays
    queued — it is not lost."""
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(8)                       # the handshake completes; no greeting ever comes
    port = stall.getsockname()[1]
    try:
        t = make_tern(config={"relayclients": "127.0.0.1", "timeoutremote": "300",
                              "smtproutes": f"remote.test:[127.0.0.1]:{port}"},
                      env={"TERN_TEST_EVIL_RESULTS": "1"})
        victim = _submit(t, ["r0@remote.test"])
        assert victim and wait_for(lambda: f"port={port}" in t.log(), 10), t.log_tail()
        local = _submit(t, ["bob@localhost"])   # the evil mda forges for the id before it
        assert int(local, 16) == int(victim, 16) + 1
        t.wait_delivered("bob", 1)
        assert "event=evil_results peer=queue" in t.log(), t.log_tail()
        pat = rf"queue\[\d+\] err: event=bad_result peer=mda id={victim}"
        assert wait_for(lambda: len(re.findall(pat, t.log())) >= 31, 10), t.log_tail()
        assert not re.search(rf"event=delivery id={victim} .*status=sent", t.log()), t.log_tail()
        assert queued_ids(t) == [victim]
    finally:
        stall.close()


def test_every_role_survives_malformed_payloads(make_tern):
    """An evil queue talks to every role but the parent, an evil mda to the parent: each
    receiver refuses what it must, logs malformed payloads, drops them, and keeps running."""
    t = make_tern()
    restart_evil(t, "queue,mda")
    pids = t.role_pids()
    peers = {"smtp": "queue", "lookup": "queue", "scheduler": "queue", "mda": "queue",
             "mta": "queue", "control": "queue", "parent": "mda"}
    for receiver, evil in peers.items():
        refused, malformed = sent(t, evil, receiver)
        refused_types(t, receiver, evil, refused)
        assert malformed > 0, receiver
        # replies nobody waits for are dropped unread (a debug line); the rest are malformed
        assert wait_for(lambda: lines(t, receiver, "ipc_malformed", evil), 10), \
            f"{receiver} logged no malformed payload from {evil}\n{t.log_tail()}"
        assert len(lines(t, receiver, "ipc_malformed", evil)) <= malformed
    still_works(t, pids)
