"""tests/e2e/test_ternctl.py — ternctl's admin commands over ternd's control socket
(doc/ADMIN.md), their rights and exit codes, and the local tools (digest, cdb).

Against the control role under tests/e2e/control_driver.c (canned queue, scheduler and mta:
exact output) and against a whole ternd: show queue [--json], show message, hold, release,
schedule, remove, flush, qstat, mailq (and its fallback to the spool when ternd is down,
which must print the same text), tcpto, tcpok, stats; a caller without rights (setpriv to
another uid) is refused, a member of the queue user's group may read but not change.
Exit codes: 0 ok, 1 not found / refused, 64 usage, 75 ternd not reachable.

Owns: its temporary directories and processes. Trusts: build/ and bin/ (run make),
/usr/bin/setpriv.
"""
import json
import os
import pwd
import re
import subprocess

import pytest

from conftest import REPO
from test_mailq2 import (control_driver, make_driver, drv, start_live,  # noqa: F401  fixtures
                         wait_for, _submit)

TERNCTL = REPO / "build" / "tbin" / "ternctl"
KNOWN = "0123456789abcdef"


def ternctl(conf, *args, user=None, input_=None):
    """(exit code, stdout, stderr) of bin/ternctl ARGS with TERN_CONF=conf; user: a
    setpriv prefix (list) to run it as someone else."""
    cmd = [*(user or []), str(TERNCTL), *args]
    env = dict(os.environ, TERN_CONF=str(conf), TZ="UTC")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, input=input_)
    return p.returncode, p.stdout, p.stderr


def setpriv(uid, gid, groups=None):
    g = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}", *g]


def queue_group():
    """gid of the default queueuser account (_ternq), or None when it does not exist."""
    try:
        return pwd.getpwnam("_ternq").pw_gid
    except KeyError:
        return None


STRANGER = 4242     # no account, no group: no rights at all

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="setpriv to other users needs root")


# --------------------------------------------------------------------------- exact output

SHOW_QUEUE = """0123456789abcdef      1234 Thu Jan 01 00:00:00  <s@example.com>
  deferred <rcpt@example.com>  451 4.3.0 busy
  done     <done@example.com>
00000000000000aa      1234 Thu Jan 01 00:00:00  <s@example.com>  (held)
  deferred <rcpt@example.com>  451 4.3.0 busy
00000000000000bb      1234 Thu Jan 01 00:00:00  <>
  deferred <rcpt@example.com>  451 4.3.0 busy
-- 3 messages in queue
"""

STATS = """uptime: 1h2m3s (3723 s)
messages in: 12
messages out: 9
recipients in: 20
recipients out: 15
messages queued: 3
recipients queued: 5
threads: 3
deliveries running: 2
channel local: limit 10, running 1, threads 1
  thread local/: window 4 of 10, running 1, recipients 1
channel smtp: limit 20, running 1, threads 2
  thread smtp/example.com: window 1 of 10, running 1, recipients 3, dead: probe in 5m
  thread smtp/a-very-long-host-name.example.org: window 4 of 10, running 0, recipients 1
"""


def test_show_queue_text_and_json(drv):
    assert ternctl(drv.conf, "show", "queue") == (0, SHOW_QUEUE, "")
    assert ternctl(drv.conf, "mailq") == (0, SHOW_QUEUE, "")
    assert ternctl(drv.conf, "qread") == (0, SHOW_QUEUE, "")
    code, out, err = ternctl(drv.conf, "show", "queue", "--json")
    assert code == 0, err
    msgs = json.loads(out)
    assert [m["id"] for m in msgs] == [KNOWN, "00000000000000aa", "00000000000000bb"]
    assert msgs[0] == {"id": KNOWN, "arrival": 0, "size": 1234, "sender": "s@example.com",
                       "kind": "normal", "held": False, "stage": 0, "recipients": [
                           {"address": "rcpt@example.com", "state": "deferred", "attempts": 2,
                            "next": 1000060, "diag": "451 4.3.0 busy"},
                           {"address": "done@example.com", "state": "done", "attempts": 1,
                            "next": 0, "diag": ""}]}
    assert msgs[1]["held"] is True and msgs[2]["kind"] == "bounce" and msgs[2]["sender"] == ""
    # the listing came in pages of at most 200, the driver hands out 2 at a time
    assert drv.requests()[:2] == ["list 0 200", "list 2 200"]


