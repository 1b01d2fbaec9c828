"""tests/e2e/test_prog.py — the prog channel (MMDF's external channel interface, doc/PROG.md)
through a whole ternd: `channel uucp transport=prog program="<stub> %h" user=nobody` and
`transports uucp.test:uucp:gatehost`. The stub (written here, never uux) records its argv,
ids, environment, the address list and the message, and answers each address by its local
part: ok* -> M, temp* -> T, perm* -> P, addr* -> A (then one final M for the text),
hang* -> never answers.

Checked: delivered ones are done, temporary ones deferred, permanent ones bounced with the
program's text; one run for the host's recipients, as the configured account with MMDF's
trailing arguments and a clean environment; a program that hangs is killed at the time limit
and its recipients deferred; a bad prog row is a config error with file:line; a compromised
mda (test build hooks) that names another channel or asks for an account is refused.

Root only (the account switch needs it). Owns: its temporary directories and the processes it
starts. Trusts: conftest.py's fixtures."""
import json
import os
import pathlib
import pwd
import smtplib
import subprocess

import pytest

from conftest import TERND, wait_for

pytestmark = pytest.mark.usefixtures("need_root")

STUB = r'''#!/usr/bin/python3
import json, os, sys, time
rec = sys.argv[0] + ".d"
addrs = os.read(3, 1 << 20).decode()
while True:
    more = os.read(3, 1 << 20)
    if not more:
        break
    addrs += more.decode()
addrs = addrs.splitlines()
msg = b""
while True:
    b = os.read(0, 65536)
    if not b:
        break
    msg += b
def isopen(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
fds = [fd for fd in range(256) if isopen(fd)]
info = {"argv": sys.argv, "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "env": dict(v.split("=", 1) for v in
                    open("/proc/self/environ").read().split("\0") if v), "addrs": addrs, "msg": msg.decode(errors="replace"),
        "fds": fds, "cwd": os.getcwd(), "sid": os.getsid(0) == os.getpid()}
with open(os.path.join(rec, "run-%d.json" % os.getpid()), "w") as f:
    json.dump(info, f)
out, anyA = [], False
for a in addrs:
    lp = a.split("@")[0]
    if lp.startswith("hang"):
        time.sleep(3600)
    if lp.startswith("ok"):
        out.append("M sent to " + a)
    elif lp.startswith("temp"):
        out.append("T spool of gatehost full")
    elif lp.startswith("perm"):
        out.append("P no such remote user " + a)
    elif lp.startswith("addr"):
        out.append("A")
        anyA = True
if anyA:
    out.append("M message queued for gatehost")
os.write(4, ("\n".join(out) + "\n").encode())
'''


@pytest.fixture
def need_root():
    if os.geteuid() != 0:
        pytest.skip("the prog channel switches accounts only when ternd runs as root")


def _stub(workdir):
    stub = pathlib.Path(workdir) / "stub.py"
    stub.write_text(STUB)
    os.chmod(stub, 0o755)
    rec = pathlib.Path(str(stub) + ".d")
    rec.mkdir()
    os.chmod(rec, 0o777)
    return stub, rec


def _runs(rec):
    return [json.loads(p.read_text()) for p in sorted(rec.glob("run-*.json"))]


def _tern(make_tern, stub, timeout=30, env=None, start=True):
    return make_tern(start=start, env=env, config={
        "relayclients": "127.0.0.1", "rcpthosts": "uucp.test", "retryremote": "1000",
        "channel": f'uucp transport=prog program="{stub} %h" user=nobody timeout={timeout}',
        "transports": "uucp.test:uucp:gatehost"})


def _send(tern, rcpts, sender="joe@localhost"):
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail(sender, rcpts, b"Subject: via uucp\r\n\r\nhello over the phone line\r\n")


def _status(log, rcpt):
    for ln in log.splitlines():
        if "event=delivery" in ln and f"rcpt=<{rcpt}>" in ln:
            return ln
    return None


def test_one_run_replies_per_address(make_tern, workdir):
    stub, rec = _stub(workdir)
    tern = _tern(make_tern, stub)
    rcpts = ["ok1@uucp.test", "temp1@uucp.test", "perm1@uucp.test", "ok2@uucp.test"]
    _send(tern, rcpts)
    assert wait_for(lambda: all(_status(tern.log(), r) for r in rcpts), 20), tern.log_tail()
    log = tern.log()
    assert "status=sent" in _status(log, "ok1@uucp.test")
    assert "status=sent" in _status(log, "ok2@uucp.test")
    assert "status=deferred" in _status(log, "temp1@uucp.test")
    assert "spool of gatehost full" in _status(log, "temp1@uucp.test")
    assert "status=bounced" in _status(log, "perm1@uucp.test")
    runs = _runs(rec)
    assert len(runs) == 1, runs                       # one run for the host's recipients
    r = runs[0]
    nobody = pwd.getpwnam("nobody")
    assert (r["uid"], r["gid"], r["groups"]) == (nobody.pw_uid, nobody.pw_gid, [nobody.pw_gid])
    assert r["argv"][1] == "gatehost"                 # %h
    assert r["argv"][2:5] == ["0", "3", "4"]          # MMDF: msgfd addressfd responsefd
    assert len(r["argv"][5]) == 16 and r["argv"][5] in log   # the queue id
    assert r["argv"][6:] == ["joe@localhost", "y"]
    assert sorted(r["addrs"]) == sorted(rcpts)
    assert "hello over the phone line" in r["msg"]
    assert r["fds"] == [0, 1, 2, 3, 4], r["fds"]      # nothing of ternd's leaks
    assert r["sid"]
    assert set(r["env"]) <= {"HOME", "USER", "LOGNAME", "PATH", "SHELL", "TZ"}, r["env"]
    assert r["env"]["USER"] == "nobody"


