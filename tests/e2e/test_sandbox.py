"""tests/e2e/test_sandbox.py — the roles' sandbox (src/ternd/sandbox.c) and accounts.

Owns: the checks that every role runs with no_new_privs, an empty capability bounding set and a
seccomp filter (/proc/PID/status), that a role making a forbidden system call dies and the log
names the call, and that the network-facing roles (smtp, mta) run under accounts of their own.
Trusts: the test build's hook TERN_TEST_SYSCALL=ROLE:NAME (on SIGUSR2, that role calls NAME
with every argument -1) and conftest's Tern.
"""
import os
import pwd
import re
import signal

import pytest

from conftest import wait_for

ROLES = ("smtp", "lookup", "queue", "scheduler", "mda", "mta", "control")


def status(pid):
    """/proc/PID/status as {field: value}."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def uid_of(pid):
    return int(status(pid)["Uid"].split()[0])


def confined(pid):
    try:
        return status(pid)["Seccomp"] == "2"
    except OSError:
        return False


def all_roles(tern, seccomp=True):
    """{role: pid} once every role runs (and, by default, has loaded its filter)."""
    assert wait_for(lambda: set(tern.role_pids()) >= set(ROLES)), tern.log_tail()
    pids = tern.role_pids()
    if seccomp:
        assert wait_for(lambda: all(confined(p) for p in pids.values())), tern.log_tail()
    return pids


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_every_role_is_confined(tern):
    """no_new_privs, seccomp in filter mode (2), no capability in any set, and when ternd
    started as root an empty bounding set (nothing the role execs could regain one)."""
    for role, pid in all_roles(tern).items():
        st = status(pid)
        assert st["NoNewPrivs"] == "1", f"{role}: NoNewPrivs {st['NoNewPrivs']}"
        assert st["Seccomp"] == "2", f"{role}: Seccomp {st['Seccomp']}"
        for cap in ("CapEff", "CapPrm", "CapAmb"):
            assert int(st[cap], 16) == 0, f"{role}: {cap} {st[cap]}"
        if os.geteuid() == 0:
            assert st["CapBnd"] == "0000000000000000", f"{role}: CapBnd {st['CapBnd']}"


def test_sandbox_no_keeps_no_new_privs_only(make_tern):
    tern = make_tern(config={"sandbox": "no"})
    pids = all_roles(tern, seccomp=False)
    # no_new_privs is set where the filter would be loaded: once it is there, nothing follows
    assert wait_for(lambda: all(status(p)["NoNewPrivs"] == "1" for p in pids.values()))
    for role, pid in pids.items():
        assert status(pid)["Seccomp"] == "0", role


# a call each role never makes; smtp:kill is kill(-1, -1): a role may signal only itself
FORBIDDEN = [("smtp", "execve"), ("smtp", "kill"), ("lookup", "ptrace"), ("queue", "socket"),
             ("scheduler", "openat"), ("mda", "openat"), ("mta", "mount"), ("control", "execve"),
             # fcntl with a command other than the flag and dup ones (F_SETOWN + O_ASYNC would
             # let the kernel signal another process of the same account)
             ("lookup", "fcntl"), ("mda", "fcntl")]


@pytest.mark.parametrize("role,call", FORBIDDEN, ids=[f"{r}-{c}" for r, c in FORBIDDEN])
def test_forbidden_call_kills_the_role_loudly(make_tern, role, call):
    tern = make_tern(env={"TERN_TEST_SYSCALL": f"{role}:{call}"})
    pid = all_roles(tern)[role]
    assert wait_for(lambda: f"event=test_syscall_armed role={role} syscall={call}" in tern.log())
    os.kill(pid, signal.SIGUSR2)
    line = re.compile(rf"event=role_killed role={role} signal=SIGSYS syscall={call} nr=\d+ "
                      r'arch=0x[0-9a-f]+ reason="seccomp: forbidden system call"')
    assert wait_for(lambda: line.search(tern.log())), tern.log_tail()
    assert wait_for(lambda: gone(pid)), f"{role} ({pid}) survived its forbidden {call}"
    # the parent restarts it like any dead role, and the daemon serves again
    assert wait_for(lambda: tern.role_pids().get(role, pid) != pid, timeout=40), tern.log_tail()
    assert tern.running()
    tern.wait_ready(40)


def test_network_roles_have_accounts_of_their_own(tern):
    if os.geteuid() != 0:
        pytest.skip("roles keep the developer's uid when ternd is not started as root")
    for name in ("_ternsmtp", "_ternmta"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            pytest.skip(f"account {name} missing: run scripts/users")
    uids = {role: uid_of(pid) for role, pid in all_roles(tern).items()}
    assert uids["smtp"] == pwd.getpwnam("_ternsmtp").pw_uid
    assert uids["mta"] == pwd.getpwnam("_ternmta").pw_uid
    others = {uids[r] for r in ROLES if r not in ("smtp", "mta")}
    assert uids["smtp"] != uids["mta"]
    # so smtp cannot signal, ptrace or read the memory of any other role (and the filter
    # refuses kill(2) of any pid but its own: test_forbidden_call..[smtp-kill])
    assert uids["smtp"] not in others and uids["mta"] not in others, uids
