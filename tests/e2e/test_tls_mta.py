"""tests/e2e/test_tls_mta.py — tern's TLS and AUTH client against real peers on loopback:
a private Postfix (tests/e2e/postfixinst.py) whose smtpd requires TLS, with a certificate
from the test CA (tests/e2e/tlsca.py) for the right or a wrong name; a scripted peer that
offers STARTTLS and then breaks the handshake; an aiosmtpd smarthost with STARTTLS and
AUTH; and Postfix's smtp client delivering into tern over STARTTLS with verify.
Relay names resolve through the test's own DNS server (tests/e2e/dnsserver.py), so that
`verify` checks the certificate against a host name, as with an MX.

Owns: nothing outside its temporary directories. Trusts: the fixtures of conftest.py, the
openssl command, Postfix, aiosmtpd."""
import os
import socket
import ssl
import threading
import time

import pytest

from conftest import wait_for
from dnsserver import DnsServer
from postfixinst import PostfixInstance, postfix_usable
from tlsca import TestCA

RECORDS = ["mx.pf.test. A 127.0.0.1", "bad.test. A 127.0.0.1", "smarthost.test. A 127.0.0.1"]
BODY = b"Subject: tls\r\n\r\nover TLS, I hope\r\n"


@pytest.fixture
def dns(workdir):
    with DnsServer(workdir, records=RECORDS) as d:
        yield d


@pytest.fixture
def ca(workdir):
    return TestCA(workdir / "ca")


@pytest.fixture
def postfix(workdir):
    why = postfix_usable()
    if why:
        pytest.skip(why)
    started = []

    def start(cert, **kw):
        pf = PostfixInstance(workdir / f"pf{len(started)}", domain="pf.test", cert=cert)
        started.append(pf)
        return pf.start(**kw)

    yield start
    for pf in started:
        pf.stop()


def tern_to(make_tern, dns, route, **extra):
    cfg = {"relayclients": "127.0.0.1", "resolver": f"127.0.0.1:{dns.port}",
           "smtproutes": route, "retryremote": "1", "timeoutconnect": "3",
           "timeoutremote": "10"}
    cfg.update(extra)
    return make_tern(config=cfg)


def send(tern, rcpts, sender="joe@localhost", body=BODY):
    import smtplib
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail(sender, rcpts, body)


def wait_log(tern, text, timeout=30):
    assert wait_for(lambda: text in tern.log(), timeout), tern.log_tail(80)
    return tern.log()


def event_lines(tern, event):
    return [l for l in tern.log().splitlines() if f"event={event} " in l]


# ----------------------------------------------------------------------------- into Postfix

def test_into_postfix_tls_required_and_verified(make_tern, dns, ca, postfix):
    """Postfix's smtpd requires TLS (smtpd_tls_security_level=encrypt); tern verifies its
    certificate against the test CA and the relay's host name."""
    pf = postfix(ca.leaf("mx.pf.test"), smtpd_tls="encrypt")
    tern = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="verify",
                   tlscafile=str(ca.cert))
    send(tern, ["user@pf.test"])
    msg = pf.wait_mail("user")[0].decode(errors="replace")
    assert "with ESMTPS" in msg, msg                  # Postfix says TLS carried it
    assert "over TLS, I hope" in msg
    line = event_lines(tern, "delivered")[0]
    assert "tls=TLSv1." in line and "verified=yes" in line, line
    assert "TLS TLSv1." in line and ", verified)" in line, line   # the stored diagnostic
    assert "event=tls " in tern.log() and "name=mx.pf.test" in tern.log()


def test_into_postfix_default_may_is_opportunistic(make_tern, dns, ca, postfix):
    """Without any TLS key tern encrypts when offered (smtptls may), and says the
    certificate was not verified (no CA configured that knows it)."""
    pf = postfix(ca.leaf("mx.pf.test"), smtpd_tls="may")
    tern = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}")
    send(tern, ["user@pf.test"])
    msg = pf.wait_mail("user")[0].decode(errors="replace")
    assert "with ESMTPS" in msg, msg
    line = event_lines(tern, "delivered")[0]
    assert "verified=no" in line, line
    assert "not verified" in line, line


def test_tlsprotocols_limits_the_client_too(make_tern, dns, ca, postfix):
    """`tlsprotocols` is shared: a tern limited to TLS 1.2 offers only TLS 1.2 to a Postfix
    that would take 1.3."""
    pf = postfix(ca.leaf("mx.pf.test"), smtpd_tls="encrypt")
    tern = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="verify",
                   tlscafile=str(ca.cert), tlsprotocols="TLSv1.2")
    send(tern, ["user@pf.test"])
    pf.wait_mail("user")
    line = event_lines(tern, "delivered")[0]
    assert "tls=TLSv1.2 " in line, line