def test_show_message(drv):
    code, out, err = ternctl(drv.conf, "show", "message", KNOWN)
    assert code == 0, err
    assert out == ("--- envelope of 0123456789abcdef (stage 0, 1234 bytes)\n"
                   "TERN-ENV 1\nI 0123456789abcdef\nT 0\nF s@example.com\n.\n"
                   "--- message\nSubject: hi\n\n.dot line\nbody\n")
    assert ternctl(drv.conf, "show", "message", "00000000000000aa") == \
        (1, "", "ternctl: no such message 00000000000000aa\n")
    code, out, err = ternctl(drv.conf, "show", "message", "xyz")
    assert code == 64 and "bad message id" in err


@pytest.mark.parametrize("args,code,out,req", [
    (["remove", "all"], 0, "removed 3 messages\n", "op 1 0000000000000000 - -"),
    (["remove", KNOWN], 0, "removed 1 message\n", f"op 1 {KNOWN} - -"),
    (["hold", KNOWN], 0, "held 1 message\n", f"op 2 {KNOWN} - -"),
    (["release", KNOWN], 0, "released 1 message\n", f"op 3 {KNOWN} - -"),
    (["release", "00000000000000cc"], 1, "", "op 3 00000000000000cc - -"),
    (["schedule", "all"], 0, "scheduled 3 messages\n", "op 4 0000000000000000 - -"),
    (["flush"], 0, "flush requested: every deferred recipient is tried now\n",
     "op 13 0000000000000000 - -"),
])
def test_operations(drv, args, code, out, req):
    got = ternctl(drv.conf, *args)
    assert got[:2] == (code, out), got
    assert drv.requests() == [req]


def test_qstat_tcpto_tcpok_stats(drv):
    code, out, err = ternctl(drv.conf, "qstat")
    assert code == 0, err
    assert out.startswith("messages in queue: 3\nrecipients still to deliver: 3\n"
                          "messages in maildrop not yet picked up: ")
    code, out, err = ternctl(drv.conf, "tcpto")
    assert code == 0, err
    assert re.fullmatch(r"192\.0\.2\.1 timed out 10\d seconds ago; # recent timeouts: 3\n"
                        r"2001:db8::1 timed out \d seconds ago; # recent timeouts: 1\n"
                        r"2 entries\n", out), out
    assert ternctl(drv.conf, "tcpok") == (0, "cleared 2 entries\n", "")
    assert ternctl(drv.conf, "stats") == (0, STATS, "")
    assert drv.requests()[-3:] == ["tcpto 0", "tcpto 1", "snapshot 0 - -"]


@pytest.mark.parametrize("args", [
    ["show"], ["show", "queue", "--xml"], ["show", "message"], ["hold"], ["hold", "a", "b"],
    ["remove"], ["tcpto", "x"], ["show", "message", "a b"], ["frobnicate"],
])
def test_usage(drv, args):
    code, out, err = ternctl(drv.conf, *args)
    assert code == 64 and "usage" in err, (code, out, err)
    assert drv.requests() == []


def test_peer_gone_is_temporary(drv):
    drv.send("close mta")
    code, out, err = ternctl(drv.conf, "tcpto")
    assert code == 75 and "mta is not reachable" in err
    drv.send("close queue")
    code, out, err = ternctl(drv.conf, "hold", KNOWN)
    assert code == 75 and "queue is not reachable" in err


# --------------------------------------------------------------------------- rights

@needs_root
def test_stranger_is_refused(drv):
    for args in (["show", "queue"], ["mailq"], ["stats"], ["hold", KNOWN], ["remove", "all"]):
        code, out, err = ternctl(drv.conf, *args, user=setpriv(STRANGER, STRANGER))
        assert code == 1 and out == "", (args, code, out, err)
        assert "permission denied: uid 4242 may not use the control socket" in err, err
    assert drv.requests() == []


