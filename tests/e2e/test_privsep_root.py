"""test_privsep_root — attacks on what ternd's parent does as root (doc/ARCHITECTURE.md,
"Privileges"): the spool it prepares, the descriptors and environment it hands on, and the
uid/gid it gives delivery children.

- Planted links: with ternd stopped, the queue account (which owns the spool) replaces
  spool entries by symbolic links to root's files, or a spool directory by one owned by
  another account; the next start as root must leave the target untouched (content, owner,
  mode) and refuse to start with a log line naming the path.
- A compromised mda (test build: TERN_TEST_MDA_FORK_GID) asks for a delivery child with
  group `shadow`: the parent refuses, nothing runs with that group.
- A descriptor inherited at start never reaches any process of ternd.
- The parent's environment (secrets, root's HOME) reaches no role, no delivery child, no
  tern-queue run for a forward and no |program; programs get the documented variables only.

Root only (the roles drop privileges only when started as root): skipped otherwise.
"""
import grp
import os
import pathlib
import pwd
import signal
import socket
import subprocess
import time

import pytest

from conftest import TERND, descendants, wait_for

pytestmark = pytest.mark.usefixtures("need_root")

SECRET = "s3cr3t-token-value"


@pytest.fixture
def need_root():
    if os.geteuid() != 0:
        pytest.skip("ternd drops privileges only when started as root")


# ----------------------------------------------------------------------------- helpers

def queue_account(tern):
    return pwd.getpwnam(tern.config.get("queueuser", "_ternq"))


def role_account(tern):
    return pwd.getpwnam(tern.config.get("user", "_tern"))


def launch(tern, pass_fds=(), stdin=subprocess.DEVNULL):
    """Start ternd like Tern.start, but return ("ready", None) or ("exited", status) instead
    of raising when it refuses to start."""
    tern.write_config()
    log = open(tern.logfile, "ab")
    log.write(f"---- start {time.strftime('%H:%M:%S')}: {TERND} -f {tern.conf}\n".encode())
    log.flush()
    tern.proc = subprocess.Popen([str(TERND), "-f", str(tern.conf)], cwd=tern.dir,
                                 stdin=stdin, stdout=log, stderr=log,
                                 env=tern.env, pass_fds=pass_fds)
    log.close()

    def greets():
        try:
            with socket.create_connection(("127.0.0.1", tern.port), timeout=1) as s:
                s.settimeout(2)
                ok = s.makefile("rb").readline().startswith(b"220")
                s.sendall(b"QUIT\r\n")
                return ok
        except OSError:
            return False

    assert wait_for(lambda: tern.proc.poll() is not None or greets(), 15), tern.log_tail()
    if tern.proc.poll() is not None:
        return "exited", tern.proc.returncode
    tern._kids = descendants(tern.proc.pid)
    return "ready", None


def queue_ready(tern):
    log = tern.log()
    return "event=recovered" in log[log.rfind("---- start"):]


def snapshot(path):
    st = os.lstat(path)
    data = path.read_bytes() if path.is_file() else sorted(os.listdir(path))
    return data, st.st_uid, st.st_gid, st.st_mode


def prepared_tern(make_tern):
    """A ternd started once and stopped again: its spool exists and belongs to queueuser."""
    tern = make_tern(start=False)
    tern.start()
    assert wait_for(lambda: queue_ready(tern), 10), tern.log_tail()
    tern.stop()
    return tern


def root_victim(base, kind="file"):
    """A file (or directory with a file) only root may touch: what the attacks aim at."""
    victim = base / f"victim-{kind}"
    if kind == "file":
        victim.write_text("root's data, not the queue account's\n")
        os.chmod(victim, 0o600)
    else:
        victim.mkdir()
        (victim / "inside").write_text("root's\n")
        os.chmod(victim, 0o700)
    os.chown(victim, 0, 0)
    return victim


def plant_link(tern, name, target):
    """What the queue account can do in the spool it owns: replace an entry by a link."""
    q = queue_account(tern)
    p = tern.spool / name
    if p.is_dir() and not p.is_symlink():
        for f in p.iterdir():
            f.unlink()
        p.rmdir()
    elif p.exists() or p.is_symlink():
        p.unlink()
    os.symlink(target, p)
    os.lchown(p, q.pw_uid, q.pw_gid)
    return p


