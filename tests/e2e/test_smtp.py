"""tests/e2e/test_smtp.py — ternd's SMTP server end to end: real clients (smtplib, a raw
socket client, swaks, mutt reading the result) against a live ternd on 127.0.0.1, mail
delivered into Maildirs under the test's temporary directory.

Owns: the behaviour PROTOCOLS.md §3 and DESIGN.md §5 promise on the wire. Trusts: conftest's
Tern fixture. Every wait is bounded; every server is stopped by the fixture.
"""
import concurrent.futures
import hashlib
import os
import random
import re
import shlex
import shutil
import smtplib
import string
import subprocess
import time

import pytest

from conftest import RawSMTP, parse_message, split_message

SENDER = "sender@example.org"
ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


def qid_of(reply_text):
    """The queue id named in a 250 reply to the end of data ("… queued as ID")."""
    m = re.search(r"queued as\s+<?([A-Za-z0-9._:/+-]+)>?", reply_text, re.I)
    assert m, f"no queue id in the reply {reply_text!r}"
    return m.group(1)


def crlf(data):
    """Bytes with every line ending as CRLF (smtplib sends bytes as they are)."""
    if isinstance(data, str):
        data = data.encode()
    return re.sub(rb"\r?\n", b"\r\n", data)


def message(subject="test", body="hello\n", extra=""):
    return (f"From: Sender <{SENDER}>\nTo: user@localhost\nSubject: {subject}\n"
            f"Message-ID: <{random.getrandbits(64):x}@e2e.test>\n{extra}\n{body}")


def send(tern, rcpts=("user@localhost",), msg=None, sender=SENDER):
    """Send one message with smtplib; return the end-of-data reply text."""
    msg = msg if msg is not None else message()
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=30) as s:
        s.ehlo("client.test")
        code, text = s.mail(sender)
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(crlf(msg))
        assert code == 250, (code, text)
        return text.decode()


def session(tern):
    """A raw session after EHLO."""
    c = tern.smtp()
    assert c.greeting[0] == 220, c.greeting
    code, lines = c.cmd("EHLO client.test")
    assert code == 250, lines
    return c


def assert_nothing_delivered(tern, *users, wait=1.5):
    time.sleep(wait)
    for u in users:
        assert tern.maildir(u) == [], f"unexpected delivery to {u}"


# ----------------------------------------------------------------------------- delivery

def test_simple_message_delivered_with_trace_headers(tern):
    body = "first line\n\nsecond paragraph, with trailing space \nlast line\n"
    reply = send(tern, msg=message("simple", body))
    msgs = tern.wait_delivered("user", 1)
    assert len(msgs) == 1
    head, got = split_message(msgs[0])
    assert got == body.encode()
    m = parse_message(msgs[0])
    assert m["Return-Path"] is not None and m["Return-Path"].strip() == f"<{SENDER}>"
    assert m["Delivered-To"] is not None and "user@localhost" in m["Delivered-To"].lower()
    assert m.get_all("Received"), "no Received header"
    assert m["Subject"] == "simple"
    # trace headers come first (prepended), the original header follows intact
    first = head.split(b"\n", 1)[0].split(b":")[0].lower()
    assert first in (b"return-path", b"delivered-to", b"received"), head
    assert qid_of(reply)


def test_queue_id_in_reply_appears_in_received(tern):
    qid = qid_of(send(tern))
    m = parse_message(tern.wait_delivered("user", 1)[0])
    received = " ".join(m.get_all("Received"))
    assert qid in received, f"queue id {qid} not in Received: {received!r}"


def test_two_recipients_each_get_one_copy(tern):
    send(tern, rcpts=("alice@localhost", "bob@localhost"))
    assert len(tern.wait_delivered("alice", 1)) == 1
    assert len(tern.wait_delivered("bob", 1)) == 1
    time.sleep(0.5)
    assert len(tern.maildir("alice")) == 1 and len(tern.maildir("bob")) == 1


