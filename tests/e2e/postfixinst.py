"""tests/e2e/postfixinst.py — a private Postfix instance for the interop tests: its own
config_directory, queue_directory and data_directory under the test's directory, listening
on a free loopback port, never touching /etc/postfix or the system's Postfix.

    pf = PostfixInstance(workdir / "pf", domain="pf.test", cert=leaf)   # leaf: tlsca.Leaf
    pf.start(smtpd_tls="encrypt")             # smtpd with TLS required (may, none, encrypt)
    pf.wait_mail("user")                      # the messages delivered to user@pf.test (bytes)
    pf.log()                                  # Postfix's own log (maillog_file)
    pf.stop()                                 # by the master's pid

    # Postfix's smtp client relaying everything it receives to tern over STARTTLS:
    pf.start(relayhost=("127.0.0.1", tern.port), relay_tls="verify", cafile=ca.cert,
             relay_match="mx.tern.test")
    pf.send("a@pf-relay.test", ["x@localhost"], body)    # into Postfix's smtpd

Mail for USER@DOMAIN (users=("user", "other") by default) is delivered by virtual(8) into
DIR/mail/DOMAIN/USER/Maildir/ as uid 65534; other recipients of DOMAIN are refused;
anything else is relayed (to relayhost when set). Postfix's master runs as root (it must
bind and switch to mail_owner "postfix", the account the package made), without chroot, in
the foreground of `postfix start-fg`; it is stopped by its pid.

Owns: the files under its directory and the master process it starts. Trusts: the Postfix
binaries in /usr/sbin and /usr/lib/postfix/sbin."""
import os
import pathlib
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import time

MASTER_CF = """\
{port_line}
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
local      unix  - n n -  - local
virtual    unix  - n n -  - virtual
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
tlsmgr     unix  - - n 1000? 1 tlsmgr
"""


def postfix_usable():
    """None if a private Postfix can run here, else why not (for pytest.skip)."""
    if not shutil.which("postfix") and not os.path.exists("/usr/sbin/postfix"):
        return "Postfix is not installed"
    if os.geteuid() != 0:
        return "a private Postfix needs root (master binds and switches to mail_owner)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix account (mail_owner)"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostfixInstance:
    def __init__(self, directory, domain="pf.test", cert=None, users=("user", "other")):
        self.dir = pathlib.Path(directory)
        self.users = list(users)
        self.domain = domain
        self.cert = cert
        self.port = None
        self.proc = None
        self.etc = self.dir / "etc"

    # ------------------------------------------------------------------ configuration
    def _main_cf(self, smtpd_tls, relayhost, relay_tls, cafile, relay_match, extra):
        d = self.dir
        lines = [
            "compatibility_level = 3.6",
            f"queue_directory = {d / 'queue'}",
            f"data_directory = {d / 'data'}",
            f"maillog_file = {d / 'maillog'}",
            f"maillog_file_prefixes = {d}",
            "myhostname = mx.pf.test", "mydomain = pf.test", "myorigin = pf.test",
            "inet_interfaces = 127.0.0.1", "inet_protocols = ipv4",
            "mydestination =", "mynetworks = 127.0.0.0/8",
            "alias_maps =", "alias_database =",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            "smtp_dns_support_level = disabled",
            f"virtual_mailbox_domains = {self.domain}",
            f"virtual_mailbox_base = {d / 'mail'}",
            f"virtual_mailbox_maps = texthash:{self.etc / 'vmailbox'}",
            "virtual_uid_maps = static:65534", "virtual_gid_maps = static:65534",
            "smtpd_tls_received_header = yes",
            "smtpd_tls_loglevel = 1", "smtp_tls_loglevel = 1",
            f"relayhost = [{relayhost[0]}]:{relayhost[1]}" if relayhost else "relayhost =",
            "queue_run_delay = 1s", "minimal_backoff_time = 1s", "maximal_backoff_time = 2s",
        ]
        if self.cert and smtpd_tls != "none":
            lines += [f"smtpd_tls_cert_file = {self.cert.chain}",
                      f"smtpd_tls_key_file = {self.cert.key}",
                      f"smtpd_tls_security_level = {smtpd_tls}"]
        else:
            lines += ["smtpd_tls_security_level = none"]
        if relayhost:
            lines += [f"smtp_tls_security_level = {relay_tls}"]
            if cafile:
                lines += [f"smtp_tls_CAfile = {cafile}"]
            if relay_match:
                pol = self.etc / "tls_policy"
                pol.write_text(f"[{relayhost[0]}]:{relayhost[1]} {relay_tls} "
                               f"match={relay_match}\n")
                lines += [f"smtp_tls_policy_maps = texthash:{pol}"]
        else:
            lines += ["smtp_tls_security_level = none"]
        return "\n".join(lines + list(extra or [])) + "\n"

    def start(self, smtpd_tls="may", relayhost=None, relay_tls="verify", cafile=None,
              relay_match=None, extra=None, timeout=30.0):
        why = postfix_usable()
        if why:
            raise RuntimeError(why)
        for sub in ("etc", "queue", "data", "mail"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        pf = pwd.getpwnam("postfix")
        os.chown(self.dir / "data", pf.pw_uid, pf.pw_gid)
        os.chown(self.dir / "mail", 65534, 65534)
        self.port = _free_port()
        (self.etc / "main.cf").write_text(
            self._main_cf(smtpd_tls, relayhost, relay_tls, cafile, relay_match, extra))
        (self.etc / "master.cf").write_text(MASTER_CF.format(
            port_line=f"127.0.0.1:{self.port} inet n - n - - smtpd"))
        (self.etc / "vmailbox").write_text("".join(
            f"{u}@{self.domain} {self.domain}/{u}/Maildir/\n" for u in self.users))
        env = dict(os.environ, MAIL_CONFIG=str(self.etc))
        subprocess.run(["postfix", "-c", str(self.etc), "check"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        self.proc = subprocess.Popen(["postfix", "-c", str(self.etc), "start-fg"], env=env,
                                     stdout=open(self.dir / "master.out", "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postfix master exited: " + self.output())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("postfix did not greet: " + self.output())

    def output(self):
        out = (self.dir / "master.out")
        text = out.read_text(errors="replace") if out.exists() else ""
        return text + "\n" + self.log()[-3000:]

    def stop(self, timeout=20.0):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)       # master: terminate the children, exit
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    # ------------------------------------------------------------------ results
    def log(self):
        p = self.dir / "maillog"
        return p.read_text(errors="replace") if p.exists() else ""

    def maildir(self, user):
        return self.dir / "mail" / self.domain / user / "Maildir"

    def messages(self, user):
        out = []
        for sub in ("new", "cur"):
            d = self.maildir(user) / sub
            if d.is_dir():
                out += [p.read_bytes() for p in sorted(d.iterdir())]
        return out

    def wait_mail(self, user, n=1, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.messages(user)
            if len(m) >= n:
                return m
            time.sleep(0.05)
        raise AssertionError(f"no mail for {user}@{self.domain} in {timeout}s; postfix log:\n"
                             + self.log()[-3000:])

    def send(self, sender, rcpts, body):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=15) as s:
            return s.sendmail(sender, rcpts, body)