def refused(tern, outcome, path, what):
    """ternd refused to start (exit 78) and said which path is wrong and how."""
    state, status = outcome
    assert state == "exited", f"ternd started over an unsafe spool\n{tern.log_tail()}"
    assert status == 78, (status, tern.log_tail())
    lines = [ln for ln in tern.log().splitlines() if "event=spool_unsafe" in ln]
    assert lines, tern.log_tail()
    assert str(path) in lines[-1] and what in lines[-1], lines[-1]


# ----------------------------------------------------------------------------- the spool

@pytest.mark.parametrize("name", ["lock", "ternd.pid.tmp", "ternd.pid", "ternctl.sock"])
def test_planted_file_link_is_not_followed(make_tern, name):
    tern = prepared_tern(make_tern)
    victim = root_victim(tern.dir)
    before = snapshot(victim)
    link = plant_link(tern, name, victim)
    outcome = launch(tern)
    assert snapshot(victim) == before
    refused(tern, outcome, link, "symbolic link")


@pytest.mark.parametrize("name", ["data", "maildrop"])
def test_planted_directory_link_is_not_followed(make_tern, name):
    tern = prepared_tern(make_tern)
    victim = root_victim(tern.dir, "dir")
    before = snapshot(victim)
    link = plant_link(tern, name, victim)
    outcome = launch(tern)
    assert snapshot(victim) == before
    refused(tern, outcome, link, "symbolic link")


def test_spool_directory_of_another_account_is_refused(make_tern):
    tern = prepared_tern(make_tern)
    env = tern.spool / "env"
    os.chown(env, 4242, 4242)
    os.chmod(env, 0o755)
    outcome = launch(tern)
    st = os.stat(env)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4242, 4242, 0o755)
    refused(tern, outcome, env, "owned by uid 4242")


def test_spool_path_through_a_users_link_is_refused(make_tern):
    """spool <sticky>/link/spool, where anyone may create `link` (here nobody's, pointing at
    a directory of root's that holds `spool`): root must not hand that `spool` to the queue
    account, and must name the link."""
    tern = make_tern(start=False)
    sticky = tern.dir / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    victim = tern.dir / "victim"
    (victim / "spool").mkdir(parents=True)
    os.chmod(victim, 0o755)
    os.chmod(victim / "spool", 0o755)
    link = sticky / "link"
    os.symlink(victim, link)
    nobody = pwd.getpwnam("nobody")
    os.lchown(link, nobody.pw_uid, nobody.pw_gid)
    tern.config["spool"] = str(link / "spool")
    before = snapshot(victim / "spool")
    outcome = launch(tern)
    assert snapshot(victim / "spool") == before
    assert os.lstat(victim).st_uid == 0
    refused(tern, outcome, link, "symbolic link")


def test_spool_under_a_writable_ancestor_is_refused(make_tern):
    """An ancestor above the spool's parent that others may write (not sticky): refused."""
    tern = make_tern(start=False)
    open_dir = tern.dir / "open"
    (open_dir / "parent").mkdir(parents=True)
    os.chmod(open_dir, 0o777)
    os.chmod(open_dir / "parent", 0o755)
    tern.config["spool"] = str(open_dir / "parent" / "spool")
    outcome = launch(tern)
    assert not (open_dir / "parent" / "spool").exists()
    refused(tern, outcome, open_dir, "writable")