@needs_root
@pytest.mark.skipif(queue_group() is None, reason="no _ternq account (scripts/users)")
@pytest.mark.parametrize("how", ["primary", "supplementary"])
def test_queue_group_may_read_only(drv, how):
    g = queue_group()
    user = setpriv(STRANGER, g) if how == "primary" else setpriv(STRANGER, STRANGER, [g])
    assert ternctl(drv.conf, "show", "queue", user=user) == (0, SHOW_QUEUE, "")
    assert ternctl(drv.conf, "stats", user=user)[0] == 0
    code, out, err = ternctl(drv.conf, "hold", KNOWN, user=user)
    assert code == 1 and "permission denied: uid 4242 may only read" in err, err
    code, out, err = ternctl(drv.conf, "flush", user=user)
    assert code == 1 and "may only read" in err
    assert not any(r.startswith("op ") for r in drv.requests())


# --------------------------------------------------------------------------- local tools

@pytest.mark.parametrize("args,out", [
    (["-s", "AQIDBA==", "SSHA", "secret"], "{SSHA}uJDd0BIdJ9Z7yDCZNWdgYeb33+cBAgME\n"),
    (["-S", "01020304", "SMD5", "secret"], "{SMD5}LF/f6q9WuGXFii+gm3ssYQECAwQ=\n"),
    (["SHA", "secret"], "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"),
    (["md5", "secret"], "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==\n"),
    (["-s", "ab", "crypt", "secret"], "{crypt}abNANd1rDfiNc\n"),
    (["-s", "$1$saltsalt$", "CRYPT", "secret"], "{crypt}$1$saltsalt$9xy1btjgzLYfb7hivXtC//\n"),
])
def test_digest(args, out):
    assert ternctl("/nonexistent.conf", "digest", *args) == (0, out, "")


def test_digest_random_salt_and_verify():
    for fmt in ("SSHA", "SMD5", "crypt", "SHA", "MD5"):
        code, out, err = ternctl("/nonexistent.conf", "digest", fmt, "pw 1")
        assert code == 0, err
        h = out.strip()
        assert ternctl("/nonexistent.conf", "digest", "-v", h, "pw 1") == (0, "match\n", "")
        assert ternctl("/nonexistent.conf", "digest", "-v", h, fmt, "pw 1")[0] == 0
        assert ternctl("/nonexistent.conf", "digest", "-v", h, "pw 2") == (1, "no match\n", "")
    code, out, err = ternctl("/nonexistent.conf", "digest", "-v", "{XYZ}abc", "pw")
    assert code == 1 and "not a hash" in err
    for bad in (["MD4", "pw"], ["SSHA"], ["-s", "!!", "SSHA", "pw"], ["-s", "a", "-S", "b", "SHA", "x"]):
        assert ternctl("/nonexistent.conf", "digest", *bad)[0] == 64, bad


def test_cdb(workdir):
    src = workdir / "table.txt"
    src.write_text("# comment\nExample.COM relay.example.net\nother.test  x y\n")
    out = workdir / "table.cdb"
    assert ternctl("/nonexistent.conf", "cdb", str(src), str(out)) == (0, "", "")
    data = out.read_bytes()
    assert len(data) > 2048 and b"example.com" in data and b"relay.example.net" in data
    assert b"x y" in data and b"comment" not in data
    assert ternctl("/nonexistent.conf", "cdb", str(src))[0] == 64
    assert ternctl("/nonexistent.conf", "cdb", str(workdir / "missing"), str(out))[0] == 1


# --------------------------------------------------------------------------- a whole ternd

@pytest.fixture
def live(make_tern, workdir):
    t = start_live(make_tern, workdir, listen_kind="metrics")
    sock = t.spool / "ternctl.sock"
    assert wait_for(lambda: ternctl(t.conf, "stats")[0] == 0, 10), t.log_tail()
    assert oct(sock.stat().st_mode & 0o777) == "0o666"
    return t


