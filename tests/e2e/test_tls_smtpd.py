"""test_tls_smtpd — the SMTP server's TLS and AUTH against real peers on loopback: STARTTLS
(RFC 3207) and its command-injection class (CVE-2011-0411), smtps (RFC 8314), submission
(RFC 6409), SMTP AUTH (RFC 4954) PLAIN/LOGIN/CRAM-MD5 with the throttle, relay after AUTH,
Received (RFC 3848), the certificate checks of ternd -n, and a certificate reload on SIGHUP.

Peers: openssl s_client, swaks, Python's smtplib and ssl. Certificates: tests/e2e/tlsca.py
(made here, never committed). Every wait polls a condition with a deadline.
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import TERND, RawSMTP, free_port, parse_message, wait_for
from tlsca import TestCA

HOST = "tern.test"                          # conftest's `me`; the leaf certificate's name


# ----------------------------------------------------------------------------- helpers

@pytest.fixture
def ca(workdir):
    return TestCA(workdir / "ca")


@pytest.fixture
def leaf(ca):
    return ca.leaf(HOST, ips=["127.0.0.1"])


def client_ctx(ca, **kw):
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def tls_tern(make_tern, leaf, extra=None, users=None, start=True, **listeners):
    """A ternd with servercert and, besides its plain smtp port (STARTTLS), the listeners
    named in `listeners` (kind=options, e.g. smtps="", submission="auth=required") on
    ports of their own: returns (tern, {kind: port})."""
    ports = {k: free_port() for k in listeners}
    cfg = {"servercert": str(leaf.pem)}
    lines = None
    if listeners:
        lines = [f"{k} 127.0.0.1:{ports[k]} {opts}".rstrip() for k, opts in listeners.items()]
    cfg.update(extra or {})
    t = make_tern(config=cfg, users=users, start=False)
    if lines:
        t.config["listen"] = t.config["listen"] + lines
    if start:
        t.start()
    return t, ports


class Client(RawSMTP):
    """RawSMTP that can turn on TLS in the middle of the conversation."""

    def __init__(self, port, timeout=10.0, read_greeting=True):
        super().__init__("127.0.0.1", port, timeout, read_greeting)

    def starttls(self, ctx):
        self.sock = ctx.wrap_socket(self.sock, server_hostname=HOST)
        self.f = self.sock.makefile("rb")

    def ehlo(self, name="client.test"):
        code, lines = self.cmd(f"EHLO {name}")
        assert code == 250, lines
        return {ln[4:].split()[0].upper(): ln[4:] for ln in lines[1:]}


def smtps_client(port, ctx):
    c = Client(port, read_greeting=False)
    c.starttls(ctx)
    c.greeting = c.reply()
    return c


def served_serial(port, ca, implicit=False):
    """The serial number of the certificate the server shows now."""
    ctx = client_ctx(ca)
    if implicit:
        c = smtps_client(port, ctx)
    else:
        c = Client(port)
        c.ehlo()
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls(ctx)
    with c:
        return c.sock.getpeercert()["serialNumber"]


def s_client(args, data, timeout=20):
    if not shutil.which("openssl"):
        pytest.fail("openssl is not installed (scripts/deps test)")
    return subprocess.run(["openssl", "s_client", *args], input=data, capture_output=True,
                          timeout=timeout)


def ternd_check(conf):
    return subprocess.run([str(TERND), "-n", "-f", str(conf)], capture_output=True, text=True,
                          timeout=30)


def message(subject="tls test", body="hello over TLS\n"):
    return (f"From: <sender@client.test>\r\nTo: <user@localhost>\r\nSubject: {subject}\r\n"
            f"\r\n{body}").replace("\n", "\r\n").replace("\r\r\n", "\r\n")


# ----------------------------------------------------------------------------- STARTTLS

def test_no_starttls_without_certificate(tern):
    with Client(tern.port) as c:
        assert "STARTTLS" not in c.ehlo()
        assert c.cmd("STARTTLS")[0] == 502


def test_openssl_s_client_starttls(make_tern, leaf, ca):
    t, _ = tls_tern(make_tern, leaf)
    r = s_client(["-starttls", "smtp", "-connect", f"127.0.0.1:{t.port}", "-CAfile",
                  str(ca.cert), "-verify_return_error", "-verify_hostname", HOST, "-crlf",
                  "-ign_eof"], b"EHLO client.test\nQUIT\n")
    out = r.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out + r.stderr.decode(errors="replace")
    assert re.search(r"Protocol\s*:\s*TLSv1\.3", out) or "TLSv1.3" in out, out
    assert "250-tern.test" in out and "221 2.0.0 Bye" in out, out
    assert "250-STARTTLS" not in out.split("250-tern.test", 1)[1], "STARTTLS offered again"
    assert wait_for(lambda: re.search(r"event=tls sid=\d+ ip=127\.0\.0\.1 version=TLSv1\.3",
                                      t.log()), 5), t.log_tail()


def test_openssl_s_client_smtps(make_tern, leaf, ca):
    t, ports = tls_tern(make_tern, leaf, smtps="")
    r = s_client(["-connect", f"127.0.0.1:{ports['smtps']}", "-CAfile", str(ca.cert),
                  "-verify_return_error", "-crlf", "-ign_eof"], b"EHLO client.test\nQUIT\n")
    out = r.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out
    assert "220 tern.test ESMTP tern" in out and "221 2.0.0 Bye" in out, out
    ehlo = out.split("250-tern.test", 1)[1]
    assert "STARTTLS" not in ehlo and "AUTH PLAIN LOGIN CRAM-MD5" in ehlo, out


def test_smtps_speaks_no_plaintext(make_tern, leaf):
    """A plaintext client on the smtps port gets no greeting; the handshake fails."""
    t, ports = tls_tern(make_tern, leaf, smtps="")
    data = read_all(ports["smtps"], send=b"EHLO plain.test\r\n")
    assert b"220" not in data and b"250" not in data
    assert wait_for(lambda: "reason=tls_failed" in t.log(), 5), t.log_tail()


def test_starttls_command_injection_is_discarded(make_tern, leaf, ca):
    """CVE-2011-0411: commands pipelined behind STARTTLS in the same segment must never be
    executed inside the TLS session."""
    t, _ = tls_tern(make_tern, leaf)
    with Client(t.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\n")
        code, lines = c.reply()
        assert code == 220, lines
        c.starttls(client_ctx(ca))
        # the first reply inside TLS answers our EHLO, not the injected MAIL
        code, lines = c.cmd("EHLO client.test")
        assert code == 250 and lines[0].startswith("250-tern.test"), lines
        # and no transaction exists: RCPT is out of sequence
        code, lines = c.cmd("RCPT TO:<user@localhost>")
        assert code == 503, lines
        assert c.cmd("QUIT")[0] == 221
    log = t.log()
    assert "evil@attacker.test" not in log, "the injected command was parsed"
    assert re.search(r"event=starttls_pipelined sid=\d+ ip=127\.0\.0\.1 dropped=%d"
                     % len(b"MAIL FROM:<evil@attacker.test>\r\n"), log), t.log_tail()


def test_starttls_resets_the_session(make_tern, leaf, ca):
    t, _ = tls_tern(make_tern, leaf)
    with Client(t.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<before@client.test>")[0] == 250
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls(client_ctx(ca))
        assert c.cmd("MAIL FROM:<after@client.test>")[0] == 503    # EHLO first
        kw = c.ehlo()
        assert "STARTTLS" not in kw
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 503          # the MAIL is gone
        assert c.cmd("STARTTLS")[0] == 503                          # twice: 503
        assert c.cmd("MAIL FROM:<after@client.test>")[0] == 250
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 250
        assert c.cmd("QUIT")[0] == 221


def test_smtplib_starttls_delivers_with_esmtps_received(make_tern, leaf, ca):
    t, _ = tls_tern(make_tern, leaf)
    with smtplib.SMTP("127.0.0.1", t.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        s.starttls(context=client_ctx(ca))
        s.ehlo("client.test")
        s.sendmail("sender@client.test", ["user@localhost"], message())
    m = parse_message(t.wait_delivered("user", 1)[0])
    rcvd = m["Received"]
    assert "with ESMTPS id" in rcvd, rcvd
    assert re.search(r"\(using TLSv1\.3 with cipher TLS_\w+ \(\d+ bits\)\)", rcvd), rcvd


def test_old_tls_versions_refused_by_default(make_tern, leaf, ca):
    """TLS 1.0 and 1.1 are refused with the default tlsprotocols; the same client gets in
    when the operator allows TLS 1.1 (so the refusal is the server's)."""
    args = ["-connect", None, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-crlf", "-ign_eof"]
    t, ports = tls_tern(make_tern, leaf, smtps="")
    args[1] = f"127.0.0.1:{ports['smtps']}"
    r = s_client(args, b"QUIT\n")
    assert b"220 tern.test" not in r.stdout, r.stdout
    r = s_client([a if a != "-tls1_1" else "-tls1" for a in args], b"QUIT\n")
    assert b"220 tern.test" not in r.stdout, r.stdout
    t.stop()
    t2, ports2 = tls_tern(make_tern, leaf, smtps="",
                          extra={"tlsprotocols": "TLSv1.1 TLSv1.2 TLSv1.3",
                                 "tlsserverciphers": "DEFAULT:@SECLEVEL=0"})
    args[1] = f"127.0.0.1:{ports2['smtps']}"
    r = s_client(args, b"QUIT\n")
    assert b"220 tern.test" in r.stdout, r.stdout + r.stderr


# ----------------------------------------------------------------------------- certificates

def test_ternd_n_reports_certificate_errors_with_file_and_line(make_tern, ca, workdir):
    other = ca.leaf("other.test")
    good = ca.leaf(HOST)
    mismatched = workdir / "mismatch.pem"            # a key that is not the certificate's
    mismatched.write_text(other.key.read_text() + good.chain.read_text())
    t = make_tern(start=False)
    for path, want in ((workdir / "missing.pem", "cannot read"),
                       (mismatched, "servercert: " + str(mismatched)),
                       (good.cert, "servercert: " + str(good.cert))):   # no key at all
        t.config["servercert"] = str(path)
        t.write_config()
        lines = t.conf.read_text().splitlines()
        lineno = next(i + 1 for i, ln in enumerate(lines) if ln.startswith("servercert "))
        r = ternd_check(t.conf)
        assert r.returncode == 78, (path, r.stdout, r.stderr)
        assert f"{t.conf}:{lineno}: " in r.stderr and want in r.stderr, r.stderr
    # a listener that needs a certificate, without one: its own line
    t.config.pop("servercert")
    t.config["listen"] = t.config["listen"] + ["smtps 127.0.0.1:4650"]
    t.write_config()
    r = ternd_check(t.conf)
    lineno = next(i + 1 for i, ln in enumerate(t.conf.read_text().splitlines())
                  if ln.startswith("listen smtps"))
    assert r.returncode == 78 and f"{t.conf}:{lineno}: listen smtps: tls=implicit needs a " \
        "servercert" in r.stderr, r.stderr


def test_expired_certificate_is_a_warning(make_tern, ca):
    old = ca.leaf(HOST, days=-1, filename="expired")
    t, _ = tls_tern(make_tern, old, start=False)
    r = ternd_check(t.conf)
    assert r.returncode == 0, r.stderr
    assert re.search(r"tern\.conf:\d+: warning: servercert: the certificate in .* expired on",
                     r.stderr), r.stderr
    t.start()
    assert wait_for(lambda: "event=config_warning" in t.log(), 5), t.log_tail()
    assert "expired on" in t.log()


def live_cert_tern(make_tern, ca, workdir):
    """A tern (smtp + smtps) whose servercert is a file the test replaces: (tern, ports,
    live path, first leaf, second leaf, serial served at start)."""
    first = ca.leaf(HOST, ips=["127.0.0.1"], filename="first")
    second = ca.leaf(HOST, ips=["127.0.0.1"], filename="second")
    live = workdir / "live.pem"
    shutil.copy(first.pem, live)

    class L:
        pem = live
    t, ports = tls_tern(make_tern, L, smtps="")
    return t, ports, live, first, second, served_serial(ports["smtps"], ca, implicit=True)


def wait_serial_change(t, ports, ca, before):
    def changed():
        try:
            return served_serial(ports["smtps"], ca, implicit=True) != before
        except (OSError, ssl.SSLError, AssertionError, EOFError):
            return False                             # the role is restarting
    assert wait_for(changed, 15), t.log_tail()


def test_sighup_reloads_the_certificate(make_tern, ca, workdir):
    t, ports, live, _, second, before = live_cert_tern(make_tern, ca, workdir)
    assert before == served_serial(t.port, ca)
    shutil.copy(second.pem, live)
    t.proc.send_signal(signal.SIGHUP)
    wait_serial_change(t, ports, ca, before)
    assert served_serial(t.port, ca) != before


def test_sighup_with_a_broken_certificate_keeps_serving(make_tern, ca, workdir):
    """A renewed certificate that does not load (here: a truncated file) is refused at
    SIGHUP with file:line; the running roles keep serving the old one, and a good file at
    the next SIGHUP is taken."""
    t, ports, live, first, second, before = live_cert_tern(make_tern, ca, workdir)
    pids = t.role_pids()
    live.write_text(first.pem.read_text()[:200])
    t.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "event=reload_refused" in t.log(), 10), t.log_tail()
    assert re.search(r"event=reload_refused file=\S*tern\.conf line=\d+ error=\"servercert",
                     t.log()), t.log_tail()
    assert t.running() and t.role_pids() == pids
    assert served_serial(ports["smtps"], ca, implicit=True) == before
    assert served_serial(t.port, ca) == before
    shutil.copy(second.pem, live)
    t.proc.send_signal(signal.SIGHUP)
    wait_serial_change(t, ports, ca, before)


# ----------------------------------------------------------------------------- AUTH

PASSWORD = "s3cret-Pa55"
TERNCTL = TERND.parent / "ternctl"


def auth_tern(make_tern, leaf, extra=None, **listeners):
    """tls_tern with users joe (an SSHA hash, from `ternctl digest`) and ann (a {PLAIN}
    secret, for CRAM-MD5), and a fast throttle unless `extra` says otherwise."""
    cfg = {"authfaildelaymax": "1", "authfailclose": "3"}
    cfg.update(extra or {})
    t, ports = tls_tern(make_tern, leaf, extra=cfg, users={"joe": None, "ann": None},
                        start=False, **listeners)
    r = subprocess.run([str(TERNCTL), "digest", "SSHA", PASSWORD], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    hashes = {"joe": r.stdout.strip(), "ann": "{PLAIN}" + PASSWORD}
    path = t.dir / "users"
    lines = [ln + ":" + hashes[ln.split(":")[0]] for ln in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    t.start()
    return t, ports


def swaks(port, *args, timeout=30):
    if not shutil.which("swaks"):
        pytest.fail("swaks is not installed (scripts/deps test)")
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--helo", "client.test",
           "--from", "joe@localhost", "--timeout", "10", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("mech,user", [("PLAIN", "joe"), ("LOGIN", "joe"), ("CRAM-MD5", "ann")])
def test_swaks_starttls_auth_relays(make_tern, leaf, mech, user):
    t, _ = auth_tern(make_tern, leaf)
    r = swaks(t.port, "--tls", "--auth", mech, "--auth-user", user, "--auth-password",
              PASSWORD, "--to", "someone@remote.example", "--quit-after", "RCPT")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "235 2.7.0 Authentication successful" in out, out
    assert re.search(r"<~ +250 2\.1\.5", out), out               # relayed: RCPT accepted
    assert wait_for(lambda: re.search(r"event=auth sid=\d+ ip=127\.0\.0\.1 mech=%s "
                                      r'login="%s" result=ok' % (mech, user), t.log()), 5), \
        t.log_tail()
    assert PASSWORD not in t.log()


def test_swaks_smtps_auth_delivers(make_tern, leaf):
    t, ports = auth_tern(make_tern, leaf, smtps="")
    r = swaks(ports["smtps"], "--tlsc", "--auth", "PLAIN", "--auth-user", "joe",
              "--auth-password", PASSWORD, "--to", "ann@localhost",
              "--header", "Subject: over smtps")
    assert r.returncode == 0, r.stdout + r.stderr
    m = parse_message(t.wait_delivered("ann", 1)[0])
    assert "with ESMTPSA id" in m["Received"], m["Received"]
    assert "joe" not in m["Received"], "the login leaked into Received without authprepend"
    assert wait_for(lambda: re.search(r'event=committed .*origin="smtp ip=127\.0\.0\.1 '
                                      r'helo=client\.test tls=yes login=joe"', t.log()), 5), \
        t.log_tail()


def test_authprepend_reveals_the_login(make_tern, leaf, ca):
    t, _ = auth_tern(make_tern, leaf, extra={"authprepend": "yes"})
    with smtplib.SMTP("127.0.0.1", t.port, timeout=10) as s:
        s.starttls(context=client_ctx(ca))
        s.login("joe", PASSWORD)
        s.sendmail("joe@localhost", ["ann@localhost"], message())
    m = parse_message(t.wait_delivered("ann", 1)[0])
    assert "(authenticated as joe)" in m["Received"], m["Received"]


def test_smtplib_login_and_mail_auth_parameter(make_tern, leaf, ca):
    t, _ = auth_tern(make_tern, leaf)
    with smtplib.SMTP("127.0.0.1", t.port, timeout=10) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth"), "AUTH offered before TLS"
        s.starttls(context=client_ctx(ca))
        s.ehlo("client.test")
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]
        s.login("joe", PASSWORD)
        code, text = s.docmd("AUTH", "PLAIN")
        assert code == 503, text                                 # already authenticated
        code, text = s.docmd("MAIL", "FROM:<joe@localhost> AUTH=joe=x")  # not xtext
        assert code == 501, text
        code, text = s.docmd("MAIL", "FROM:<joe@localhost> AUTH=joe+40localhost")
        assert code == 250, text
        assert s.docmd("RCPT", "TO:<ann@localhost>")[0] == 250
        assert s.docmd("RSET")[0] == 250
        s.sendmail("joe@localhost", ["ann@localhost"], message())
        s.mail("joe@localhost", ["AUTH=joe+40localhost"])
        s.rcpt("ann@localhost")
        s.data(message(subject="second"))
    t.wait_delivered("ann", 2)
    assert wait_for(lambda: "login=joe mailauth=joe+40localhost\"" in t.log(), 5), t.log_tail()


def test_auth_needs_tls_unless_authplaintext(make_tern, leaf):
    t, _ = auth_tern(make_tern, leaf)
    with Client(t.port) as c:
        assert "AUTH" not in c.ehlo()
        code, lines = c.cmd("AUTH PLAIN " + "AGpvZQBz")
        assert code == 538 and "5.7.11" in lines[0], lines
    t.stop()
    t2, _ = auth_tern(make_tern, leaf, extra={"authplaintext": "yes",
                                              "authmechs": "LOGIN PLAIN"})
    with smtplib.SMTP("127.0.0.1", t2.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.esmtp_features["auth"].strip() == "LOGIN PLAIN"
        code, text = s.docmd("AUTH", "CRAM-MD5")           # not offered: 504
        assert code == 504, text
        s.login("joe", PASSWORD)


def test_relay_refused_without_auth(make_tern, leaf, ca):
    t, _ = auth_tern(make_tern, leaf)
    with Client(t.port) as c:
        c.ehlo()
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls(client_ctx(ca))
        c.ehlo()
        # AUTH= from an unauthenticated session is accepted and ignored (RFC 4954 5)
        assert c.cmd("MAIL FROM:<joe@localhost> AUTH=joe+40localhost")[0] == 250
        code, lines = c.cmd("RCPT TO:<someone@remote.example>")
        assert code == 553 and "Relaying denied" in lines[0], lines


def test_submission_requires_auth(make_tern, leaf, ca):
    t, ports = auth_tern(make_tern, leaf, submission="")
    with Client(ports["submission"]) as c:
        kw = c.ehlo()
        assert "STARTTLS" in kw and "AUTH" not in kw
        code, lines = c.cmd("MAIL FROM:<joe@localhost>")
        assert code == 530 and lines[0] == "530 5.7.0 Authentication required", lines
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls(client_ctx(ca))
        c.ehlo()
        assert c.cmd("MAIL FROM:<joe@localhost>")[0] == 530
        code, lines = c.cmd("AUTH PLAIN " + __import__("base64").b64encode(
            b"\0joe\0" + PASSWORD.encode()).decode())
        assert code == 235, lines
        assert c.cmd("MAIL FROM:<joe@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<someone@remote.example>")[0] == 250   # relay after AUTH


def test_wrong_password_535_then_throttle_and_421(make_tern, leaf, ca):
    """Failures are answered 535, later ones after a delay (the session waits on a timer),
    and authfailclose failures close the connection with 421."""
    import base64
    bad = base64.b64encode(b"\0joe\0wrong-password").decode()
    t, _ = auth_tern(make_tern, leaf)
    with Client(t.port) as c:
        c.ehlo()
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls(client_ctx(ca))
        c.ehlo()
        code, lines = c.cmd("AUTH PLAIN " + bad)
        assert lines == ["535 5.7.8 Authentication credentials invalid"], lines
        start = time.monotonic()
        code, lines = c.cmd("AUTH PLAIN " + bad)
        assert code == 535, lines
        assert time.monotonic() - start >= 0.9, "the second failure was not delayed"
        replies = []
        for _ in range(3):
            code, lines = c.cmd("AUTH PLAIN " + bad)
            replies.append(code)
            if code == 421:
                break
        assert replies[-1] == 421, replies
        assert c.closed(), "the connection stayed open after 421"
    log = t.log()
    assert re.search(r'event=auth sid=\d+ ip=127\.0\.0\.1 mech=PLAIN login="joe" '
                     r'result=fail', log), t.log_tail()
    assert "wrong-password" not in log


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_key_is_read_only_by_ternd(make_tern, leaf):
    """The key file is root's (0600): sendmail and ternctl, run by anyone, parse the same
    configuration without reading it."""
    t, _ = tls_tern(make_tern, leaf, start=False)
    assert (leaf.pem.stat().st_mode & 0o777) == 0o600
    for p in (leaf.pem.parent, leaf.pem.parent.parent):
        os.chmod(p, 0o755)

    def nobody():
        os.setgid(65534)
        os.setuid(65534)
    r = subprocess.run([str(TERNCTL), "showctl"], capture_output=True, text=True, timeout=20,
                       env=dict(os.environ, TERN_CONF=str(t.conf)), preexec_fn=nobody)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^servercert +%s " % re.escape(str(leaf.pem)), r.stdout, re.M), r.stdout


def test_shutdown_does_not_wait_for_a_stalled_handshake(make_tern, leaf):
    """A client that connected to smtps and never starts its handshake does not hold up a
    SIGTERM: the session closes at once instead of waiting out the shutdown grace."""
    t, ports = tls_tern(make_tern, leaf, smtps="")
    with socket.create_connection(("127.0.0.1", ports["smtps"]), timeout=10):
        assert wait_for(lambda: len(re.findall(r"event=connect ", t.log())) >= 2, 5)
        start = time.monotonic()
        assert t.stop() == 0, t.log_tail()
        assert time.monotonic() - start < 5, t.log_tail()
    assert "reason=shutdown" in t.log()


# ----------------------------------------------------------------------------- refusals

def read_all(port, send=b"", timeout=10):
    """Everything a server sends on a fresh connection (after `send`) until it closes."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if send:
            s.sendall(send)
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_refusal_speaks_each_listeners_protocol(make_tern, leaf):
    """Over maxsmtpdperip, each listener refuses in its own protocol: SMTP's 421, POP3's
    -ERR [SYS/TEMP], and nothing at all in plaintext on an implicit-TLS port (smtps, pop3s),
    where a client expects a TLS handshake."""
    t, ports = tls_tern(make_tern, leaf, {"maxsmtpdperip": "1"}, smtps="", pop3="", pop3s="")
    deadline = time.monotonic() + 10
    while True:                           # the readiness probe's session may still be open
        held = Client(t.port)
        if held.greeting[0] == 220:
            break
        held.close()
        assert time.monotonic() < deadline, held.greeting
        time.sleep(0.05)
    with held:
        assert read_all(t.port).startswith(b"421 4.7.0 ")
        assert read_all(ports["pop3"]) == b"-ERR [SYS/TEMP] too many connections\r\n"
        assert read_all(ports["smtps"]) == b""
        assert read_all(ports["pop3s"]) == b""
        assert wait_for(lambda: t.log().count("reason=maxsmtpdperip") >= 4, 5), t.log_tail()
