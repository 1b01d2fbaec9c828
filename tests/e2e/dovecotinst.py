"""tests/e2e/dovecotinst.py — a private Dovecot (LMTP and IMAP) for the lmtp channel's tests and
bench/run lmtp: its own configuration, sockets, logs and Maildirs in one directory; LMTP on a
unix socket in that directory and on 127.0.0.1:random port, IMAP on 127.0.0.1:random port;
users from a passwd-file (password "pw", uid/gid nobody, mail in <dir>/home/<user>/Maildir),
each with an optional quota (Dovecot's quota plugin, quota_full_tempfail = yes: over quota is
452 4.2.2 after DATA, the recipient alone).

Owns: its directory and the dovecot master it starts (stopped by pid). Trusts: Dovecot's
binaries (dovecot-core, dovecot-lmtpd, dovecot-imapd)."""
import imaplib
import os
import pathlib
import signal
import socket
import subprocess
import time

DOVECOT = "/usr/sbin/dovecot"
LMTP_BIN = "/usr/lib/dovecot/lmtp"
IMAP_BIN = "/usr/lib/dovecot/imap"
UID = GID = 65534


def available():
    """why a real Dovecot cannot run here, or "" """
    for b in (DOVECOT, LMTP_BIN, IMAP_BIN):
        if not os.path.exists(b):
            return f"{b} is missing (scripts/deps test installs dovecot-lmtpd and dovecot-imapd)"
    return ""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """# written by tests/e2e/dovecotinst.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = no
listen = 127.0.0.1
protocols = lmtp imap
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_plugins = quota
quota_full_tempfail = yes
lmtp_rcpt_check_quota = no
verbose_proctitle = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/passwd
}}
plugin {{
  quota = maildir:User quota
}}
service lmtp {{
  process_min_avail = {lmtp_procs}
  unix_listener {sock} {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    """Dovecot(dir, users={"name": quota_bytes or None}); start(); lmtp_socket, lmtp_port,
    imap_port; messages(user) -> [bytes] over IMAP; log(); stop()."""

    def __init__(self, d, users, lmtp_procs=0):
        self.dir = pathlib.Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.lmtp_socket = str(self.dir / "lmtp")
        self.lmtp_port = _free_port()
        self.imap_port = _free_port()
        self.conf = self.dir / "dovecot.conf"
        self.proc = None
        self.users = dict(users)
        self._write_passwd()
        os.chmod(self.dir / "home", 0o755)
        self.conf.write_text(CONF.format(d=self.dir, sock=self.lmtp_socket,
                                         lmtp_port=self.lmtp_port, imap_port=self.imap_port,
                                         lmtp_procs=lmtp_procs))

    def _write_passwd(self):
        lines = []
        for name, quota in self.users.items():
            home = self.dir / "home" / name
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, UID, GID)
            extra = f"userdb_quota_rule=*:storage={quota}B" if quota else ""
            lines.append(f"{name}:{{PLAIN}}pw:{UID}:{GID}::{home}::{extra}\n")
        tmp = self.dir / "passwd.tmp"
        tmp.write_text("".join(lines))
        os.replace(tmp, self.dir / "passwd")      # Dovecot re-reads a changed passwd-file

    def set_quota(self, user, quota):
        self.users[user] = quota
        self._write_passwd()

    def start(self, timeout=15.0):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dovecot exited {self.proc.returncode}: {self.log()}"
                                     f"{(self.dir / 'stderr').read_text()}")
            if os.path.exists(self.lmtp_socket) and self._accepts(self.lmtp_port) and \
                    self._accepts(self.imap_port):
                return self
            time.sleep(0.05)
        raise AssertionError(f"dovecot did not start: {self.log()}")

    @staticmethod
    def _accepts(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def imap(self, user):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        m.login(user, "pw")
        return m

    def messages(self, user):
        """every message of user's INBOX, over IMAP, in order"""
        m = self.imap(user)
        try:
            typ, data = m.select("INBOX", readonly=True)
            assert typ == "OK", data
            typ, data = m.search(None, "ALL")
            out = []
            for num in data[0].split():
                typ, msg = m.fetch(num, "(RFC822)")
                assert typ == "OK", msg
                out.append(msg[0][1])
            return out
        finally:
            m.logout()

    def maildir_count(self, user):
        md = self.dir / "home" / user / "Maildir"
        return sum(len(os.listdir(md / sub)) for sub in ("new", "cur") if (md / sub).is_dir())

    def log(self):
        p = self.dir / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self, timeout=10.0):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