def test_clean_spool_still_starts_and_ternctl_finds_ternd(make_tern):
    """The safe way of preparing the spool keeps what worked: modes, owners, the control
    socket where ternctl looks for it (mode 0666, root's), the pid file for flush."""
    tern = prepared_tern(make_tern)
    assert launch(tern)[0] == "ready", tern.log_tail()
    assert wait_for(lambda: queue_ready(tern), 10), tern.log_tail()
    q = queue_account(tern)
    modes = {"": 0o755, "data": 0o700, "env": 0o700, "tmp": 0o700, "maildrop": 0o1733,
             "quarantine": 0o700}
    for sub, mode in modes.items():
        st = os.lstat(tern.spool / sub)
        assert (st.st_uid, st.st_mode & 0o7777) == (q.pw_uid, mode), (sub, oct(st.st_mode))
    sock = os.lstat(tern.spool / "ternctl.sock")
    assert (sock.st_uid, sock.st_mode & 0o777) == (0, 0o666)
    pidfile = tern.spool / "ternd.pid"
    assert wait_for(pidfile.exists, 10)
    assert int(pidfile.read_text()) == tern.proc.pid
    env = dict(os.environ, TERN_CONF=str(tern.conf))
    r = subprocess.run([str(TERND.parent / "ternctl"), "flush"], env=env, capture_output=True,
                       timeout=20)
    assert r.returncode == 0 and b"flush requested" in r.stdout, r
    # the fallback (no socket answers): the pid file names ternd itself, which is signalled
    os.rename(tern.spool / "ternctl.sock", tern.spool / "moved-away.sock")
    r = subprocess.run([str(TERND.parent / "ternctl"), "flush"], env=env, capture_output=True,
                       timeout=20)
    assert r.returncode == 0 and b"flush requested" in r.stdout, r
    assert tern.proc.poll() is None


@pytest.mark.parametrize("how", ["ternctl", "sendmail"])
@pytest.mark.parametrize("plant", ["pid", "link"])
def test_flush_fallback_signals_no_foreign_process(make_tern, how, plant):
    """The queue account (owner of the spool) moves the control socket away and writes the
    pid of another root process into ternd.pid (or links ternd.pid to a file holding it):
    `ternctl flush` / `sendmail -q` as root must not signal it, and must say why."""
    tern = prepared_tern(make_tern)
    sock = tern.spool / "ternctl.sock"
    if os.path.lexists(sock):
        os.rename(sock, tern.spool / "moved-away.sock")
    victim = subprocess.Popen(["sleep", "60"])
    try:
        pidfile = tern.spool / "ternd.pid"
        if plant == "pid":
            pidfile.write_text(f"{victim.pid}\n")
            q = queue_account(tern)
            os.chown(pidfile, q.pw_uid, q.pw_gid)
        else:
            held = tern.dir / "held-pid"
            held.write_text(f"{victim.pid}\n")
            plant_link(tern, "ternd.pid", held)
        env = dict(os.environ, TERN_CONF=str(tern.conf))
        cmd = ["ternctl", "flush"] if how == "ternctl" else ["sendmail", "-q"]
        r = subprocess.run([str(TERND.parent / cmd[0])] + cmd[1:], env=env,
                           capture_output=True, timeout=20)
        # synchronisation: a SIGUSR1 sent by the command is pending by now, and Linux
        # delivers the lower-numbered SIGUSR1 before this SIGTERM
        victim.terminate()
        assert victim.wait(10) == -signal.SIGTERM, "the foreign process got SIGUSR1"
        assert r.returncode == 75, r
        why = b"symbolic link" if plant == "link" else b"not ternd"
        assert why in r.stderr, r
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


# ----------------------------------------------------------------------------- delivery uid/gid

def test_mda_cannot_get_a_privileged_group(make_tern):
    """A compromised mda asks the parent for a delivery child with gid `shadow`."""
    try:
        gid = grp.getgrnam("shadow").gr_gid
    except KeyError:
        gid = grp.getgrnam("disk").gr_gid
    tern = make_tern(start=False, env={"TERN_TEST_MDA_FORK_GID": str(gid)})
    tern.start()
    with tern.smtp() as c:
        assert c.cmd("HELO t")[0] == 250
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<joe@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: gid\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
    assert wait_for(lambda: "event=fork_refused" in tern.log(), 15), tern.log_tail()
    line = [ln for ln in tern.log().splitlines() if "event=fork_refused" in ln][0]
    assert f"gid={gid}" in line, line
    assert wait_for(lambda: "status=deferred" in tern.log(), 15), tern.log_tail()
    assert tern.maildir("joe") == []
    home = tern.mail / "joe"
    if home.exists():
        for dirpath, dirs, files in os.walk(home):
            for n in dirs + files:
                assert os.lstat(os.path.join(dirpath, n)).st_gid != gid


