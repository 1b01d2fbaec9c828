"""test_dsn_python — an independent reader for tern's RFC 3464 reports: Python's `email`
package parses what src/mail/dsn.c builds (through tests/e2e/dsn_driver.c, compiled here).

Checks the MIME tree (multipart/report with three parts), that the parser finds no defects,
the delivery-status groups as Python splits them, the returned message or header, 8-bit
originals, a boundary-looking original, and hostile diagnostics.
"""
import email
import email.policy
import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORIG = (b"From: alice@here.example\nTo: bob@example.com\nSubject: lunch?\n"
        b"Message-ID: <orig@here.example>\n\nAre you free on Friday?\n")


@pytest.fixture(scope="module")
def driver():
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler")
    d = tempfile.mkdtemp(prefix="tern-dsn-")
    exe = os.path.join(d, "dsn_driver")
    src = [os.path.join(REPO, p) for p in ("tests/e2e/dsn_driver.c", "src/mail/dsn.c",
                                           "src/lib/buf.c", "src/lib/log.c")]
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O1", "-I" + os.path.join(REPO, "src"),
                    "-o", exe] + src, check=True, timeout=120)
    yield exe
    shutil.rmtree(d, ignore_errors=True)


def build(driver, rcpts, orig=ORIG, sender="alice@here.example", maxbytes=0):
    p = subprocess.run([driver, sender, str(maxbytes)] + rcpts, input=orig,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def parse(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert not msg.defects, msg.defects
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    return msg


def test_failed_report(driver):
    raw = build(driver, ["bob@example.com:f:5.1.1:mx.example.com:smtp; 550 5.1.1 no such user"])
    msg = parse(raw)
    assert msg["From"] == "MAILER-DAEMON@bounces.test.example"
    assert msg["To"].addresses[0].addr_spec == "alice@here.example"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    human, status, orig = msg.get_payload()
    assert human.get_content_type() == "text/plain"
    text = human.get_content()
    assert text.startswith("Hi. This is the tern program at mx.test.example.\n")
    assert "<bob@example.com>:\nmx.example.com said: 550 5.1.1 no such user" in text
    assert status.get_content_type() == "message/delivery-status"
    groups = status.get_payload()
    assert len(groups) == 2
    assert groups[0]["Reporting-MTA"] == "dns; mx.test.example"
    assert groups[0]["X-Tern-Queue-ID"] == "q1.test"
    g = groups[1]
    assert g["Final-Recipient"] == "rfc822; bob@example.com"
    assert g["Action"] == "failed" and g["Status"] == "5.1.1"
    assert g["Remote-MTA"] == "dns; mx.example.com"
    assert g["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert orig.get_content_type() == "message/rfc822"
    inner = orig.get_payload()[0]
    assert inner["Subject"] == "lunch?"
    assert inner.get_content() == "Are you free on Friday?\n"


def test_delay_and_mixed(driver):
    msg = parse(build(driver, ["d@slow.example:d:4.4.1::x-tern; timed out"]))
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    g = msg.get_payload()[1].get_payload()[1]
    assert g["Action"] == "delayed" and g["Will-Retry-Until"]
    msg = parse(build(driver, ["a@x:f:5.1.1::no", "b@y:d:4.2.0::later", "c@z:f:5.2.2::full"]))
    groups = msg.get_payload()[1].get_payload()
    assert [g["Action"] for g in groups[1:]] == ["failed", "delayed", "failed"]


def test_headers_only(driver):
    big = ORIG + b"x" * 5000 + b"\n"
    msg = parse(build(driver, ["bob@example.com:f:5.3.4::too big"], orig=big, maxbytes=1000))
    part = msg.get_payload()[2]
    assert part.get_content_type() == "text/rfc822-headers"
    assert part.get_content().replace("\r\n", "\n") == ORIG.split(b"\n\n")[0].decode() + "\n"
    assert "only its header is attached" in msg.get_payload()[0].get_content()


def test_8bit_original_and_utf8_recipient(driver):
    orig = "Subject: caf\u00e9\n\nd\u00e9j\u00e0 vu\n".encode()
    msg = parse(build(driver, ["j\u00fcrgen@example.com:f:5.1.1::no"], orig=orig))
    assert msg["Content-Transfer-Encoding"] == "8bit"
    human, status, part = msg.get_payload()
    assert human.get_content_charset() == "utf-8"
    assert "<j\u00fcrgen@example.com>:" in human.get_content()
    assert status.get_payload()[1]["Final-Recipient"] == "utf-8; j\\x{00FC}rgen@example.com"
    assert part["Content-Transfer-Encoding"] == "8bit"
    assert part.get_payload()[0].get_payload(decode=True) == "d\u00e9j\u00e0 vu\n".encode()


def test_boundary_lookalike_and_hostile_diag(driver):
    orig = b"Subject: x\n\n--=_tern_q1.test_feedfacecafef00d_0\nmore\n"
    diag = "smtp; 550 first\r\nX-Evil: 1\r\n550 " + "word " * 80
    raw = build(driver, ["bob@example.com:f:5.0.0:mx:" + diag], orig=orig)
    msg = parse(raw)
    assert len(msg.get_payload()) == 3
    assert msg.get_payload()[2].get_payload()[0].get_content() == (
        "--=_tern_q1.test_feedfacecafef00d_0\nmore\n")
    g = msg.get_payload()[1].get_payload()[1]
    assert "X-Evil" not in g.keys()
    assert " ".join(g["Diagnostic-Code"].split()).startswith("smtp; 550 first X-Evil: 1 550 word")
    assert b"\r" not in raw


def test_never_bounce_to_null_sender(driver):
    p = subprocess.run([driver, "", "0", "a@b:f:5.1.1::x"], input=ORIG, capture_output=True,
                       timeout=30)
    assert p.returncode == 1 and b"<>" in p.stderr