def test_8bit_body_intact(tern):
    body = "gr\u00fc\u00dfe, \u65e5\u672c\u8a9e, caf\u00e9\n"
    msg = message("8bit", body, extra="MIME-Version: 1.0\nContent-Type: text/plain; "
                  "charset=utf-8\nContent-Transfer-Encoding: 8bit\n")
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.has_extn("8bitmime")
        s.sendmail(SENDER, ["user@localhost"], crlf(msg), mail_options=["BODY=8BITMIME"])
    _, got = split_message(tern.wait_delivered("user", 1)[0])
    assert got == body.encode()


# ----------------------------------------------------------------------------- EHLO & codes

def test_ehlo_keywords(tern):
    with tern.smtp() as c:
        code, lines = c.cmd("EHLO client.test")
        assert code == 250
        kw = {ln[4:].split()[0].upper() for ln in lines[1:]}
        assert {"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE"} <= kw, lines
        size = [ln[4:].split() for ln in lines[1:] if ln[4:].upper().startswith("SIZE")][0]
        assert len(size) == 2 and int(size[1]) == 10485760, f"SIZE should name databytes: {size}"


def test_ehlo_size_follows_databytes(make_tern):
    t = make_tern({"databytes": "12345"})
    with t.smtp() as c:
        code, lines = c.cmd("EHLO client.test")
        assert any(re.match(r"^250[ -]SIZE 12345$", ln, re.I) for ln in lines), lines


def test_enhanced_codes_on_every_reply_after_ehlo(tern):
    script = [
        "NOOP", "RSET", "VRFY user", "EXPN list", "HELP", "FROBNICATE",
        "RCPT TO:<user@localhost>", "DATA", "MAIL FROM:<unterminated",
        f"MAIL FROM:<{SENDER}>", "RCPT TO:<user@localhost>", "RCPT TO:<x@elsewhere.example>",
        "DATA", None, "SEND FROM:<a@b.example>", "TURN", "RSET", "QUIT",
    ]
    with session(tern) as c:
        for line in script:
            if line is None:
                c.send("Subject: codes\r\n\r\nbody\r\n.\r\n")
                code, lines = c.reply()
                assert code == 250, lines
            else:
                code, lines = c.cmd(line)
                assert code is not None, f"connection closed after {line!r}"
            if code == 354:
                continue
            for ln in lines:
                assert ENHANCED.match(ln), f"{line!r} -> {ln!r}: no enhanced status code"
        assert c.closed()


@pytest.mark.parametrize("line,code", [
    ("VRFY user", 252), ("VRFY <user@localhost>", 252), ("EXPN staff", 502), ("HELP", 214),
    ("SEND FROM:<a@b.example>", 502), ("SOML FROM:<a@b.example>", 502),
    ("SAML FROM:<a@b.example>", 502), ("TURN", 502), ("FROBNICATE", 500), ("XYZZY 1 2 3", 500),
    ("NOOP", 250), ("RSET", 250),
])
def test_command_reply_codes(tern, line, code):
    with session(tern) as c:
        got, lines = c.cmd(line)
        assert got == code, lines
        got, lines = c.cmd("NOOP")   # the session goes on
        assert got == 250, lines


def test_sequence_errors_503(tern):
    with session(tern) as c:
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 503
        assert c.cmd("DATA")[0] == 503
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd("DATA")[0] == 503               # MAIL but no RCPT yet
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 503  # nested MAIL
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 250
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 503  # RSET ended the transaction


@pytest.mark.parametrize("line", ["MAIL", "MAIL FROM:", "MAIL FROM:<unterminated@example.org"])
def test_bad_mail_syntax_501(tern, line):
    with session(tern) as c:
        code, lines = c.cmd(line)
        assert code == 501, lines


def test_line_over_1000_octets_500_5_5_2(tern):
    with session(tern) as c:
        code, lines = c.cmd("NOOP " + "x" * 1100)
        assert code == 500 and lines[-1][4:].startswith("5.5.2"), lines


