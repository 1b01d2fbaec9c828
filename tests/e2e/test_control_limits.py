"""tests/e2e/test_control_limits.py — nobody can lock the operators out of ternd's control
interfaces by holding connections (issue 7: one local user held the control socket's 64
connections and root's ternctl was refused for as long as that user liked).

- the control socket checks rights first (SO_PEERCRED at accept): peers without rights have
  a small pool of their own (a few per uid) and a short idle timeout, so root's ternctl works
  at once while an unprivileged uid holds 70 connections;
- the MAILQ, QP and metrics listeners limit connections per client address: 100 idle
  connections from 127.0.0.1 do not stop a client from 127.0.0.2.

Owns: the processes it starts (an unprivileged holder, by pid). Trusts: conftest.py, ternctl."""
import os
import pwd
import socket
import subprocess
import sys
import time

import pytest

from conftest import free_port, ternctl, wait_for


HOLDER = r"""
import os, socket, sys, time
os.setgroups([]); os.setgid(int(sys.argv[3])); os.setuid(int(sys.argv[2]))
conns = []
for _ in range(int(sys.argv[4])):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
    except OSError:
        break
    conns.append(s)
print(len(conns), flush=True)
sys.stdin.readline()                    # hold them until told
closed = 0
for s in conns:                         # how many did the server close (or refuse)?
    s.settimeout(10)
    try:
        closed += s.recv(4096) is not None
    except OSError:
        pass
print(closed, flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another uid needs root")
def test_unprivileged_holder_cannot_lock_root_out(make_tern):
    tern = make_tern()
    sock = tern.spool / "ternctl.sock"
    nobody = pwd.getpwnam("nobody")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(sock), str(nobody.pw_uid),
                               str(nobody.pw_gid), "70"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert int(holder.stdout.readline()) >= 1
        start = time.monotonic()
        p = ternctl(tern, "show", "queue")
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr, tern.log_tail())
        assert time.monotonic() - start < 5
        p = ternctl(tern, "qstat")
        assert p.returncode == 0, (p.returncode, p.stderr)
        # the holder's connections are refused or closed by the short idle timeout
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert int(holder.stdout.readline()) >= 1
    finally:
        holder.kill()
        holder.wait(5)


def connect_from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def greets(src, port, want):
    """A client from src is served: its first bytes start with want."""
    try:
        with connect_from(src, port) as s:
            if want.startswith(b"HTTP"):
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            return s.recv(64).startswith(want)
    except OSError:
        return False


@pytest.mark.parametrize("kind,want", [("mailq", b"version zmailer 2.0"),
                                       ("qp", b"4242 bongoqueue"),
                                       ("metrics", b"HTTP/1.")])
def test_idle_connections_from_one_address_do_not_lock_others_out(make_tern, kind, want):
    port = free_port()
    tern = make_tern(start=False)
    tern.config["listen"] = [f"smtp 127.0.0.1:{tern.port}", f"{kind} 127.0.0.1:{port}"]
    if kind == "mailq":                  # without an auth file every client gets 550
        auth = tern.dir / "mailq_auth"
        auth.write_text("alice:secret:ALL:\n")
        os.chmod(auth, 0o644)
        tern.config["mailq_auth"] = f"file:{auth}"
    tern.start()
    assert wait_for(lambda: greets("127.0.0.2", port, want), 10), tern.log_tail()
    hog = []
    try:
        for _ in range(100):
            try:
                hog.append(connect_from("127.0.0.1", port))
            except OSError:
                break
        assert greets("127.0.0.2", port, want), \
            f"{kind}: a client from 127.0.0.2 was refused\n" + tern.log_tail()
        assert tern.log().count("event=refused") <= 10, "refusals flood the log"
    finally:
        for s in hog:
            s.close()