@pytest.mark.parametrize("check,quota", [("strict", ""), ("qmail", ""), ("strict", "::5000000S")])
def test_users_table_user_is_delivered_as_root(make_tern, check, quota):
    """The ordinary case the parent's check must let through: a users-table user (not the
    defaultprivs account, whose pair the parent grants anyway) gets mail into its Maildir,
    with either dotqmailcheck (qmail's makes the mda send `tern-local -c -q USER`: the
    parent once took -q for the user and refused every such delivery), and with a quota
    field (the mda then sends `-p PROFILE -A ARRIVAL`: the parent once took -p for the user;
    it now reads the arguments with tern-local's own parser, src/mail/localargs.c)."""
    uid = gid = 4321
    tern = make_tern(start=False, config={"dotqmailcheck": check})
    home = tern.mail / "joe"
    home.mkdir()
    os.chown(home, uid, gid)
    os.chmod(home, 0o755)
    users = tern.dir / "users-joe"
    users.write_text(f"joe:{uid}:{gid}:{home}{quota}\n")
    os.chmod(users, 0o644)
    tern.config["users"] = f"file:{users}"
    tern.start()
    send(tern, "joe@localhost")
    msgs = tern.wait_delivered("joe", 1, timeout=15)
    assert b"Subject: env" in msgs[0]
    for f in tern.maildir_files("joe"):
        assert os.stat(f).st_uid == uid
    assert "event=fork_refused" not in tern.log()


# ----------------------------------------------------------------------------- descriptors

def fd_targets(pid):
    out = set()
    d = f"/proc/{pid}/fd"
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        try:
            out.add(os.readlink(f"{d}/{n}"))
        except OSError:
            pass
    return out


def test_inherited_descriptor_reaches_no_process(make_tern, workdir):
    secret = workdir / "secret-file"
    secret.write_text("secret\n")
    os.chmod(secret, 0o600)
    fd = os.open(secret, os.O_RDONLY)
    try:
        tern = make_tern(start=False)
        assert launch(tern, pass_fds=(fd,))[0] == "ready", tern.log_tail()
    finally:
        os.close(fd)
    assert wait_for(lambda: len(tern.role_pids()) >= 7, 10), tern.role_pids()
    pids = [tern.proc.pid] + [p for p, _ in descendants(tern.proc.pid)]
    for pid in pids:
        assert str(secret) not in fd_targets(pid), (pid, open(f"/proc/{pid}/cmdline").read())


def test_roles_get_dev_null_as_stdin_and_stdout(make_tern, workdir):
    """ternd started from root's terminal or with root's files on 0 and 1: no role keeps
    them (descriptor 2 is the log and stays)."""
    rootfile = workdir / "roots-stdin"
    rootfile.write_text("root's\n")
    os.chmod(rootfile, 0o600)
    with open(rootfile, "rb") as stdin:
        tern = make_tern(start=False)
        assert launch(tern, stdin=stdin)[0] == "ready", tern.log_tail()
    roles = tern.role_pids()
    assert len(roles) >= 7, roles
    for role, pid in roles.items():
        for fd in (0, 1):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null", (role, fd)
        assert os.readlink(f"/proc/{pid}/fd/2") == str(tern.logfile), role


# ----------------------------------------------------------------------------- environment

def secret_env(tern):
    return dict(tern.env, SECRET_TOKEN=SECRET, HOME="/root", TERN_CONF=str(tern.conf))


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


def assert_clean(env, where):
    assert b"SECRET_TOKEN" not in env, (where, env)
    assert env.get(b"HOME") != b"/root", (where, env)


def user_home(tern, user):
    """<mail>/<user>, owned by the account users any: deliveries run as."""
    home = tern.mail / user
    home.mkdir(parents=True, exist_ok=True)
    pw = role_account(tern)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    return home


def dotqmail(tern, user, text):
    home = user_home(tern, user)
    (home / ".qmail").write_text(text)
    os.chmod(home / ".qmail", 0o644)
    return home