def test_wrong_name_verify_defers_may_delivers(make_tern, dns, ca, postfix):
    """A certificate for another name: verify defers with 4.7.5 and the reason; may
    delivers, logged as not verified."""
    pf = postfix(ca.leaf("wrong.pf.test"), smtpd_tls="may")
    t1 = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="verify",
                 tlscafile=str(ca.cert))
    send(t1, ["user@pf.test"])
    log = wait_log(t1, "event=deferred")
    line = event_lines(t1, "deferred")[0]
    assert "4.7.5" in line and "mx.pf.test" in line, line
    assert "verify_error=" in log
    assert pf.messages("user") == []
    from test_ternctl import ternctl
    code, out, err = ternctl(t1.conf, "show", "queue")   # what the operator sees
    assert code == 0, err
    assert "does not verify for mx.pf.test" in out and "4.7.5" in out, out
    t2 = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="may",
                 tlscafile=str(ca.cert))
    send(t2, ["user@pf.test"])
    pf.wait_mail("user")
    line = event_lines(t2, "delivered")[0]
    assert "tls=TLSv1." in line and "verified=no" in line, line


def test_untrusted_ca_verify_defers(make_tern, dns, workdir, ca, postfix):
    other = TestCA(workdir / "other", name="nobody trusts me")
    pf = postfix(other.leaf("mx.pf.test"), smtpd_tls="may")
    tern = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="verify",
                   tlscafile=str(ca.cert))
    send(tern, ["user@pf.test"])
    wait_log(tern, "event=deferred")
    assert "4.7.5" in event_lines(tern, "deferred")[0]


def test_per_destination_policy_overrides_global(make_tern, dns, ca, postfix):
    """smtptls none globally, but tlsdestinations says verify for the relay: TLS is used;
    and the other way round, none for the relay (from a file table) makes Postfix refuse
    the mail with 530, as it requires TLS."""
    pf = postfix(ca.leaf("mx.pf.test"), smtpd_tls="encrypt")
    t1 = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="none",
                 tlsdestinations="mx.pf.test=verify", tlscafile=str(ca.cert))
    send(t1, ["user@pf.test"])
    assert "with ESMTPS" in pf.wait_mail("user")[0].decode(errors="replace")
    assert "verified=yes" in event_lines(t1, "delivered")[0]
    table = t1.dir / "tlspolicy"
    table.write_text(f"# Postfix's smtp_tls_policy_maps shape\nmx.pf.test:{pf.port} none\n")
    t2 = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="verify",
                 tlsdestinations=f"file:{table}", tlscafile=str(ca.cert))
    send(t2, ["other@pf.test"])
    wait_log(t2, "Must issue a STARTTLS command first")       # Postfix's 530: no TLS came
    assert "smtptls=none" in t2.log()
    assert pf.messages("other") == []


def test_encrypt_when_not_offered_defers(make_tern, dns, ca, postfix):
    pf = postfix(None, smtpd_tls="none")
    tern = tern_to(make_tern, dns, f"pf.test:mx.pf.test:{pf.port}", smtptls="encrypt")
    send(tern, ["user@pf.test"])
    wait_log(tern, "event=deferred")
    assert "4.7.4" in event_lines(tern, "deferred")[0]
    assert pf.messages("user") == []


# ----------------------------------------------------------------------------- a broken peer