def listing(t):
    code, out, err = ternctl(t.conf, "show", "queue", "--json")
    assert code == 0, err
    return json.loads(out)


def test_live_queue_operations(live):
    msgid = _submit(live, ["a@remote.test", "b@remote.test"])
    assert wait_for(lambda: any(m["id"] == msgid for m in listing(live)))
    m = [m for m in listing(live) if m["id"] == msgid][0]
    assert m["sender"] == "sender@client.test" and m["held"] is False and m["kind"] == "normal"
    assert sorted(r["address"] for r in m["recipients"]) == ["a@remote.test", "b@remote.test"]
    assert wait_for(lambda: all(r["state"] == "deferred" and r["attempts"] >= 1
                                for r in [x for x in listing(live) if x["id"] == msgid][0]["recipients"]))

    assert ternctl(live.conf, "hold", msgid)[:2] == (0, "held 1 message\n")
    assert [x for x in listing(live) if x["id"] == msgid][0]["held"] is True
    code, out, err = ternctl(live.conf, "mailq")
    assert code == 0 and f"{msgid} " in out and "(held)" in out, err
    assert ternctl(live.conf, "release", msgid)[:2] == (0, "released 1 message\n")
    assert [x for x in listing(live) if x["id"] == msgid][0]["held"] is False
    assert ternctl(live.conf, "schedule", msgid)[:2] == (0, "scheduled 1 message\n")
    assert ternctl(live.conf, "schedule", "all")[0] == 0
    assert ternctl(live.conf, "flush")[:2] == \
        (0, "flush requested: every deferred recipient is tried now\n")

    code, out, err = ternctl(live.conf, "show", "message", msgid)
    assert code == 0, err
    assert out.startswith(f"--- envelope of {msgid} (stage 0, ")
    assert "\n--- message\n" in out and "Subject: mailq test\n" in out and out.endswith("hello\n")

    code, out, err = ternctl(live.conf, "qstat")
    assert code == 0 and out.startswith("messages in queue: 1\nrecipients still to deliver: 2\n")
    code, out, err = ternctl(live.conf, "stats")
    assert code == 0 and re.search(r"^messages in: [1-9]", out, re.M), out
    assert re.search(r"^channel smtp: limit 20, running \d+, threads \d+$", out, re.M)
    assert ternctl(live.conf, "tcpto")[0] == 0
    assert ternctl(live.conf, "tcpok")[0] == 0

    assert ternctl(live.conf, "hold", "00000000000000ff")[0] == 1
    # remove waits for a delivery attempt in flight: retry until it is gone
    assert wait_for(lambda: ternctl(live.conf, "remove", msgid)[:2] == (0, "removed 1 message\n"))
    assert listing(live) == []
    assert ternctl(live.conf, "mailq") == (0, "Mail queue is empty\n", "")


@needs_root
def test_live_rights(live):
    code, out, err = ternctl(live.conf, "show", "queue", user=setpriv(STRANGER, STRANGER))
    assert code == 1 and "permission denied" in err, (code, out, err)
    if live.config.get("queueuser") != "nobody":            # nobody is no role account here
        code, out, err = ternctl(live.conf, "flush", user=setpriv(65534, 65534))
        assert code == 1 and "permission denied" in err, (code, out, err)


def test_live_fallback_when_ternd_is_down(live):
    msgid = _submit(live, ["a@remote.test"])
    assert wait_for(lambda: any(m["id"] == msgid for m in listing(live)))
    assert ternctl(live.conf, "hold", msgid)[0] == 0           # stable from here on
    code, online, err = ternctl(live.conf, "mailq")
    assert code == 0, err
    live.stop()
    assert ternctl(live.conf, "show", "queue")[0] == 75
    assert ternctl(live.conf, "stats")[0] == 75
    code, offline, err = ternctl(live.conf, "mailq")
    assert code == 0, err
    assert offline == online                                   # the same formatter
    code, out, err = ternctl(live.conf, "qstat")
    assert code == 0 and out.startswith("messages in queue: 1\n")
