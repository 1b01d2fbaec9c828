"""tests/e2e/conftest.py — fixtures for end-to-end tests against a live ternd.

Owns: the `Tern` helper (one ternd in a temporary directory: config, port, spool, Maildirs,
start/stop), the `tern` and `make_tern` fixtures, the session check that we run inside a
private network namespace, and the SMTP/Maildir helpers the tests share.
Trusts: bin/ternd (or $TERN_BIN) to follow DESIGN.md §5/§8 — `ternd -f FILE` in the
foreground, logs to stderr, re-execs one process per role as `ternd -R ROLE …`.

Run through `tests/run-all e2e` (or `tests/run-all --netns /usr/bin/python3 -m pytest
tests/e2e …`): the session refuses to run where any interface besides lo exists.
`Tern` does not depend on pytest, so tests/crash can import it:
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "e2e")); from conftest import Tern
"""
import email
import email.policy
import os
import pathlib
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TERND = pathlib.Path(os.environ.get("TERN_BIN", REPO / "build" / "tbin" / "ternd"))
TMPROOT = os.environ.get("TERN_TEST_TMP", "/tmp")


# --------------------------------------------------------------------------- processes

def _proc_stat(pid):
    """(ppid, starttime) of pid from /proc, or None if it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s.rsplit(")", 1)[1].split()
    if rest[0] == "Z":
        return None
    return int(rest[1]), int(rest[19])


def descendants(root):
    """[(pid, starttime)] of every living descendant of root (not root itself)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _proc_stat(int(d))
            if st:
                children.setdefault(st[0], []).append((int(d), st[1]))
    out, todo = [], [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid[0])
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def build_driver(name, sources, cflags_env):
    """Compile a test driver (tests/e2e/NAME.c plus role sources) against build/'s libraries
    and the Makefile's LIBS, in a temporary directory; $CFLAGS_ENV adds flags (e.g. the
    sanitizers). Returns (directory, executable); the caller removes the directory."""
    libs = [REPO / "build" / "libmail.a", REPO / "build" / "libtern.a"]
    for lib in libs:
        if not lib.exists():
            pytest.fail(f"{lib} is missing: run make first")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    d = pathlib.Path(tempfile.mkdtemp(prefix=f"tern-{name}-", dir=TMPROOT))
    exe = d / name
    m = re.search(r"^LIBS\s*:=\s*(.*)$", (REPO / "Makefile").read_text(), re.M)
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O1", "-g",
                    *os.environ.get(cflags_env, "").split(), "-I" + str(REPO / "src"),
                    "-o", str(exe), *(str(REPO / p) for p in sources), *map(str, libs),
                    *m[1].split()], check=True, timeout=120)
    return d, exe


def rss_kb(pid):
    """Resident memory of process pid, in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS")


def wait_for(pred, timeout=20.0, step=0.05):
    """Poll pred until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def peer_closed(sock, f, timeout=5.0):
    """True if the server closes the connection within timeout (no more data): shared by
    the protocol clients of the tests (SMTP, MAILQ v2, queue protocol)."""
    sock.settimeout(timeout)
    try:
        return f.read(1) == b""
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


TERNCTL = TERND.parent / "ternctl"