class BrokenTLSPeer:
    """An SMTP server that offers STARTTLS, answers 220 and then sends garbage instead of a
    handshake (mode "garbage") or closes (mode "close"); a connection that does not ask for
    STARTTLS gets a normal conversation and its message is recorded."""

    def __init__(self, mode="garbage"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.starttls = 0
        self.messages = []
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 broken.test ESMTP\r\n")
        data = None
        try:
            for line in f:
                cmd = line.strip().upper()
                if data is not None:
                    if line in (b".\r\n", b".\n"):
                        self.messages.append(b"".join(data))
                        data = None
                        c.sendall(b"250 2.0.0 ok\r\n")
                    else:
                        data.append(line)
                elif cmd.startswith(b"EHLO"):
                    c.sendall(b"250-broken.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                elif cmd == b"STARTTLS":
                    self.starttls += 1
                    c.sendall(b"220 2.0.0 go ahead\r\n")
                    if self.mode == "garbage":
                        c.sendall(b"this is not a TLS record\r\n" * 4)
                    c.close()
                    return
                elif cmd == b"DATA":
                    data = []
                    c.sendall(b"354 go\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


@pytest.fixture
def broken_peer():
    peers = []

    def make(mode="garbage"):
        p = BrokenTLSPeer(mode)
        peers.append(p)
        return p

    yield make
    for p in peers:
        p.close()


@pytest.mark.parametrize("mode", ["garbage", "close"])
def test_handshake_failure_may_falls_back_to_plaintext(make_tern, dns, broken_peer, mode):
    peer = broken_peer(mode)
    tern = tern_to(make_tern, dns, f"bad.test:bad.test:{peer.port}")
    send(tern, ["a@bad.test"])
    assert wait_for(lambda: len(peer.messages) == 1), tern.log_tail(80)
    assert peer.starttls == 1
    log = tern.log()
    assert "event=tls_failed" in log and "action=retry_plaintext" in log
    assert "fallback=plaintext" in log
    line = event_lines(tern, "delivered")[0]
    assert "tls=no" in line, line
    # the next delivery to that address goes in plaintext at once
    send(tern, ["b@bad.test"])
    assert wait_for(lambda: len(peer.messages) == 2), tern.log_tail(80)
    assert peer.starttls == 1


def test_handshake_failure_encrypt_defers(make_tern, dns, broken_peer):
    peer = broken_peer("garbage")
    tern = tern_to(make_tern, dns, f"bad.test:bad.test:{peer.port}", smtptls="encrypt")
    send(tern, ["a@bad.test"])
    wait_log(tern, "event=deferred")
    line = event_lines(tern, "deferred")[0]
    assert "4.7.5" in line and "TLS handshake" in line, line
    assert peer.messages == []


# ----------------------------------------------------------------------------- AUTH client

def aiosmtpd_auth_server(ca, users, client_ca=None):
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult
    except ImportError:
        pytest.skip("python3-aiosmtpd is not installed")
    leaf = ca.leaf("smarthost.test")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
    if client_ca:                              # a peer that wants a client certificate
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(client_ca))
    seen = {"auth": [], "messages": []}

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = users.get(auth_data.login.decode()) == auth_data.password.decode()
        seen["auth"].append((mechanism, auth_data.login.decode(), ok,
                             session.ssl is not None))
        if ok:
            return AuthResult(success=True)
        # aiosmtpd 1.4's own failure path stalls; answer 535 ourselves
        return AuthResult(success=False, handled=False, message="535 5.7.8 bad credentials")

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            seen["messages"].append((session.authenticated, envelope.content))
            return "250 2.0.0 ok"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx,
                   require_starttls=True, authenticator=authenticator, auth_required=True,
                   auth_require_tls=True, server_hostname="smarthost.test", ready_timeout=5)
    c.start()
    return c, port, seen


def test_auth_client_to_smarthost_over_tls(make_tern, dns, ca, workdir):
    c, port, seen = aiosmtpd_auth_server(ca, {"joe": "s3cret pass"})
    try:
        creds = workdir / "smtpauth"
        creds.write_text(f"smarthost.test:{port} joe:s3cret pass\n")
        os.chmod(creds, 0o600)
        tern = tern_to(make_tern, dns, f":smarthost.test:{port}", smtptls="verify",
                       tlscafile=str(ca.cert), smtpauth=f"file:{creds}")
        send(tern, ["far@away.test"])
        assert wait_for(lambda: len(seen["messages"]) == 1), tern.log_tail(80)
        assert seen["auth"] == [("PLAIN", "joe", True, True)]
        assert seen["messages"][0][0] is True
        assert "s3cret" not in tern.log()                       # never in the logs
        assert "verified=yes" in event_lines(tern, "delivered")[0]
    finally:
        c.stop()


def test_auth_client_wrong_password_defers(make_tern, dns, ca, workdir):
    c, port, seen = aiosmtpd_auth_server(ca, {"joe": "right"})
    try:
        creds = workdir / "smtpauth"
        creds.write_text("smarthost.test joe:wrong\n")
        os.chmod(creds, 0o640)
        tern = tern_to(make_tern, dns, f":smarthost.test:{port}", tlscafile=str(ca.cert),
                       smtpauth=f"file:{creds}")
        send(tern, ["far@away.test"])
        wait_log(tern, "event=deferred")
        line = event_lines(tern, "deferred")[0]
        assert "535" in line and "AUTH" in line, line
        assert seen["messages"] == []
    finally:
        c.stop()


def test_client_certificate_for_a_peer_that_requires_one(make_tern, dns, ca, workdir):
    """clientcert: the handshake with a server that requires a client certificate succeeds
    only because tern shows one (without it the server ends the connection: deferred)."""
    c, port, seen = aiosmtpd_auth_server(ca, {"joe": "pw"}, client_ca=ca.cert)
    try:
        creds = workdir / "smtpauth"
        creds.write_text("smarthost.test joe:pw\n")
        os.chmod(creds, 0o600)
        mine = ca.leaf("client.tern.test")
        os.chmod(mine.pem, 0o600)
        t1 = tern_to(make_tern, dns, f":smarthost.test:{port}", smtptls="verify",
                     tlscafile=str(ca.cert), smtpauth=f"file:{creds}",
                     clientcert=str(mine.pem))
        send(t1, ["far@away.test"])
        assert wait_for(lambda: len(seen["messages"]) == 1), t1.log_tail(80)
        assert "clientcert=yes" in t1.log()
        t2 = tern_to(make_tern, dns, f":smarthost.test:{port}", smtptls="verify",
                     tlscafile=str(ca.cert), smtpauth=f"file:{creds}")
        send(t2, ["far@away.test"])
        wait_log(t2, "event=deferred")
        # TLS 1.3: the server's refusal (an alert, then the close) comes after the client's
        # handshake is done; tern meets it either as the alert on its read or as the
        # connection gone at EHLO, depending on which arrives first
        line = event_lines(t2, "deferred")[0]
        assert "tls read" in line or "(ehlo)" in line, line
        assert len(seen["messages"]) == 1
    finally:
        c.stop()


def test_bad_client_certificate_is_a_config_error(make_tern, ca, workdir):
    import subprocess
    from conftest import TERND
    a, b = ca.leaf("a.test"), ca.leaf("b.test")
    bad = workdir / "mismatch.pem"
    bad.write_text(a.key.read_text() + b.cert.read_text())
    t = make_tern(config={"clientcert": str(bad)}, start=False)
    p = subprocess.run([str(TERND), "-n", "-f", str(t.conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert "clientcert" in p.stderr + p.stdout


def test_world_readable_credentials_refused(make_tern, workdir):
    creds = workdir / "smtpauth"
    creds.write_text("smarthost.test joe:pw\n")
    os.chmod(creds, 0o644)
    import subprocess
    from conftest import TERND
    t = make_tern(config={"smtpauth": f"file:{creds}"}, start=False)
    p = subprocess.run([str(TERND), "-n", "-f", str(t.conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert "readable or writable by others" in p.stderr + p.stdout


# ----------------------------------------------------------------------------- Postfix into tern

def test_postfix_smtp_client_into_tern_verify(make_tern, ca, postfix):
    """Postfix's smtp client relays to tern over STARTTLS with smtp_tls_security_level=verify
    against the test CA. tern's server side must load servercert and advertise STARTTLS: a
    regression there fails here, it is not skipped."""
    leaf = ca.leaf("mx.tern.test")
    os.chmod(leaf.pem, 0o600)
    tern = make_tern(config={"servercert": str(leaf.pem)})
    import smtplib
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=10) as s:
        s.ehlo("probe.test")
        assert s.has_extn("starttls"), "tern does not advertise STARTTLS with servercert set"
    pf = postfix(None, smtpd_tls="none", relayhost=("127.0.0.1", tern.port),
                 relay_tls="verify", cafile=str(ca.cert), relay_match="mx.tern.test")
    pf.send("someone@pf.test", ["rcpt@localhost"], b"Subject: from postfix\r\n\r\nhi\r\n")
    got = tern.wait_delivered("rcpt", 1, timeout=30)
    text = got[0].decode(errors="replace")
    assert "with ESMTPS" in text, text
    assert wait_for(lambda: "Verified TLS connection established to 127.0.0.1" in pf.log()
                    or "Trusted TLS connection established" in pf.log(), 10), pf.log()


def test_postfix_smtp_client_into_tern_relay_wiring(make_tern, postfix):
    """The fixture's relay mode itself (relayhost = tern, smtp_tls_security_level=may):
    Postfix's smtp client delivers into tern, in plaintext while tern offers no STARTTLS."""
    tern = make_tern()
    pf = postfix(None, smtpd_tls="none", relayhost=("127.0.0.1", tern.port), relay_tls="may")
    pf.send("someone@pf.test", ["rcpt@localhost"], b"Subject: from postfix\r\n\r\nhi\r\n")
    got = tern.wait_delivered("rcpt", 1, timeout=30)
    assert b"from postfix" in got[0]
    assert wait_for(lambda: "status=sent" in pf.log(), 10), pf.log()


def test_credentials_without_verify_warned(make_tern, workdir):
    """smtpauth sends the password over any TLS its destination's level allows: ternd -n warns
    for a smarthost whose level is not verify, and is quiet once it is."""
    creds = workdir / "smtpauth"
    creds.write_text("smarthost.test:587 joe:pw\n")
    os.chmod(creds, 0o600)
    import subprocess
    from conftest import TERND
    t = make_tern(config={"smtpauth": f"file:{creds}"}, start=False)
    t.write_config()
    p = subprocess.run([str(TERND), "-n", "-f", str(t.conf)], capture_output=True, text=True,
                       timeout=30)
    out = p.stderr + p.stdout
    assert p.returncode == 0, out
    assert "password for smarthost.test:587 goes out under TLS level may" in out, out
    t.config["tlsdestinations"] = "smarthost.test:587=verify"
    t.write_config()
    p = subprocess.run([str(TERND), "-n", "-f", str(t.conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and "smtpauth" not in p.stderr + p.stdout, p.stderr + p.stdout