def test_pipelining_replies_in_order(tern):
    with session(tern) as c:
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@localhost>\r\n"
               "RCPT TO:<user2@localhost>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354]
        c.send("Subject: piped\r\n\r\npipelined body\r\n.\r\nQUIT\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 221
    for u in ("user", "user2"):
        _, body = split_message(tern.wait_delivered(u, 1)[0])
        assert body == b"pipelined body\n"


# ----------------------------------------------------------------------------- policy

def test_relay_denied_553_5_7_1(tern):
    with session(tern) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        code, lines = c.cmd("RCPT TO:<someone@example.com>")
        assert code == 553 and lines[-1][4:].startswith("5.7.1"), lines
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 250   # local mail still fine


def test_relay_allowed_for_relayclients(make_tern):
    t = make_tern({"relayclients": "127.0.0.1/8"})
    with session(t) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        code, lines = c.cmd("RCPT TO:<someone@example.com>")
        assert code == 250, lines
        assert c.cmd("RSET")[0] == 250


def test_rcpthosts_accepted_from_anyone(make_tern):
    t = make_tern({"rcpthosts": "example.net"})
    with session(t) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd("RCPT TO:<someone@example.net>")[0] == 250
        code, lines = c.cmd("RCPT TO:<someone@example.com>")
        assert code == 553 and lines[-1][4:].startswith("5.7.1"), lines
        assert c.cmd("RSET")[0] == 250


def test_unknown_local_user_550_5_1_1(make_tern):
    t = make_tern(users={"alice": None})
    with session(t) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        code, lines = c.cmd("RCPT TO:<bob@localhost>")
        assert code == 550 and lines[-1][4:].startswith("5.1.1"), lines
        assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: to alice\r\n\r\nfor alice\r\n.\r\n")
        assert c.reply()[0] == 250
    _, body = split_message(t.wait_delivered("alice", 1)[0])
    assert body == b"for alice\n"


def test_badmailfrom_553_5_7_1(make_tern):
    t = make_tern({"badmailfrom": "spammer@evil.test @bad.test"})
    for sender in ("spammer@evil.test", "anyone@bad.test"):
        with session(t) as c:
            code, lines = c.cmd(f"MAIL FROM:<{sender}>")
            if code == 250:   # qmail refuses at RCPT time; tern may refuse at MAIL
                code, lines = c.cmd("RCPT TO:<user@localhost>")
            assert code == 553 and lines[-1][4:].startswith("5.7.1"), (sender, lines)
    with session(t) as c:
        assert c.cmd("MAIL FROM:<fine@good.test>")[0] == 250
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 250


def test_badrcptto_550_5_7_1(make_tern):
    t = make_tern({"badrcptto": "blocked@localhost"})
    with session(t) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        code, lines = c.cmd("RCPT TO:<blocked@localhost>")
        assert code == 550 and lines[-1][4:].startswith("5.7.1"), lines
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 250


def test_databytes_size_parameter_552_5_3_4(make_tern):
    t = make_tern({"databytes": "10000"})
    with session(t) as c:
        code, lines = c.cmd(f"MAIL FROM:<{SENDER}> SIZE=20000")
        assert code == 552 and lines[-1][4:].startswith("5.3.4"), lines
        assert c.cmd(f"MAIL FROM:<{SENDER}> SIZE=5000")[0] == 250


def test_databytes_actual_data_552_5_3_4(make_tern):
    t = make_tern({"databytes": "10000"})
    with session(t) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd("RCPT TO:<big@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: big\r\n\r\n" + ("y" * 70 + "\r\n") * 300 + ".\r\n")
        code, lines = c.reply()
        assert code == 552 and lines[-1][4:].startswith("5.3.4"), lines
        # the session goes on, and a small message still passes
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd("RCPT TO:<small@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: small\r\n\r\nsmall\r\n.\r\n")
        assert c.reply()[0] == 250
    t.wait_delivered("small", 1)
    assert_nothing_delivered(t, "big", wait=0.5)


def test_maxrcptcount_452_4_5_3(make_tern):
    t = make_tern({"maxrcptcount": "3"})
    with session(t) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        for i in range(3):
            assert c.cmd(f"RCPT TO:<r{i}@localhost>")[0] == 250
        code, lines = c.cmd("RCPT TO:<r3@localhost>")
        assert code == 452 and lines[-1][4:].startswith("4.5.3"), lines
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: three\r\n\r\nthree recipients\r\n.\r\n")
        assert c.reply()[0] == 250
    for i in range(3):
        t.wait_delivered(f"r{i}", 1)
    assert_nothing_delivered(t, "r3", wait=0.5)


def test_maxrcptcount_0_still_bounded_by_one_commit_frame(make_tern):
    # maxrcptcount 0 (unlimited): the recipients' octets must still fit the queue's
    # M_MSG_COMMIT frame (MSG_MAXPAYLOAD, 16 MiB) — the recipient past it gets 452 4.5.3
    # instead of a commit that would make the queue drop the smtp role's channel
    t = make_tern({"maxrcptcount": "0", "relayclients": "127.0.0.1"})
    dom = ".".join(["d" * 59] * 3) + ".example"
    accepted, refused, batch = 0, None, 1000
    with session(t) as c:
        c.sock.settimeout(60)
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        i = 0
        while refused is None and i < 80000:
            c.send("".join(f"RCPT TO:<{i + k:064d}@{dom}>\r\n" for k in range(batch)))
            for _ in range(batch):
                code, lines = c.reply()
                if code == 250 and refused is None:
                    accepted += 1
                elif refused is None:
                    refused = (code, lines)
            i += batch
        assert refused is not None, accepted
        code, lines = refused
        assert code == 452 and lines[-1][4:].startswith("4.5.3"), lines
        assert 60000 < accepted < 16 * 1024 * 1024 // 258, accepted
        assert c.cmd("RSET")[0] == 250
    assert "peer_lost" not in t.log()


def test_timeoutsmtpd_421_4_4_2_then_close(make_tern):
    t = make_tern({"timeoutsmtpd": "2"})
    with session(t) as c:
        c.sock.settimeout(10)
        t0 = time.monotonic()
        code, lines = c.reply()
        waited = time.monotonic() - t0
        assert code == 421 and lines[-1][4:].startswith("4.4.2"), lines
        assert 1.5 <= waited <= 8, f"timeout reply after {waited:.1f} s"
        assert c.closed()


def test_maxsmtpdperip_third_connection_421(make_tern):
    t = make_tern({"maxsmtpdperip": "2"})
    time.sleep(0.3)   # let the readiness probe's session end
    a, b = t.smtp(), t.smtp()
    try:
        assert a.greeting[0] == 220 and b.greeting[0] == 220
        with RawSMTP("127.0.0.1", t.port) as third:
            assert third.greeting[0] == 421, third.greeting
            assert third.closed()
        a.cmd("QUIT")
        a.closed()
        # a slot is free again (allow the server a moment to account for it)
        deadline = time.monotonic() + 5
        while True:
            with RawSMTP("127.0.0.1", t.port) as again:
                if again.greeting[0] == 220 or time.monotonic() > deadline:
                    assert again.greeting[0] == 220, again.greeting
                    break
            time.sleep(0.1)
    finally:
        a.close()
        b.close()


def test_tarpit_delays_rcpt_after_tarpitcount(make_tern):
    t = make_tern({"tarpitcount": "2", "tarpitdelay": "1"})
    with session(t) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        times = []
        for i in range(3):
            t0 = time.monotonic()
            assert c.cmd(f"RCPT TO:<t{i}@localhost>")[0] == 250
            times.append(time.monotonic() - t0)
        assert times[0] < 0.9 and times[1] < 0.9, times
        assert times[2] >= 0.95, times
        c.cmd("QUIT")


# ----------------------------------------------------------------------------- DATA framing

SMUGGLED = ("MAIL FROM:<evil@example.org>\r\nRCPT TO:<smuggled@localhost>\r\nDATA\r\n"
            "Subject: smuggled\r\n\r\nsmuggled-text\r\n").encode()


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n"],
                         ids=["LF.LF", "CR.CR", "CRLF.LF", "LF.CRLF"])