def ternctl(t, *args, user=None, ids=None, stdin=None, timeout=30, env=None):
    """ternctl ARGS (next to TERND) for tern t (its env, TERN_CONF=t.conf; t may also be the
    path of a tern.conf): a text CompletedProcess. user (a name) or ids ((uid, gid)): run as
    that account, groups dropped; stdin: its input ("" when None)."""
    if user is not None:
        pw = pwd.getpwnam(user)
        ids = (pw.pw_uid, pw.pw_gid)
    kw = {}
    if ids is not None:
        kw["preexec_fn"] = lambda: (os.setgroups([]), os.setgid(ids[1]), os.setuid(ids[0]))
    conf = getattr(t, "conf", t)
    e = {**getattr(t, "env", os.environ), "TERN_CONF": str(conf), **(env or {})}
    return subprocess.run([str(TERNCTL), *args], env=e, capture_output=True, text=True,
                          timeout=timeout, input=stdin if stdin is not None else "", **kw)


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (bind to port 0 and give it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- Tern

class TernError(AssertionError):
    pass


class Tern:
    """One ternd in its own directory:  <dir>/tern.conf, <dir>/spool, <dir>/mail/<user>/Maildir,
    <dir>/ternd.log (its stderr).  `config` adds or overrides keys: {key: value} where value is
    a string (one line `key value`), a list (one line per item: repeatable keys such as
    `listen`), or None (drop a default).  `users` = {localpart: home or None} writes a
    `users file:` table (uid/gid: nobody when root, else ours; home default <dir>/mail/<lp>).
    `addr` is the loopback address it listens on (127.0.0.2 ... for several nodes: the
    namespace's whole 127.0.0.0/8 is local)."""

    def __init__(self, base, config=None, users=None, env=None, addr="127.0.0.1"):
        self.dir = pathlib.Path(base)
        self.addr = addr
        self.port = free_port(addr)
        self.spool = self.dir / "spool"
        self.mail = self.dir / "mail"
        self.conf = self.dir / "tern.conf"
        self.logfile = self.dir / "ternd.log"
        self.proc = None
        self._kids = []
        self.env = dict(os.environ, TERN_STRICT_REPLIES="1")
        self.env.update(env or {})
        self.mail.mkdir(parents=True, exist_ok=True)
        # the roles may run as other users: let them traverse and create Maildirs
        os.chmod(self.dir, 0o755)
        os.chmod(self.mail, 0o777)
        self.config = {
            "me": "tern.test",
            "listen": [f"smtp {addr}:{self.port}"],
            "spool": str(self.spool),
            "rootdir": str(self.dir / "empty"),   # the smtp role's chroot, when root
            "locals": "localhost",
            "users": f"any:{self.mail}",
            "loglevel": "3",
        }
        if os.geteuid() == 0:
            # the role accounts come from scripts/users (make install); without them the
            # roles drop to nobody instead — same privilege separation, no system change
            for key, name in (("user", "_tern"), ("queueuser", "_ternq"),
                              ("smtpuser", "_ternsmtp"), ("mtauser", "_ternmta")):
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    self.config[key] = "nobody"
        if users is not None:
            self.config["users"] = "file:" + str(self.write_users(users))
        for k, v in (config or {}).items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = v
        self.write_config()

    # -- configuration
    def write_users(self, users):
        uid, gid = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
        lines = []
        for lp, home in users.items():
            home = pathlib.Path(home) if home else self.mail / lp
            home.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(home, uid, gid)
            lines.append(f"{lp}:{uid}:{gid}:{home}\n")
        path = self.dir / "users"
        path.write_text("".join(lines))
        os.chmod(path, 0o644)
        return path

    def config_text(self):
        out = []
        for k, v in self.config.items():
            for item in (v if isinstance(v, (list, tuple)) else [v]):
                out.append(f"{k} {item}\n")
        return "".join(out)

    def write_config(self):
        self.conf.write_text(self.config_text())
        os.chmod(self.conf, 0o644)

    # -- life cycle
    def start(self, timeout=10.0):
        if not TERND.exists():
            raise TernError(f"{TERND} is not built (make)")
        self.write_config()
        log = open(self.logfile, "ab")
        log.write(f"---- start {time.strftime('%H:%M:%S')}: {TERND} -f {self.conf}\n".encode())
        log.flush()
        self.proc = subprocess.Popen([str(TERND), "-f", str(self.conf)], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=self.env)
        log.close()
        self.wait_ready(timeout)
        self._kids = descendants(self.proc.pid)
        return self

    def wait_ready(self, timeout=10.0):
        """Until the SMTP port greets with 220 (bounded). Raises with the log on failure."""
        deadline = time.monotonic() + timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TernError(f"ternd exited with status {self.proc.returncode} while "
                                f"starting\n{self.log_tail()}")
            try:
                with socket.create_connection((self.addr, self.port), timeout=2) as s:
                    s.settimeout(3)
                    f = s.makefile("rb")
                    line = f.readline()
                    if line.startswith(b"220"):
                        # finish politely: QUIT, its reply, and let the server close first
                        try:
                            s.sendall(b"QUIT\r\n")
                            while f.readline():
                                pass
                        except OSError:
                            pass
                        return
                    last = f"greeting {line!r}"
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise TernError(f"ternd not ready on {self.addr}:{self.port} after {timeout} s "
                        f"({last})\n{self.log_tail()}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait, then SIGKILL — the parent and every role it started, by pid.
        Returns the parent's exit status (None if it was not running)."""
        if self.proc is None:
            return None
        kids = {p: st for p, st in self._kids}
        if self.proc.poll() is None:
            kids.update(dict(descendants(self.proc.pid)))
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # roles should follow their parent; give them a moment, then kill the stragglers
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            alive = [p for p, st in kids.items() if (_proc_stat(p) or (0, -1))[1] == st]
            if not alive:
                break
            time.sleep(0.05)
        for p, st in kids.items():
            if (_proc_stat(p) or (0, -1))[1] == st:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._kids = []
        return self.proc.returncode

    def restart(self, timeout=10.0):
        self.stop()
        return self.start(timeout)

    def kill(self, sig=signal.SIGKILL):
        """Send sig to the ternd parent only (the crash tests' blunt instrument)."""
        self._kids = list({**dict(self._kids), **dict(descendants(self.proc.pid))}.items())
        self.proc.send_signal(sig)

    def role_pids(self):
        """{role: pid} of the running roles (their argv holds `-R ROLE`)."""
        out = {}
        if not self.running():
            return out
        for pid, _ in descendants(self.proc.pid):
            argv = cmdline(pid)
            if "-R" in argv[:-1]:
                out.setdefault(argv[argv.index("-R") + 1], pid)
        return out

    # -- observation
    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        lines = self.log().splitlines()
        return f"---- last {min(n, len(lines))} lines of {self.logfile}\n" + "\n".join(lines[-n:])

    def maildir_path(self, user):
        return self.mail / user / "Maildir"

    def maildir_files(self, user):
        return maildir_files(self.maildir_path(user))

    def maildir(self, user):
        """Delivered messages of user (new/ and cur/), oldest first, as bytes."""
        return read_maildir(self.maildir_path(user))

    def wait_delivered(self, user, n, timeout=20.0):
        """Poll until user's Maildir holds at least n messages; return them (all of them)."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.maildir(user)
            if len(msgs) >= n:
                return msgs
            if not self.running():
                raise TernError(f"ternd died while waiting for {n} messages for {user} "
                                f"(have {len(msgs)})\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise TernError(f"{user}: {len(msgs)} of {n} messages delivered after "
                                f"{timeout} s\n{self.log_tail()}")
            time.sleep(0.05)

    def smtp(self, timeout=10.0):
        """A raw SMTP client connected to this ternd (greeting already read)."""
        return RawSMTP(self.addr, self.port, timeout)


# --------------------------------------------------------------------------- Maildir

def maildir_files(path):
    path = pathlib.Path(path)
    files = []
    for sub in ("new", "cur"):
        d = path / sub
        if d.is_dir():
            for f in d.iterdir():
                if f.is_file():
                    try:
                        files.append((f.stat().st_mtime_ns, f.name, f))
                    except FileNotFoundError:   # moved new/ -> cur/ under our feet
                        pass
    return [f for _, _, f in sorted(files)]


def read_maildir(path):
    out = []
    for f in maildir_files(path):
        try:
            out.append(f.read_bytes())
        except FileNotFoundError:
            pass
    return out


def split_message(raw):
    """(header bytes, body bytes) of a stored message, line ends normalised to LF."""
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    return head + b"\n", body


def parse_message(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


# --------------------------------------------------------------------------- SMTP client

class RawSMTP:
    """A line-level SMTP client: send exactly the bytes a test wants, read whole replies.
    reply() -> (code, [lines]); each line without CRLF."""

    def __init__(self, host, port, timeout=10.0, read_greeting=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply() if read_greeting else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        lines = []
        while True:
            line = self.f.readline(100000)
            if not line:
                if lines:
                    raise EOFError(f"connection closed inside a reply: {lines!r}")
                return None, []
            line = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
            lines.append(line)
            if not re.match(r"^\d{3}[ -]", line) and not re.match(r"^\d{3}$", line):
                raise AssertionError(f"malformed reply line {line!r}")
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (no more data)."""
        return peer_closed(self.sock, self.f, timeout)

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- fixtures

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes more than a few seconds")


@pytest.fixture(scope="session", autouse=True)
def private_network_namespace():
    """Refuse to run anywhere but a private network namespace with only lo (DESIGN: every
    test stays on loopback). tests/run-all sets that up."""
    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        pytest.exit("tests/e2e must run in a private network namespace with only lo "
                    f"(found interfaces: {names}). Use: tests/run-all e2e, or "
                    "tests/run-all --netns /usr/bin/python3 -m pytest tests/e2e ...",
                    returncode=3)
    with socket.socket() as s:   # lo must be up
        try:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            socket.create_connection(s.getsockname(), timeout=2).close()
        except OSError as e:
            pytest.exit(f"loopback is not usable in this namespace ({e}); "
                        "run `ip link set lo up`", returncode=3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, append the tail of every ternd log the test used to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for t in getattr(item, "_terns", []):
            rep.sections.append((f"ternd log {t.logfile}", t.log_tail(80)))
        item._tern_failed = True


@pytest.fixture
def workdir(request):
    """A fresh directory (mode 0755, under $TERN_TEST_TMP or /tmp) removed after a passing
    test and kept after a failing one."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="tern-e2e-", dir=TMPROOT))
    os.chmod(d, 0o755)
    yield d
    if getattr(request.node, "_tern_failed", False):
        print(f"\nkept {d} for inspection")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_tern(request, workdir):
    """make_tern(config=None, users=None, start=True, env=None, addr="127.0.0.1") -> a Tern
    (started); several may be made in one test (each in its own subdirectory). All are
    stopped at teardown."""
    terns = []
    request.node._terns = terns

    def make(config=None, users=None, start=True, env=None, addr="127.0.0.1"):
        base = workdir / f"t{len(terns)}"
        base.mkdir()
        t = Tern(base, config=config, users=users, env=env, addr=addr)
        terns.append(t)
        if start:
            t.start()
        return t

    yield make
    for t in terns:
        t.stop()


@pytest.fixture
def tern(make_tern):
    """A started ternd with the default config: localhost delivered to <dir>/mail/<user>."""
    return make_tern()


@pytest.fixture
def maildir_reader():
    """read(path) -> [bytes] of a Maildir (new/ and cur/), for Maildirs made outside Tern."""
    return read_maildir


# ---- LDAP: the ldapc driver, private slapds (tests/e2e/ldapinst.py) ----------------------------

@pytest.fixture(scope="module")
def ldapc_driver():
    d, exe = build_driver("ldapc_driver", ["tests/e2e/ldapc_driver.c",
                                           "src/ternd/lookup/ldapc.c"], "LDAPC_DRIVER_CFLAGS")
    yield exe
    shutil.rmtree(d, ignore_errors=True)


class LdapcDriver:
    """tests/e2e/ldapc_driver.c (src/ternd/lookup/ldapc.c on its own event loop) as a child: commands in, result lines out, each read with a deadline."""

    def __init__(self, exe, workdir, servers, timeout=2, extra=()):
        conf = workdir / "ldapc.conf"
        conf.write_text("\n".join([f"ldapserver {' '.join(servers)}",
                                   "ldapbasedn dc=example,dc=test",
                                   f"ldaptimeout {timeout}", "ldapmessagestore /var/mail",
                                   "ldapuid 3000", "ldapgid 3001", *extra]) + "\n")
        self.log = open(workdir / "ldapc_driver.log", "w")
        self.p = subprocess.Popen([str(exe), str(conf)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, text=True,
                                  bufsize=1)
        self.buf = ""
        assert self.line(10) == "ready"
        self.n = 0

    def line(self, timeout):
        deadline = time.monotonic() + timeout
        while "\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                raise AssertionError(f"no answer in {timeout}s")
            chunk = os.read(self.p.stdout.fileno(), 65536).decode()
            if not chunk:
                raise AssertionError("driver exited")
            self.buf += chunk
        line, self.buf = self.buf.split("\n", 1)
        return line

    def send(self, addr):
        self.n += 1
        tag = f"r{self.n}"
        self.p.stdin.write(f"lookup {tag} {addr}\n")
        self.p.stdin.flush()
        return tag

    def result(self, timeout=10):
        parts = self.line(timeout).split(" ")
        assert parts[0] == "result", parts
        fields = dict(p.split("=", 1) for p in parts[3:])
        return parts[1], parts[2], fields

    def lookup(self, addr, timeout=10):
        tag = self.send(addr)
        rtag, status, fields = self.result(timeout)
        assert rtag == tag
        return status, fields

    def close(self):
        self.p.stdin.close()
        try:
            assert self.line(10) == "exit 0"
        finally:
            rc = self.p.wait(timeout=10)
            self.log.close()
        assert rc == 0, f"driver exit {rc} (sanitizer report in ldapc_driver.log?)"


@pytest.fixture
def make_slapd(workdir):
    """make_slapd(ldif="", name="ldap", **kw) -> a started LdapInstance (ldapinst.py) under
    workdir holding ldif; every one is stopped at teardown."""
    from ldapinst import LdapInstance
    started = []

    def make(ldif="", name="ldap", **kw):
        ldap = LdapInstance(workdir / name, **kw)
        if ldif:
            ldap.add(ldif)
        started.append(ldap)
        ldap.start()
        return ldap

    yield make
    for ldap in started:
        ldap.stop()


@pytest.fixture
def make_ldap_pair(workdir):
    """make_ldap_pair(ldif="") -> (provider, replica): a syncprov slapd on 127.0.0.1 holding
    ldif and a syncrepl consumer of it on 127.0.0.4 (skips when slapd is not usable); both
    stopped at teardown."""
    from ldapinst import LdapInstance, ldap_usable
    started = []

    def make(ldif=""):
        why = ldap_usable()
        if why:
            pytest.skip(why)
        prov = LdapInstance(workdir / "provider", syncprov=True)
        if ldif:
            prov.add(ldif)
        started.append(prov)
        prov.start()
        repl = prov.replica(workdir / "replica", host="127.0.0.4")
        started.append(repl)
        repl.start()
        return prov, repl

    yield make
    for ldap in reversed(started):
        ldap.stop()