def send(tern, rcpt):
    with tern.smtp() as c:
        assert c.cmd("HELO t")[0] == 250
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: env\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250


def test_roles_get_a_minimal_environment(make_tern):
    tern = make_tern(start=False)
    tern.env = secret_env(tern)
    tern.start()
    roles = tern.role_pids()
    assert len(roles) >= 7, roles
    for role, pid in roles.items():
        env = environ_of(pid)
        assert_clean(env, role)
        assert b"TERN_CONF" not in env, (role, env)
        assert b"ROLE_FDS" in env, (role, env)
    assert_clean(environ_of(tern.proc.pid), "parent")   # scrubbed, for what it forks


def test_program_gets_only_the_documented_variables(make_tern):
    tern = make_tern(start=False)
    tern.env = secret_env(tern)
    home = dotqmail(tern, "joe", "|env > env.out\n")
    tern.start()
    send(tern, "joe@localhost")
    out = home / "env.out"
    assert wait_for(lambda: out.exists() and "RPLINE=" in out.read_text(), 15), tern.log_tail()
    env = dict(ln.split("=", 1) for ln in out.read_text().splitlines() if "=" in ln)
    assert "SECRET_TOKEN" not in env and "TERN_CONF" not in env, env
    assert env["HOME"] == str(home) and env["USER"] == "joe", env
    assert env["LOCAL"] == "joe" and env["EXT"] == "" and env["HOST"] == "localhost"
    assert env["RECIPIENT"] == "joe@localhost" and env["SENDER"] == "alice@example.org"
    assert env["DTLINE"] == "Delivered-To: joe@localhost" and "RPLINE" in env
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    allowed = {"SENDER", "NEWSENDER", "RECIPIENT", "USER", "HOME", "HOST", "HOST2", "HOST3",
               "HOST4", "LOCAL", "EXT", "EXT2", "EXT3", "EXT4", "DEFAULT", "DTLINE", "RPLINE",
               "UFLINE", "PATH", "QMAILQUEUE", "PWD", "SHLVL", "_"}   # the last 3: sh's own
    assert set(env) <= allowed, set(env) - allowed


def test_delivery_child_environment_is_scrubbed(make_tern):
    """tern-local itself (the forked delivery child) holds no secret of the parent: a
    program reports its parent's pid and waits until the test has read /proc/PID/environ."""
    tern = make_tern(start=False)
    tern.env = secret_env(tern)
    home = dotqmail(tern, "joe", "|echo $PPID > ppid.tmp && mv ppid.tmp ppid; "
                    "i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n")
    tern.start()
    send(tern, "joe@localhost")
    ppid = home / "ppid"
    assert wait_for(ppid.exists, 15), tern.log_tail()
    try:
        env = environ_of(int(ppid.read_text()))
    finally:
        (home / "go").touch()
    assert_clean(env, "tern-local")


def test_forward_tern_queue_gets_only_its_config(make_tern, workdir):
    """The tern-queue run for a forward (here a stand-in from `libexec`) sees TERN_CONF,
    which it needs, and nothing of the parent's environment."""
    libexec = workdir / "libexec"
    libexec.mkdir()
    tern = make_tern(start=False, config={"libexec": str(libexec)})
    dump = user_home(tern, "joe") / "tq-env"
    fake = libexec / "tern-queue"
    fake.write_text(f"#!/bin/sh\nenv > {dump}.tmp; mv {dump}.tmp {dump}\n"
                    "cat > /dev/null; cat <&1 > /dev/null 2>&1; exit 0\n")
    os.chmod(fake, 0o755)
    tern.env = secret_env(tern)
    dotqmail(tern, "joe", "&ann@example.org\n")
    tern.start()
    send(tern, "joe@localhost")
    assert wait_for(dump.exists, 15), tern.log_tail()
    env = dict(ln.split("=", 1) for ln in dump.read_text().splitlines() if "=" in ln)
    assert "SECRET_TOKEN" not in env and env.get("HOME") != "/root", env
    assert env.get("TERN_CONF") == str(tern.conf), env