def test_smtp_smuggling_is_not_split(tern, fake_end):
    with session(tern) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: carrier\r\n\r\ncarrier-text" + fake_end + SMUGGLED + b".\r\n")
        code, lines = c.reply()
        assert code == 250 or 500 <= code <= 599, lines
        # had the fake end been taken, the next replies would be the smuggled commands'
        quit_code, quit_lines = c.cmd("QUIT")
        assert quit_code == 221, f"reply to QUIT: {quit_lines} (smuggled commands ran?)"
    if code == 250:
        msgs = tern.wait_delivered("user", 1)
        assert b"carrier-text" in msgs[0] and b"smuggled-text" in msgs[0]
        assert b"smuggled@localhost" in msgs[0]
        assert_nothing_delivered(tern, "smuggled")
        assert len(tern.maildir("user")) == 1
    else:   # rejected whole: nothing at all
        assert_nothing_delivered(tern, "user", "smuggled")


def test_dot_unstuffing(tern):
    with session(tern) as c:
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd("RCPT TO:<user@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: dots\r\n\r\n..leading dot\r\n..\r\n...\r\nmid.dle\r\n. x\r\n.\r\n")
        assert c.reply()[0] == 250
    _, body = split_message(tern.wait_delivered("user", 1)[0])
    # ". x" was not stuffed by the client; RFC 5321 4.5.2: drop the first dot anyway
    assert body == b".leading dot\n.\n..\nmid.dle\n x\n"