def test_address_ok_then_message(make_tern, workdir):
    stub, rec = _stub(workdir)
    tern = _tern(make_tern, stub)
    rcpts = ["addr1@uucp.test", "perm2@uucp.test", "addr2@uucp.test"]
    _send(tern, rcpts)
    assert wait_for(lambda: all(_status(tern.log(), r) for r in rcpts), 20), tern.log_tail()
    log = tern.log()
    assert "status=sent" in _status(log, "addr1@uucp.test")
    assert "status=sent" in _status(log, "addr2@uucp.test")
    assert "status=bounced" in _status(log, "perm2@uucp.test")
    # every recipient is final: the bounce goes out, with the program's own text
    assert wait_for(lambda: any(b"no such remote user perm2@uucp.test" in m
                                for m in tern.maildir("joe")), 20), tern.log_tail()


def test_a_sender_that_looks_like_an_option_bounces_at_once(make_tern, workdir, need_root):
    """A sender with a leading '-' would be an option to the program: the run is refused before
    the parent is asked, and the recipients bounce at once (5.1.7) instead of waiting for
    queuelifetime; the program never runs."""
    stub, rec = _stub(workdir)
    tern = _tern(make_tern, stub)
    _send(tern, ["ok1@uucp.test"], sender="-oQ@localhost")
    assert wait_for(lambda: _status(tern.log(), "ok1@uucp.test"), 20), tern.log_tail()
    line = _status(tern.log(), "ok1@uucp.test")
    assert "status=bounced" in line and "5.1.7" in line, line
    assert "event=prog_refused" in tern.log()
    assert _runs(rec) == []


def test_hanging_program_is_killed_at_the_time_limit(make_tern, workdir):
    stub, rec = _stub(workdir)
    tern = _tern(make_tern, stub, timeout=2)
    _send(tern, ["ok3@uucp.test", "hang@uucp.test"])
    assert wait_for(lambda: "event=prog_timeout" in tern.log(), 20), tern.log_tail()
    assert wait_for(lambda: _status(tern.log(), "hang@uucp.test"), 20), tern.log_tail()
    log = tern.log()
    for r in ("ok3@uucp.test", "hang@uucp.test"):
        assert "status=deferred" in _status(log, r)
        assert "time limit" in _status(log, r)
    runs = _runs(rec)
    assert len(runs) == 1
    # the program and its process group are gone
    pid = [p for p in rec.glob("run-*.json")][0].stem.split("-")[1]
    assert wait_for(lambda: not pathlib.Path(f"/proc/{pid}").exists(), 5)


@pytest.mark.parametrize("row, want", [
    ('uucp transport=prog program="{stub} %h" user=root', "is root"),
    ('uucp transport=prog program="/nonexistent/uux %h" user=nobody', "no such file"),
    ('uucp transport=prog user=nobody', "needs program"),
    ('uucp transport=prog program="{stub}" user=_tern', "role"),
])
def test_bad_prog_row_is_a_config_error(make_tern, workdir, row, want):
    stub, rec = _stub(workdir)
    tern = make_tern(start=False, config={"channel": row.format(stub=stub)})
    tern.write_config()
    line = [i for i, ln in enumerate(tern.config_text().splitlines(), 1)
            if ln.startswith("channel ")][0]
    r = subprocess.run([str(TERND), "-n", "-f", str(tern.conf)], capture_output=True, text=True,
                       timeout=10)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"{tern.conf}:{line}" in out and want in out, out


@pytest.mark.parametrize("hook, want", [
    ({"TERN_TEST_MDA_PROG_CHANNEL": "local"}, "not a prog channel"),
    ({"TERN_TEST_MDA_PROG_CHANNEL": "prog"}, "not a prog channel"),   # built-in, no program
    ({"TERN_TEST_MDA_PROG_UID": "0"}, "event=bad_fork_request type=prog"),
])
def test_compromised_mda_cannot_choose_the_program_or_account(make_tern, workdir, hook, want):
    stub, rec = _stub(workdir)
    tern = _tern(make_tern, stub, env=hook)
    _send(tern, ["ok4@uucp.test"])
    assert wait_for(lambda: want in tern.log(), 15), tern.log_tail()
    assert wait_for(lambda: _status(tern.log(), "ok4@uucp.test"), 15), tern.log_tail()
    assert "status=deferred" in _status(tern.log(), "ok4@uucp.test")
    assert "event=prog_started" not in tern.log()
    assert _runs(rec) == []