def test_smtplib_dot_stuffing_round_trip(tern):
    body = ".\n..\n.hidden\nnormal\n.\n"
    send(tern, msg=message("dots2", body))
    _, got = split_message(tern.wait_delivered("user", 1)[0])
    assert got == body.encode()


# ----------------------------------------------------------------------------- load

@pytest.mark.slow
def test_1000_messages_20_connections_exactly_once(tern):
    threads, per = 20, 50
    rnd = random.Random(20240601)
    sent = {}   # message-id -> sha256 of the body (LF line ends)

    def plan(t):
        out = []
        for i in range(per):
            mid = f"<load-{t}-{i}-{rnd.getrandbits(48):x}@e2e.test>"
            lines = ["".join(rnd.choice(string.ascii_letters + string.digits + " .,-")
                             for _ in range(rnd.randint(0, 120)))
                     for _ in range(rnd.randint(1, 40))]
            body = "\n".join(lines) + "\n"
            msg = (f"From: <{SENDER}>\nTo: <load@localhost>\nSubject: load {t}/{i}\n"
                   f"Message-ID: {mid}\n\n{body}")
            out.append((mid, body, msg))
        return out

    plans = [plan(t) for t in range(threads)]
    for p in plans:
        for mid, body, _ in p:
            sent[mid] = hashlib.sha256(body.encode()).hexdigest()

    def worker(p):
        with smtplib.SMTP("127.0.0.1", tern.port, timeout=60) as s:
            s.ehlo("load.test")
            for _, _, msg in p:
                refused = s.sendmail(SENDER, ["load@localhost"], crlf(msg))
                assert not refused, refused
        return len(p)

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        done = sum(ex.map(worker, plans))
    assert done == threads * per
    msgs = tern.wait_delivered("load", threads * per, timeout=240)
    elapsed = time.monotonic() - t0
    time.sleep(1)   # anything extra (a duplicate) would show up now
    msgs = tern.maildir("load")
    seen = {}
    for raw in msgs:
        m = parse_message(raw)
        mid = (m["Message-ID"] or "").strip()
        assert mid in sent, f"unknown message {mid!r}"
        seen[mid] = seen.get(mid, 0) + 1
        _, body = split_message(raw)
        assert hashlib.sha256(body).hexdigest() == sent[mid], f"body of {mid} changed"
    dups = {k: v for k, v in seen.items() if v > 1}
    assert not dups, f"delivered more than once: {list(dups)[:5]}"
    assert len(seen) == len(sent), f"missing: {len(sent) - len(seen)}"
    print(f"\n1000 messages accepted and delivered in {elapsed:.1f} s")


# ----------------------------------------------------------------------------- real peers

def swaks(tern, *args, timeout=30):
    if not shutil.which("swaks"):
        pytest.fail("swaks is not installed (scripts/deps test)")
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(tern.port), "--helo", "client.test",
           "--from", SENDER, "--timeout", "10", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_swaks_pipelined_delivery(tern):
    r = swaks(tern, "--to", "user@localhost,other@localhost", "--pipeline",
              "--header", "Subject: from swaks", "--body", "swaks body line")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PIPELINING" in r.stdout
    for u in ("user", "other"):
        m = parse_message(tern.wait_delivered(u, 1)[0])
        assert m["Subject"] == "from swaks"
        assert b"swaks body line" in split_message(tern.maildir(u)[0])[1]


def test_swaks_sees_relay_refusal(tern):
    r = swaks(tern, "--to", "someone@example.com", "--quit-after", "RCPT")
    assert r.returncode != 0
    assert re.search(r"<\*\* 553 5\.7\.1", r.stdout), r.stdout


def test_swaks_data_from_file_with_dots(tern, workdir):
    data = workdir / "msg.eml"
    data.write_bytes(b"From: <sender@example.org>\r\nTo: <user@localhost>\r\nSubject: file\r\n"
                     b"\r\n.starts with a dot\r\n..two dots\r\nend")   # swaks adds CRLF . CRLF
    r = swaks(tern, "--to", "user@localhost", "--data", f"@{data}")
    assert r.returncode == 0, r.stdout + r.stderr
    _, body = split_message(tern.wait_delivered("user", 1)[0])
    assert body == b".starts with a dot\n..two dots\nend\n"


def test_mutt_reads_the_maildir(tern, workdir):
    if not shutil.which("mutt") or not shutil.which("script"):
        pytest.fail("mutt and script(1) are needed (scripts/deps test)")
    for i in range(3):
        send(tern, msg=message(f"for mutt {i}", f"mutt-body-{i}\n"))
    tern.wait_delivered("user", 3)
    maildir = tern.maildir_path("user")
    out = workdir / "mutt-out.txt"
    rc = workdir / "muttrc"
    rc.write_text("set pipe_split=yes\nset wait_key=no\nset mbox_type=Maildir\n"
                  "set sort=date\nset confirmappend=no\nset folder=" + str(workdir) + "\n")
    keys = (f"<tag-pattern>~A<enter><tag-prefix><pipe-entry>cat >> {out}<enter><quit>")
    push = 'push "' + keys + '"'
    mutt = (f"stty cols 132 rows 40; exec mutt -n -R -F {shlex.quote(str(rc))} "
            f"-f {shlex.quote(str(maildir))} -e {shlex.quote(push)}")
    env = dict(os.environ, TERM="vt100", HOME=str(workdir), MAIL=str(maildir))
    screen = subprocess.run(["timeout", "-k", "5", "30", "script", "-qec", mutt, "/dev/null"],
                            capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert screen.returncode == 0, screen.stdout[-2000:]
    text = out.read_bytes() if out.exists() else b""
    for i in range(3):
        assert f"mutt-body-{i}".encode() in text, (text[-2000:], screen.stdout[-2000:])
    assert text.count(b"\nSubject: for mutt ") == 3
    assert b"Msgs:3" in screen.stdout.replace(b"\x1b", b"")
